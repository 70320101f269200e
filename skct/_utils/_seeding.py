"""Seed derivation: one way to turn a user's ``random_state`` and a task's identity into seeds."""

from __future__ import annotations

import numbers
import zlib

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["derive_seed", "entropy_from", "draw_seed"]


def _key_int(key):
    """A stable (process- and platform-independent) non-negative int for a seed key."""
    if isinstance(key, (bool, np.bool_)):
        return int(key)
    if isinstance(key, (numbers.Integral, np.integer)) and key >= 0:
        return int(key)
    return zlib.crc32(repr(key).encode("utf-8"))


def derive_seed(*keys):
    """A 32-bit seed derived from keys (ints and strings), never from the order of work.

    The same keys give the same seed in every process, on every platform and under every joblib
    backend, so results do not depend on how tasks are scheduled.

    Examples
    --------
    >>> derive_seed(0, "factuals", 3) == derive_seed(0, "factuals", 3)
    True
    >>> derive_seed(0, "a") != derive_seed(0, "b")
    True
    """
    ss = np.random.SeedSequence([_key_int(k) for k in keys])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def entropy_from(random_state):
    """A non-negative int from a ``random_state`` (None: fresh OS entropy; a RandomState: one
    draw from it) to derive task seeds from with :func:`derive_seed`."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, (numbers.Integral, np.integer)):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    return draw_seed(check_random_state(random_state))


def draw_seed(rng):
    """One int seed in [0, 2**31 - 1) drawn from a ``RandomState`` (for torch generators)."""
    return int(rng.randint(0, 2**31 - 1))
