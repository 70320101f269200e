"""Counterfactuals in the user's columns: values of each column's kind, dtype and domain.

After the search and the inverse preprocessing, :func:`to_user_values` writes every changed
column back in the user's terms: inside its domain in the user's units (widened to contain the
factual), in its allowed direction, rounded to an integer or snapped to a level for integer,
binary, ordinal and coded columns, and in the column's original dtype. Columns the search did
not change come back bit for bit as the user gave them. :func:`count_changed` counts the
changed features per row (a one-hot group, or a group of one-hot columns, is one feature).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["to_user_values", "count_changed", "changed_features"]


def changed_features(changed_model, encoding):
    """[N, F] bool: which user columns the search changed, from the model columns' changes.

    A user column that only feeds columns mixing several user columns (a PCA, say) counts as
    changed when any such column changed.
    """
    n, f = changed_model.shape[0], encoding.n_features_in
    out = np.zeros((n, f), dtype=bool)
    fid = encoding.feature_id
    mixed = changed_model[:, fid >= f].any(axis=1) if (fid >= f).any() else np.zeros(n, bool)
    for j in range(f):
        cols = np.flatnonzero(fid == j)
        out[:, j] = changed_model[:, cols].any(axis=1) if cols.size else mixed
    return out


def to_user_values(cf_raw, X, changed, constraints):
    """The counterfactuals as a DataFrame in the user's kinds, domains and dtypes.

    Parameters
    ----------
    cf_raw : DataFrame
        The inverse preprocessing of the search's counterfactuals (columns of ``X``).
    X : DataFrame
        The factuals, as the user gave them.
    changed : ndarray of bool, shape (n_rows, n_features)
        Which user columns the search changed (:func:`changed_features`).
    constraints : fitted ActionabilityConstraints

    Returns
    -------
    DataFrame
    """
    schema = constraints.schema_
    data = {}
    for j, column in enumerate(schema):
        name = X.columns[j]
        fact = X[name]
        rows = changed[:, j] & (constraints.mutability_[j] != "none")
        if not rows.any():
            data[name] = fact.copy()
            continue
        new = cf_raw[name].to_numpy()
        if column.numeric:
            data[name] = _numeric(new, fact, rows, column, constraints.lower_[j],
                                  constraints.upper_[j], constraints.mutability_[j])
        else:
            data[name] = _levels(new, fact, rows)
    return pd.DataFrame(data, index=X.index, columns=X.columns)


def _numeric(new, fact, rows, column, lower, upper, word):
    f = fact.to_numpy(dtype=np.float64)
    v = np.asarray(new, dtype=np.float64)[rows]  # [R]
    f_r = f[rows]
    lo = -np.inf if np.isnan(lower) else lower
    hi = np.inf if np.isnan(upper) else upper
    v = np.clip(v, np.minimum(lo, f_r), np.maximum(hi, f_r))
    if word == "increase":
        v = np.maximum(v, f_r)
    elif word == "decrease":
        v = np.minimum(v, f_r)
    if column.levels is not None and column.kind != "continuous":
        v = _snap(v, f_r, np.asarray(column.levels, dtype=np.float64), word)
    elif column.kind == "integer":
        v = _round(v, f_r, lo, hi, word)
    values = fact.to_numpy(copy=True)
    dtype = fact.dtype
    if pd.api.types.is_bool_dtype(dtype):
        cast = v >= 0.5
    elif pd.api.types.is_integer_dtype(dtype):
        cast = np.round(v)
    else:
        cast = v
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        values[rows] = cast.astype(values.dtype)
        return pd.Series(values, index=fact.index, dtype=dtype)
    out = pd.Series(values, index=fact.index).astype(object)  # extension dtypes
    out[rows] = cast
    return out.astype(dtype)


def _round(v, f, lo, hi, word):
    """Round to integers inside ``[ceil(lo), floor(hi)]`` (widened to f), in the direction."""
    r = np.round(v)
    if word == "increase":
        r = np.where(r < f, np.ceil(f), r)
    elif word == "decrease":
        r = np.where(r > f, np.floor(f), r)
    return np.clip(r, np.minimum(np.ceil(lo), f), np.maximum(np.floor(hi), f))


def _snap(v, f, levels, word):
    """The nearest level to v [R] (levels sorted), never against the direction from f [R]."""
    levels = np.sort(levels)
    idx = np.searchsorted(levels, v)
    below = levels[np.clip(idx - 1, 0, len(levels) - 1)]
    above = levels[np.clip(idx, 0, len(levels) - 1)]
    out = np.where(np.abs(v - below) <= np.abs(above - v), below, above)
    if word == "increase":
        out = np.where(out < f, np.where(above >= f, above, f), out)
    elif word == "decrease":
        out = np.where(out > f, np.where(below <= f, below, f), out)
    return out


def _levels(new, fact, rows):
    """Category values: the inverse's level where it has one, the user's value otherwise."""
    # np.array(..., copy=True) always copies: pandas can hand out a string column's own
    # buffer from to_numpy(dtype=object, copy=True) (an unpickled column, pandas 3), and the
    # user's frame must never be written to
    values = np.array(fact.to_numpy(dtype=object), dtype=object, copy=True)
    new = np.asarray(new, dtype=object)
    known = ~np.asarray(pd.isna(new), dtype=bool)  # None/NaN: an unknown category
    take = rows & known
    values[take] = new[take]
    dtype = fact.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        extra = [v for v in pd.unique(values[take]) if v not in set(dtype.categories)]
        cats = list(dtype.categories) + extra
        return pd.Series(pd.Categorical(values, categories=cats, ordered=dtype.ordered),
                         index=fact.index)
    return pd.Series(values, index=fact.index, dtype=object).astype(dtype)


def count_changed(cf, X, constraints):
    """Per row, the number of features (one per one-hot group) whose value differs from X."""
    n, f = X.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    diff = np.zeros((n, f), dtype=bool)
    for j, name in enumerate(X.columns):
        a, b = cf[name], X[name]
        same = (a.to_numpy(dtype=object) == b.to_numpy(dtype=object)) | (a.isna() & b.isna())
        diff[:, j] = ~np.asarray(same, dtype=bool)
    ids = _merged_ids(constraints)  # [F]
    _, inverse = np.unique(ids, return_inverse=True)
    member = np.zeros((f, inverse.max() + 1), dtype=np.int64)
    member[np.arange(f), inverse] = 1
    return ((diff.astype(np.int64) @ member) > 0).sum(axis=1)


def _merged_ids(constraints):
    """Feature id per user column (columns of one user-declared one-hot group share one)."""
    enc = constraints.encoding_
    ids = np.arange(enc.n_features_in)
    for j in range(enc.n_features_in):
        cols = enc.columns_of(j)
        if cols.size:
            ids[j] = constraints.feature_id_model_[cols[0]]
    return ids
