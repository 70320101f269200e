"""The counterfactual metrics' specification: one registry that every front end reads.

:func:`skct.evaluation.evaluate`, the counterfactual scorers and the experiment runner all look
a metric up here (its function, whether greater is better, what it needs) and compute it with
:func:`skct.metrics.compute_metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ._distance import cost, redundancy
from ._diversity import coverage, diversity
from ._faithfulness import faithfulness
from ._plausibility import energy_differential, implausibility, mmd
from ._validity import strict_validity, validity

__all__ = ["MetricSpec", "METRIC_SPECS", "METRICS", "DEFAULT_METRICS", "get_metric_spec"]


@dataclass(frozen=True)
class MetricSpec:
    """What a counterfactual metric is and what it needs.

    Parameters
    ----------
    name : str
        Short name (the key of :data:`METRIC_SPECS`).
    function : callable
        The metric function of :mod:`skct.metrics`. It is called as
        ``function([model,] X_cf, [X,] [y_target,] [X_ref, y_ref,] [row_id=row_id,]
        **keywords)``, the bracketed arguments given when the flags below ask for them.
    greater_is_better : bool
        Whether larger values are better (scorers negate the others).
    needs_model : bool, default=False
        Takes the model (a torch module or a callable giving logits) first.
    needs_factuals : bool, default=False
        Takes the factuals ``X`` after the counterfactuals.
    needs_target : bool, default=True
        Takes the target class indices.
    needs_reference : bool, default=False
        Takes reference rows and their class indices (see :class:`ReferenceData`).
    needs_row_id : bool, default=False
        Takes the keyword ``row_id``: the factual each counterfactual belongs to, for the
        metrics of several counterfactuals per factual (``compute_metrics``' ``row_id``).
    valid_only : bool, default=True
        Under the valid-only convention (the paper's), computed on the valid counterfactuals
        only; validity itself is computed on every row.
    per_row : bool, default=False
        Has one value per counterfactual (the function takes ``per_row``).
    min_rows : int, default=1
        Fewest rows the metric is defined on; fewer give NaN.
    random : bool, default=False
        Takes ``random_state``.
    context : tuple of str, default=()
        Keywords :func:`compute_metrics` fills from its own arguments unless the metric's
        parameters set them: ``"decision_threshold"``, ``"n_neighbors"`` (the reference's
        ``n_reference``) and ``"bounds"`` (the reference's per-feature range).
    two_sample : bool, default=False
        A statistic between the counterfactuals of a target class and the reference sample of
        that class (MMD), computed per target class.
    needs_gradients : bool, default=False
        Differentiates the model or reads its logits (not only its probabilities), so a model
        seen through its ``predict_proba`` (:class:`~skct.search.ProbaLogits`) cannot give it.
    default : bool, default=False
        Among the metrics :func:`~skct.evaluation.evaluate` computes by default (and the
        ready-made scorers).

    Examples
    --------
    >>> from skct.metrics import METRIC_SPECS
    >>> spec = METRIC_SPECS["implausibility"]
    >>> spec.greater_is_better, spec.needs_reference, spec.per_row
    (False, True, True)
    >>> METRIC_SPECS["coverage"].needs_row_id
    True
    """

    name: str
    function: Callable
    greater_is_better: bool
    needs_model: bool = False
    needs_factuals: bool = False
    needs_target: bool = True
    needs_reference: bool = False
    needs_row_id: bool = False
    valid_only: bool = True
    per_row: bool = False
    min_rows: int = 1
    random: bool = False
    context: tuple = ()
    two_sample: bool = False
    default: bool = False
    needs_gradients: bool = False


_SPECS = (
    MetricSpec("validity", validity, True, needs_model=True, valid_only=False, per_row=True,
               default=True),
    MetricSpec("strict_validity", strict_validity, True, needs_model=True, valid_only=False,
               per_row=True, context=("decision_threshold",), default=True),
    MetricSpec("cost", cost, False, needs_factuals=True, needs_target=False, per_row=True,
               default=True),
    MetricSpec("redundancy", redundancy, True, needs_factuals=True, needs_target=False,
               per_row=True, default=True),
    MetricSpec("implausibility", implausibility, False, needs_reference=True, per_row=True,
               random=True, context=("n_neighbors",), default=True),
    MetricSpec("mmd", mmd, False, needs_reference=True, min_rows=2, random=True,
               two_sample=True, default=True),
    MetricSpec("faithfulness", faithfulness, False, needs_model=True, per_row=True,
               random=True, context=("bounds",), needs_gradients=True),
    # several counterfactuals per factual: they take compute_metrics' ``row_id``
    MetricSpec("diversity", diversity, True, needs_target=False, needs_row_id=True,
               valid_only=False),
    MetricSpec("coverage", coverage, True, needs_factuals=True, needs_target=False,
               needs_row_id=True, valid_only=False),
    MetricSpec("energy_differential", energy_differential, False, needs_model=True,
               needs_reference=True, per_row=True, needs_gradients=True),
)

#: The registry: every counterfactual metric's :class:`MetricSpec`, by short name.
METRIC_SPECS = {spec.name: spec for spec in _SPECS}

#: Counterfactual quality metrics by short name (the functions of :data:`METRIC_SPECS`).
METRICS = {name: spec.function for name, spec in METRIC_SPECS.items()}

#: The metrics computed by default (``evaluate``'s default, the ready-made scorers).
DEFAULT_METRICS = tuple(name for name, spec in METRIC_SPECS.items() if spec.default)


def get_metric_spec(name, param="metrics"):
    """The :class:`MetricSpec` of a metric; ValueError naming ``param`` for an unknown name.

    Examples
    --------
    >>> from skct.metrics import get_metric_spec
    >>> get_metric_spec("cost").greater_is_better
    False
    """
    spec = METRIC_SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"{param}: unknown metric {name!r}; choose from "
                         f"{sorted(METRIC_SPECS)}.")
    return spec
