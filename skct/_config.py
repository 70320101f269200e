"""skct's configuration: thread-local, propagated to joblib workers.

As in scikit-learn, each thread sees its own copy of the configuration (initialised from the
process-wide defaults), so ``config_context`` in one thread never changes another thread's
work; ``skct._utils.parallel.Parallel`` captures the caller's configuration and re-applies it
inside the worker, whichever joblib backend runs the task.
"""

from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["get_config", "set_config", "config_context", "torch_threads"]


def _env_threads():
    value = os.environ.get("SKCT_TORCH_THREADS", "1")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"SKCT_TORCH_THREADS must be an integer, got {value!r}.") from None
    if threads < 0:
        raise ValueError(f"SKCT_TORCH_THREADS must be >= 0, got {threads}.")
    return threads


def _env_flag(name, default):
    value = os.environ.get(name, "").strip().lower()
    if value not in {"0", "1", "true", "false", ""}:
        raise ValueError(f"{name} must be 0 or 1, got {value!r}.")
    return default if value == "" else value in {"1", "true"}


_DEFAULTS = {"torch_threads": _env_threads(),
             "fast_search": _env_flag("SKCT_FAST_SEARCH", default=True)}
_local = threading.local()


def _thread_config():
    """The calling thread's configuration dict (created from the defaults on first use)."""
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config():
    """Current skct configuration of the calling thread (a copy).

    Returns
    -------
    dict
        ``torch_threads``: torch intra-op threads used while skct fits, predicts and searches
        (default 1, or ``$SKCT_TORCH_THREADS``; 0 leaves torch's own setting alone).
        ``fast_search``: whether searches that the fast path supports run on it (default
        True; ``$SKCT_FAST_SEARCH=0`` turns it off).

    Examples
    --------
    >>> import skct
    >>> with skct.config_context(torch_threads=2):
    ...     skct.get_config()["torch_threads"]
    2
    """
    return dict(_thread_config())


def set_config(*, torch_threads=None, fast_search=None):
    """Set skct's configuration for the calling thread (and the parallel work it starts).

    Parameters
    ----------
    torch_threads : int or None
        Torch intra-op threads during skct's work; 0 leaves torch's setting alone. The default 1
        is safe when cores are shared: with the other core busy, two threads made a 10k-row
        search 15x slower, and parallel evaluation (``n_jobs``) already uses every core. On an
        otherwise idle machine two threads ran the same search 1.8x faster
        (``benchmarks/bench_search.py``), so raise it on a dedicated machine or for large models
        such as CNNs. Parallel work started by skct (``evaluate``, ``recourse_audit``, the
        scorers) runs with the value of the thread that started it. Torch's thread count is
        process-wide: threads of one process that ask for different counts take turns setting it.
    fast_search : bool or None
        Run the searches it supports on skct's fast path (CPU; Generic and ECCo objectives;
        mutability, bounds and cost weights; MLP chains without autograd, other modules with
        one ``autograd.grad`` per step) instead of the eager engine. On by default (also while
        counterfactual training searches); every other search (REVISE, ECCCo, one-hot
        re-hardening, ...) runs on the eager engine. Results equal the eager engine's up to
        float rounding (about 1e-6 after 30 steps), so ``fast_search=False`` (or
        ``$SKCT_FAST_SEARCH=0``) reproduces, bit for bit, runs made with the engine. On one
        thread a 20-64-64-2 MLP searched 1.5x (10k rows) to 2.4x (100k rows) faster than a
        bare eager torch loop, where the engine runs at about 0.85x
        (``benchmarks/bench_search.py``).

    Examples
    --------
    >>> import skct
    >>> skct.set_config(torch_threads=1)
    >>> skct.get_config()["torch_threads"]
    1
    """
    if torch_threads is not None:
        if isinstance(torch_threads, bool) or int(torch_threads) != torch_threads \
                or int(torch_threads) < 0:
            raise ValueError(f"torch_threads must be an integer >= 0, got {torch_threads!r}.")
        _thread_config()["torch_threads"] = int(torch_threads)
    if fast_search is not None:
        if not isinstance(fast_search, bool):
            raise ValueError(f"fast_search must be True or False, got {fast_search!r}.")
        _thread_config()["fast_search"] = fast_search


@contextlib.contextmanager
def config_context(**kwargs):
    """Temporarily change the calling thread's configuration.

    Examples
    --------
    >>> import skct
    >>> with skct.config_context(torch_threads=0):
    ...     skct.get_config()["torch_threads"]
    0
    """
    old = get_config()
    set_config(**kwargs)
    try:
        yield
    finally:
        _thread_config().update(old)


@contextlib.contextmanager
def torch_threads():
    """Run the enclosed torch work with the configured number of intra-op threads."""
    import torch  # here, so that ``import skct`` does not import torch

    n = _thread_config()["torch_threads"]
    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
