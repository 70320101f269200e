"""Counterfactual metrics: validity, cost, plausibility, faithfulness, robustness, sensitivity.

Plain functions, numpy in and numpy (or float) out. Counterfactuals ``X_cf`` [n, d] belong to
factuals ``X`` [n, d] and target classes ``y_target`` [n]; reference data ``X_ref``, ``y_ref``
stand for the data distribution.

Classes are always given as **class indices** (integers in ``[0, n_classes)``, the column of the
model's logits), never as labels: callers map labels to indices (e.g. with
``np.searchsorted(estimator.classes_, labels)``) before calling these functions.

Functions that need a model take ``model``: a :class:`torch.nn.Module`, or any callable mapping a
float tensor [n, d] to logits [n, n_classes]. Modules are put in eval mode while they are used
and restored afterwards; gradients with respect to inputs are taken with
:func:`torch.autograd.grad`, so the parameters and their ``.grad`` are never touched. Inputs are
never modified in place.

The energy of a point for a class is ``E(x, y) = -logit_y(x)`` (Grathwohl et al., 2020): the
unnormalised log-density of the joint energy model ``p(x, y) ~ exp(logit_y(x))`` is ``-E``.

Every counterfactual metric is described once, by a :class:`MetricSpec` in the registry
:data:`METRIC_SPECS`; :func:`compute_metrics` computes a list of them for a batch of
counterfactuals (per row where a metric has per-row values), against a :class:`ReferenceData`.

- ``_validity``: validity, strict validity.
- ``_distance``: cost, redundancy (sparsity).
- ``_diversity``: diversity and coverage of several counterfactuals per factual.
- ``_plausibility``: implausibility, MMD and its reusable :class:`MMDReference`, energy
  differential.
- ``_faithfulness``: distance to samples from the model's own class-conditional.
- ``_robustness``: FGSM, PGD, adversarial accuracy, protected-feature sensitivity.
- ``_registry``: the metric specifications; ``_compute``: :func:`compute_metrics`.
- ``_model``, ``_validation``: the model as a logits callable, and input checks.
"""

from ._compute import ReferenceData, compute_metrics, metric_names
from ._distance import cost, redundancy, sparsity
from ._diversity import coverage, diversity
from ._faithfulness import faithfulness
from ._plausibility import MMDReference, energy_differential, implausibility, mmd
from ._registry import DEFAULT_METRICS, METRIC_SPECS, METRICS, MetricSpec, get_metric_spec
from ._robustness import adversarial_accuracy, fgsm, pgd, protected_feature_sensitivity
from ._validity import strict_validity, validity

__all__ = [
    "METRICS",
    "METRIC_SPECS",
    "DEFAULT_METRICS",
    "MetricSpec",
    "get_metric_spec",
    "compute_metrics",
    "metric_names",
    "ReferenceData",
    "MMDReference",
    "adversarial_accuracy",
    "cost",
    "coverage",
    "diversity",
    "energy_differential",
    "faithfulness",
    "fgsm",
    "implausibility",
    "mmd",
    "pgd",
    "protected_feature_sensitivity",
    "redundancy",
    "sparsity",
    "strict_validity",
    "validity",
]
