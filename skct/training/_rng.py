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

On a CUDA device, random operations on the GPU (dropout) draw from the device's generator,
which :func:`cuda_seeded` seeds for the fit as before; it is shared by every thread, so fits
running concurrently on one GPU are not bit-identical (a warning says so).
"""

from __future__ import annotations

import contextlib
import threading
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, default_collate

__all__ = ["StreamDataLoader", "cuda_seeded", "stream_as_global"]

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


@contextlib.contextmanager
def cuda_seeded(device, seed):
    """On a CUDA ``device``, seed its generator with ``seed`` for the block, then restore it.

    Nothing happens on other devices. The device generator is process-wide: from a thread
    other than the main one a ``UserWarning`` says that concurrent fits are not bit-identical.

    Examples
    --------
    >>> with cuda_seeded("cpu", 0):  # a no-op on the CPU
    ...     pass
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        warnings.warn(
            "Counterfactual training on CUDA: random operations on the GPU (e.g. dropout) draw "
            "from the device's generator, which all threads share, so fits running "
            "concurrently in threads are not bit-identical to a fit alone.", UserWarning,
            stacklevel=3)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    with torch.random.fork_rng(devices=[index]), torch.cuda.device(index):
        torch.cuda.manual_seed(seed)
        yield


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

    For a skorch ``Dataset`` of one dense array or tensor (and labels or none), with torch's
    default collation and no worker processes, each batch is taken with one indexing of the
    arrays instead of one ``__getitem__`` per row and a collation: the same rows in the same
    order, the same values and dtypes (a conventional epoch of 5000 x 20 rows spent almost half
    its time in the per-row path).

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

    def __iter__(self):
        arrays = _whole_batch_arrays(self)
        if arrays is None:
            yield from super().__iter__()
            return
        X, y = arrays
        batches = iter(self.batch_sampler)
        # the base class's iterator draws its workers' base seed here, before the sampler's
        # first draw: the same draw keeps the batches those of torch's loader
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        for idx in batches:
            rows = torch.as_tensor(idx, dtype=torch.int64)
            xb = X.index_select(0, rows)
            yb = torch.zeros(len(idx), 1) if y is None else y.index_select(0, rows)
            yield [xb, yb]  # a list, as torch's default collation gives


def _as_rows(a):
    """A dense numpy array or CPU tensor as a tensor sharing its memory, else None."""
    if isinstance(a, torch.Tensor):
        return a if a.layout == torch.strided and a.device.type == "cpu" else None
    if isinstance(a, np.ndarray) and a.dtype.kind in "fiub" and a.ndim >= 1:
        with warnings.catch_warnings():  # read-only arrays are only read (batches are copies)
            warnings.filterwarnings("ignore", message=".*not writable", category=UserWarning)
            return torch.from_numpy(a)
    return None


def _whole_batch_arrays(loader):
    """(X, y or None) as tensors when ``loader`` can index whole batches, else None.

    That is: a plain skorch ``Dataset`` (its own ``__getitem__`` and ``transform``) of one dense
    array or CPU tensor X and labels y (dense, one dimension) or no labels, torch's default
    collation, no worker processes, no pinned memory, and batches from a batch sampler.
    """
    from skorch.dataset import Dataset

    ds = loader.dataset
    if type(ds) is not Dataset or loader.num_workers or loader.pin_memory:
        return None
    if loader.collate_fn is not default_collate or loader.batch_sampler is None:
        return None
    if getattr(ds, "X_is_ndframe", False) or getattr(ds, "X_indexing", None) is None:
        return None
    X, y = _as_rows(ds.X), None
    if X is None:
        return None
    if ds.y is not None:
        y = _as_rows(ds.y)
        if y is None or y.ndim != 1:
            return None
    return X, y
