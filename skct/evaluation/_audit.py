"""Recourse audit: who, in a population, can reach the desired decision, at which cost?

:func:`recourse_audit` runs counterfactual search for every row of a population (for example
the applicants a fitted classifier rejects) under actionability constraints, and returns a
:class:`~skct.evaluation.RecourseAuditReport` with, per row, the counterfactual, whether it is
valid, its cost and the changes it asks for in the original columns, and, per group of people
(sex, an age band, ...), the share that has recourse, the cost of that recourse, which features
have to change, and the gaps between groups. With ``n_options=k`` every person gets ``k``
diverse options (the report's ``options_``), the cheapest with recourse deciding theirs.
"""

from __future__ import annotations

import numbers
import warnings
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch
from joblib import effective_n_jobs, parallel_config
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from .._utils import RowBlocks, labels_to_indices, plain, safe_indexing
from .._utils.parallel import Parallel, delayed
from ..constraints import ActionabilityConstraints
from ..explain import CounterfactualExplainer, resolve_targets
from ..metrics import cost as cost_metric
from ..search import GradientFreeGenerator
from ._audit_report import RecourseAuditReport
from ._changes import changed_matrix, changes_long, recourse_checks, user_cost
from ._groups import resolve_groups

__all__ = ["recourse_audit"]

_ORD = {"l1": 1, "l2": 2, "linf": np.inf}

#: How the report names each cost.
COST_TEXT = {
    "mad": "L1 in the user's units, each column over its median absolute deviation (a change "
           "of category costs 1)",
    "l1": "l1 distance in the model's input space (standardized units for scaled numerical "
          "columns; a changed one-hot category adds 2)",
    "l2": "l2 distance in the model's input space",
    "linf": "largest change in the model's input space",
}


def _check_args(target, constraints, cost, batch_size, X, n_options=1):
    """The audited rows as (X as given, X as a DataFrame); ValueError naming the parameter."""
    if isinstance(cost, str) and cost != "mad" and cost not in _ORD:
        raise ValueError("cost: expected 'mad', 'l1', 'l2', 'linf' or a callable, got "
                         f"{cost!r}.")
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if isinstance(n_options, bool) or not (isinstance(n_options, numbers.Integral)
                                           and n_options >= 1):
        raise ValueError(f"n_options must be a positive integer, got {n_options!r}.")
    if constraints is not None and not isinstance(constraints, ActionabilityConstraints):
        raise TypeError("constraints must be an ActionabilityConstraints or None, got "
                        f"{type(constraints).__name__}.")
    if target is None:
        raise ValueError("target: give the desired class label (or 'opposite'); an audit "
                         "needs one desired decision.")
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2D (n_samples, n_features), got shape {X.shape}.")
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    if len(frame) == 0:
        raise ValueError("X is empty: found 0 rows; at least 1 is required.")
    return X, frame


def _in_process():
    """The model's own joblib work runs in the calling thread (joblib's sequential backend).

    On the client, inside ``joblib.parallel_backend("dask")``, scikit-learn's parallel steps
    (a ColumnTransformer's transformers, with ``n_jobs=None``) would otherwise ship the whole
    table to one worker and its transformed columns back; in a task, they would come back to
    the cluster as tasks of their own. The audit distributes its batches only.
    """
    return parallel_config(backend="sequential")


def _predicted_indices(explainer, X, batch_size):
    """(predicted labels, their class indices), ``batch_size`` rows at a time.

    ValueError for a label not in classes_.
    """
    n = X.shape[0]
    pred = None
    with _in_process():
        for s in range(0, n, batch_size):  # one chunk's preprocessing at a time
            part = np.asarray(explainer.estimator_.predict(
                safe_indexing(X, slice(s, s + batch_size))))
            if pred is None:
                pred = np.empty((n,) + part.shape[1:], dtype=part.dtype)
            pred[s:s + len(part)] = part
    idx = labels_to_indices(pred, explainer.classes_, "prediction", unknown=-1)
    if (idx < 0).any():
        unknown = sorted({plain(p) for p in pred[idx < 0].tolist()}, key=repr)
        raise ValueError(f"The estimator predicts label(s) {unknown} that are not among its "
                         f"classes_ {list(explainer.classes_)}: its predict and its torch "
                         "module disagree, so the audit cannot tell the rows' decisions.")
    return pred, idx


def _explain_chunk(explainer, chunk):
    """Explain one chunk ``(rows, target labels)`` (with the configured torch threads).

    The chunk travels as one tuple: joblib's Dask backend scatters a large argument to a
    worker and keeps it there until the whole call ends, a tuple it sends with its task, so a
    worker frees the chunk with the task. The model's own joblib work runs in the task's
    thread: joblib would otherwise send a ColumnTransformer's transformers of every chunk back
    to the cluster as tasks of their own (its Dask backend nests itself).
    """
    X, targets = chunk
    with _in_process():
        r = explainer.explain(X, target=targets)
    return dict(cf=r.counterfactuals, valid=r.valid, proba=r.target_proba, n_iter=r.n_iter,
                Z_cf=r.counterfactuals_model, Z=r.factuals_model, n_changed=r.n_changed,
                rank=r.rank), r.feature_names_model


def _search(explainer, X_user, t_labels, batch_size, n_jobs, k):
    """The search of every row, its per-entry results written into :class:`RowBlocks`.

    Chunks are formed as joblib asks for them and their results written as they come, in row
    order: the client never holds every chunk's results next to the joined ones.

    Returns ``(blocks of N * k entries, feature names in the model's space)``.
    """
    starts = range(0, len(t_labels), batch_size)
    chunks = ((safe_indexing(X_user, slice(s, s + batch_size)), t_labels[s:s + batch_size])
              for s in starts)
    if len(starts) == 1 or effective_n_jobs(n_jobs) == 1:
        results = (_explain_chunk(explainer, c) for c in chunks)
    else:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_explain_chunk)(explainer, c) for c in chunks)
    blocks, names = RowBlocks(len(t_labels) * k), None
    for s, (entries, names) in zip(starts, results):
        blocks.write(s * k, **entries)
        del entries
    return blocks, names


#: Per-entry arrays of :func:`_explain_chunk`'s results.
_ENTRY = ("valid", "proba", "n_iter", "Z_cf", "Z", "n_changed", "rank")


def _row_costs(Z_cf, Z, cost, dtype):
    """Cost of each row in the model space (NaN where the counterfactual is not finite).

    The search runs in the model's precision (float32 usually): the cost is measured from the
    factual as the model sees it, so that an unchanged row costs exactly 0.
    """
    Z_seen = Z if dtype is None else torch.as_tensor(Z).to(dtype).double().numpy()
    if callable(cost):
        out = np.asarray(cost(Z_cf, Z_seen), dtype=np.float64).reshape(-1)
        if out.shape[0] != Z.shape[0]:
            raise ValueError(f"cost: the callable returned {out.shape[0]} values for "
                             f"{Z.shape[0]} rows.")
        return out
    out = np.full(Z.shape[0], np.nan)
    finite = np.isfinite(Z_cf).all(axis=1) & np.isfinite(Z_seen).all(axis=1)
    if finite.any():
        out[finite] = cost_metric(Z_cf[finite], Z_seen[finite], ord=_ORD[cost], per_row=True)
    return out


def _assess(cf, X, fitted, entries, cost, change_tol, dtype, batch_size):
    """(cost [n], changed columns, (valid, in_domain, actionable, reason), checked words).

    Every returned row (``cf``, one per row of ``X``) is costed and rechecked on its own,
    ``batch_size`` rows at a time, so that the client's temporaries are one batch's; a
    callable cost gets every row at once.
    """
    n, mad = len(X), isinstance(cost, str) and cost == "mad"
    blocks, checked = RowBlocks(n), {}
    for s in range(0, n, batch_size):
        rows = slice(s, s + batch_size)
        cf_b, X_b = cf.iloc[rows], X.iloc[rows]
        if mad:
            blocks.write(s, cost=user_cost(cf_b, X_b, fitted))
        elif not callable(cost):
            blocks.write(s, cost=_row_costs(entries["Z_cf"][rows], entries["Z"][rows], cost,
                                            dtype))
        in_domain, ok, reason, checked = recourse_checks(cf_b, X_b, fitted,
                                                         entries["valid"][rows])
        blocks.write(s, changed=changed_matrix(cf_b, X_b, change_tol), in_domain=in_domain,
                     ok=ok, reason=reason)
    row_cost = _row_costs(entries["Z_cf"], entries["Z"], cost, dtype) if callable(cost) \
        else blocks.pop("cost")
    checks = (entries["valid"], blocks.pop("in_domain"), blocks.pop("ok"), blocks.pop("reason"))
    return row_cost, blocks.pop("changed", index=X.index), checks, checked


def _best_options(checks, n, k):
    """[n] entry of each row's option the audit reports: its first with recourse, else rank 0.

    The ``k`` options of a row are adjacent and ordered by rank (valid first, then cheapest in
    the user's units), so the first with recourse is the cheapest one.
    """
    valid, in_domain, ok, _ = checks
    rec = (valid & in_domain & ok).reshape(n, k)  # [n, k]
    return np.arange(n) * k + np.where(rec.any(axis=1), rec.argmax(axis=1), 0)


def _option_table(X_all, cf_all, index, k, best, decisions, checks, row_cost, changed,
                  entries):
    """The report's ``options_``: every option of every row, by row then rank."""
    n = len(index)
    valid, in_domain, ok, _ = checks
    changes = changes_long(cf_all, X_all, changed, valid & in_domain & ok)
    pred, t_labels = (np.repeat(np.asarray(a), k) for a in decisions)
    table = _row_table(X_all, cf_all, {}, pred, t_labels, checks, entries["proba"],
                       entries["n_iter"], row_cost, entries["n_changed"], changed, changes)
    table = table.drop(columns=["prediction", "n_iter"])
    chosen = np.zeros(n * k, dtype=bool)
    chosen[best] = True
    lead = {"person": index.to_numpy()[np.repeat(np.arange(n), k)],
            "position": np.repeat(np.arange(n), k), "rank": entries["rank"], "chosen": chosen}
    for j, (name, values) in enumerate(lead.items()):
        table.insert(j, name, values)
    return table


def _row_table(X, cf, group_labels, pred, t_labels, checks, proba, n_iter, row_cost,
               n_changed, changed, changes):
    """The report's per-row table (groups, decisions, cost, changes, then cf_ columns)."""
    valid, in_domain, ok, reason = checks
    per_row_text = [[] for _ in range(len(X))]
    for pos, text, feat in zip(changes["position"].tolist(), changes["change"].tolist(),
                               changes["feature"].tolist()):
        per_row_text[pos].append(f"{feat}: {text}")
    ch = changed.to_numpy()
    cols = list(X.columns)
    rows = pd.DataFrame({name: labels for name, (labels, _) in group_labels.items()},
                        index=X.index)
    rows["prediction"] = pred
    rows["target"] = t_labels
    rows["valid"] = valid
    rows["in_domain"] = in_domain
    rows["actionable"] = ok
    rows["recourse"] = valid & in_domain & ok
    rows["reason"] = reason
    rows["target_proba"] = proba
    rows["n_iter"] = n_iter
    rows["cost"] = row_cost
    rows["n_changed"] = np.asarray(n_changed, dtype=np.int64)
    rows["changed_features"] = [", ".join(str(c) for c, f in zip(cols, r) if f) for r in ch]
    rows["changes"] = ["; ".join(t) for t in per_row_text]
    cf_cols = cf.copy()
    cf_cols.columns = [f"cf_{c}" for c in cf.columns]
    return pd.concat([rows, cf_cols], axis=1)


def _warn_search_budget(rows, group_labels, max_iter):
    """A UserWarning when rows end without a valid counterfactual at the step limit.

    Such a row's search stopped at ``max_iter``, not because nothing valid exists: the share
    with recourse, and its gaps between groups, then depend on the search budget. (On Adult, a
    gap of 0.21 in the share with recourse between women and men at ``max_iter=100`` was 0.005
    at 400 and 0 at 1000.)
    """
    stopped = (~rows["valid"].to_numpy(dtype=bool)) & (rows["n_iter"].to_numpy() >= max_iter)
    m = int(stopped.sum())
    if not m:
        return
    parts = []
    for name, (labels, order) in group_labels.items():
        labels = np.asarray(labels, dtype=object)
        shares = []
        for g in order:
            in_g = labels == g
            if in_g.any():
                shares.append(f"{g} {stopped[in_g].mean():.0%}")
        parts.append(f"{name}: " + ", ".join(shares))
    per_group = f" Share of each group so stopped: {'; '.join(parts)}." if parts else ""
    warnings.warn(
        f"{m} of {len(rows)} rows {'has' if m == 1 else 'have'} no valid counterfactual "
        "because the search stopped at "
        f"max_iter={max_iter} steps without reaching the target.{per_group} The share with "
        "recourse and its gaps between groups may reflect this step budget rather than the "
        "model: audit again with a larger max_iter (the search time grows with it) to see "
        "whether they change.", UserWarning, stacklevel=3)


def _class_name(label, classes, class_names):
    """The readable name of a class label (the label itself without class_names)."""
    if class_names is None:
        return str(label)
    if isinstance(class_names, dict):
        return str(class_names.get(plain(label), label))
    names = list(class_names)
    if len(names) != len(classes):
        raise ValueError(f"class_names: expected {len(classes)} names (one per class of "
                         f"{list(classes)}), got {len(names)}.")
    return str(names[int(labels_to_indices([label], classes, "target")[0])])


def _target_text(target, classes, class_names):
    if isinstance(target, str) and target == "opposite":
        return "opposite (the other class of each row)"
    if np.ndim(target) != 0:
        return "per row"
    name = _class_name(target, classes, class_names)
    return name if name == str(plain(target)) else f"{name} (class {plain(target)})"


def _model_name(estimator):
    if isinstance(estimator, Pipeline):
        steps = [type(s).__name__ for _, s in estimator.steps if s not in (None, "passthrough")]
        return f"Pipeline({', '.join(steps)})"
    return type(estimator).__name__


def _params(estimator, target, classes, generator, cost, random_state, class_names,
            model_name, **settings):
    """The audit's settings as the report shows them."""
    return {
        "model": model_name if model_name is not None else _model_name(estimator),
        "target": target if np.ndim(target) == 0 else "per row",
        "target_name": _target_text(target, classes, class_names),
        "generator": generator if isinstance(generator, str) else type(generator).__name__,
        **settings,
        "cost": cost if isinstance(cost, str) else getattr(cost, "__name__", "custom"),
        "cost_text": COST_TEXT.get(cost, "custom, in the model's input space")
        if isinstance(cost, str) else "custom, in the model's input space",
        "random_state": random_state if isinstance(random_state, (int, type(None))) else "rng",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def recourse_audit(estimator, X, *, target, constraints=None, groups=None, generator="generic",
                   decision_threshold=0.75, max_iter=100, reference=None, cost="mad",
                   change_tol=0.0, batch_size=128, n_jobs=None, random_state=None,
                   class_names=None, model_name=None, n_options=1, diversity="pairwise"):
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
        Mutability, bounds, kinds and categorical groups, written with raw column names and in
        the user's units. The search enforces them, and the audit rechecks them on every
        returned counterfactual: a row has recourse only when it is ``valid`` (the model
        predicts the target for the row as returned), ``in_domain`` (inside the fitted domain
        ``constraints_.lower_``/``upper_``, widened to the factual's own value as the search
        does, with values of each column's kind: integers integral, categories among the
        known levels) and ``actionable`` (every column's fitted mutability word holds:
        immutable columns unchanged, directions respected).
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
        ``(X_ref, y_ref)`` for ECCCo). Prefer the training data; None uses ``X``. With
        ``generator="gradient_free"`` the reference gives the search its starting points, rows
        the model assigns to the target class: an audit of rejected rows only with
        ``reference=None`` has none, and its counterfactuals come out costlier (on 500
        rejected Adult rows, a mean cost of 4.1 against 1.3 MAD units; a warning says so).
    cost : {"mad", "l1", "l2", "linf"} or callable, default="mad"
        What a counterfactual costs. ``"mad"``: L1 in the user's units, each numerical column
        divided by its median absolute deviation (``constraints_.cost_scale_``), a changed
        categorical column counting 1 (the usual recourse cost, the one the search uses).
        ``"l1"``, ``"l2"``, ``"linf"``: the distance in the model's input space (after
        preprocessing: standardized units for scaled numerical columns; under "l1" a changed
        one-hot category counts 2). Both are :func:`skct.metrics.cost` (NaN for a row whose
        counterfactual is not finite). A callable gets ``(Z_cf, Z)`` in the model's input
        space and returns one value per row.
    change_tol : float or dict, default=0.0
        A numerical original column counts as changed when it moves by more than this
        (absolute, in the column's units; a dict gives it per column).
    batch_size : int, default=128
        Rows per search batch (and per prediction of the rows). Batches are the unit of
        parallel work; results do not depend on ``n_jobs``, nor on ``batch_size`` beyond the
        float rounding of a batch's forward pass (each batch is searched with skct's
        ``torch_threads``, default 1, see :func:`skct.config_context`).
    n_jobs : int or None, default=None
        Batches searched in parallel with joblib (None: 1 unless in a joblib context). The
        batches are the audit's only parallel work: the estimator's own joblib steps (a
        ColumnTransformer's transformers) run in the process or task that calls them, joblib's
        sequential backend, so that under a Dask backend they never ship the table to the
        cluster. Each batch's results are written into the report's arrays as they arrive.
    random_state : int, RandomState or None, default=None
        Seeds the explainer (REVISE's autoencoder) and random targets.
    class_names : sequence of str, dict {label: name} or None, default=None
        Readable names of the classes (in the order of the estimator's ``classes_``, e.g. a
        data set's ``target_names``) for the report's texts; None shows the labels.
    model_name : str or None, default=None
        The model's name in the report; None names its class (or its Pipeline's steps).
    n_options : int, default=1
        Options per person (``k``): with ``k > 1`` the explainer searches ``k`` diverse
        counterfactuals per row (``n_per_row=k``), each one costed and rechecked like the
        single one. ``rows_`` keeps one row per person, the option that decides their
        recourse: the cheapest of their options with recourse, else their best (rank 0);
        :attr:`~RecourseAuditReport.options_` holds all ``N * k`` options, the summary counts
        per group the options with recourse and their distinct change sets, and the page
        shows the options of the first rows. 1: one counterfactual per row (``options_`` is
        None).
    diversity : {"starts", "pairwise", "subsets", "disjoint"}, default="pairwise"
        How the ``k`` options of a person differ (the explainer's ``diversity``); ignored for
        ``n_options=1``.

    Returns
    -------
    RecourseAuditReport
        Its ``rows_`` hold, per row, ``valid``, ``in_domain``, ``actionable``, ``recourse``
        (all three) and ``reason`` (why a row has no recourse, naming the columns; empty for
        a row with recourse), ``n_changed`` (user columns changed, a one-hot group counting
        once) and ``cost``; with ``n_options > 1`` its ``options_`` hold every option.

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
    >>> bool(report.rows_.loc[report.rows_["recourse"], "reason"].eq("").all())
    True
    """
    X_user, X = _check_args(target, constraints, cost, batch_size, X, n_options)
    is_frame = isinstance(X_user, pd.DataFrame)
    group_labels = resolve_groups(groups, X)
    X_ref, y_ref = reference if isinstance(reference, tuple) else (
        X_user if reference is None else reference, None)
    options = {} if n_options == 1 else dict(n_per_row=n_options, diversity=diversity)
    explainer = CounterfactualExplainer(
        estimator, generator=generator, constraints=constraints,
        decision_threshold=decision_threshold, max_iter=max_iter, prefit=True,
        random_state=random_state, **options)
    with _in_process():
        explainer.fit(X_ref, y_ref)  # ECCCo calibrates on labels
    classes = explainer.classes_
    # targets resolved once for all rows (chunking and n_jobs cannot change them)
    pred, pred_idx = _predicted_indices(explainer, X_user, batch_size)
    t_labels = classes[resolve_targets(target, classes, pred_idx,
                                       check_random_state(random_state))]
    k = n_options
    blocks, names_model = _search(explainer, X_user, t_labels, batch_size, n_jobs, k)
    if is_frame:  # the explainer returns unchanged values exactly as given, dtypes included
        entry_index = X.index if k == 1 else X.index[np.repeat(np.arange(len(X)), k)]
        cf = blocks.pop("cf", index=entry_index)
    else:
        cf = pd.DataFrame(blocks.pop("cf"), columns=X.columns,
                          index=X.index if k == 1 else None).infer_objects()
        X = X.infer_objects()
    entries = {key: blocks.pop(key) for key in _ENTRY}
    entries["valid"] = entries["valid"].astype(bool)
    X_all = X if k == 1 else X.iloc[np.repeat(np.arange(len(X)), k)].reset_index(drop=True)
    cf_all = cf if k == 1 else cf.reset_index(drop=True)  # k entries per row, by rank
    fitted = explainer.constraints_
    row_cost, changed, checks, checked = _assess(
        cf_all, X_all, fitted, entries, cost, change_tol,
        getattr(explainer.adapter_, "dtype", None), batch_size * k)
    option_table = None
    if k > 1:
        best = _best_options(checks, len(X), k)
        option_table = _option_table(
            X_all, cf_all, X.index, k, best, (pred, t_labels), checks, row_cost, changed,
            entries)
        cf = cf_all.iloc[best].set_axis(X.index)
        changed = changed.iloc[best].set_axis(X.index)
        checks = tuple(c[best] for c in checks)
        row_cost = row_cost[best]
        entries = {key: v[best] for key, v in entries.items()}
    changes = changes_long(cf, X, changed, checks[0] & checks[1] & checks[2])
    rows = _row_table(X, cf, group_labels, pred, t_labels, checks, entries["proba"],
                      entries["n_iter"], row_cost, entries["n_changed"], changed, changes)
    if not isinstance(explainer.generator_, GradientFreeGenerator):
        _warn_search_budget(rows, group_labels, max_iter)
    settings = {} if k == 1 else dict(n_options=k, diversity=diversity)
    params = _params(estimator, target, classes, generator, cost, random_state, class_names,
                     model_name, decision_threshold=decision_threshold, max_iter=max_iter,
                     change_tol=change_tol, batch_size=batch_size, **settings)
    return RecourseAuditReport(
        rows=rows, counterfactuals=cf, factuals=X.copy(), changed=changed,
        changes=changes, groups={g: order for g, (_, order) in group_labels.items()},
        counterfactuals_model=entries["Z_cf"], factuals_model=entries["Z"],
        feature_names_model=names_model, explainer=explainer, checked_constraints=checked,
        params=params, options=option_table)
