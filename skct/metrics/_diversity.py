"""Diversity: how much several counterfactuals of the same factual differ from each other.

With ``CounterfactualExplainer(n_per_row=k)`` each factual has ``k`` counterfactuals; the
entries of one factual share a ``row_id``. :func:`diversity` is their mean pairwise distance and
:func:`coverage` the number of different sets of changed features among them (how many
different ways of reaching the target they offer).
"""

from __future__ import annotations

import numbers

import numpy as np

from .._utils import Interval, validate_params
from ._validation import check_2d, check_same_shape

__all__ = ["diversity", "coverage"]


def _groups(row_id, n, valid):
    """Row ids [n] checked, and the mask of entries taken (``valid`` or all)."""
    if row_id is None:
        raise ValueError("row_id is required: the factual of each counterfactual (e.g. "
                         "result.row_id; with compute_metrics, "
                         "compute_metrics(..., row_id=result.row_id)).")
    row_id = np.asarray(row_id).reshape(-1)
    if row_id.shape[0] != n:
        raise ValueError(f"row_id has {row_id.shape[0]} entries for {n} counterfactuals.")
    take = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if take.shape != (n,):
        raise ValueError(f"valid has shape {take.shape}; expected ({n},).")
    return row_id, take


def _reduce(values, inverse, per_row):
    """Mean over factuals of per-factual values [G] (NaN ignored), or per entry [n]."""
    if per_row:
        return values[inverse]
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


@validate_params(
    {"X_cf": ["array-like"], "row_id": ["array-like", None], "weights": ["array-like", None],
     "valid": ["array-like", None], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def diversity(X_cf, *, row_id=None, weights=None, valid=None, per_row=False):
    """Mean pairwise weighted L1 distance between the counterfactuals of each factual.

    ``diversity_g = mean_{i < j in g} sum_d w_d |x'_id - x'_jd|`` over the counterfactuals of
    factual ``g``; the mean over factuals with at least two (others are NaN) unless
    ``per_row`` (then each entry gets its factual's value). With the explainer's
    ``constraints_.cost_weight_model_`` as ``weights`` and ``counterfactuals_model`` as
    ``X_cf``, the distance is in the user's units over each column's MAD (a change of category
    counts 1).

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    row_id : array-like of shape (n,)
        The factual of each counterfactual (required).
    weights : array-like of shape (d,) or None, default=None
        Per-column weights (None: 1).
    valid : array-like of bool of shape (n,) or None, default=None
        Take only these counterfactuals (None: all).
    per_row : bool, default=False

    Returns
    -------
    float or ndarray of shape (n,)
        Higher means more diverse.

    Examples
    --------
    >>> from skct.metrics import diversity
    >>> X_cf = [[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [5.0, 5.0]]
    >>> diversity(X_cf, row_id=[0, 0, 0, 1])  # (1 + 3 + 2) / 3; row 1 has one
    2.0
    """
    X_cf = check_2d(X_cf, "X_cf").astype(np.float64)
    n, d = X_cf.shape
    row_id, take = _groups(row_id, n, valid)
    w = np.ones(d) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (d,):
        raise ValueError(f"weights has {w.shape[0]} entries for {d} columns.")
    ids, inverse = np.unique(row_id, return_inverse=True)
    inverse = inverse.reshape(-1)
    g, rows = len(ids), np.flatnonzero(take)
    counts = np.bincount(inverse[rows], minlength=g)  # [G]
    m = max(int(counts.max()) if rows.size else 0, 1)
    slot = np.zeros(n, dtype=np.int64)  # position of each taken entry within its factual
    order = rows[np.argsort(inverse[rows], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(order.size) - np.repeat(starts, counts)
    pad = np.zeros((g, m, d))  # [G, m, D]
    mask = np.zeros((g, m), dtype=bool)  # [G, m]
    pad[inverse[order], slot[order]] = X_cf[order] * w
    mask[inverse[order], slot[order]] = True
    dist = np.abs(pad[:, :, None, :] - pad[:, None, :, :]).sum(axis=3)  # [G, m, m]
    pair = mask[:, :, None] & mask[:, None, :] & ~np.eye(m, dtype=bool)  # [G, m, m]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (dist * pair).sum(axis=(1, 2)) / pair.sum(axis=(1, 2))  # [G], NaN below 2
    return _reduce(values, inverse, per_row)


@validate_params(
    {"X_cf": ["array-like"], "X": ["array-like"], "row_id": ["array-like", None],
     "feature_id": ["array-like", None], "valid": ["array-like", None],
     "tol": [Interval(numbers.Real, 0, None, closed="left")], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def coverage(X_cf, X, *, row_id=None, feature_id=None, valid=None, tol=0.0, per_row=False):
    """Number of different sets of changed features among the counterfactuals of each factual.

    A counterfactual's set holds the features (by ``feature_id``: the columns of a one-hot
    group are one feature) where it differs from its factual by more than ``tol``. The mean
    over factuals unless ``per_row`` (each entry gets its factual's count); a factual with
    ``k`` counterfactuals offers between 1 and ``k`` different ways.

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    X : array-like of shape (n, d)
        Their factuals.
    row_id : array-like of shape (n,)
        The factual of each counterfactual (required).
    feature_id : array-like of shape (d,) or None, default=None
        Feature of each column (e.g. the explainer's ``constraints_.feature_id_model_``);
        None: one feature per column.
    valid : array-like of bool of shape (n,) or None, default=None
        Take only these counterfactuals (None: all); a factual without any counts 0.
    tol : float >= 0, default=0.0
    per_row : bool, default=False

    Returns
    -------
    float or ndarray of shape (n,)
        Higher means more different ways.

    Examples
    --------
    >>> from skct.metrics import coverage
    >>> X = [[0.0, 0.0]] * 4
    >>> X_cf = [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    >>> coverage(X_cf, X, row_id=[0, 0, 0, 1])  # row 0: {0} and {1}; row 1: {0, 1}
    1.5
    """
    X_cf = check_2d(X_cf, "X_cf").astype(np.float64)
    X = check_2d(X, "X").astype(np.float64)
    check_same_shape(X_cf, "X_cf", X, "X")
    n, d = X.shape
    row_id, take = _groups(row_id, n, valid)
    fid = np.arange(d) if feature_id is None else np.asarray(feature_id).reshape(-1)
    if fid.shape != (d,):
        raise ValueError(f"feature_id has {fid.shape[0]} entries for {d} columns.")
    _, fidx = np.unique(fid, return_inverse=True)
    member = np.zeros((d, fidx.max() + 1 if d else 0), dtype=np.int64)  # [D, F]
    member[np.arange(d), fidx.reshape(-1)] = 1
    changed = ((np.abs(X_cf - X) > tol).astype(np.int64) @ member) > 0  # [n, F]
    ids, inverse = np.unique(row_id, return_inverse=True)
    inverse = inverse.reshape(-1)
    keys = np.column_stack([inverse[take], changed[take]])  # [n_taken, 1 + F]
    distinct = np.unique(keys, axis=0)[:, 0] if keys.size else np.zeros(0, np.int64)
    values = np.bincount(distinct, minlength=len(ids)).astype(np.float64)  # [G]
    return _reduce(values, inverse, per_row)
