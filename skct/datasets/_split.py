"""The paper's train/test split: the first share of rows train, the rest test (no shuffling)."""

from __future__ import annotations

import math
import numbers

__all__ = ["train_test_split_paper"]


def _n_rows(a):
    if hasattr(a, "shape") and len(getattr(a, "shape", ())) > 0:
        return int(a.shape[0])
    return len(a)


def _head_tail(a, n_train):
    if hasattr(a, "iloc"):
        return a.iloc[:n_train].copy(), a.iloc[n_train:].copy()
    if isinstance(a, (list, tuple)):
        return a[:n_train], a[n_train:]
    head, tail = a[:n_train], a[n_train:]
    if hasattr(head, "copy"):
        head, tail = head.copy(), tail.copy()
    return head, tail


def train_test_split_paper(X, y, *, train_size=0.8):
    """Split as in the paper: the first ``train_size`` share of rows train, the rest test.

    No shuffling: row order is kept, so the split is deterministic. Works with NumPy arrays,
    sparse matrices, pandas DataFrames/Series and lists; returned pieces are copies.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    train_size : float in (0, 1) or int, default=0.8
        Share of rows (float) or number of rows (int) in the training part; a share is
        rounded down to ``floor(train_size * n_samples)`` rows. Both parts must be non-empty.

    Returns
    -------
    X_train, X_test, y_train, y_test
        Same types as the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from skct.datasets import train_test_split_paper
    >>> X, y = np.arange(20).reshape(10, 2), np.arange(10)
    >>> X_train, X_test, y_train, y_test = train_test_split_paper(X, y)
    >>> y_train.tolist(), y_test.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    n = _n_rows(X)
    if _n_rows(y) != n:
        raise ValueError(f"X and y have different numbers of rows: {n} and {_n_rows(y)}.")
    if isinstance(train_size, bool) or not isinstance(train_size, numbers.Real):
        raise TypeError(f"train_size must be a float in (0, 1) or an int, got {train_size!r}.")
    if isinstance(train_size, numbers.Integral):
        n_train = int(train_size)
    else:
        if not 0.0 < train_size < 1.0:
            raise ValueError(f"A float train_size must be in (0, 1), got {train_size!r}.")
        # the small tolerance keeps e.g. 0.7 * 10 == 6.999... from losing a row
        n_train = math.floor(float(train_size) * n + 1e-9)
    if not 0 < n_train < n:
        raise ValueError(
            f"train_size={train_size!r} gives {n_train} training rows out of {n}; both the "
            "training and the test part must be non-empty."
        )
    X_train, X_test = _head_tail(X, n_train)
    y_train, y_test = _head_tail(y, n_train)
    return X_train, X_test, y_train, y_test
