"""Parallel evaluation of counterfactual explanations over a grid of models and generators.

:func:`evaluate` runs the grid {models} x {generators} x {factual class -> target class} x
{bootstrap runs}: for every cell it samples factuals, generates their counterfactuals with a
:class:`~skct.CounterfactualExplainer` and computes the metrics of :mod:`skct.metrics` in the
model's input space with :func:`skct.metrics.compute_metrics`. The result is one tidy
:class:`pandas.DataFrame` row per model/generator/pair/run/metric (or one row per
counterfactual).

The work is spread with :mod:`joblib` over ``n_jobs`` workers (carrying skct's configuration,
see :mod:`skct._utils.parallel`), so it also runs on a Dask cluster under
``joblib.parallel_backend("dask")``.
"""

from __future__ import annotations

import sys
import time
import warnings

import joblib
import numpy as np
import pandas as pd

from .._config import config_context
from .._utils import entropy_from, plain
from .._utils.parallel import Parallel, delayed
from ..explain import ModelAdapter
from ..metrics import DEFAULT_METRICS, METRIC_SPECS, metric_names
from ._cells import Failure, GridConfig, Task, evaluate_chunk
from ._checks import (check_explainer_params, check_generators, check_metrics, check_models,
                      check_options, check_reference, label_pairs, positive_int)

__all__ = ["EVALUATION_METRICS", "evaluate"]

#: Metrics :func:`evaluate` can compute (names of :data:`skct.metrics.METRIC_SPECS`), and whether
#: greater values are better.
EVALUATION_METRICS = {name: spec.greater_is_better for name, spec in METRIC_SPECS.items()}

#: Column order of the returned frame.
COLUMNS = ["model", "generator", "factual", "target", "run", "metric", "value"]
#: Columns of the per-row frame before the metrics.
ROW_COLUMNS = ["model", "generator", "factual", "target", "run", "row", "converged",
               "target_proba", "n_iter"]


def _plan(models, gens, targets, n_runs, metrics, y_ref):
    """The grid, per model, in canonical order: ([(name, estimator, tasks)], [(name, task)])."""
    ref_labels = {plain(v) for v in np.unique(y_ref).tolist()}
    needs_ref = {m for m in metrics if METRIC_SPECS[m].needs_reference}
    work, order = [], []
    for name, est in models.items():
        pairs = label_pairs(targets, ModelAdapter(est, gradients=False).classes_, name)
        missing = sorted({b for _, b in pairs} - ref_labels, key=repr)
        if missing and needs_ref:
            raise ValueError(f"reference: no reference rows of target class(es) {missing} "
                             f"(needed by {sorted(needs_ref)}).")
        tasks = [Task(len(order) + k, g, r, a, b) for k, (g, (a, b), r) in enumerate(
            (g, p, r) for g in gens for p in pairs for r in range(n_runs))]
        order.extend((name, t) for t in tasks)
        work.append((name, est, tasks))
    return work, order


def _split(tasks, n_chunks):
    """Round-robin split (balances generators of different cost across chunks)."""
    return [chunk for chunk in (tasks[i::n_chunks] for i in range(n_chunks)) if chunk]


def _supports_generator_unordered():
    try:
        joblib.Parallel(n_jobs=1, return_as="generator_unordered")
    except (TypeError, ValueError):
        return False
    return True


def _run(work, X, X_ref, y_ref, gens, config, *, n_jobs, torch_threads, verbose, total):
    """{position: values} of every cell, computed in parallel (about n_jobs chunks a model)."""
    n_workers = joblib.effective_n_jobs(n_jobs)
    calls = [delayed(evaluate_chunk)(name, est, X, X_ref, y_ref, gens, chunk, config)
             for name, est, tasks in work
             for chunk in _split(tasks, max(1, min(n_workers, len(tasks))))]
    unordered = {"return_as": "generator_unordered"} if _supports_generator_unordered() else {}
    parallel = Parallel(n_jobs=n_jobs, batch_size=1, **unordered)
    threads = {} if torch_threads is None else {"torch_threads": torch_threads}
    start = time.perf_counter()
    values, done = {}, 0
    with config_context(**threads):  # Parallel carries it into every worker
        for model_name, chunk_results, _ in parallel(calls):
            values.update(chunk_results)
            done += len(chunk_results)
            if verbose > 0:
                elapsed = time.perf_counter() - start
                eta = elapsed / done * (total - done)
                print(f"[evaluate] {done}/{total} batches ({model_name}) | elapsed "
                      f"{elapsed:.1f}s | remaining ~{eta:.1f}s", file=sys.stderr, flush=True)
    return values


def _tidy_frame(order, values, names):
    rows = []
    for position, (model_name, task) in enumerate(order):
        vals = values[position]
        if not isinstance(vals, dict):  # no factuals, or failed
            vals = dict.fromkeys(names, np.nan)
        for metric, value in vals.items():
            rows.append((model_name, task.generator, task.factual, task.target, task.run,
                         metric, float(value)))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["run"] = df["run"].astype(np.int64)
    df["value"] = df["value"].astype(np.float64)
    return df


def _per_row_frame(order, values, names):
    parts = []
    for position, (model_name, task) in enumerate(order):
        vals = values[position]
        if not isinstance(vals, dict):
            continue
        n = len(vals["row"])
        part = {"model": [model_name] * n, "generator": [task.generator] * n,
                "factual": [task.factual] * n, "target": [task.target] * n,
                "run": np.full(n, task.run, dtype=np.int64),
                "row": np.asarray(vals["row"], dtype=np.int64),
                "converged": vals["converged"], "target_proba": vals["target_proba"],
                "n_iter": np.asarray(vals["n_iter"], dtype=np.int64)}
        for name in names:  # one value per row, or the cell's value on each of its rows
            part[name] = np.broadcast_to(np.asarray(vals[name], dtype=np.float64), (n,))
        parts.append(pd.DataFrame(part))
    if not parts:
        return pd.DataFrame(columns=ROW_COLUMNS + names)
    return pd.concat(parts, ignore_index=True)


def _report_gaps(order, values, df, stacklevel=3):
    """Warn about cells without factuals; list failed cells in ``df.attrs["failures"]``."""
    empty = sorted({(m, t.factual) for i, (m, t) in enumerate(order) if values[i] is None},
                   key=repr)
    if empty:
        warnings.warn(f"No rows of X are predicted as the factual class for (model, class) "
                      f"{empty}; their values are NaN.", RuntimeWarning, stacklevel=stacklevel)
    failed = [(name, task, values[i].error) for i, (name, task) in enumerate(order)
              if isinstance(values[i], Failure)]
    if failed:
        df.attrs["failures"] = pd.DataFrame(
            [(m, t.generator, t.factual, t.target, t.run, err) for m, t, err in failed],
            columns=COLUMNS[:5] + ["error"])
        name, task, error = failed[0]
        warnings.warn(f"evaluate: {len(failed)} of {len(order)} cells failed and have NaN "
                      f"values (listed in df.attrs['failures']); the first: "
                      f"{task.describe(name)}: {error}", RuntimeWarning, stacklevel=stacklevel)
    return df


def evaluate(models, X, y=None, *, generators="generic", targets="all", n_runs=5,
             n_factuals=100, metrics=DEFAULT_METRICS, metric_params=None, reference=None,
             n_reference=1000, constraints=None, decision_threshold=0.75, max_iter=50,
             n_jobs=None, torch_threads=None, valid_only=True, per_row=False, on_error="raise",
             explainer_params=None, random_state=None, verbose=0):
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
        Names from :data:`skct.metrics.METRIC_SPECS` (also :data:`EVALUATION_METRICS`; lower is
        better except for validity, strict_validity and redundancy), computed by
        :func:`skct.metrics.compute_metrics`. Implausibility, MMD and energy differential
        compare with the reference rows of the target class.
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
    torch_threads : int >= 0 or None, default=None
        torch intra-op threads of every cell, in every worker (0: torch's own setting). None
        uses skct's configuration (:func:`skct.config_context`, default 1): one thread per
        worker avoids oversubscription and makes results independent of ``n_jobs``.
    per_row : bool, default=False
        Return one row per counterfactual instead of one per metric (see Returns).
    on_error : {"raise", "record"}, default="raise"
        What a cell that raises does: ``"raise"`` stops with an error of the same type whose
        message names the cell (model, generator, pair, run); ``"record"`` keeps every finished
        cell, gives the failed cells NaN values, lists them in ``df.attrs["failures"]`` (a
        DataFrame with ``model``, ``generator``, ``factual``, ``target``, ``run``, ``error``)
        and warns.
    explainer_params : dict or None, default=None
        Further parameters of every :class:`~skct.CounterfactualExplainer`, e.g.
        ``{"sparsify_changes": False, "cost": "l1"}`` for the paper's plain search (the
        parameters above, such as ``constraints`` and ``max_iter``, are set by evaluate).
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

        With ``per_row=True``: one row per counterfactual, in the same order, with columns
        ``model``, ``generator``, ``factual``, ``target``, ``run``, ``row`` (position in ``X``
        of the factual), ``converged`` (the search reached ``decision_threshold``),
        ``target_proba``, ``n_iter``, then one column per metric (see
        :func:`skct.metrics.metric_names`): per-row values where the metric has them (validity
        and strict validity as 1.0/0.0; NaN for the rows ``valid_only`` leaves out), the cell's
        value repeated on its rows otherwise (MMD). Cells without factuals have no rows.

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
    >>> rows = evaluate({"mlp": clf}, X, y, n_runs=2, n_factuals=10, metrics=["cost", "mmd"],
    ...                 per_row=True, random_state=0)
    >>> len(rows)  # 2 pairs x 2 runs x 10 counterfactuals
    40
    >>> rows.columns.tolist()[5:]
    ['row', 'converged', 'target_proba', 'n_iter', 'cost', 'mmd']
    """
    models = check_models(models)
    gens = check_generators(generators)
    metrics, metric_params = check_metrics(metrics, metric_params)
    n_runs = positive_int(n_runs, "n_runs")
    n_factuals = positive_int(n_factuals, "n_factuals", low=2 if "mmd" in metrics else 1)
    n_reference = positive_int(n_reference, "n_reference", low=2 if "mmd" in metrics else 1)
    max_iter = positive_int(max_iter, "max_iter", low=0)
    check_options(decision_threshold=decision_threshold, constraints=constraints,
                  verbose=verbose, torch_threads=torch_threads, on_error=on_error)
    X, X_ref, y_ref = check_reference(X, y, reference)
    work, order = _plan(models, gens, targets, n_runs, metrics, y_ref)
    config = GridConfig(entropy=entropy_from(random_state), n_factuals=n_factuals,
                        metrics=tuple(metrics), metric_params=metric_params,
                        n_reference=n_reference, constraints=constraints,
                        decision_threshold=float(decision_threshold), max_iter=max_iter,
                        valid_only=bool(valid_only), per_row=bool(per_row), on_error=on_error,
                        explainer_params=check_explainer_params(explainer_params))
    values = _run(work, X, X_ref, y_ref, gens, config, n_jobs=n_jobs,
                  torch_threads=torch_threads, verbose=verbose, total=len(order))
    names = metric_names(metrics, metric_params)
    df = (_per_row_frame if per_row else _tidy_frame)(order, values, names)
    return _report_gaps(order, values, df)
