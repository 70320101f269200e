"""Groupings of an audited population: column names, labels per row, bands of a column."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["bands", "resolve_groups", "STAT_COLUMNS"]

#: Columns of the audit's per-row table (grouping names may not take them).
STAT_COLUMNS = ["prediction", "target", "valid", "in_domain", "actionable", "recourse", "reason",
                "target_proba", "n_iter", "cost", "n_changed", "changed_features", "changes"]


def bands(column, edges, labels=None, right=True):
    """A ``groups`` entry that bins a numerical column into bands (e.g. age bands).

    Parameters
    ----------
    column : str
        Column of the audited ``X``.
    edges : sequence of float
        Band edges, as for :func:`pandas.cut`.
    labels : sequence of str or None, default=None
        Band names; None uses the intervals, e.g. ``"(30, 50]"``.
    right : bool, default=True
        Whether bands include their right edge.

    Returns
    -------
    callable
        ``X -> pandas.Series`` of band labels (rows outside every band get ``"missing"``).

    Examples
    --------
    >>> import pandas as pd
    >>> from skct.evaluation import bands
    >>> X = pd.DataFrame({"age": [25, 35, 70]})
    >>> bands("age", [0, 30, 50, 120])(X).astype(str).tolist()
    ['(0, 30]', '(30, 50]', '(50, 120]']
    """

    def band(X):
        if column not in X.columns:
            raise ValueError(f"groups: column {column!r} is not a column of X "
                             f"(columns: {list(X.columns)}).")
        return pd.cut(X[column], edges, labels=labels, right=right)

    band.__name__ = f"{column} band"
    return band


def _labels_to_str(values):
    """Group labels -> (array of str, ordered list of the distinct labels)."""
    s = pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        order = [str(c) for c in s.cat.categories]
        present = set(s.dropna().astype(str).tolist())
        order = [c for c in order if c in present]
        out = s.astype(object).where(s.notna(), None)
    else:
        out = s.astype(object).where(s.notna(), None)
        uniq = pd.unique(out.dropna())
        try:
            uniq = sorted(uniq)
        except TypeError:
            pass
        order = [str(u) for u in uniq]
    labels = np.array(["missing" if v is None else str(v) for v in out.tolist()], dtype=object)
    if (labels == "missing").any() and "missing" not in order:
        order.append("missing")
    return labels, order


def _one_grouping(spec, X, name):
    """Group labels (array of str, one per row) and their order for one grouping spec."""
    n = len(X)
    if callable(spec) and not isinstance(spec, (pd.Series, np.ndarray)):
        spec = spec(X)
    if isinstance(spec, str):
        if spec not in X.columns:
            raise ValueError(f"groups: column {spec!r} is not a column of X "
                             f"(columns: {list(X.columns)}).")
        spec = X[spec]
    if isinstance(spec, pd.Series):
        if spec.index.equals(X.index):
            values = spec
        elif len(spec) == n and not spec.index.isin(X.index).any():
            raise ValueError(f"groups[{name!r}]: the Series' index does not match X's index; "
                             "pass its values (.to_numpy()) for positional groups.")
        else:
            missing = ~X.index.isin(spec.index)
            if missing.any():
                raise ValueError(f"groups[{name!r}]: no group label for {int(missing.sum())} "
                                 f"row(s) of X (index {list(X.index[missing][:5])}...).")
            if not spec.index.is_unique:
                raise ValueError(f"groups[{name!r}]: the Series' index has duplicates.")
            values = spec.reindex(X.index)
    else:
        values = np.asarray(spec, dtype=object) if not hasattr(spec, "dtype") else spec
        if np.ndim(values) != 1 or len(values) != n:
            raise ValueError(f"groups[{name!r}]: expected {n} group labels (one per row of X), "
                             f"got shape {np.shape(values)}.")
    if isinstance(values, pd.Series):
        return _labels_to_str(values.reset_index(drop=True))
    return _labels_to_str(pd.Series(values))


def resolve_groups(groups, X):
    """``{grouping name: (labels, order)}`` from the ``groups`` parameter."""
    if groups is None:
        return {"all": (np.full(len(X), "all", dtype=object), ["all"])}
    if isinstance(groups, str):
        items = [(groups, groups)]
    elif isinstance(groups, pd.Series):
        items = [(groups.name if groups.name is not None else "group", groups)]
    elif isinstance(groups, dict):
        if not groups:
            raise ValueError("groups: got an empty dict; pass None for a single group.")
        items = list(groups.items())
    elif callable(groups):
        items = [(getattr(groups, "__name__", "group"), groups)]
    elif isinstance(groups, (list, tuple)) and all(isinstance(g, str) for g in groups):
        items = [(g, g) for g in groups]
    else:
        values = np.asarray(groups, dtype=object)
        if values.ndim != 1:
            raise ValueError("groups: expected a column name, a list of column names, a dict "
                             "{name: labels}, a Series, an array of labels or a callable.")
        items = [("group", values)]
    out = {}
    for name, spec in items:
        name = str(name)
        if name in out:
            raise ValueError(f"groups: the grouping name {name!r} is used twice.")
        if name in STAT_COLUMNS or name in {f"cf_{c}" for c in X.columns}:
            raise ValueError(f"groups: the grouping name {name!r} is reserved for a report "
                             f"column; reserved names: {STAT_COLUMNS} and 'cf_<column>'.")
        out[name] = _one_grouping(spec, X, name)
    return out
