"""Global configuration: how many torch intra-op threads skct's work runs with."""

from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["get_config", "set_config", "config_context", "torch_threads"]


def _env_threads():
    value = os.environ.get("SKCT_TORCH_THREADS", "1")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"SKCT_TORCH_THREADS must be an integer, got {value!r}.") from None


_CONFIG = {"torch_threads": _env_threads()}


def get_config():
    """Current skct configuration (a copy).

    Returns
    -------
    dict
        ``torch_threads``: torch intra-op threads used while skct fits, predicts and searches
        (default 1, or ``$SKCT_TORCH_THREADS``; 0 leaves torch's own setting alone).
    """
    return dict(_CONFIG)


def set_config(*, torch_threads=None):
    """Set skct's configuration.

    Parameters
    ----------
    torch_threads : int or None
        Torch intra-op threads during skct's work; 0 leaves torch's setting alone. The default 1
        is safe when cores are shared: with the other core busy, two threads made a 10k-row
        search 15x slower, and parallel evaluation (``n_jobs``) already uses every core. On an
        otherwise idle machine two threads ran the same search 1.8x faster
        (``benchmarks/bench_search.py``), so raise it on a dedicated machine or for large models
        such as CNNs.

    Examples
    --------
    >>> import skct
    >>> skct.set_config(torch_threads=1)
    >>> skct.get_config()["torch_threads"]
    1
    """
    if torch_threads is not None:
        if int(torch_threads) < 0:
            raise ValueError(f"torch_threads must be >= 0, got {torch_threads}.")
        _CONFIG["torch_threads"] = int(torch_threads)


@contextlib.contextmanager
def config_context(**kwargs):
    """Temporarily change the configuration (``with config_context(torch_threads=2): ...``)."""
    old = get_config()
    set_config(**kwargs)
    try:
        yield
    finally:
        _CONFIG.update(old)


@contextlib.contextmanager
def torch_threads():
    """Run the enclosed torch work with the configured number of intra-op threads."""
    n = _CONFIG["torch_threads"]
    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
