"""Recourse audit: who, in a population, can reach the desired decision, at which cost?

:func:`recourse_audit` runs counterfactual search for every row of a population (for example
the applicants a fitted classifier rejects) under actionability constraints, and returns a
:class:`RecourseAuditReport` with, per row, the counterfactual, whether it is valid, its cost
and the changes it asks for in the original columns, and, per group of people (sex, an age
band, ...), the share that has recourse, the cost of that recourse, which features have to
change, and the gaps between groups.
"""

from __future__ import annotations

import base64
import html
import io
import numbers
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.utils import check_random_state

from ..constraints import ActionabilityConstraints
from ..explain import CounterfactualExplainer, resolve_targets

__all__ = ["RecourseAuditReport", "recourse_audit", "bands"]

#: Name of the group gap rows in :meth:`RecourseAuditReport.summary`.
GAP_LABEL = "gap (max - min)"

_STAT_COLUMNS = ["prediction", "target", "valid", "actionable", "recourse", "target_proba",
                 "n_iter", "cost", "n_changed", "changed_features", "changes"]


# ---------------------------------------------------------------------------------------
# groups
# ---------------------------------------------------------------------------------------


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


def _resolve_groups(groups, X):
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
        if name in _STAT_COLUMNS or name in {f"cf_{c}" for c in X.columns}:
            raise ValueError(f"groups: the grouping name {name!r} is reserved for a report "
                             f"column; reserved names: {_STAT_COLUMNS} and 'cf_<column>'.")
        out[name] = _one_grouping(spec, X, name)
    return out


# ---------------------------------------------------------------------------------------
# per-row measures
# ---------------------------------------------------------------------------------------


def _cost(Z_cf, Z, cost):
    diff = Z_cf - Z
    if callable(cost):
        out = np.asarray(cost(Z_cf, Z), dtype=np.float64).reshape(-1)
        if out.shape[0] != Z.shape[0]:
            raise ValueError(f"cost: the callable returned {out.shape[0]} values for "
                             f"{Z.shape[0]} rows.")
        return out
    if cost == "l1":
        return np.abs(diff).sum(axis=1)
    if cost == "l2":
        return np.sqrt((diff ** 2).sum(axis=1))
    if cost == "linf":
        return np.abs(diff).max(axis=1) if diff.shape[1] else np.zeros(len(diff))
    raise ValueError(f"cost: expected 'l1', 'l2', 'linf' or a callable, got {cost!r}.")


def _is_num(s):
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _changed_matrix(cf, X, tol):
    """Boolean DataFrame: which original column of each row the counterfactual changes."""
    out = {}
    for col in X.columns:
        a, b = X[col], cf[col]
        if _is_num(a) and _is_num(b):
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


def _changes_long(cf, X, changed, valid):
    """Long table of changes: one row per (row, changed original column), in row order."""
    cols = ["row", "position", "feature", "kind", "old", "new", "delta", "change", "valid"]
    parts = []
    ch = changed.to_numpy()
    for j, col in enumerate(X.columns):
        pos = np.flatnonzero(ch[:, j])
        if not len(pos):
            continue
        numeric = _is_num(X[col]) and _is_num(cf[col])
        old = X[col].to_numpy(dtype=object)[pos]
        new = cf[col].to_numpy(dtype=object)[pos]
        if numeric:
            old = np.array([v.item() if hasattr(v, "item") else v for v in old], dtype=object)
            new = np.array([v.item() if hasattr(v, "item") else v for v in new], dtype=object)
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


def _actionable(cf, X, constraints):
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
            if _is_num(a) and _is_num(b):
                av, bv = a.to_numpy(np.float64), b.to_numpy(np.float64)
                row_ok = (av == bv) | (np.isnan(av) & np.isnan(bv))
            else:
                row_ok = np.array([x == y for x, y in zip(a.astype(object).tolist(),
                                                          b.astype(object).tolist())],
                                  dtype=bool)
        elif word in ("increase", "decrease") and _is_num(a) and _is_num(b):
            av, bv = a.to_numpy(np.float64), b.to_numpy(np.float64)
            row_ok = bv >= av if word == "increase" else bv <= av
        else:
            continue
        checked[col] = word
        ok &= row_ok
    return ok, checked


# ---------------------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------------------


def _explain_chunk(explainer, X, targets):
    """Explain one chunk with one torch thread (no oversubscription, n_jobs-invariant).

    The caller's process restores its own thread count (see :func:`_one_torch_thread`); a
    joblib worker process simply keeps one thread.
    """
    torch.set_num_threads(1)
    r = explainer.explain(X, target=targets)
    return (r.counterfactuals, r.valid, r.target_proba, r.n_iter, r.counterfactuals_model,
            r.factuals_model, r.feature_names_model)


class _one_torch_thread:
    """Context manager: torch uses one intra-op thread inside, the old count after."""

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
        return False


def _restore_dtypes(cf, X):
    """Columns the search never changed come back exactly as given (dtype included)."""
    cf = cf.copy()
    for col in X.columns:
        try:
            same = bool((cf[col].to_numpy() == X[col].to_numpy()).all())
        except (TypeError, ValueError):
            same = False
        if same and cf[col].dtype != X[col].dtype:
            cf[col] = X[col]
    return cf


# ---------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------


class RecourseAuditReport:
    """The result of :func:`recourse_audit` (rows, groups, gaps; tables, plot, HTML).

    Do not build it yourself; call :func:`recourse_audit`.

    Attributes
    ----------
    rows_ : DataFrame
        One row per audited individual (index of ``X``): the group label of each grouping,
        ``prediction`` (the model's decision on the factual), ``target``, ``valid`` (``p(target
        | x') >= decision_threshold``), ``actionable`` (the mutability constraints given by raw
        column name hold in the original columns: rechecked, not trusted), ``recourse`` (valid
        and actionable), ``target_proba``, ``n_iter``, ``cost``, ``n_changed`` (original columns
        changed, a categorical column counting once), ``changed_features`` (comma separated),
        ``changes`` (readable ``"col: old -> new"`` list), then the counterfactual's columns
        prefixed ``"cf_"``.
    counterfactuals_ : DataFrame
        The counterfactuals in the original columns (categoricals as category names; values
        the search did not change are returned exactly as given).
    factuals_ : DataFrame
        The audited rows (a copy of ``X``).
    changed_ : DataFrame of bool
        Which original column each counterfactual changes.
    changes_ : DataFrame
        One row per (individual, changed column): ``row`` (index label), ``position``,
        ``feature``, ``kind`` ("numerical"/"categorical"), ``old``, ``new``, ``delta``
        (numerical only), ``change`` (text) and ``valid``.
    groups_ : dict
        ``{grouping name: ordered list of group labels}``.
    counterfactuals_model_, factuals_model_ : ndarray
        The same rows in the model's input space, where the cost is measured (from the
        factuals rounded to the model's precision, e.g. float32, so that an unchanged row
        costs exactly 0).
    feature_names_model_ : ndarray of str or None
    explainer_ : CounterfactualExplainer
        The fitted explainer that produced the counterfactuals.
    params_ : dict
        The audit's settings (target, generator, decision threshold, cost, ...).
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(self, *, rows, counterfactuals, factuals, changed, changes, groups,
                 counterfactuals_model, factuals_model, feature_names_model, explainer,
                 checked_constraints, params):
        self.rows_ = rows
        self.counterfactuals_ = counterfactuals
        self.factuals_ = factuals
        self.changed_ = changed
        self.changes_ = changes
        self.groups_ = groups
        self.counterfactuals_model_ = counterfactuals_model
        self.factuals_model_ = factuals_model
        self.feature_names_model_ = feature_names_model
        self.explainer_ = explainer
        self.checked_constraints_ = checked_constraints
        self.params_ = params

    def __repr__(self):
        n = len(self.rows_)
        k = int(self.rows_["recourse"].sum())
        return (f"RecourseAuditReport(n_rows={n}, recourse={k}/{n}, "
                f"groupings={list(self.groups_)})")

    # -- tables ----------------------------------------------------------------------------
    def _masks(self):
        """Yield (grouping, group label, boolean row mask) in report order."""
        for grouping, order in self.groups_.items():
            labels = self.rows_[grouping].to_numpy()
            for g in order:
                yield grouping, g, labels == g

    def feature_change_frequencies(self, valid_only=True):
        """Share of the rows of each group whose counterfactual changes each original column.

        Parameters
        ----------
        valid_only : bool, default=True
            Count among the rows with recourse (valid and actionable) only; otherwise among
            all rows of the group. A group with no such row gets NaN.

        Returns
        -------
        DataFrame
            Index (grouping, group), one column per original feature, values in [0, 1].
        """
        changed = self.changed_.to_numpy()
        ok = self.rows_["recourse"].to_numpy()
        records, index = [], []
        for grouping, g, mask in self._masks():
            m = mask & ok if valid_only else mask
            records.append(changed[m].mean(axis=0) if m.any()
                           else np.full(changed.shape[1], np.nan))
            index.append((grouping, g))
        return pd.DataFrame(np.array(records, dtype=np.float64).reshape(len(index), -1),
                            index=pd.MultiIndex.from_tuples(index, names=["grouping", "group"]),
                            columns=self.changed_.columns)

    def summary(self, top=3):
        """Per group recourse statistics, and the gap between the groups of each grouping.

        Parameters
        ----------
        top : int, default=3
            How many of the most frequently changed features to list per group.

        Returns
        -------
        DataFrame
            Index (grouping, group). Columns: ``n`` (rows), ``n_recourse`` (valid and
            actionable), ``share_valid`` (their share, in [0, 1]), ``median_cost``,
            ``mean_cost`` and ``mean_n_changed`` (over the rows with recourse),
            ``top_changed`` (features most often changed by them, with their frequency).
            After the groups of each grouping comes a row ``"gap (max - min)"`` holding, per
            statistic, the largest minus the smallest group value (see :meth:`gaps`).
        """
        freq = self.feature_change_frequencies(valid_only=True)
        cost = self.rows_["cost"].to_numpy()
        nch = self.rows_["n_changed"].to_numpy()
        ok = self.rows_["recourse"].to_numpy()
        records, index = [], []
        for grouping, order in self.groups_.items():
            labels = self.rows_[grouping].to_numpy()
            stats = []
            for g in order:
                mask = labels == g
                m = mask & ok
                f = freq.loc[(grouping, g)]
                f = f[f > 0].sort_values(ascending=False, kind="stable").head(top)
                rec = {
                    "n": int(mask.sum()),
                    "n_recourse": int(m.sum()),
                    "share_valid": float(m.sum() / mask.sum()) if mask.any() else np.nan,
                    "median_cost": float(np.median(cost[m])) if m.any() else np.nan,
                    "mean_cost": float(np.mean(cost[m])) if m.any() else np.nan,
                    "mean_n_changed": float(np.mean(nch[m])) if m.any() else np.nan,
                    "top_changed": ", ".join(f"{k} ({v:.0%})" for k, v in f.items()),
                }
                stats.append(rec)
                records.append(rec)
                index.append((grouping, g))
            gap = {"n": pd.NA, "n_recourse": pd.NA, "top_changed": ""}
            for key in ("share_valid", "median_cost", "mean_cost", "mean_n_changed"):
                vals = np.array([s[key] for s in stats], dtype=np.float64)
                gap[key] = float(np.nanmax(vals) - np.nanmin(vals)) \
                    if np.isfinite(vals).any() else np.nan
            records.append(gap)
            index.append((grouping, GAP_LABEL))
        out = pd.DataFrame.from_records(
            records, columns=["n", "n_recourse", "share_valid", "median_cost", "mean_cost",
                              "mean_n_changed", "top_changed"])
        out.index = pd.MultiIndex.from_tuples(index, names=["grouping", "group"])
        out["n"] = out["n"].astype("Int64")
        out["n_recourse"] = out["n_recourse"].astype("Int64")
        return out

    def gaps(self):
        """Which groups are best and worst off, per grouping and statistic.

        Returns
        -------
        DataFrame
            Index (grouping, statistic) for share_valid, median_cost, mean_cost and
            mean_n_changed; columns ``highest_group``, ``highest``, ``lowest_group``,
            ``lowest``, ``gap`` (highest - lowest) and ``ratio`` (highest / lowest).
        """
        s = self.summary()
        records, index = [], []
        for grouping in self.groups_:
            part = s.loc[grouping].drop(index=GAP_LABEL)
            for key in ("share_valid", "median_cost", "mean_cost", "mean_n_changed"):
                col = part[key].astype(np.float64).dropna()
                if col.empty:
                    rec = dict(highest_group=None, highest=np.nan, lowest_group=None,
                               lowest=np.nan, gap=np.nan, ratio=np.nan)
                else:
                    hi, lo = col.idxmax(), col.idxmin()
                    rec = dict(highest_group=hi, highest=col[hi], lowest_group=lo,
                               lowest=col[lo], gap=col[hi] - col[lo],
                               ratio=col[hi] / col[lo] if col[lo] > 0 else np.nan)
                records.append(rec)
                index.append((grouping, key))
        return pd.DataFrame.from_records(
            records, index=pd.MultiIndex.from_tuples(index, names=["grouping", "statistic"]),
            columns=["highest_group", "highest", "lowest_group", "lowest", "gap", "ratio"])

    # -- figure ----------------------------------------------------------------------------
    def plot(self, fig=None, top=10):
        """Cost distributions and feature change frequencies per group.

        One row of two panels per grouping: (a) box plots of the cost of the rows with
        recourse, per group; (b) the share of them changing each feature (the ``top`` features
        most often changed overall), one bar per group.

        Parameters
        ----------
        fig : matplotlib Figure or None, default=None
            Draw into this figure (cleared first); None creates one with pyplot.
        top : int, default=10
            How many features to show in the frequency panels.

        Returns
        -------
        matplotlib.figure.Figure
            Also stored as ``figure_``.
        """
        n_rows = len(self.groups_)
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(13, 4.2 * n_rows))
        else:
            fig.clear()
            fig.set_size_inches(13, 4.2 * n_rows)
        axes = fig.subplots(n_rows, 2, squeeze=False)
        cost = self.rows_["cost"].to_numpy()
        ok = self.rows_["recourse"].to_numpy()
        freq = self.feature_change_frequencies(valid_only=True)
        overall = self.changed_.to_numpy()[ok].mean(axis=0) if ok.any() else \
            np.zeros(self.changed_.shape[1])
        order = np.argsort(-overall, kind="stable")[:top]
        order = [j for j in order if overall[j] > 0] or list(order)
        features = [str(self.changed_.columns[j]) for j in order]
        for i, (grouping, groups) in enumerate(self.groups_.items()):
            labels = self.rows_[grouping].to_numpy()
            ax = axes[i, 0]
            data = [cost[(labels == g) & ok] for g in groups]
            ax.boxplot([d if len(d) else [np.nan] for d in data])
            ax.set_xticks(range(1, len(groups) + 1))
            ax.set_xticklabels([f"{g}\n(n={len(d)}/{int((labels == g).sum())})"
                                for g, d in zip(groups, data)], fontsize=8)
            ax.set_ylabel(f"cost ({self.params_['cost']}, model space)")
            ax.set_title(f"{grouping}: cost of recourse")
            ax = axes[i, 1]
            width = 0.8 / max(len(groups), 1)
            y = np.arange(len(features))
            for k, g in enumerate(groups):
                vals = freq.loc[(grouping, g)].to_numpy()[order] if len(order) else []
                ax.barh(y + (k - (len(groups) - 1) / 2) * width, np.nan_to_num(vals),
                        height=width, label=str(g))
            ax.set_yticks(y)
            ax.set_yticklabels(features, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, 1.02)
            ax.set_xlabel("share of rows with recourse changing the feature")
            ax.set_title(f"{grouping}: feature change frequency")
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        self.figure_ = fig
        return fig

    # -- HTML ------------------------------------------------------------------------------
    def to_html(self, path, max_rows=500, title="Recourse audit"):
        """Write a self-contained HTML report (tables and an embedded PNG figure).

        Parameters
        ----------
        path : str or path-like
            File to write (overwritten).
        max_rows : int or None, default=500
            Show at most this many individual rows (None: all).
        title : str, default="Recourse audit"

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        from matplotlib.figure import Figure

        fig = self.plot(fig=Figure())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        png = base64.b64encode(buf.getvalue()).decode("ascii")

        p = self.params_
        e = html.escape
        rows = self.rows_.drop(columns=[c for c in self.rows_.columns
                                        if str(c).startswith("cf_")])
        shown = rows if max_rows is None else rows.head(max_rows)
        more = "" if len(shown) == len(rows) else \
            f"<p>First {len(shown)} of {len(rows)} rows.</p>"
        checked = ", ".join(f"{k}: {v}" for k, v in self.checked_constraints_.items()) or "none"
        settings = {
            "rows audited": len(self.rows_),
            "with recourse (valid and actionable)": int(self.rows_["recourse"].sum()),
            "target": p["target"],
            "generator": p["generator"],
            "decision threshold": p["decision_threshold"],
            "max iterations": p["max_iter"],
            "cost": f"{p['cost']} distance in the model's input space "
                    "(standardized units for scaled numerical columns; a changed one-hot "
                    "category adds 2 under l1)",
            "constraints rechecked in the original columns": checked,
            "created": p["created"],
        }
        settings_html = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>"
                                for k, v in settings.items())
        fmt = {"float_format": lambda v: f"{v:.3f}", "na_rep": "",
               "border": 0, "classes": "tbl"}
        freq = self.feature_change_frequencies()
        freq = freq.loc[:, (freq.fillna(0) > 0).any(axis=0)]
        summary = self.summary()
        for col in ("n", "n_recourse"):  # blank, not <NA>, on the gap rows
            summary[col] = summary[col].astype(object).where(summary[col].notna(), "")
        doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{font-family: system-ui, sans-serif; margin: 2em; color: #222;}}
table.tbl, table.kv {{border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em;}}
.tbl th, .tbl td, .kv th, .kv td {{border: 1px solid #ccc; padding: 3px 6px;
  text-align: right;}}
.kv th {{text-align: left; background: #f4f4f4;}}
.tbl thead th {{background: #f4f4f4;}}
img {{max-width: 100%;}}
</style></head><body>
<h1>{e(title)}</h1>
<table class="kv">{settings_html}</table>
<h2>Recourse per group</h2>
<p>share_valid: share of the group with a valid counterfactual that respects the actionability
constraints; costs and numbers of changed features are over those rows.</p>
{summary.to_html(**fmt)}
<h2>Gaps between groups</h2>
{self.gaps().to_html(**fmt)}
<h2>Figure</h2>
<img alt="recourse audit figure" src="data:image/png;base64,{png}">
<h2>Feature change frequencies</h2>
{freq.to_html(**fmt)}
<h2>Individuals</h2>
{more}
{shown.to_html(**fmt)}
</body></html>
"""
        path = Path(path)
        path.write_text(doc, encoding="utf-8")
        return path


# ---------------------------------------------------------------------------------------
# the audit
# ---------------------------------------------------------------------------------------


def recourse_audit(estimator, X, *, target, constraints=None, groups=None, generator="generic",
                   decision_threshold=0.75, max_iter=100, reference=None, cost="l1",
                   change_tol=0.0, batch_size=128, n_jobs=None, random_state=None):
    """Audit the recourse a fitted classifier offers to a population, per group.

    For every row of ``X`` (for example the applicants the model rejects) a counterfactual is
    searched toward ``target`` under ``constraints``; the report tells, per row, whether it is
    valid, what it costs and which original columns it changes, and, per group of people,
    the share with recourse, its median and mean cost, which features have to change, and the
    gaps between groups.

    Parameters
    ----------
    estimator : fitted estimator
        A fitted torch-backed classifier or a fitted Pipeline (e.g. ColumnTransformer +
        :class:`~skct.CounterfactualTrainedClassifier`) taking ``X``'s raw columns.
    X : DataFrame or array-like of shape (n_samples, n_features)
        The population to audit, in the estimator's raw input columns.
    target : label, array-like of labels or "opposite"
        The desired decision: one class label for everyone, one per row, or the other class
        of a binary model.
    constraints : ActionabilityConstraints or None, default=None
        Mutability, bounds and categorical groups, written with raw column names. The search
        enforces them; the mutability words given by raw column name are also rechecked on the
        returned counterfactuals (``actionable``).
    groups : str, list of str, dict, Series, array-like, callable or None, default=None
        The groupings to compare. A column name of ``X``; a list of column names; a dict
        ``{grouping name: column name, labels per row (array or Series aligned on X's index)
        or callable X -> labels}``; a Series (named by its name); an array of labels; a
        callable. :func:`bands` bins a numerical column, e.g.
        ``groups={"sex": "sex", "age band": bands("age", [0, 30, 50, 120])}``. Labels are
        shown as strings; a missing label becomes ``"missing"``. None: one group ``"all"``.
    generator : {"generic", "ecco", "revise"} or BaseGenerator, default="generic"
    decision_threshold : float in (0, 1), default=0.75
        A counterfactual is valid when ``p(target | x') >= decision_threshold``.
    max_iter : int, default=100
        Maximum search steps per row.
    reference : DataFrame, (DataFrame, y) or None, default=None
        Data to fit the explainer on: the "auto" domain bounds of the constraints and the
        REVISE autoencoder are learned from it, and ECCCo is calibrated on its labels (pass
        ``(X_ref, y_ref)`` for ECCCo). Prefer the training data; None uses ``X``.
    cost : {"l1", "l2", "linf"} or callable, default="l1"
        Distance between counterfactual and factual in the model's input space (after
        preprocessing: standardized units for scaled numerical columns; under "l1" a changed
        one-hot category counts 2). A callable gets ``(Z_cf, Z)`` and returns one value per row.
    change_tol : float or dict, default=0.0
        A numerical original column counts as changed when it moves by more than this
        (absolute, in the column's units; a dict gives it per column).
    batch_size : int, default=128
        Rows per search batch. Batches are the unit of parallel work; results do not depend
        on ``n_jobs`` (each batch is searched with one torch thread).
    n_jobs : int or None, default=None
        Batches searched in parallel with joblib (None: 1 unless in a joblib context).
    random_state : int, RandomState or None, default=None
        Seeds the explainer (REVISE's autoencoder) and random targets.

    Returns
    -------
    RecourseAuditReport

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.compose import make_column_transformer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> from skct import ActionabilityConstraints, CounterfactualTrainedClassifier
    >>> from skct.evaluation import recourse_audit
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"income": rng.normal(50, 10, 300), "age": rng.randint(18, 70, 300),
    ...                   "sex": rng.choice(["F", "M"], 300)})
    >>> y = (X["income"] > 50).astype(int)
    >>> pre = make_column_transformer((StandardScaler(), ["income", "age"]),
    ...                               (OneHotEncoder(sparse_output=False), ["sex"]))
    >>> clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
    ...                                       max_epochs=20, random_state=0)
    >>> model = make_pipeline(pre, clf).fit(X, y)
    >>> rejected = X[model.predict(X) == 0]
    >>> report = recourse_audit(
    ...     model, rejected, target=1, groups="sex", reference=X, random_state=0,
    ...     constraints=ActionabilityConstraints(mutability={"age": "none", "sex": "none"}))
    >>> report.summary().index.get_level_values("group").tolist()
    ['F', 'M', 'gap (max - min)']
    >>> bool((report.counterfactuals_["age"] == rejected["age"]).all())
    True
    """
    if isinstance(cost, str) and cost not in ("l1", "l2", "linf"):
        raise ValueError(f"cost: expected 'l1', 'l2', 'linf' or a callable, got {cost!r}.")
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if constraints is not None and not isinstance(constraints, ActionabilityConstraints):
        raise TypeError("constraints must be an ActionabilityConstraints or None, got "
                        f"{type(constraints).__name__}.")
    if target is None:
        raise ValueError("target: give the desired class label (or 'opposite'); an audit "
                         "needs one desired decision.")

    is_frame = isinstance(X, pd.DataFrame)
    if not is_frame:
        X_arr = np.asarray(X)
        if X_arr.ndim != 2:
            raise ValueError(f"X must be 2D (n_samples, n_features), got shape {X_arr.shape}.")
        X_user = X_arr
        X = pd.DataFrame(X_arr, columns=[f"x{i}" for i in range(X_arr.shape[1])])
    else:
        X_user = X
    if len(X) == 0:
        raise ValueError("X is empty: found 0 rows; at least 1 is required.")
    group_labels = _resolve_groups(groups, X)

    y_ref = None
    if reference is None:
        X_ref = X_user
    elif isinstance(reference, tuple):
        X_ref, y_ref = reference
    else:
        X_ref = reference
    explainer = CounterfactualExplainer(
        estimator, generator=generator, constraints=constraints,
        decision_threshold=decision_threshold, max_iter=max_iter, prefit=True,
        random_state=random_state).fit(X_ref, y_ref)  # labels: ECCCo calibrates on them
    classes = explainer.classes_

    # targets resolved once for all rows (chunking and n_jobs cannot change them)
    pred = np.asarray(explainer.estimator_.predict(X_user))
    lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    pred_idx = np.array([lookup.get(p.item() if hasattr(p, "item") else p, 0)
                         for p in pred], dtype=np.int64)
    rng = check_random_state(random_state)
    t_idx = resolve_targets(target, classes, pred_idx, rng)
    t_labels = classes[t_idx]

    n = len(X)
    starts = list(range(0, n, batch_size))

    def rows(a, s):
        return a.iloc[s:s + batch_size] if isinstance(a, pd.DataFrame) else a[s:s + batch_size]

    tasks = [(rows(X_user, s), t_labels[s:s + batch_size]) for s in starts]
    with _one_torch_thread():  # also covers joblib's threading backend
        if len(tasks) == 1 or effective_n_jobs(n_jobs) == 1:
            parts = [_explain_chunk(explainer, Xc, tc) for Xc, tc in tasks]
        else:
            parts = Parallel(n_jobs=n_jobs)(delayed(_explain_chunk)(explainer, Xc, tc)
                                            for Xc, tc in tasks)

    if is_frame:
        cf = pd.concat([p[0] for p in parts], axis=0)
        cf = _restore_dtypes(cf, X)
    else:
        cf = pd.DataFrame(np.concatenate([np.asarray(p[0]) for p in parts]),
                          columns=X.columns, index=X.index)
        cf = cf.infer_objects()
        X = X.infer_objects()
    valid = np.concatenate([p[1] for p in parts]).astype(bool)
    proba = np.concatenate([p[2] for p in parts])
    n_iter = np.concatenate([p[3] for p in parts])
    Z_cf = np.concatenate([p[4] for p in parts])
    Z = np.concatenate([p[5] for p in parts])
    names_model = parts[0][6]

    # the search runs in the model's precision (float32 usually): measure the cost from the
    # factual as the model sees it, so that an unchanged row costs exactly 0
    dtype = getattr(getattr(explainer, "adapter_", None), "dtype", None)
    Z_seen = Z if dtype is None else torch.as_tensor(Z).to(dtype).double().numpy()
    row_cost = _cost(Z_cf, Z_seen, cost)
    changed = _changed_matrix(cf, X, change_tol)
    actionable, checked = _actionable(cf, X, constraints)
    changes = _changes_long(cf, X, changed, valid & actionable)
    per_row_text = [[] for _ in range(n)]
    for pos, text, feat in zip(changes["position"].tolist(), changes["change"].tolist(),
                               changes["feature"].tolist()):
        per_row_text[pos].append(f"{feat}: {text}")
    ch = changed.to_numpy()
    cols = list(X.columns)
    report_rows = pd.DataFrame(
        {name: labels for name, (labels, _) in group_labels.items()}, index=X.index)
    report_rows["prediction"] = pred
    report_rows["target"] = t_labels
    report_rows["valid"] = valid
    report_rows["actionable"] = actionable
    report_rows["recourse"] = valid & actionable
    report_rows["target_proba"] = proba
    report_rows["n_iter"] = n_iter
    report_rows["cost"] = row_cost
    report_rows["n_changed"] = ch.sum(axis=1).astype(np.int64)
    report_rows["changed_features"] = [", ".join(str(c) for c, f in zip(cols, r) if f)
                                       for r in ch]
    report_rows["changes"] = ["; ".join(t) for t in per_row_text]
    cf_cols = cf.copy()
    cf_cols.columns = [f"cf_{c}" for c in cf.columns]
    report_rows = pd.concat([report_rows, cf_cols], axis=1)

    gen_name = generator if isinstance(generator, str) else type(generator).__name__
    params = {
        "target": target if np.ndim(target) == 0 else "per row",
        "generator": gen_name,
        "decision_threshold": decision_threshold,
        "max_iter": max_iter,
        "cost": cost if isinstance(cost, str) else getattr(cost, "__name__", "custom"),
        "change_tol": change_tol,
        "batch_size": batch_size,
        "random_state": random_state if isinstance(random_state, (int, type(None))) else "rng",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return RecourseAuditReport(
        rows=report_rows, counterfactuals=cf, factuals=X.copy(), changed=changed,
        changes=changes, groups={k: order for k, (_, order) in group_labels.items()},
        counterfactuals_model=Z_cf, factuals_model=Z, feature_names_model=names_model,
        explainer=explainer, checked_constraints=checked, params=params)
