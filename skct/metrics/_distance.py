"""Closeness: how far, and in how many features, counterfactuals move from their factuals."""

from __future__ import annotations

import numbers

import numpy as np

from .._utils import Interval, Options, validate_params
from ._validation import check_2d, check_same_shape, reduce_rows

__all__ = ["cost", "redundancy", "sparsity"]


@validate_params(
    {"X_cf": ["array-like"], "X": ["array-like"],
     "ord": [Interval(numbers.Real, 0, None, closed="neither"),
             Options(numbers.Real, {np.inf})],
     "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def cost(X_cf, X, *, ord=1, per_row=False):
    """Distance between counterfactuals and their factuals.

    ``cost_i = ||x'_i - x_i||_p = (sum_j |x'_ij - x_ij|^p)^(1/p)`` with ``p = ord`` (``p = inf``:
    the largest absolute change); the mean over rows unless ``per_row``.

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    X : array-like of shape (n, d)
        Factuals.
    ord : float > 0 or inf, default=1
        Order of the norm (1: L1, 2: Euclidean, ``np.inf``: largest change).
    per_row : bool, default=False
        Return the per-row costs instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        Lower is better.

    Examples
    --------
    >>> from skct.metrics import cost
    >>> cost([[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])  # (3 + 1) / 2
    2.0
    >>> cost([[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], per_row=True)
    array([3., 1.])
    """
    X_cf = check_2d(X_cf, "X_cf")
    X = check_2d(X, "X")
    check_same_shape(X_cf, "X_cf", X, "X")
    delta = X_cf.astype(np.float64) - X.astype(np.float64)  # [n, d]
    return reduce_rows(np.linalg.norm(delta, ord=ord, axis=1), per_row)


@validate_params(
    {"X_cf": ["array-like"], "X": ["array-like"],
     "tol": [Interval(numbers.Real, 0, None, closed="neither")], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def redundancy(X_cf, X, *, tol=1e-5, per_row=False):
    """Share of features a counterfactual leaves unchanged (also called sparsity).

    ``redundancy_i = (1/d) * sum_j 1[|x'_ij - x_ij| < tol]``; the mean over rows unless
    ``per_row``.

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    X : array-like of shape (n, d)
        Factuals.
    tol : float > 0, default=1e-5
        Changes smaller than this count as no change.
    per_row : bool, default=False
        Return the per-row shares instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        In ``[0, 1]``; higher means sparser explanations.

    Examples
    --------
    >>> from skct.metrics import redundancy
    >>> redundancy([[1.0, 2.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 1.0]], per_row=True)
    array([0.5, 1. ])
    """
    X_cf = check_2d(X_cf, "X_cf")
    X = check_2d(X, "X")
    check_same_shape(X_cf, "X_cf", X, "X")
    unchanged = np.abs(X_cf.astype(np.float64) - X.astype(np.float64)) < tol  # [n, d]
    return reduce_rows(unchanged.mean(axis=1), per_row)


#: Alias of :func:`redundancy`.
sparsity = redundancy
