"""The random streams of a fit: private torch generators, so concurrent fits never interfere.

torch's process-wide generator is shared by every thread of a process: two fits seeding it at
the same time (joblib's threading backend, a thread pool) draw each other's numbers. A fit of
:class:`~skct.training.CounterfactualNet` therefore draws from its own ``torch.Generator``
(``stream``):

- batch order: :class:`StreamDataLoader` takes the stream as its ``generator`` and shuffles the
  way torch's ``DataLoader`` does with the process-wide generator, so the batches are those of a
  plain skorch net seeded with ``torch.manual_seed``;
- what cannot take a generator (a module's initialisation, dropout in its forward pass) runs
  inside :func:`stream_as_global`: under one process-wide lock, torch's global generator is set
  to the stream's state and the stream takes the state back afterwards, so the numbers drawn
  are the stream's whatever other threads do. The lock serialises only these blocks.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch.utils.data import DataLoader, RandomSampler

__all__ = ["StreamDataLoader", "stream_as_global"]

#: Held while torch's process-wide CPU generator carries a fit's stream.
_GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def stream_as_global(stream):
    """Run the block with torch's global CPU generator carrying ``stream``'s state.

    The block's draws from the global generator come from ``stream`` (which is advanced by
    them); the global generator is restored afterwards, and the lock keeps other fits' blocks
    out meanwhile. CUDA generators are not covered.

    Parameters
    ----------
    stream : torch.Generator
        A CPU generator.

    Examples
    --------
    >>> import torch
    >>> a = torch.Generator().manual_seed(0)
    >>> with stream_as_global(a):
    ...     x = torch.rand(2)  # drawn from a, not from the process-wide stream
    >>> torch.equal(x, torch.rand(2, generator=torch.Generator().manual_seed(0)))
    True
    """
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.set_rng_state(stream.get_state())
        try:
            yield stream
        finally:
            stream.set_state(torch.get_rng_state())


class _ReseedingSampler(RandomSampler):
    """A permutation per epoch, drawn as torch's ``RandomSampler`` draws without a generator.

    Without a generator, torch draws one int64 seed per epoch from the global generator and
    permutes with a fresh generator seeded with it; this sampler draws that seed from its own
    ``generator`` instead.
    """

    def __iter__(self):
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())
        permutation = torch.Generator().manual_seed(seed)
        yield from torch.randperm(len(self.data_source), generator=permutation).tolist()


class StreamDataLoader(DataLoader):
    """torch's ``DataLoader`` drawing every random number from ``generator``.

    With ``shuffle=True`` the batches are those torch's ``DataLoader`` gives when the global
    generator is in ``generator``'s state, so a fit with a private stream reproduces a fit
    seeded with ``torch.manual_seed`` exactly. Without ``generator`` a fresh
    ``torch.Generator()`` is used: the loader never touches the process-wide generator.

    Parameters
    ----------
    dataset : torch Dataset
    shuffle : bool, default=False
    generator : torch.Generator or None, default=None
    **kwargs
        Other ``DataLoader`` arguments (``batch_size``, ``num_workers``, ...).

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> data = TensorDataset(torch.arange(6))
    >>> ours = StreamDataLoader(data, batch_size=6, shuffle=True,
    ...                         generator=torch.Generator().manual_seed(1))
    >>> _ = torch.manual_seed(1)
    >>> torch.equal(next(iter(ours))[0], next(iter(DataLoader(data, 6, shuffle=True)))[0])
    True
    """

    def __init__(self, dataset, *, shuffle=False, generator=None, **kwargs):
        generator = torch.Generator() if generator is None else generator
        if shuffle and kwargs.get("sampler") is None and kwargs.get("batch_sampler") is None:
            kwargs["sampler"] = _ReseedingSampler(dataset, generator=generator)
            shuffle = None
        super().__init__(dataset, shuffle=shuffle, generator=generator, **kwargs)
