"""Counterfactual scorers for model selection (``GridSearchCV(scoring=...)``).

A counterfactual scorer follows scikit-learn's scorer protocol, ``scorer(estimator, X, y) ->
float`` with greater is better: on the validation fold ``(X, y)`` it generates counterfactuals
for the fitted ``estimator`` with a :class:`~skct.CounterfactualExplainer` (``prefit=True``, so
nothing is trained) and returns one metric of :mod:`skct.metrics`, computed in the model's input
space. Distances (cost, implausibility, MMD, ...) are negated.

Several counterfactual scorers with the same generation settings share one search per
(estimator, fold) in a multi-metric search: the last explanation is cached per thread and
reused while the estimator, its parameters and the fold are the same objects.
"""

from __future__ import annotations

import copy
import numbers
import threading
import weakref
import zlib

import joblib
import numpy as np

from .._utils import derive_seed, labels_to_indices
from ..constraints import ActionabilityConstraints
from ..explain import CounterfactualExplainer, ModelAdapter
from ..metrics import DEFAULT_METRICS, METRIC_SPECS, ReferenceData, compute_metrics
from ..search.generators import BaseGenerator, resolve_generator

__all__ = [
    "COUNTERFACTUAL_SCORERS",
    "CounterfactualScorer",
    "get_counterfactual_scorer",
    "make_counterfactual_scorer",
]

_cache = threading.local()


def _fingerprint(module):
    """Identity and in-place version of every parameter: changes when the model is refitted.

    A model seen through ``predict_proba`` has none: the identities of its fitted attributes.
    """
    if getattr(module, "differentiable", True) is False:
        return tuple((k, id(v)) for k, v in sorted(vars(module.estimator).items())
                     if k.endswith("_"))
    return tuple((p.data_ptr(), p._version) for p in module.parameters())


def _weak(obj):
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


class CounterfactualScorer:
    """Scorer ``scorer(estimator, X, y)`` returning a counterfactual metric (greater is better).

    Build it with :func:`make_counterfactual_scorer`; the parameters are documented there.
    Instances are plain picklable objects, so they work with ``GridSearchCV(n_jobs > 1)``.
    """

    def __init__(self, metric, *, generator="generic", target=None, decision_threshold=0.75,
                 max_iter=100, constraints=None, n_samples=None, random_state=0, cache=True,
                 metric_kwargs=None):
        self.metric = metric
        self.generator = generator
        self.target = target
        self.decision_threshold = decision_threshold
        self.max_iter = max_iter
        self.constraints = constraints
        self.n_samples = n_samples
        self.random_state = random_state
        self.cache = cache
        self.metric_kwargs = dict(metric_kwargs or {})

    @property
    def greater_is_better(self):
        """Whether the metric itself is greater-is-better (else the scorer negates it)."""
        return METRIC_SPECS[self.metric].greater_is_better

    @property
    def _sign(self):
        return 1 if self.greater_is_better else -1

    def __repr__(self):
        args = [repr(self.metric)] + [
            f"{k}={getattr(self, k)!r}" for k in (
                "generator", "target", "decision_threshold", "max_iter", "n_samples",
                "random_state")]
        args += [f"{k}={v!r}" for k, v in self.metric_kwargs.items()]
        return f"make_counterfactual_scorer({', '.join(args)})"

    # -- generation ------------------------------------------------------------------------
    def _generation_key(self):
        return joblib.hash((self.generator, self.target, self.decision_threshold,
                            self.max_iter, self.constraints, self.n_samples, self.random_state))

    def _explain(self, estimator, X, y):
        """(result, adapter, Z fold, y fold as indices); cached across scorers of one fold."""
        seedable = self.random_state is None or isinstance(self.random_state, numbers.Integral)
        adapter = ModelAdapter(estimator, gradients=False)  # gradient_free: any model
        key = None
        if self.cache and seedable:
            key = (self._generation_key(), id(estimator), id(X), id(y),
                   _fingerprint(adapter.module))
            hit = getattr(_cache, "entry", None)
            if hit is not None and hit["key"] == key and hit["estimator"]() is estimator and \
                    hit["X"]() is X and (y is None or hit["y"]() is y):
                return hit["value"]
        explainer = CounterfactualExplainer(
            estimator, generator=self.generator, target=self.target,
            constraints=self.constraints, decision_threshold=self.decision_threshold,
            max_iter=self.max_iter, prefit=True, random_state=self.random_state,
        ).fit(X, y)
        X_eval = X
        n = X.shape[0]
        if self.n_samples is not None and self.n_samples < n:
            rows = np.sort(np.random.default_rng(self.random_state).choice(
                n, size=self.n_samples, replace=False))
            X_eval = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
        result = explainer.explain(X_eval)
        Z = explainer.to_model_space(X)
        y_idx = None if y is None else labels_to_indices(y, adapter.classes_, "y")
        value = (result, adapter, Z, y_idx)
        if key is not None:
            refs = (_weak(estimator), _weak(X), _weak(y) if y is not None else None)
            if all(r is not None for r in refs[:2]) and (y is None or refs[2] is not None):
                _cache.entry = {"key": key, "estimator": refs[0], "X": refs[1], "y": refs[2],
                                "value": value}
        return value

    # -- scoring ---------------------------------------------------------------------------
    def __call__(self, estimator, X, y=None):
        """Generate counterfactuals for (a sample of) ``X`` and return the signed metric."""
        result, adapter, Z, y_idx = self._explain(estimator, X, y)
        m = self.metric
        if METRIC_SPECS[m].needs_reference and y_idx is None:
            raise ValueError(f"The {m!r} scorer needs y: the validation fold's labels are its "
                             "reference data.")
        seeds = None if self.random_state is None else {
            m: derive_seed(int(self.random_state), zlib.crc32(m.encode()))}
        # the fold is the reference (its range starts faithfulness's chains, even without y)
        reference = ReferenceData(Z, np.full(len(Z), -1) if y_idx is None else y_idx)
        values = compute_metrics(
            [m], result.counterfactuals_model, result.factuals_model, result.target_index,
            model=adapter.module, reference=reference, valid_only=False,
            decision_threshold=self.decision_threshold,
            metric_params={m: self.metric_kwargs} if self.metric_kwargs else None,
            random_state=seeds)
        return float(self._sign * values[m])


def make_counterfactual_scorer(metric, *, generator="generic", target=None,
                               decision_threshold=0.75, max_iter=100, constraints=None,
                               n_samples=None, random_state=0, cache=True, **metric_kwargs):
    """Make a scorer that generates counterfactuals on the validation fold and scores them.

    The scorer is called as ``scorer(estimator, X, y)`` (scikit-learn's protocol, e.g. inside
    ``GridSearchCV(scoring={"accuracy": "accuracy", "cf_cost": scorer}, refit="accuracy")``).
    It builds ``CounterfactualExplainer(estimator, prefit=True, ...)``, fits it on ``(X, y)``
    (nothing is trained; REVISE fits its autoencoder on the fold), explains the rows of ``X``
    (or ``n_samples`` of them) and returns the metric in the model's input space, negated when
    lower is better.

    Parameters
    ----------
    metric : {"validity", "strict_validity", "cost", "redundancy", "implausibility", "mmd", \
"faithfulness", "energy_differential"}
        The :mod:`skct.metrics` function. Implausibility, MMD (per target class, weighted by
        the number of counterfactuals) and energy differential use the validation fold itself
        as reference data, so they need ``y``. Cost, implausibility, MMD, faithfulness and
        energy differential are negated.
    generator : {"generic", "ecco", "revise"} or BaseGenerator, default="generic"
        Counterfactual generator.
    target : label, "opposite" or None, default=None
        Target class; None picks a random class other than the predicted one per row (seeded).
    decision_threshold : float in (0, 1), default=0.75
        Search stopping threshold (and strict validity's threshold).
    max_iter : int, default=100
        Maximum search steps.
    constraints : ActionabilityConstraints or None, default=None
        Actionability constraints of the search.
    n_samples : int or None, default=None
        Explain a random subset (seeded by ``random_state``) of this many validation rows
        instead of all of them.
    random_state : int or None, default=0
        Seeds targets, the subset and the metrics' own randomness.
    cache : bool, default=True
        Reuse the counterfactuals of the previous call (same thread) when the estimator, its
        parameters, ``X``, ``y`` and the generation settings are the same, so that several
        counterfactual scorers in one multi-metric search run one search per fold.
    **metric_kwargs
        Passed to the metric, e.g. ``ord=2`` for cost or ``length_scale=0.5`` for MMD.

    Returns
    -------
    CounterfactualScorer

    Examples
    --------
    >>> import numpy as np
    >>> from skct import CounterfactualTrainedClassifier
    >>> from skct.evaluation import make_counterfactual_scorer
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(100, 2) - 2, rng.randn(100, 2) + 2].astype("float32")
    >>> y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    >>> clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
    ...                                       max_epochs=20, random_state=0).fit(X, y)
    >>> make_counterfactual_scorer("validity")(clf, X, y)
    1.0
    >>> make_counterfactual_scorer("cost", n_samples=20)(clf, X, y) < 0  # negated distance
    True
    """
    if metric not in METRIC_SPECS:
        raise ValueError(f"metric: unknown counterfactual metric {metric!r}; choose one of "
                         f"{sorted(METRIC_SPECS)}.")
    if isinstance(generator, str):
        resolve_generator(generator)  # ValueError naming the parameter for unknown names
    elif not isinstance(generator, BaseGenerator):
        raise ValueError(f"generator: expected a name or a BaseGenerator, got "
                         f"{type(generator).__name__}.")
    if not (isinstance(decision_threshold, numbers.Real) and 0 < decision_threshold < 1):
        raise ValueError(f"decision_threshold must be in (0, 1), got {decision_threshold!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}.")
    if n_samples is not None and (isinstance(n_samples, bool) or
                                  not isinstance(n_samples, numbers.Integral) or n_samples < 1):
        raise ValueError(f"n_samples must be None or an integer >= 1, got {n_samples!r}.")
    if random_state is not None and (isinstance(random_state, bool) or
                                     not isinstance(random_state, numbers.Integral) or
                                     random_state < 0):
        raise ValueError(f"random_state must be None or an integer >= 0, got {random_state!r}.")
    if constraints is not None and not isinstance(constraints, ActionabilityConstraints):
        raise ValueError("constraints must be an ActionabilityConstraints or None, got "
                         f"{type(constraints).__name__}.")
    if "random_state" in metric_kwargs or "per_row" in metric_kwargs:
        raise ValueError("metric_kwargs: random_state and per_row are set by the scorer.")
    return CounterfactualScorer(metric, generator=generator, target=target,
                                decision_threshold=decision_threshold, max_iter=max_iter,
                                constraints=constraints, n_samples=n_samples,
                                random_state=random_state, cache=cache,
                                metric_kwargs=metric_kwargs)


#: Ready-made scorers with the default settings (generic generator, random other class).
COUNTERFACTUAL_SCORERS = {f"cf_{m}": make_counterfactual_scorer(m) for m in DEFAULT_METRICS}


def get_counterfactual_scorer(name):
    """A copy of a ready-made scorer of :data:`COUNTERFACTUAL_SCORERS` by name.

    ``name`` is ``"cf_<metric>"`` (``"cf_cost"``) or the metric name itself (``"cost"``).

    Examples
    --------
    >>> from skct.evaluation import get_counterfactual_scorer
    >>> get_counterfactual_scorer("cf_cost").metric
    'cost'
    """
    key = name if isinstance(name, str) and name.startswith("cf_") else f"cf_{name}"
    if key not in COUNTERFACTUAL_SCORERS:
        raise ValueError(f"name: unknown counterfactual scorer {name!r}; choose one of "
                         f"{sorted(COUNTERFACTUAL_SCORERS)}.")
    return copy.deepcopy(COUNTERFACTUAL_SCORERS[key])
