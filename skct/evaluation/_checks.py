"""Input checks of :func:`skct.evaluation.evaluate`: clear errors naming the parameter."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .._utils import is_fitted, labels_to_indices, plain
from ..constraints import ActionabilityConstraints
from ..explain import ModelAdapter
from ..metrics import METRIC_SPECS
from ..search.generators import BaseGenerator, resolve_generator

__all__ = ["check_models", "check_generators", "check_metrics", "check_options", "label_pairs",
           "check_reference", "check_explainer_params", "positive_int", "as_2d", "take"]

#: Keywords evaluate sets itself (metric_params may not).
_RESERVED = {"random_state", "per_row", "decision_threshold", "n_neighbors"}


def _named_items(value, what, example):
    """(name, object) pairs from a dict or a list of pairs; ValueError naming ``what``."""
    if isinstance(value, dict):
        return list(value.items())
    items = []
    for item in value:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"{what}: a list must hold (name, {example}) pairs; use a dict "
                             f"{{name: {example}}} otherwise.")
        items.append(item)
    return items


def _no_duplicates(names, what, hint=""):
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: duplicate names {dup}{hint}.")


def check_models(models):
    """``{name: fitted estimator}`` from a dict, a list of pairs or one estimator."""
    if isinstance(models, (dict, list, tuple)):
        items = _named_items(models, "models", "estimator")
    elif hasattr(models, "predict"):
        items = [("model", models)]
    else:
        raise ValueError(
            f"models: expected a dict {{name: fitted estimator}}, a list of (name, estimator) "
            f"pairs or one fitted estimator, got {type(models).__name__}."
        )
    if not items:
        raise ValueError("models is empty: give at least one fitted estimator.")
    _no_duplicates([str(name) for name, _ in items], "models")
    out = {}
    for name, est in items:
        if not is_fitted(est):
            raise ValueError(f"models: {name!r} ({type(est).__name__}) is not fitted; evaluate "
                             "explains fitted models only.")
        try:
            ModelAdapter(est, gradients=False)  # gradient_free: any classifier
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


def check_generators(generators):
    """``{name: generator name or instance}``; instances are named after their class."""
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
    _no_duplicates([n for n, _ in items], "generators",
                   "; pass a dict {name: generator} to tell them apart")
    out = {}
    for name, gen in items:
        try:
            resolved = resolve_generator(gen, param="generators")
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        # explainers take lowercase registered names or instances
        out[name] = gen.lower() if isinstance(gen, str) else resolved
    return out


def check_metrics(metrics, metric_params):
    """(list of metric names, {metric: dict of keyword arguments})."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty: give at least one metric name.")
    unknown = [m for m in metrics if m not in METRIC_SPECS]
    if unknown:
        raise ValueError(f"metrics: unknown metric(s) {unknown}; choose from "
                         f"{sorted(METRIC_SPECS)}.")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics: duplicate names in {metrics}.")
    params = dict(metric_params or {})
    bad = [k for k in params if k not in metrics]
    if bad:
        raise ValueError(f"metric_params: {bad} are not among the requested metrics {metrics}.")
    for k, v in params.items():
        if not isinstance(v, dict):
            raise ValueError(f"metric_params[{k!r}] must be a dict of keyword arguments.")
        reserved = _RESERVED & set(v)
        if reserved:
            raise ValueError(f"metric_params[{k!r}]: {sorted(reserved)} are set by evaluate "
                             "(use random_state, decision_threshold or n_reference).")
    return metrics, params


def positive_int(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or \
            value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def check_options(*, decision_threshold, constraints, verbose, torch_threads, on_error):
    """The scalar options of evaluate (ValueError naming the parameter)."""
    if not (isinstance(decision_threshold, numbers.Real) and 0 < decision_threshold < 1):
        raise ValueError(f"decision_threshold must be in (0, 1), got {decision_threshold!r}.")
    if constraints is not None and not isinstance(constraints, ActionabilityConstraints):
        raise ValueError("constraints must be an ActionabilityConstraints or None, got "
                         f"{type(constraints).__name__}.")
    if verbose is None or not isinstance(verbose, (numbers.Integral, np.integer)):
        raise ValueError(f"verbose must be an int, got {verbose!r}.")
    if torch_threads is not None:
        positive_int(torch_threads, "torch_threads", low=0)
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}.")


def check_explainer_params(explainer_params):
    """Extra CounterfactualExplainer parameters (not those evaluate sets itself)."""
    from ..explain import CounterfactualExplainer

    params = dict(explainer_params or {})
    own = {"estimator", "generator", "constraints", "decision_threshold", "max_iter", "prefit",
           "random_state"}
    known = set(CounterfactualExplainer(None).get_params()) - own
    reserved = sorted(own & set(params))
    if reserved:
        raise ValueError(f"explainer_params: {reserved} are set by evaluate (use its own "
                         "parameters).")
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"explainer_params: unknown CounterfactualExplainer parameter(s) "
                         f"{unknown}; choose from {sorted(known)}.")
    return params


def label_pairs(targets, classes, model_name):
    """Ordered (factual, target) label pairs for one model."""
    if isinstance(targets, str):
        if targets != "all":
            raise ValueError(f"targets: expected 'all' or a list of (factual, target) label "
                             f"pairs, got {targets!r}.")
        return [(plain(a), plain(b)) for a in classes for b in classes if a != b]
    pairs = []
    for pair in targets:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"targets: expected (factual, target) label pairs, got {pair!r}.")
        a, b = plain(pair[0]), plain(pair[1])
        labels_to_indices([a, b], classes, "targets", where=f" for model {model_name!r}")
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


def as_2d(X):
    if isinstance(X, pd.DataFrame) or hasattr(X, "shape"):
        return X
    return np.asarray(X)


def take(X, idx):
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else np.asarray(X)[idx]


def check_reference(X, y, reference):
    """(X, X_ref, y_ref as an array) checked against each other."""
    X = as_2d(X)
    n = _n_rows(X, "X")
    if reference is None:
        if y is None:
            raise ValueError("y is None: give the labels of X, or reference=(X_ref, y_ref).")
        X_ref, y_ref = X, y
    else:
        if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
            raise ValueError("reference must be a pair (X_ref, y_ref) or None.")
        X_ref, y_ref = as_2d(reference[0]), reference[1]
        _n_rows(X_ref, "reference[0] (X_ref)")
    y_ref = np.asarray(y_ref)
    if y_ref.ndim != 1 or y_ref.shape[0] != X_ref.shape[0]:
        raise ValueError(f"reference labels must be 1D with one label per row of the reference "
                         f"data ({X_ref.shape[0]}), got shape {y_ref.shape}.")
    if y is not None and reference is not None and np.asarray(y).shape[0] != n:
        raise ValueError(f"y has {np.asarray(y).shape[0]} labels but X has {n} rows.")
    return X, X_ref, y_ref
