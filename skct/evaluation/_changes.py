"""What a counterfactual changes, read in the audited population's original columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._utils import plain

__all__ = ["changed_matrix", "changes_long", "actionable", "is_numeric"]


def is_numeric(s):
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


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
            av = a.astype(object).to_numpy()
            bv = b.astype(object).to_numpy()
            out[col] = np.array([not (x == y or (pd.isna(x) and pd.isna(y)))
                                 for x, y in zip(av.tolist(), bv.tolist())], dtype=bool)
    return pd.DataFrame(out, index=X.index, columns=X.columns)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


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
            old = np.array([plain(v) for v in old], dtype=object)
            new = np.array([plain(v) for v in new], dtype=object)
            delta = new.astype(np.float64) - old.astype(np.float64)
            text = [f"{_fmt(a)} -> {_fmt(b)} ({d:+.6g})" for a, b, d in zip(old, new, delta)]
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


def _raw_name(key, columns):
    if key in columns:
        return key
    if isinstance(key, str) and "__" in key and key.split("__", 1)[1] in columns:
        return key.split("__", 1)[1]
    return None


def actionable(cf, X, constraints):
    """Recheck, in the original columns, the mutability words given by raw column name."""
    ok = np.ones(len(X), dtype=bool)
    checked = {}
    if constraints is None:
        return ok, checked
    for key, word in (constraints.mutability or {}).items():
        col = _raw_name(key, list(X.columns))
        if col is None or word == "both":
            continue
        a, b = X[col], cf[col]
        if word == "none":
            if is_numeric(a) and is_numeric(b):
                av, bv = a.to_numpy(np.float64), b.to_numpy(np.float64)
                row_ok = (av == bv) | (np.isnan(av) & np.isnan(bv))
            else:
                row_ok = np.array([x == y for x, y in zip(a.astype(object).tolist(),
                                                          b.astype(object).tolist())],
                                  dtype=bool)
        elif word in ("increase", "decrease") and is_numeric(a) and is_numeric(b):
            av, bv = a.to_numpy(np.float64), b.to_numpy(np.float64)
            row_ok = bv >= av if word == "increase" else bv <= av
        else:
            continue
        checked[col] = word
        ok &= row_ok
    return ok, checked
