"""One function that computes several counterfactual metrics for a batch, and its reference data.

:func:`compute_metrics` is the one dispatcher behind :func:`skct.evaluation.evaluate`, the
counterfactual scorers and the experiment runner: it reads each metric's
:class:`~skct.metrics.MetricSpec` from the registry, applies the valid-only convention, seeds the
random metrics and returns per-row values where a metric has them.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .._utils import derive_seed
from ._model import as_logits_fn
from ._plausibility import MMDReference
from ._registry import METRIC_SPECS, get_metric_spec
from ._validation import as_1d, as_indices, check_2d

__all__ = ["ReferenceData", "compute_metrics", "metric_names"]


class ReferenceData:
    """Reference rows (model space) and their classes, for the metrics that compare with data.

    Implausibility and energy differential compare each counterfactual with the reference rows
    of its target class; MMD compares the counterfactuals of a target class with the reference
    sample of that class; faithfulness starts its chains in the reference's range.

    Parameters
    ----------
    X_ref : array-like of shape (m, d)
        Reference rows in the model's input space (e.g. the training set after preprocessing).
    y_ref : array-like of shape (m,)
        Class index of each row (rows of no known class may hold -1).
    n_reference : int >= 1 or None, default=None
        At most this many reference rows per target class: implausibility's ``n_neighbors``, and
        the size of MMD's seeded subsample. None: implausibility's own default (1000) and every
        row of the class for MMD.
    mmd : dict {class index: MMDReference} or None, default=None
        Fixed MMD references (their kernel sums computed once, see
        :meth:`MMDReference.per_class`), used instead of ``X_ref`` for MMD: the experiment
        runner compares every batch with all test rows of the target class. A class without
        one gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from skct.metrics import ReferenceData
    >>> ref = ReferenceData(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), [0, 1, 1])
    >>> ref.rows_of(1).tolist()
    [[2.0, 3.0], [4.0, 5.0]]
    >>> [b.tolist() for b in ref.bounds]
    [[0.0, 1.0], [4.0, 5.0]]
    """

    def __init__(self, X_ref, y_ref, *, n_reference=None, mmd=None):
        self.X_ref = check_2d(X_ref, "X_ref")
        self.y_ref = as_1d(y_ref, "y_ref", self.X_ref.shape[0], "X_ref")
        if n_reference is not None and (isinstance(n_reference, bool) or not isinstance(
                n_reference, numbers.Integral) or n_reference < 1):
            raise ValueError(f"n_reference must be None or an integer >= 1, got {n_reference!r}.")
        self.n_reference = None if n_reference is None else int(n_reference)
        if mmd is not None and not (isinstance(mmd, Mapping) and all(
                isinstance(v, MMDReference) for v in mmd.values())):
            raise ValueError("mmd must be None or a dict {class index: MMDReference}.")
        self.mmd = None if mmd is None else dict(mmd)

    def __repr__(self):
        return (f"ReferenceData(n_rows={self.X_ref.shape[0]}, n_reference={self.n_reference}, "
                f"mmd={'fixed' if self.mmd is not None else None})")

    @property
    def bounds(self):
        """Per-feature range ``(lower [d], upper [d])`` of the reference rows."""
        return self.X_ref.min(axis=0), self.X_ref.max(axis=0)

    def rows_of(self, target, random_state=None):
        """Reference rows of class ``target``: all, or a seeded subsample of ``n_reference``.

        The subsample (without replacement, in the rows' order) is drawn with
        ``numpy.random.default_rng(random_state)``.
        """
        rows = np.flatnonzero(self.y_ref == target)
        if self.n_reference is not None and rows.size > self.n_reference:
            rng = np.random.default_rng(random_state)
            rows = np.sort(rng.choice(rows, self.n_reference, replace=False))
        return self.X_ref[rows]


class _Seeds:
    """Seed of each metric: derived from one int, looked up in a dict, or None (fresh)."""

    def __init__(self, random_state):
        if random_state is None or isinstance(random_state, Mapping):
            self.source = random_state
        elif isinstance(random_state, (numbers.Integral, np.integer)) and \
                not isinstance(random_state, bool) and random_state >= 0:
            self.source = int(random_state)
        else:
            raise ValueError("random_state must be None, an integer >= 0 or a dict {metric: "
                             f"seed}}, got {random_state!r}.")

    def __call__(self, key):
        if self.source is None:
            return None
        if isinstance(self.source, Mapping):
            return self.source.get(key)
        return derive_seed(self.source, key)


def metric_names(metrics, metric_params=None):
    """Names of the values :func:`compute_metrics` returns, in order.

    MMD with ``n_permutations > 0`` adds ``"mmd_p_value"`` after ``"mmd"``.

    Examples
    --------
    >>> from skct.metrics import metric_names
    >>> metric_names(["cost", "mmd"], {"mmd": {"n_permutations": 10}})
    ['cost', 'mmd', 'mmd_p_value']
    """
    params = metric_params or {}
    out = []
    for name in ([metrics] if isinstance(metrics, str) else metrics):
        out.append(name)
        spec = get_metric_spec(name)
        if spec.two_sample and params.get(name, {}).get("n_permutations", 0):
            out.append(f"{name}_p_value")
    return out


def _check_request(metrics, metric_params):
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError("metrics is empty: give at least one metric name.")
    specs = [get_metric_spec(m) for m in names]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics: duplicate names in {names}.")
    params = dict(metric_params or {})
    for key, value in params.items():
        if key not in names:
            raise ValueError(f"metric_params: {key!r} is not among the requested metrics "
                             f"{names}.")
        if not isinstance(value, Mapping):
            raise ValueError(f"metric_params[{key!r}] must be a dict of keyword arguments.")
    return specs, params


def _check_inputs(specs, X, y_target, model, reference, valid, n):
    """Factuals, targets and model checked against what the requested metrics need."""
    if valid is not None:  # a given valid mask is the validity: no model needed for it
        specs = [s for s in specs if s.name != "validity"]
    for flag, value, what in (("needs_model", model, "model"),
                              ("needs_reference", reference, "reference"),
                              ("needs_factuals", X, "X (the factuals)"),
                              ("needs_target", y_target, "y_target")):
        needing = [s.name for s in specs if getattr(s, flag)]
        if needing and value is None:
            raise ValueError(f"{what} is None but {needing} need(s) it.")
    if reference is not None and not isinstance(reference, ReferenceData):
        raise ValueError(f"reference must be a ReferenceData or None, got "
                         f"{type(reference).__name__}.")
    if X is not None:
        X = check_2d(X, "X")
        if X.shape[0] != n:
            raise ValueError(f"X has {X.shape[0]} rows but X_cf has {n}.")
    t = None if y_target is None else as_indices(y_target, "y_target", n, "X_cf")
    return X, t


def _check_row_id(specs, params, row_id, n):
    """``row_id`` [n] or None, checked against the metrics that need it.

    Such a metric takes ``compute_metrics``' ``row_id``, or (the former way) ``row_id`` in its
    ``metric_params``; not both.
    """
    row_id = None if row_id is None else as_1d(row_id, "row_id", n, "X_cf")
    missing = []
    for spec in specs:
        if not spec.needs_row_id:
            continue
        if "row_id" in params.get(spec.name, {}):
            if row_id is not None:
                raise ValueError(f"row_id is given both to compute_metrics and in "
                                 f"metric_params[{spec.name!r}]: give it once, as "
                                 "compute_metrics' row_id.")
        elif row_id is None:
            missing.append(spec.name)
    if missing:
        raise ValueError(f"row_id is None but {missing} need(s) it: the factual of each "
                         "counterfactual (e.g. the explainer result's row_id).")
    return row_id


def _valid_rows(specs, fn, X_cf, t, valid, valid_only):
    """(per-row validity [n] float or None, valid mask [n] bool or None)."""
    wanted = any(s.name == "validity" for s in specs) or (
        valid_only and any(s.valid_only for s in specs))
    if not wanted:
        return None, None
    if valid is not None:
        hits = as_1d(valid, "valid", X_cf.shape[0], "X_cf").astype(bool).astype(np.float64)
    elif fn is not None and t is not None:
        hits = METRIC_SPECS["validity"].function(fn, X_cf, t, per_row=True)
    else:
        raise ValueError("valid_only=True needs the model and y_target, or the valid mask.")
    return hits, hits > 0


def _nan(n, per_row):
    return np.full(n, np.nan) if per_row else float("nan")


def _one_metric(spec, batch, rows, kw, per_row, seeds):
    """One (not two-sample) metric on the rows ``rows`` (bool mask or None: all) of the batch."""
    fn, X_cf, X, t, reference, context, row_id = batch
    n = X_cf.shape[0]
    row_values = per_row and spec.per_row
    if rows is not None:
        X_cf = X_cf[rows]
        X = None if X is None else X[rows]
        t = None if t is None else t[rows]
        row_id = None if row_id is None else row_id[rows]
    if X_cf.shape[0] < spec.min_rows:
        return _nan(n, row_values)
    args = [fn] if spec.needs_model else []
    args.append(X_cf)
    args += [X] if spec.needs_factuals else []
    args += [t] if spec.needs_target else []
    args += [reference.X_ref, reference.y_ref] if spec.needs_reference else []
    if spec.needs_row_id and "row_id" not in kw:
        kw["row_id"] = row_id
    for key in spec.context:
        if key not in kw and context.get(key) is not None:
            kw[key] = context[key]
    if spec.random and "random_state" not in kw:
        kw["random_state"] = seeds(spec.name)
    if row_values:
        kw["per_row"] = True
    value = spec.function(*args, **kw)
    if not row_values or rows is None:
        return value
    full = np.full(n, np.nan)
    full[rows] = value
    return full


def _two_sample(spec, X_cf, t, rows, reference, kw, seeds):
    """{name: value[, name_p_value: p]}: per target class against its reference sample.

    With one target class the statistic (and its p-value) of that class; with several their
    mean weighted by the number of counterfactuals (no p-value); NaN when no class has enough
    rows on both sides.
    """
    name = spec.name
    with_p = bool(kw.get("n_permutations", 0))
    if reference.mmd is not None and kw:
        raise ValueError(f"metric_params[{name!r}]: the reference's fixed MMD references set "
                         f"the kernel; got {sorted(kw)}.")
    if rows is not None:
        X_cf, t = X_cf[rows], t[rows]
    values, weights, p_values = [], [], []
    if X_cf.shape[0] >= spec.min_rows:
        for c in np.unique(t).tolist():
            cf = X_cf[t == c]
            if cf.shape[0] < spec.min_rows:
                continue
            if reference.mmd is not None:
                if c not in reference.mmd:
                    continue
                value, p = reference.mmd[c](cf), float("nan")
            else:
                pool = reference.rows_of(c, seeds(f"{name}-reference"))
                if pool.shape[0] < spec.min_rows:
                    continue
                value = spec.function(cf, pool, random_state=seeds(name), **kw)
                value, p = value if isinstance(value, tuple) else (value, float("nan"))
            values.append(value)
            weights.append(cf.shape[0])
            p_values.append(p)
    if not values:
        value, p = float("nan"), float("nan")
    elif len(values) == 1:
        value, p = values[0], p_values[0]
    else:
        value, p = float(np.average(values, weights=weights)), float("nan")
    return {name: value, f"{name}_p_value": p} if with_p else {name: value}


def compute_metrics(metrics, X_cf, X=None, y_target=None, *, model=None, valid=None,
                    row_id=None, reference=None, valid_only=True, per_row=False,
                    decision_threshold=0.75, metric_params=None, random_state=None):
    """Compute several counterfactual metrics for one batch of counterfactuals.

    Every metric is looked up in :data:`METRIC_SPECS` and called with what its
    :class:`MetricSpec` asks for. With ``valid_only`` (the paper's convention) every metric but
    validity and strict validity is computed on the valid counterfactuals only (those the
    model assigns to their target class); a metric with fewer rows than it needs gives NaN.

    Parameters
    ----------
    metrics : str or sequence of str
        Names from :data:`METRIC_SPECS`.
    X_cf : array-like of shape (n, d)
        Counterfactuals in the model's input space.
    X : array-like of shape (n, d) or None, default=None
        Their factuals (needed by cost and redundancy).
    y_target : array-like of shape (n,) or None, default=None
        Target class index of each row.
    model : torch.nn.Module, callable or None, default=None
        Maps a float tensor [n, d] to logits (needed by validity, strict validity, faithfulness
        and energy differential, and by ``valid_only`` unless ``valid`` is given).
    valid : array-like of bool of shape (n,) or None, default=None
        Which counterfactuals are valid; None computes it with the model
        (``argmax logits == y_target``). Also the per-row validity when given.
    row_id : array-like of shape (n,) or None, default=None
        The factual each counterfactual belongs to, for the metrics of several
        counterfactuals per factual (diversity, coverage: those whose
        :class:`MetricSpec` has ``needs_row_id``), e.g. the explainer result's ``row_id``
        with ``n_per_row > 1``. Giving it in ``metric_params`` instead still works; both at
        once is an error.
    reference : ReferenceData or None, default=None
        Reference rows for implausibility, MMD and energy differential (and faithfulness's
        starting range).
    valid_only : bool, default=True
        Compute the metrics other than validity and strict validity on valid rows only.
    per_row : bool, default=False
        Return one value per counterfactual for the metrics that have them (NaN for the rows
        ``valid_only`` leaves out); the others (MMD) stay one number for the batch.
    decision_threshold : float, default=0.75
        Strict validity's threshold.
    metric_params : dict {metric: dict} or None, default=None
        Extra keyword arguments per metric, e.g. ``{"cost": {"ord": 2}}``.
    random_state : int >= 0, dict {key: seed} or None, default=None
        Seeds of the random metrics: from an int, metric ``m`` gets
        ``skct._utils.derive_seed(random_state, m)`` (and MMD's reference subsample
        ``derive_seed(random_state, "mmd-reference")``); a dict gives the seeds by those keys.

    Returns
    -------
    dict
        ``{name: float or ndarray of shape (n,)}`` in the order of ``metrics`` (see
        :func:`metric_names`; MMD with ``n_permutations`` adds ``"mmd_p_value"``). MMD is
        computed per target class against the reference sample of that class: with several
        target classes in the batch, the values are averaged weighted by the number of
        counterfactuals.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import ReferenceData, compute_metrics
    >>> model = torch.nn.Linear(1, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    >>> X = np.array([[-1.0], [-2.0]])
    >>> X_cf = np.array([[0.5], [-1.5]])  # the second one is still class 0
    >>> ref = ReferenceData(np.array([[1.0], [2.0], [-1.0]]), [1, 1, 0])
    >>> compute_metrics(["validity", "cost", "implausibility"], X_cf, X, [1, 1], model=model,
    ...                 reference=ref)
    {'validity': 0.5, 'cost': 1.5, 'implausibility': 1.0}
    >>> compute_metrics(["cost"], X_cf, X, [1, 1], model=model, per_row=True)
    {'cost': array([1.5, nan])}

    Several counterfactuals per factual: ``row_id`` tells which factual each belongs to.

    >>> X_cf = np.array([[0.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    >>> compute_metrics(["diversity", "coverage"], X_cf, np.zeros((3, 2)), row_id=[0, 0, 1])
    {'diversity': 1.0, 'coverage': 1.5}
    """
    specs, params = _check_request(metrics, metric_params)
    X_cf = check_2d(X_cf, "X_cf")
    X, t = _check_inputs(specs, X, y_target, model, reference, valid, X_cf.shape[0])
    row_id = _check_row_id(specs, params, row_id, X_cf.shape[0])
    fn = None if model is None else as_logits_fn(model)
    if getattr(fn, "differentiable", True) is False:
        bad = [s.name for s in specs if s.needs_gradients]
        if bad:
            raise ValueError(f"metrics {bad} need the model's gradients or logits; the model "
                             "is evaluated through predict_proba only (no torch module).")
    seeds = _Seeds(random_state)
    hits, valid_rows = _valid_rows(specs, fn, X_cf, t, valid, valid_only)
    keep = valid_rows if valid_only else None
    context = {"decision_threshold": decision_threshold}
    if reference is not None:
        context.update(n_neighbors=reference.n_reference, bounds=reference.bounds)
    batch = (fn, X_cf, X, t, reference, context, row_id)
    out = {}
    for spec in specs:
        kw = dict(params.get(spec.name, {}))
        rows = keep if spec.valid_only else None
        if spec.name == "validity":
            out[spec.name] = hits if per_row else float(np.mean(hits))
        elif spec.two_sample:
            out.update(_two_sample(spec, X_cf, t, rows, reference, kw, seeds))
        else:
            out[spec.name] = _one_metric(spec, batch, rows, kw, per_row, seeds)
    return out
