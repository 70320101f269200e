"""Parallel evaluation of counterfactual explanations over a grid of models and generators.

:func:`evaluate` runs the grid {models} x {generators} x {factual class -> target class} x
{bootstrap runs}: for every cell it samples factuals, generates their counterfactuals with a
:class:`~skct.CounterfactualExplainer` and computes the metrics of :mod:`skct.metrics` in the
model's input space. The result is one tidy :class:`pandas.DataFrame` row per
model/generator/pair/run/metric.

The work is spread with :mod:`joblib` over ``n_jobs`` workers, so it also runs on a Dask cluster
under ``joblib.parallel_backend("dask")``.
"""

from __future__ import annotations

import numbers
import sys
import time
import warnings
import zlib
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from .._utils import is_fitted as _is_fitted
from ..explain import ModelAdapter
from ..constraints import ActionabilityConstraints
from ..explain import CounterfactualExplainer
from ..search.generators import BaseGenerator, resolve_generator
from ..metrics import (
    cost,
    energy_differential,
    faithfulness,
    implausibility,
    mmd,
    redundancy,
    strict_validity,
    validity,
)
from .._utils import eval_mode

__all__ = ["EVALUATION_METRICS", "evaluate"]

#: Metrics :func:`evaluate` can compute (names of :data:`skct.metrics.METRICS`), and whether
#: greater values are better.
EVALUATION_METRICS = {
    "validity": True,
    "strict_validity": True,
    "cost": False,
    "redundancy": True,
    "implausibility": False,
    "mmd": False,
    "faithfulness": False,
    "energy_differential": False,
}

_DEFAULT_METRICS = ("validity", "strict_validity", "cost", "redundancy", "implausibility", "mmd")

#: Column order of the returned frame.
COLUMNS = ["model", "generator", "factual", "target", "run", "metric", "value"]


# -- seeds -----------------------------------------------------------------------------------
def _key_int(key):
    """A stable (process- and platform-independent) non-negative int for a seed key."""
    if isinstance(key, (bool, np.bool_)):
        return int(key)
    if isinstance(key, (numbers.Integral, np.integer)) and key >= 0:
        return int(key)
    return zlib.crc32(repr(key).encode("utf-8"))


def _seed(entropy, *keys):
    """A 32-bit seed derived from ``entropy`` and the identity of a task (never from order)."""
    ss = np.random.SeedSequence([int(entropy)] + [_key_int(k) for k in keys])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _entropy(random_state):
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, (numbers.Integral, np.integer)):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    rs = check_random_state(random_state)  # RandomState instance: draw one int from it
    return int(rs.randint(0, 2**31 - 1))


def _plain(label):
    """numpy scalars -> Python scalars (stable reprs, clean DataFrame columns)."""
    return label.item() if hasattr(label, "item") else label


# -- input checks ----------------------------------------------------------------------------
def _check_models(models):
    if isinstance(models, dict):
        items = list(models.items())
    elif isinstance(models, (list, tuple)):
        items = []
        for item in models:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(
                    "models: a list must hold (name, estimator) pairs; use a dict "
                    "{name: fitted estimator} otherwise."
                )
            items.append(item)
    elif hasattr(models, "predict"):
        items = [("model", models)]
    else:
        raise ValueError(
            f"models: expected a dict {{name: fitted estimator}}, a list of (name, estimator) "
            f"pairs or one fitted estimator, got {type(models).__name__}."
        )
    if not items:
        raise ValueError("models is empty: give at least one fitted estimator.")
    names = [str(name) for name, _ in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"models: duplicate names {dup}.")
    out = {}
    for name, est in items:
        if not _is_fitted(est):
            raise ValueError(f"models: {name!r} ({type(est).__name__}) is not fitted; evaluate "
                             "explains fitted models only.")
        try:
            ModelAdapter(est)
        except TypeError as exc:
            raise ValueError(f"models: {name!r} cannot be explained: {exc}") from None
        out[str(name)] = est
    return out


def _generator_name(gen):
    if isinstance(gen, str):
        return gen.lower()
    name = type(gen).__name__
    if name.endswith("Generator") and len(name) > len("Generator"):
        name = name[: -len("Generator")]
    return name.lower()


def _check_generators(generators):
    if isinstance(generators, (str, BaseGenerator)):
        items = [(_generator_name(generators), generators)]
    elif isinstance(generators, dict):
        items = [(str(k), v) for k, v in generators.items()]
    elif isinstance(generators, (list, tuple)):
        items = []
        for g in generators:
            if isinstance(g, tuple) and len(g) == 2 and isinstance(g[0], str):
                items.append(g)
            else:
                items.append((_generator_name(g) if isinstance(g, (str, BaseGenerator))
                              else repr(g), g))
    else:
        raise ValueError(
            "generators: expected a name, a BaseGenerator, a list of those or of (name, "
            f"generator) pairs, or a dict {{name: generator}}, got {type(generators).__name__}."
        )
    if not items:
        raise ValueError("generators is empty: give at least one generator.")
    names = [n for n, _ in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"generators: duplicate names {dup}; pass a dict {{name: generator}} "
                         "to tell them apart.")
    out = {}
    for name, gen in items:
        try:
            resolved = resolve_generator(gen, param="generators")
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        # explainers take lowercase registered names or instances
        out[name] = gen.lower() if isinstance(gen, str) else resolved
    return out


def _check_metrics(metrics, metric_params):
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty: give at least one metric name.")
    unknown = [m for m in metrics if m not in EVALUATION_METRICS]
    if unknown:
        raise ValueError(f"metrics: unknown metric(s) {unknown}; choose from "
                         f"{sorted(EVALUATION_METRICS)}.")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics: duplicate names in {metrics}.")
    params = dict(metric_params or {})
    bad = [k for k in params if k not in metrics]
    if bad:
        raise ValueError(f"metric_params: {bad} are not among the requested metrics {metrics}.")
    for k, v in params.items():
        if not isinstance(v, dict):
            raise ValueError(f"metric_params[{k!r}] must be a dict of keyword arguments.")
        reserved = {"random_state", "per_row", "decision_threshold", "n_neighbors"} & set(v)
        if reserved:
            raise ValueError(f"metric_params[{k!r}]: {sorted(reserved)} are set by evaluate "
                             "(use random_state, decision_threshold or n_reference).")
    return metrics, params


def _label_pairs(targets, classes, model_name):
    """Ordered (factual, target) label pairs for one model."""
    lookup = {_plain(c): i for i, c in enumerate(classes)}
    if isinstance(targets, str):
        if targets != "all":
            raise ValueError(f"targets: expected 'all' or a list of (factual, target) label "
                             f"pairs, got {targets!r}.")
        return [(_plain(a), _plain(b)) for a in classes for b in classes if a != b]
    pairs = []
    for pair in targets:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"targets: expected (factual, target) label pairs, got {pair!r}.")
        a, b = _plain(pair[0]), _plain(pair[1])
        for lab in (a, b):
            if lab not in lookup:
                raise ValueError(f"targets: unknown class label {lab!r} for model "
                                 f"{model_name!r}; its classes are {list(classes)}.")
        if a == b:
            raise ValueError(f"targets: pair {pair!r} has the same factual and target class.")
        pairs.append((a, b))
    if not pairs:
        raise ValueError("targets is empty: give at least one (factual, target) pair.")
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"targets: duplicate pairs in {pairs}.")
    return pairs


def _n_rows(X, name):
    if X is None or not hasattr(X, "shape") or len(X.shape) != 2:
        raise ValueError(f"{name} must be a 2D array or DataFrame, got "
                         f"{type(X).__name__ if X is None else getattr(X, 'shape', X)}.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty.")
    return X.shape[0]


def _as_2d(X):
    if isinstance(X, pd.DataFrame) or hasattr(X, "shape"):
        return X
    return np.asarray(X)


def _take(X, idx):
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else np.asarray(X)[idx]


def _positive_int(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or \
            value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


# -- the work --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    """One batch of counterfactuals: (generator, run, factual -> target) of one model."""

    position: int  # index in the canonical order of the model's tasks
    generator: str
    run: int
    factual: object
    target: object


@dataclass(frozen=True)
class _Config:
    entropy: int
    n_factuals: int
    metrics: tuple
    metric_params: dict
    n_reference: int
    constraints: object
    decision_threshold: float
    max_iter: int
    torch_threads: int
    valid_only: bool = True


class _TorchThreads:
    """Limit torch intra-op threads (and BLAS/OpenMP pools) inside a worker, then restore."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self._old = torch.get_num_threads()
        torch.set_num_threads(self.n)
        self._limits = threadpool_limits(limits=self.n)
        return self

    def __exit__(self, *exc):
        self._limits.restore_original_limits()
        torch.set_num_threads(self._old)
        return False


def _output_metrics(metrics, metric_params):
    """Names of the reported metrics (MMD with permutations adds its p-value)."""
    out = []
    for m in metrics:
        out.append(m)
        if m == "mmd" and metric_params.get("mmd", {}).get("n_permutations", 0):
            out.append("mmd_p_value")
    return out


def _reference_pool(Z_ref, y_ref_idx, target_idx, n_reference, seed):
    """Reference rows of the target class, subsampled (seeded) to at most n_reference."""
    rows = np.flatnonzero(y_ref_idx == target_idx)
    if rows.size > n_reference:
        rows = np.sort(np.random.default_rng(seed).choice(rows, n_reference, replace=False))
    return Z_ref[rows]


def _compute_metrics(config, module, res, Z_ref, y_ref_idx, seed, bounds):
    """{metric: value} for one batch of counterfactuals (model space)."""
    Z_cf, Z_f, t = res.counterfactuals_model, res.factuals_model, res.target_index
    out = {}
    if "validity" in config.metrics:
        out["validity"] = validity(module, Z_cf, t)
    if "strict_validity" in config.metrics:
        out["strict_validity"] = strict_validity(module, Z_cf, t,
                                                 decision_threshold=config.decision_threshold)
    rest = [m for m in config.metrics if m not in ("validity", "strict_validity")]
    if config.valid_only and rest:
        device = next(module.parameters(), torch.empty(0)).device
        with torch.no_grad(), eval_mode(module):
            logits = module(torch.as_tensor(Z_cf, dtype=torch.float32, device=device))
        keep = logits.argmax(1).cpu().numpy() == t
        Z_cf, Z_f, t = Z_cf[keep], Z_f[keep], t[keep]
    for name in rest:
        kw = dict(config.metric_params.get(name, {}))
        if len(t) < (2 if name == "mmd" else 1):  # no (or too few) valid counterfactuals
            out[name] = float("nan")
            if name == "mmd" and kw.get("n_permutations"):
                out["mmd_p_value"] = float("nan")
        elif name == "cost":
            out[name] = cost(Z_cf, Z_f, **kw)
        elif name == "redundancy":
            out[name] = redundancy(Z_cf, Z_f, **kw)
        elif name == "implausibility":
            out[name] = implausibility(Z_cf, t, Z_ref, y_ref_idx, n_neighbors=config.n_reference,
                                       random_state=_seed(seed, "implausibility"), **kw)
        elif name == "mmd":
            pool = _reference_pool(Z_ref, y_ref_idx, t[0], config.n_reference,
                                   _seed(seed, "mmd-reference"))
            value = mmd(Z_cf, pool, random_state=_seed(seed, "mmd"), **kw)
            if isinstance(value, tuple):  # with n_permutations > 0
                out[name], out["mmd_p_value"] = value
            else:
                out[name] = value
        elif name == "faithfulness":
            kw.setdefault("bounds", bounds)
            out[name] = faithfulness(module, Z_cf, t, random_state=_seed(seed, "faithfulness"),
                                     **kw)
        elif name == "energy_differential":
            out[name] = energy_differential(module, Z_cf, t, Z_ref, y_ref_idx, **kw)
    return out


def _evaluate_chunk(model_name, estimator, X, X_ref, y_ref, generators, tasks, config):
    """Evaluate one chunk of one model's tasks (runs in a worker; the model comes once).

    Returns ``(model_name, [(task.position, {metric: value}), ...], seconds)``.
    """
    start = time.perf_counter()
    with _TorchThreads(config.torch_threads):
        adapter = ModelAdapter(estimator)
        classes = adapter.classes_
        index_of = {_plain(c): i for i, c in enumerate(classes)}
        Z = adapter.transform(X)
        predicted = adapter.predict_proba_model(Z).argmax(axis=1)  # [n] class indices
        Z_ref = adapter.transform(X_ref)
        y_ref_idx = np.array([index_of.get(_plain(v), -1) for v in np.asarray(y_ref).tolist()])
        bounds = (Z_ref.min(axis=0), Z_ref.max(axis=0))
        explainers = {}
        results = []
        for task in tasks:
            if task.generator not in explainers:  # fitted once per chunk, seeded per generator
                explainers[task.generator] = CounterfactualExplainer(
                    estimator, generator=generators[task.generator],
                    constraints=config.constraints,
                    decision_threshold=config.decision_threshold, max_iter=config.max_iter,
                    prefit=True, random_state=_seed(config.entropy, "explainer", model_name,
                                                    task.generator),
                ).fit(X_ref, y_ref)  # labels: ECCCo calibrates on them
            explainer = explainers[task.generator]
            f_idx, t_idx = index_of[task.factual], index_of[task.target]
            pool = np.flatnonzero(predicted == f_idx)
            if pool.size == 0:
                results.append((task.position, None))
                continue
            # factuals depend on the run and pair only: every generator explains the same rows
            rng = np.random.default_rng(
                _seed(config.entropy, "factuals", model_name, task.run, task.factual,
                      task.target))
            rows = rng.choice(pool, size=config.n_factuals, replace=pool.size < config.n_factuals)
            res = explainer.explain(_take(X, rows), target=classes[t_idx])
            seed = _seed(config.entropy, "metrics", model_name, task.generator, task.run,
                         task.factual, task.target)
            results.append((task.position, _compute_metrics(config, adapter.module, res, Z_ref,
                                                            y_ref_idx, seed, bounds)))
    return model_name, results, time.perf_counter() - start


def _split(tasks, n_chunks):
    """Round-robin split (balances generators of different cost across chunks)."""
    return [chunk for chunk in (tasks[i::n_chunks] for i in range(n_chunks)) if chunk]


def _supports_generator_unordered():
    try:
        joblib.Parallel(n_jobs=1, return_as="generator_unordered")
    except (TypeError, ValueError):
        return False
    return True


def evaluate(models, X, y=None, *, generators="generic", targets="all", n_runs=5,
             n_factuals=100, metrics=_DEFAULT_METRICS, metric_params=None, reference=None,
             n_reference=1000, constraints=None, decision_threshold=0.75, max_iter=50,
             n_jobs=None, torch_threads=1, valid_only=True, random_state=None, verbose=0):
    """Evaluate counterfactual explanations on a grid, in parallel; one tidy row per result.

    The grid is {models} x {generators} x {factual class -> target class} x {runs}. For each
    cell, ``n_factuals`` rows of ``X`` that the model *predicts* as the factual class are
    sampled (independently per run: bootstrap runs), a :class:`~skct.CounterfactualExplainer`
    (``prefit=True``, fitted on the reference data) searches their counterfactuals toward the
    target class, and every metric is computed on that batch in the model's input space (after
    the Pipeline's preprocessing). All generators of a model see the same factuals in a run.

    Parameters
    ----------
    models : dict {name: fitted estimator}, list of (name, estimator) pairs, or an estimator
        Fitted torch-backed classifiers (:class:`~skct.CounterfactualTrainedClassifier`, skorch
        nets) or Pipelines of invertible preprocessing ending in one.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Rows to draw factuals from, in the models' input columns (e.g. the test set).
    y : array-like of shape (n_samples,), default=None
        True labels of ``X``; they label the reference data unless ``reference`` is given.
    generators : name, BaseGenerator, list of those or of (name, generator) pairs, or dict
        Generators (with their parameters) to compare, e.g. ``{"generic": "generic",
        "ecco_strong": ECCoGenerator(lambda_energy=10)}``. Default: ``"generic"``. An instance
        is named after its class (``GenericGenerator()`` -> ``"generic"``).
    targets : "all" or list of (factual label, target label), default="all"
        ``"all"``: every ordered pair of distinct classes.
    n_runs : int, default=5
        Bootstrap runs per cell.
    n_factuals : int, default=100
        Factuals per cell and run: sampled without replacement from the rows predicted as the
        factual class, with replacement when there are fewer. A pair whose factual class the
        model never predicts gives NaN values (and a warning).
    metrics : sequence of str, default=("validity", "strict_validity", "cost", "redundancy",
        "implausibility", "mmd")
        Names from :data:`EVALUATION_METRICS` (the functions of :mod:`skct.metrics`; lower is
        better except for validity, strict_validity and redundancy). Implausibility, MMD and
        energy differential compare with the reference rows of the target class.
    metric_params : dict {metric: dict}, default=None
        Extra keyword arguments per metric, e.g. ``{"mmd": {"length_scale": 0.5,
        "n_permutations": 100}}`` (with permutations an extra ``"mmd_p_value"`` metric is
        reported) or ``{"cost": {"ord": 2}}``.
    reference : tuple (X_ref, y_ref) or None, default=None
        Reference data (e.g. the training set) for plausibility metrics and for fitting the
        explainers (constraints, REVISE's autoencoder); None uses ``(X, y)``.
    n_reference : int, default=1000
        At most this many reference rows of the target class (seeded subsample) per cell for
        implausibility and MMD.
    constraints : ActionabilityConstraints or None, default=None
        Actionability constraints of every search (see :class:`~skct.CounterfactualExplainer`).
    decision_threshold : float in (0, 1), default=0.75
        Search stops once ``p(target | x') >= decision_threshold``; also strict validity's
        threshold.
    max_iter : int, default=50
        Maximum search steps.
    valid_only : bool, default=True
        Compute every metric except validity and strict validity on the valid counterfactuals
        only (those the model assigns to their target class), as the paper does: the distance
        of a failed search says nothing about a recourse. A batch without a valid
        counterfactual gives NaN for those metrics.
    n_jobs : int or None, default=None
        joblib workers (None: 1 unless inside a ``joblib.parallel_backend`` context; -1: all
        cores). Each model is sent to the workers in about ``n_jobs`` chunks of tasks, not once
        per task.
    torch_threads : int, default=1
        torch (and BLAS) threads inside each task. The default avoids oversubscription with
        several workers and makes results independent of ``n_jobs``.
    random_state : int, RandomState instance or None, default=None
        Seeds factual sampling, explainers and metrics. Every cell's seed is derived from it and
        from the cell's identity, so results do not depend on ``n_jobs``, on chunking or on the
        backend.
    verbose : int, default=0
        > 0: print a progress line (done/total, elapsed, remaining estimate) to stderr per
        finished chunk.

    Returns
    -------
    DataFrame
        Columns ``model``, ``generator``, ``factual``, ``target`` (class labels), ``run``,
        ``metric``, ``value``; one row per model/generator/pair/run/metric, ordered by model,
        generator, pair, run and metric as given.

    Notes
    -----
    Running on a Dask cluster (``pip install skct[dask]``)::

        import joblib
        from dask.distributed import Client, LocalCluster
        with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, Client(cluster):
            with joblib.parallel_backend("dask"):
                df = evaluate(models, X_test, y_test, random_state=0)

    The results equal those of ``n_jobs=1`` with the same ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from skct import CounterfactualTrainedClassifier
    >>> from skct.evaluation import evaluate
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(100, 2) - 2, rng.randn(100, 2) + 2].astype("float32")
    >>> y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    >>> clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
    ...                                       max_epochs=20, random_state=0).fit(X, y)
    >>> df = evaluate({"mlp": clf}, X, y, n_runs=2, n_factuals=10, random_state=0)
    >>> df.columns.tolist()
    ['model', 'generator', 'factual', 'target', 'run', 'metric', 'value']
    >>> len(df)  # 1 model x 1 generator x 2 pairs x 2 runs x 6 metrics
    24
    >>> float(df.loc[df.metric == "validity", "value"].mean())
    1.0
    """
    models = _check_models(models)
    gens = _check_generators(generators)
    metrics, metric_params = _check_metrics(metrics, metric_params)
    n_runs = _positive_int(n_runs, "n_runs")
    n_factuals = _positive_int(n_factuals, "n_factuals", low=2 if "mmd" in metrics else 1)
    n_reference = _positive_int(n_reference, "n_reference", low=2 if "mmd" in metrics else 1)
    max_iter = _positive_int(max_iter, "max_iter", low=0)
    torch_threads = _positive_int(torch_threads, "torch_threads")
    if not (isinstance(decision_threshold, numbers.Real) and 0 < decision_threshold < 1):
        raise ValueError(f"decision_threshold must be in (0, 1), got {decision_threshold!r}.")
    if constraints is not None and not isinstance(constraints, ActionabilityConstraints):
        raise ValueError("constraints must be an ActionabilityConstraints or None, got "
                         f"{type(constraints).__name__}.")
    if verbose is None or not isinstance(verbose, (numbers.Integral, np.integer)):
        raise ValueError(f"verbose must be an int, got {verbose!r}.")

    X = _as_2d(X)
    n = _n_rows(X, "X")
    if reference is None:
        if y is None:
            raise ValueError("y is None: give the labels of X, or reference=(X_ref, y_ref).")
        X_ref, y_ref = X, y
    else:
        if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
            raise ValueError("reference must be a pair (X_ref, y_ref) or None.")
        X_ref, y_ref = _as_2d(reference[0]), reference[1]
        _n_rows(X_ref, "reference[0] (X_ref)")
    y_ref = np.asarray(y_ref)
    if y_ref.ndim != 1 or y_ref.shape[0] != X_ref.shape[0]:
        raise ValueError(f"reference labels must be 1D with one label per row of the reference "
                         f"data ({X_ref.shape[0]}), got shape {y_ref.shape}.")
    if y is not None and reference is not None and np.asarray(y).shape[0] != n:
        raise ValueError(f"y has {np.asarray(y).shape[0]} labels but X has {n} rows.")
    ref_labels = {_plain(v) for v in np.unique(y_ref).tolist()}

    # the grid, per model, in canonical order
    entropy = _entropy(random_state)
    work, order = [], []  # (model name, tasks); [(model, task)] in output order
    for name, est in models.items():
        classes = ModelAdapter(est).classes_
        pairs = _label_pairs(targets, classes, name)
        missing = sorted({b for _, b in pairs} - ref_labels, key=repr)
        needs_ref = {"implausibility", "mmd", "energy_differential"} & set(metrics)
        if missing and needs_ref:
            raise ValueError(f"reference: no reference rows of target class(es) {missing} "
                             f"(needed by {sorted(needs_ref)}).")
        tasks = [_Task(len(order) + k, g, r, a, b) for k, (g, (a, b), r) in enumerate(
            (g, p, r) for g in gens for p in pairs for r in range(n_runs))]
        order.extend((name, t) for t in tasks)
        work.append((name, est, tasks))

    config = _Config(entropy=entropy, n_factuals=n_factuals, metrics=tuple(metrics),
                     metric_params=metric_params, n_reference=n_reference,
                     constraints=constraints, decision_threshold=float(decision_threshold),
                     max_iter=max_iter, torch_threads=torch_threads,
                     valid_only=bool(valid_only))
    n_workers = joblib.effective_n_jobs(n_jobs)
    calls = []
    for name, est, tasks in work:
        for chunk in _split(tasks, max(1, min(n_workers, len(tasks)))):
            calls.append(joblib.delayed(_evaluate_chunk)(name, est, X, X_ref, y_ref, gens,
                                                         chunk, config))

    total = len(order)
    unordered = _supports_generator_unordered()
    parallel = joblib.Parallel(n_jobs=n_jobs, batch_size=1,
                               **({"return_as": "generator_unordered"} if unordered else {}))
    start = time.perf_counter()
    values, done = {}, 0
    for model_name, chunk_results, _ in parallel(calls):
        for position, vals in chunk_results:
            values[position] = vals
        done += len(chunk_results)
        if verbose > 0:
            elapsed = time.perf_counter() - start
            eta = elapsed / done * (total - done)
            print(f"[evaluate] {done}/{total} batches ({model_name}) | elapsed {elapsed:.1f}s | "
                  f"remaining ~{eta:.1f}s", file=sys.stderr, flush=True)

    rows, empty = [], []
    for position, (model_name, task) in enumerate(order):
        vals = values[position]
        if vals is None:
            empty.append((model_name, task.factual))
            vals = dict.fromkeys(_output_metrics(metrics, metric_params), np.nan)
        for metric, value in vals.items():
            rows.append((model_name, task.generator, task.factual, task.target, task.run,
                         metric, float(value)))
    if empty:
        warnings.warn(f"No rows of X are predicted as the factual class for (model, class) "
                      f"{sorted(set(empty), key=repr)}; their values are NaN.", RuntimeWarning,
                      stacklevel=2)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["run"] = df["run"].astype(np.int64)
    df["value"] = df["value"].astype(np.float64)
    return df
