"""The work of :func:`skct.evaluation.evaluate`: the cells of one model, run in a joblib worker.

A cell is one batch of counterfactuals: (generator, run, factual class -> target class) of one
model. A worker gets a chunk of one model's cells, fits one explainer per generator, and
computes each cell's metrics with :func:`skct.metrics.compute_metrics`, with the torch threads
of the configuration that started the work (:func:`skct._config.torch_threads`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from joblib import parallel_config

from .._config import torch_threads
from .._utils import derive_seed, labels_to_indices
from ..explain import CounterfactualExplainer, ModelAdapter
from ..metrics import ReferenceData, compute_metrics
from ._checks import take

__all__ = ["Task", "GridConfig", "Failure", "evaluate_chunk", "cell_error"]


@dataclass(frozen=True)
class Task:
    """One cell: (generator, run, factual -> target) of one model."""

    position: int  # index in the canonical order of all cells
    generator: str
    run: int
    factual: object
    target: object

    def describe(self, model_name):
        return (f"model {model_name!r}, generator {self.generator!r}, pair {self.factual!r} -> "
                f"{self.target!r}, run {self.run}")


@dataclass(frozen=True)
class GridConfig:
    """The settings every cell of a grid shares."""

    entropy: int
    n_factuals: int
    metrics: tuple
    metric_params: dict
    n_reference: int
    constraints: object
    decision_threshold: float
    max_iter: int
    valid_only: bool = True
    per_row: bool = False
    on_error: str = "raise"
    explainer_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A cell that raised (``on_error="record"``): the error, as text."""

    error: str


def cell_error(exc, where):
    """An exception of the same type (when it takes a message) that names the failed cell."""
    message = f"evaluate: {where} failed: {type(exc).__name__}: {exc}"
    try:
        new = type(exc)(message)
    except Exception:  # an exception type that needs other arguments
        new = None
    return new if new is not None and str(new) == message else RuntimeError(message)


class _Model:
    """What the cells of one model share within a chunk (computed once per chunk)."""

    def __init__(self, name, estimator, X, X_ref, y_ref, config):
        self.name, self.estimator = name, estimator
        self.adapter = ModelAdapter(estimator, gradients=False)  # gradient_free: any model
        self.classes = self.adapter.classes_
        Z = self.adapter.transform(X)
        self.predicted = self.adapter.predict_proba_model(Z).argmax(axis=1)  # [n] indices
        Z_ref = self.adapter.transform(X_ref)
        y_ref_idx = labels_to_indices(y_ref, self.classes, "reference", unknown=-1)
        self.reference = ReferenceData(Z_ref, y_ref_idx, n_reference=config.n_reference)
        self.explainers = {}

    def explainer(self, generator, generators, X_ref, y_ref, config):
        """The explainer of one generator: fitted once per chunk, seeded per generator."""
        if generator not in self.explainers:
            self.explainers[generator] = CounterfactualExplainer(
                self.estimator, generator=generators[generator], constraints=config.constraints,
                decision_threshold=config.decision_threshold, max_iter=config.max_iter,
                prefit=True, random_state=derive_seed(config.entropy, "explainer", self.name,
                                                      generator), **config.explainer_params,
            ).fit(X_ref, y_ref)  # labels: ECCCo calibrates on them
        return self.explainers[generator]


def _run_cell(model, task, X, X_ref, y_ref, generators, config):
    """{name: value} of one cell (per-row arrays with ``per_row``); None without factuals."""
    f_idx, t_idx = labels_to_indices([task.factual, task.target], model.classes, "targets")
    pool = np.flatnonzero(model.predicted == f_idx)
    if pool.size == 0:
        return None
    explainer = model.explainer(task.generator, generators, X_ref, y_ref, config)
    # factuals depend on the run and pair only: every generator explains the same rows
    rng = np.random.default_rng(derive_seed(config.entropy, "factuals", model.name, task.run,
                                            task.factual, task.target))
    rows = rng.choice(pool, size=config.n_factuals, replace=pool.size < config.n_factuals)
    res = explainer.explain(take(X, rows), target=model.classes[t_idx])
    seed = derive_seed(config.entropy, "metrics", model.name, task.generator, task.run,
                       task.factual, task.target)
    values = compute_metrics(
        config.metrics, res.counterfactuals_model, res.factuals_model, res.target_index,
        model=model.adapter.module, reference=model.reference, valid_only=config.valid_only,
        per_row=config.per_row, decision_threshold=config.decision_threshold,
        metric_params=config.metric_params, random_state=seed)
    if config.per_row:
        values = {"row": rows, "converged": np.asarray(res.converged, dtype=bool),
                  "target_proba": res.target_proba, "n_iter": res.n_iter, **values}
    return values


def evaluate_chunk(model_name, estimator, X, X_ref, y_ref, generators, tasks, config):
    """Evaluate one chunk of one model's cells (in a worker; the model comes once).

    Returns ``(model_name, [(task.position, values), ...], seconds)``; values are a dict, None
    (no factuals) or a :class:`Failure`.
    """
    start = time.perf_counter()
    results = []
    # the model's own joblib work (a ColumnTransformer's transformers) runs in this task:
    # under joblib's Dask backend it would otherwise go back to the cluster as tasks
    with torch_threads(), parallel_config(backend="sequential"):
        try:
            model = _Model(model_name, estimator, X, X_ref, y_ref, config)
        except Exception as exc:
            if config.on_error == "raise":
                raise cell_error(exc, f"model {model_name!r}") from exc
            failure = Failure(f"{type(exc).__name__}: {exc}")
            return model_name, [(t.position, failure) for t in tasks], time.perf_counter() - start
        for task in tasks:
            try:
                values = _run_cell(model, task, X, X_ref, y_ref, generators, config)
            except Exception as exc:
                if config.on_error == "raise":
                    raise cell_error(exc, task.describe(model_name)) from exc
                values = Failure(f"{type(exc).__name__}: {exc}")
            results.append((task.position, values))
    return model_name, results, time.perf_counter() - start
