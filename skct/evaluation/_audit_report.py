"""The report of a recourse audit: per-row table, per-group statistics, gaps, figure, HTML."""

from __future__ import annotations

import base64
import html
import io
import string
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["GAP_LABEL", "RecourseAuditReport"]

#: Name of the group gap rows in :meth:`RecourseAuditReport.summary`.
GAP_LABEL = "gap (max - min)"

#: Per-group statistics compared between groups.
_STATISTICS = ("share_recourse", "median_n_changed", "median_cost", "mean_cost",
               "mean_n_changed")

#: Per-group statistics of the options, with ``n_options > 1``: options with recourse per
#: person, and distinct sets of changed columns among them.
_OPTION_STATISTICS = ("mean_n_options", "mean_n_change_sets")

#: The options the HTML page shows (the columns of ``options_``, without ``cf_`` ones).
_OPTION_COLUMNS = ["person", "rank", "chosen", "recourse", "valid", "reason", "target_proba",
                   "cost", "n_changed", "changes"]

#: Why a row has no recourse, as ``rows_["reason"]`` starts each part.
REASONS = ("invalid", "out of domain", "not actionable")


def _holders(col, value):
    """The group of ``col`` (a Series by group) holding ``value``, or ``"tie: a, b"``."""
    names = [str(g) for g, v in col.items() if v == value]
    return names[0] if len(names) == 1 else "tie: " + ", ".join(names)


def _template():
    """The HTML page (``templates/audit.html``, shipped with the package)."""
    text = resources.files(__package__).joinpath("templates", "audit.html").read_text("utf-8")
    return string.Template(text)


class RecourseAuditReport:
    """The result of :func:`recourse_audit` (rows, groups, gaps; tables, plot, HTML).

    Do not build it yourself; call :func:`recourse_audit`.

    Attributes
    ----------
    rows_ : DataFrame
        One row per audited individual (index of ``X``): the group label of each grouping,
        ``prediction`` (the model's decision on the factual), ``target``, ``valid`` (the model
        predicts the target for the returned row with ``p(target | x') >=
        decision_threshold``), ``in_domain`` (every value inside the fitted domain in the
        user's units, widened to the factual's own value, and of its column's kind),
        ``actionable`` (every column's fitted mutability word holds: rechecked, not trusted),
        ``recourse`` (valid, in the domain and actionable), ``reason`` (why not: ``"invalid"``,
        ``"out of domain: <columns>"``, ``"not actionable: <columns>"``, joined by ``"; "``;
        empty for a row with recourse), ``target_proba``, ``n_iter``, ``cost``, ``n_changed``
        (user columns changed, a one-hot group counting once), ``changed_features`` (comma
        separated), ``changes`` (readable ``"col: old -> new (+delta)"`` list in the user's
        units), then the counterfactual's columns prefixed ``"cf_"``.
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
        The fitted explainer that produced the counterfactuals; its ``constraints_`` hold the
        domain, kinds, mutability and cost scales the rows were checked and costed with.
    checked_constraints_ : dict
        ``{column: mutability word}`` of the columns whose fitted word restricts something
        (``"none"``, ``"increase"``, ``"decrease"``), rechecked on every returned row.
    params_ : dict
        The audit's settings: ``model`` (its name), ``target`` (as given, or "per row"),
        ``target_name`` (the desired class as the report names it), ``generator``,
        ``decision_threshold``, ``cost``, ... (``n_options`` and ``diversity`` when
        ``n_options > 1``).
    options_ : DataFrame or None
        With ``n_options=k > 1``, every option of every person (``N * k`` rows, by person,
        then rank; a RangeIndex): ``person`` (the index label of the row in ``X``),
        ``position`` (its position), ``rank`` (0 for the explainer's best: valid first, then
        cheapest in the user's units), ``chosen`` (the option ``rows_`` reports: the first
        with recourse, else rank 0), ``target``, then the columns of ``rows_`` from ``valid``
        to ``changes`` (``prediction`` and ``n_iter`` aside), and the option's ``cf_``
        columns, in the user's units. None with ``n_options=1``.
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(self, *, rows, counterfactuals, factuals, changed, changes, groups,
                 counterfactuals_model, factuals_model, feature_names_model, explainer,
                 checked_constraints, params, options=None):
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
        self.options_ = options

    def __repr__(self):
        n = len(self.rows_)
        k = int(self.rows_["recourse"].sum())
        return (f"RecourseAuditReport(n_rows={n}, recourse={k}/{n}, "
                f"groupings={list(self.groups_)})")

    # -- tables ----------------------------------------------------------------------------
    def _statistics(self):
        """The statistics compared between groups (with those of the options, if any)."""
        return _STATISTICS if self.options_ is None else (*_STATISTICS, *_OPTION_STATISTICS)

    def _option_counts(self):
        """Per person (rows_ order): (distinct options with recourse [N], distinct change
        sets [N]). Options asking for the same changes (the same ``changes`` text, e.g. two
        copies of a search that met at one point, or a person already in the target class)
        count once."""
        opts = self.options_
        n = len(self.rows_)
        ok = opts.loc[opts["recourse"].to_numpy(dtype=bool)]
        distinct = ok[["position", "changes"]].drop_duplicates()
        n_options = np.bincount(distinct["position"].to_numpy(np.int64), minlength=n)
        pairs = ok[["position", "changed_features"]].drop_duplicates()
        n_sets = np.bincount(pairs["position"].to_numpy(np.int64), minlength=n)
        return n_options.astype(np.float64), n_sets.astype(np.float64)

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
            Index (grouping, group). Columns: ``n`` (rows), ``n_recourse`` (valid, in the
            domain and actionable), ``share_recourse`` (their share, in [0, 1]),
            ``median_n_changed`` (the sparsity of their recourse: median number of changed
            columns), ``median_cost``, ``mean_cost`` and ``mean_n_changed`` (over the rows
            with recourse), ``share_valid`` (share of valid rows, recourse or not),
            ``top_changed`` (features most often changed by them, with their frequency).
            With ``n_options > 1``, after ``mean_n_changed``: ``mean_n_options`` (mean
            number of distinct options with recourse per person of the group: options that
            ask for the same changes count once) and
            ``mean_n_change_sets`` (mean number of distinct sets of changed columns among
            them; a person without recourse counts 0 for both). After the groups of each
            grouping comes a row ``"gap (max - min)"`` holding, per statistic, the largest
            minus the smallest group value (see :meth:`gaps`).
        """
        freq = self.feature_change_frequencies(valid_only=True)
        cost = self.rows_["cost"].to_numpy()
        nch = self.rows_["n_changed"].to_numpy()
        ok = self.rows_["recourse"].to_numpy()
        valid = self.rows_["valid"].to_numpy() if "valid" in self.rows_ else ok
        counts = None if self.options_ is None else self._option_counts()
        statistics = self._statistics()
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
                    "share_recourse": float(m.sum() / mask.sum()) if mask.any() else np.nan,
                    "median_n_changed": float(np.median(nch[m])) if m.any() else np.nan,
                    "median_cost": float(np.median(cost[m])) if m.any() else np.nan,
                    "mean_cost": float(np.mean(cost[m])) if m.any() else np.nan,
                    "mean_n_changed": float(np.mean(nch[m])) if m.any() else np.nan,
                    **({} if counts is None else {
                        name: float(np.mean(c[mask])) if mask.any() else np.nan
                        for name, c in zip(_OPTION_STATISTICS, counts)}),
                    "share_valid": float((mask & valid).sum() / mask.sum()) if mask.any()
                    else np.nan,
                    "top_changed": ", ".join(f"{k} ({v:.0%})" for k, v in f.items()),
                }
                stats.append(rec)
                records.append(rec)
                index.append((grouping, g))
            gap = {"n": pd.NA, "n_recourse": pd.NA, "top_changed": ""}
            for key in (*statistics, "share_valid"):
                vals = np.array([s[key] for s in stats], dtype=np.float64)
                gap[key] = float(np.nanmax(vals) - np.nanmin(vals)) \
                    if np.isfinite(vals).any() else np.nan
            records.append(gap)
            index.append((grouping, GAP_LABEL))
        out = pd.DataFrame.from_records(
            records, columns=["n", "n_recourse", *statistics, "share_valid", "top_changed"])
        out.index = pd.MultiIndex.from_tuples(index, names=["grouping", "group"])
        out["n"] = out["n"].astype("Int64")
        out["n_recourse"] = out["n_recourse"].astype("Int64")
        return out

    def reason_counts(self):
        """Per group, how many rows have recourse and why the others do not.

        Returns
        -------
        DataFrame
            Index (grouping, group); columns ``n``, ``recourse`` and one per reason
            (``invalid``, ``out of domain``, ``not actionable``: a row can have several).
        """
        reason = self.rows_["reason"].astype(str) if "reason" in self.rows_ else \
            pd.Series("", index=self.rows_.index)
        has = {r: reason.str.contains(r, regex=False).to_numpy() for r in REASONS}
        ok = self.rows_["recourse"].to_numpy()
        records, index = [], []
        for grouping, g, mask in self._masks():
            rec = {"n": int(mask.sum()), "recourse": int((mask & ok).sum())}
            rec.update({r: int((mask & has[r]).sum()) for r in REASONS})
            records.append(rec)
            index.append((grouping, g))
        return pd.DataFrame.from_records(
            records, index=pd.MultiIndex.from_tuples(index, names=["grouping", "group"]),
            columns=["n", "recourse", *REASONS])

    def gaps(self):
        """Which groups are highest and lowest, per grouping and statistic (ties named).

        Returns
        -------
        DataFrame
            Index (grouping, statistic) for share_recourse, median_n_changed, median_cost,
            mean_cost and mean_n_changed (and, with ``n_options > 1``, mean_n_options and
            mean_n_change_sets); columns ``highest_group``, ``highest``, ``lowest_group``,
            ``lowest``, ``gap`` (highest - lowest) and ``ratio`` (highest / lowest). When
            several groups share the highest (or lowest) value, the group column reads
            ``"tie: a, b"``; groups that are all equal tie on both sides, with a gap of 0.
        """
        s = self.summary()
        records, index = [], []
        for grouping in self.groups_:
            part = s.loc[grouping].drop(index=GAP_LABEL)
            for key in self._statistics():
                col = part[key].astype(np.float64).dropna()
                if col.empty:
                    rec = dict(highest_group=None, highest=np.nan, lowest_group=None,
                               lowest=np.nan, gap=np.nan, ratio=np.nan)
                else:
                    hi, lo = col.max(), col.min()
                    rec = dict(highest_group=_holders(col, hi), highest=hi,
                               lowest_group=_holders(col, lo), lowest=lo, gap=hi - lo,
                               ratio=hi / lo if lo > 0 else np.nan)
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
        most often changed overall), one bar per group. Group, column and grouping names are
        shown as written (a ``$`` is not read as mathematics).

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
        ok = self.rows_["recourse"].to_numpy()
        overall = self.changed_.to_numpy()[ok].mean(axis=0) if ok.any() else \
            np.zeros(self.changed_.shape[1])
        order = np.argsort(-overall, kind="stable")[:top]
        order = [j for j in order if overall[j] > 0] or list(order)
        freq = self.feature_change_frequencies(valid_only=True)
        for i, (grouping, groups) in enumerate(self.groups_.items()):
            self._plot_costs(axes[i, 0], grouping, groups)
            self._plot_frequencies(axes[i, 1], grouping, groups, freq, order)
        fig.tight_layout()
        self.figure_ = fig
        return fig

    def _plot_costs(self, ax, grouping, groups):
        """Box plots of the cost of the rows with recourse, one per group."""
        cost = self.rows_["cost"].to_numpy()
        ok = self.rows_["recourse"].to_numpy()
        labels = self.rows_[grouping].to_numpy()
        data = [cost[(labels == g) & ok] for g in groups]
        ax.boxplot([d if len(d) else [np.nan] for d in data])
        ax.set_xticks(range(1, len(groups) + 1))
        ax.set_xticklabels([f"{g}\n(n={len(d)}/{int((labels == g).sum())})"
                            for g, d in zip(groups, data)], fontsize=8, parse_math=False)
        unit = "user's units" if self.params_["cost"] == "mad" else "model space"
        ax.set_ylabel(f"cost ({self.params_['cost']}, {unit})", parse_math=False)
        ax.set_title(f"{grouping}: cost of recourse", parse_math=False)

    def _plot_frequencies(self, ax, grouping, groups, freq, order):
        """Share of the rows with recourse changing each of the features ``order``, per group."""
        features = [str(self.changed_.columns[j]) for j in order]
        width = 0.8 / max(len(groups), 1)
        y = np.arange(len(features))
        for k, g in enumerate(groups):
            vals = freq.loc[(grouping, g)].to_numpy()[order] if len(order) else []
            ax.barh(y + (k - (len(groups) - 1) / 2) * width, np.nan_to_num(vals),
                    height=width, label=str(g))
        ax.set_yticks(y)
        ax.set_yticklabels(features, fontsize=8, parse_math=False)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("share of rows with recourse changing the feature")
        ax.set_title(f"{grouping}: feature change frequency", parse_math=False)
        legend = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        for text in legend.get_texts():
            text.set_parse_math(False)

    # -- HTML ------------------------------------------------------------------------------
    def to_html(self, path, max_rows=500, title="Recourse audit", max_option_rows=20):
        """Write a self-contained HTML report (tables and an embedded PNG figure).

        The page names the model and the target class and holds the settings, the recourse
        per group, the gaps, the figure, the feature change frequencies and the individual
        rows, and, with ``n_options > 1``, the options of the first persons. Every text is
        escaped: nothing the data holds becomes markup.

        Parameters
        ----------
        path : str or path-like
            File to write (overwritten).
        max_rows : int or None, default=500
            Show at most this many individual rows (None: all).
        title : str, default="Recourse audit"
        max_option_rows : int or None, default=20
            With ``n_options > 1``, show the options of at most this many persons, the first
            ones (None: all).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        from matplotlib.figure import Figure

        fig = self.plot(fig=Figure())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        rows = self.rows_.drop(columns=[c for c in self.rows_.columns
                                        if str(c).startswith("cf_")])
        shown = rows if max_rows is None else rows.head(max_rows)
        fmt = {"float_format": lambda v: f"{v:.3f}", "na_rep": "",
               "border": 0, "classes": "tbl"}
        freq = self.feature_change_frequencies()
        freq = freq.loc[:, (freq.fillna(0) > 0).any(axis=0)]
        summary = self.summary()
        for col in ("n", "n_recourse"):  # blank, not <NA>, on the gap rows
            summary[col] = summary[col].astype(object).where(summary[col].notna(), "")
        e = html.escape
        page = _template().substitute(
            title=e(str(title)), model=e(str(self.params_["model"])),
            target=e(str(self.params_["target_name"])), settings=self._settings_html(),
            summary=summary.to_html(**fmt), gaps=self.gaps().to_html(**fmt),
            reasons=self.reason_counts().to_html(**fmt),
            png=base64.b64encode(buf.getvalue()).decode("ascii"), frequencies=freq.to_html(**fmt),
            more="" if len(shown) == len(rows) else
            f"<p>First {len(shown)} of {len(rows)} rows.</p>",
            individuals=shown.to_html(**fmt), options=self._options_html(max_option_rows, fmt))
        path = Path(path)
        path.write_text(page, encoding="utf-8")
        return path

    def _options_html(self, max_option_rows, fmt):
        """The page's section of options per person ('' without options)."""
        if self.options_ is None:
            return ""
        opts = self.options_
        n = len(self.rows_)
        m = n if max_option_rows is None else min(n, max_option_rows)
        shown = opts.loc[opts["position"].to_numpy() < m, _OPTION_COLUMNS]
        k = self.params_.get("n_options", "")
        first = "" if m == n else f" First {m} of {n} persons."
        return ("\n<h2>Options per person</h2>\n"
                f"<p>Up to {html.escape(str(k))} diverse counterfactuals per person, each "
                "costed and rechecked like the individual rows, by rank (valid first, then "
                "cheapest); chosen marks the option the individual rows report (the cheapest "
                f"with recourse, else rank 0).{first}</p>\n"
                + shown.to_html(index=False, **fmt))

    def _settings_html(self):
        p = self.params_
        checked = ", ".join(f"{k}: {v}" for k, v in self.checked_constraints_.items()) or "none"
        rows = self.rows_
        ok = rows["recourse"].to_numpy()
        n, k = len(rows), int(ok.sum())
        median = float(np.median(rows["n_changed"].to_numpy()[ok])) if k else float("nan")
        reason = rows["reason"].astype(str) if "reason" in rows else \
            pd.Series("", index=rows.index)
        why = {r: int(reason.str.contains(r, regex=False).sum()) for r in REASONS}
        settings = {
            "model": p["model"],
            "target": p["target_name"],
            "rows audited": n,
            **({} if self.options_ is None else {
                "options per person": f"{p.get('n_options', '')} "
                                      f"(diversity: {p.get('diversity', '')})"}),
            "with recourse (valid, in the domain and actionable)":
                f"{k} of {n} ({k / n:.1%})" if n else "0",
            "median changed columns (rows with recourse)": f"{median:g}",
            "without recourse": ", ".join(f"{r}: {why[r]}" for r in REASONS)
            + " (a row can have several reasons)",
            "generator": p["generator"],
            "decision threshold": p["decision_threshold"],
            "max iterations": p["max_iter"],
            "cost": f"{p['cost']}: {p.get('cost_text', '')}",
            "constraints rechecked on the returned rows": "domain and kind of every column; "
                                                          f"mutability: {checked}",
            "created": p["created"],
        }
        return "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in settings.items())
