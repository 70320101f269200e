"""What a counterfactual changes, read in the audited population's original columns.

- :func:`changed_matrix`: which original column of each row a counterfactual changes.
- :func:`changes_long`: one row per change, with a readable text in the user's units
  (``"12,000 -> 16,200 (+4,200)"``, integers without decimals, categories by name).
- :func:`recourse_checks`: whether each counterfactual lies in the fitted domain with values of
  each column's kind, and respects the fitted mutability of each column (rechecked on the
  returned rows, not trusted from the search), with the columns that fail.
- :func:`user_cost`: the cost of each counterfactual in the user's units (L1 over each
  column's median absolute deviation; a change of category costs 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import cost as cost_metric

__all__ = ["changed_matrix", "changes_long", "recourse_checks", "actionable", "user_cost",
           "is_numeric", "format_number"]


def is_numeric(s):
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _objects(s):
    """A Series' values as an object array, missing values as None (so None == None)."""
    values = s.astype(object).to_numpy(copy=True)
    values[np.asarray(pd.isna(values), dtype=bool)] = None
    return values


def _same(a, b):
    """[N] bool: equal values, or both missing, of two aligned Series (any dtypes)."""
    if is_numeric(a) and is_numeric(b):
        av, bv = a.to_numpy(np.float64), b.to_numpy(np.float64)
        return (av == bv) | (np.isnan(av) & np.isnan(bv))
    return np.asarray(_objects(a) == _objects(b), dtype=bool)


def changed_matrix(cf, X, tol):
    """Boolean DataFrame: which original column of each row the counterfactual changes."""
    out = {}
    for col in X.columns:
        a, b = X[col], cf[col]
        if is_numeric(a) and is_numeric(b):
            t = tol.get(col, 0.0) if isinstance(tol, dict) else tol
            av, bv = a.to_numpy(np.float64), b.to_numpy(np.float64)
            both_nan = np.isnan(av) & np.isnan(bv)
            out[col] = ~(np.abs(bv - av) <= t) & ~both_nan
        else:
            out[col] = ~_same(a, b)
    return pd.DataFrame(out, index=X.index, columns=X.columns)


def format_number(v):
    """A number as a person reads it: thousands separated, integers without decimals.

    About four significant digits are kept, never fewer than the integer part.

    Examples
    --------
    >>> from skct.evaluation._changes import format_number
    >>> format_number(4200.0), format_number(-32.8), format_number(0.01234), format_number(3)
    ('4,200', '-32.8', '0.01234', '3')
    >>> format_number(12345.678)
    '12,346'
    """
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v == round(v) and abs(v) < 1e15:
        return f"{int(round(v)):,}"
    decimals = int(min(6, max(0, 3 - np.floor(np.log10(abs(v))))))
    text = f"{v:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _signed(d):
    text = format_number(d)
    return text if text.startswith("-") else f"+{text}"


def changes_long(cf, X, changed, valid):
    """Long table of changes: one row per (row, changed original column), in row order."""
    cols = ["row", "position", "feature", "kind", "old", "new", "delta", "change", "valid"]
    parts = []
    ch = changed.to_numpy()
    for j, col in enumerate(X.columns):
        pos = np.flatnonzero(ch[:, j])
        if not len(pos):
            continue
        numeric = is_numeric(X[col]) and is_numeric(cf[col])
        old = X[col].to_numpy(dtype=object)[pos]
        new = cf[col].to_numpy(dtype=object)[pos]
        if numeric:
            old = X[col].to_numpy()[pos].tolist()  # Python scalars, not numpy ones
            new = cf[col].to_numpy()[pos].tolist()
            delta = np.asarray(new, np.float64) - np.asarray(old, np.float64)
            text = [f"{format_number(a)} -> {format_number(b)} ({_signed(d)})"
                    for a, b, d in zip(old, new, delta)]
            old, new = np.array(old, dtype=object), np.array(new, dtype=object)
        else:
            delta = np.full(len(pos), np.nan)
            text = [f"{a} -> {b}" for a, b in zip(old, new)]
        parts.append(pd.DataFrame({
            "row": X.index[pos], "position": pos, "feature": col,
            "kind": "numerical" if numeric else "categorical", "old": old, "new": new,
            "delta": delta, "change": text, "valid": np.asarray(valid, dtype=bool)[pos],
            "_col": j}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["position", "_col"], kind="stable").drop(columns="_col")
    return out.reset_index(drop=True)[cols]


# ---------------------------------------------------------------------------------------
# domain and actionability, rechecked on the returned rows
# ---------------------------------------------------------------------------------------


def _in_domain_numeric(v, f, lower, upper, column, dtype):
    """[N] bool: v inside [lower, upper] widened to f, with a value of the column's kind."""
    lo = -np.inf if np.isnan(lower) else lower
    hi = np.inf if np.isnan(upper) else upper
    if np.issubdtype(dtype, np.floating) and np.dtype(dtype).itemsize < 8:
        lo, hi = float(np.asarray(lo, dtype)), float(np.asarray(hi, dtype))  # its precision
    unchanged = (v == f) | (np.isnan(v) & np.isnan(f))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(v) & (v >= np.fmin(lo, f)) & (v <= np.fmax(hi, f))
        if column.kind in ("integer", "binary", "ordinal"):
            ok &= v == np.round(v)
        if column.levels is not None and column.kind != "continuous":
            ok &= np.isin(v, np.asarray(column.levels, dtype=np.float64))
    return ok | unchanged


def _positions(values, levels):
    """Position of each value among ``levels`` (NaN where it is not one of them)."""
    codes = pd.Index(list(levels), dtype=object).get_indexer(pd.Index(values, dtype=object))
    return np.where(codes < 0, np.nan, codes.astype(np.float64))


def _column_checks(a, b, column, lower, upper, word):
    """(in domain [N], actionable [N]) of one user column: factual a, counterfactual b."""
    unchanged = _same(a, b)
    both_bool = pd.api.types.is_bool_dtype(a.dtype) and pd.api.types.is_bool_dtype(b.dtype)
    if (column.numeric and is_numeric(a) and is_numeric(b)) or both_bool:
        f, v = a.to_numpy(np.float64), b.to_numpy(np.float64)
        domain = _in_domain_numeric(v, f, lower, upper, column, a.dtype)
    else:  # categories: a known level, or the factual's own (unseen) one
        levels = [] if column.levels is None else list(column.levels)
        f = _positions(_objects(a), levels)
        v = _positions(_objects(b), levels)
        domain = ~np.isnan(v) | unchanged
    if word == "none":
        ok = unchanged
    elif word in ("increase", "decrease"):
        with np.errstate(invalid="ignore"):
            ok = unchanged | ((v >= f) if word == "increase" else (v <= f))
    else:
        ok = np.ones(len(a), dtype=bool)
    return np.asarray(domain, dtype=bool), np.asarray(ok, dtype=bool)


def _failing(masks, columns):
    """Per row, the comma separated columns whose mask is False ('' where all hold)."""
    n = masks.shape[0]
    out = pd.Series([""] * n, dtype=object)
    for j, col in enumerate(columns):
        bad = ~masks[:, j]
        if bad.any():
            sep = np.where(out[bad].to_numpy() == "", "", ", ")
            out[bad] = out[bad].to_numpy() + sep + str(col)
    return out.to_numpy()


def recourse_checks(cf, X, constraints, valid):
    """Whether each counterfactual is in the domain and actionable, and why a row is not recourse.

    Parameters
    ----------
    cf, X : DataFrame
        Counterfactuals and factuals in the user's columns (same index and columns).
    constraints : fitted ActionabilityConstraints
        The explainer's ``constraints_``: ``schema_`` (kinds, levels), ``lower_``/``upper_``
        (the domain in the user's units, widened to each factual's own value as the search
        does) and ``mutability_`` (one word per user column).
    valid : ndarray of bool, shape (n_rows,)
        Whether the model predicts the target for each returned row.

    Returns
    -------
    in_domain, actionable : ndarray of bool, shape (n_rows,)
    reason : ndarray of str, shape (n_rows,)
        ``""`` for a row with recourse, else ``"invalid"``, ``"out of domain: a, b"`` and/or
        ``"not actionable: c"`` joined by ``"; "``.
    checked : dict
        ``{column: mutability word}`` of the columns whose word restricts something.
    """
    n, f = X.shape
    domain = np.ones((n, f), dtype=bool)
    act = np.ones((n, f), dtype=bool)
    words = np.asarray(constraints.mutability_, dtype=object)
    for j, name in enumerate(X.columns):
        domain[:, j], act[:, j] = _column_checks(
            X[name], cf[name], constraints.schema_[j], constraints.lower_[j],
            constraints.upper_[j], words[j])
    in_domain, actionable_ = domain.all(axis=1), act.all(axis=1)
    out_cols, act_cols = _failing(domain, X.columns), _failing(act, X.columns)
    reason = np.where(np.asarray(valid, dtype=bool), "", "invalid").astype(object)
    for label, mask, cols in (("out of domain", ~in_domain, out_cols),
                              ("not actionable", ~actionable_, act_cols)):
        text = np.char.add(f"{label}: ", cols[mask].astype(str))
        sep = np.where(reason[mask] == "", "", "; ")
        reason[mask] = np.char.add(np.char.add(reason[mask].astype(str), sep), text)
    checked = {X.columns[j]: str(w) for j, w in enumerate(words) if w != "both"}
    return in_domain, actionable_, reason.astype(str), checked


def actionable(cf, X, constraints):
    """``(actionable [N] bool, checked dict)``: the fitted mutability rechecked on ``cf``."""
    _, ok, _, checked = recourse_checks(cf, X, constraints, np.ones(len(X), dtype=bool))
    return ok, checked


def user_cost(cf, X, constraints, ord=1):
    """Cost per row in the user's units: ``||(x' - x) / MAD||`` over the user's columns.

    Numeric columns are divided by their median absolute deviation (``cost_scale_``); a
    changed categorical column counts 1 (an ordinal one, the number of levels it moves). NaN
    where a numeric value of the counterfactual is missing.
    """
    n, f = X.shape
    A_cf, A = np.zeros((n, f)), np.zeros((n, f))
    for j, name in enumerate(X.columns):
        column, a, b = constraints.schema_[j], X[name], cf[name]
        if column.numeric and column.kind != "categorical" and not isinstance(
                a.dtype, pd.CategoricalDtype):
            scale = constraints.cost_scale_[j]
            A[:, j] = a.to_numpy(np.float64) / scale
            A_cf[:, j] = b.to_numpy(np.float64) / scale
        elif column.kind == "ordinal" and column.levels is not None:
            A[:, j] = _positions(_objects(a), column.levels)
            A_cf[:, j] = _positions(_objects(b), column.levels)
            A_cf[:, j] = np.where(_same(a, b), A[:, j], A_cf[:, j])
        else:
            A_cf[:, j] = ~_same(a, b)
    out = np.full(n, np.nan)
    finite = np.isfinite(A_cf).all(axis=1) & np.isfinite(A).all(axis=1)
    if finite.any():
        out[finite] = cost_metric(A_cf[finite], A[finite], ord=ord, per_row=True)
    return out
