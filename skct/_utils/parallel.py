"""joblib helpers that carry skct's configuration into the workers.

:class:`Parallel` captures the caller's :func:`skct.get_config` when it is called and
re-applies it in the worker (a thread, a process or a Dask worker), so ``torch_threads`` and any
later setting mean the same thing under every backend, as ``sklearn.utils.parallel`` does for
scikit-learn's configuration. The capture happens in ``__call__`` (not when tasks are created):
joblib may create later tasks from one of its own threads, whose configuration is the default.
"""

from __future__ import annotations

import functools

import joblib

from .._config import config_context, get_config

__all__ = ["Parallel", "delayed"]

delayed = joblib.delayed


class _WithConfig:
    """A picklable callable that runs ``function`` under a captured configuration."""

    def __init__(self, function, config):
        self.function = function
        self.config = config
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        with config_context(**self.config):
            return self.function(*args, **kwargs)


class Parallel(joblib.Parallel):
    """``joblib.Parallel`` whose tasks run with the caller's skct configuration.

    Examples
    --------
    >>> import skct
    >>> from skct._utils.parallel import Parallel, delayed
    >>> with skct.config_context(torch_threads=3):
    ...     out = Parallel(n_jobs=2, backend="threading")(
    ...         delayed(skct.get_config)() for _ in range(2))
    >>> [c["torch_threads"] for c in out]
    [3, 3]
    """

    def __call__(self, iterable):
        config = get_config()
        tasks = ((_WithConfig(f, config), args, kwargs) for f, args, kwargs in iterable)
        return super().__call__(tasks)


# pandas arrays whose ``__setitem__`` writes into their own buffer (an Arrow-backed array
# rebuilds itself on every write: its chunks are joined once at the end instead)
