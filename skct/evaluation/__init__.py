"""Front ends over explain -> measure: the evaluation grid, scorers for model selection, audits.

Every front end computes its metrics with :func:`skct.metrics.compute_metrics` (the one metric
registry, :data:`skct.metrics.METRIC_SPECS`).

- ``_grid``: :func:`evaluate`, a tidy grid over models, generators, class pairs and runs
  (joblib or Dask); ``_cells`` holds the work of one worker, ``_checks`` its input checks.
- ``_scorers``: counterfactual scorers for ``GridSearchCV``.
- ``_audit``: :func:`recourse_audit`; ``_audit_report``: its :class:`RecourseAuditReport`
  (HTML page from ``templates/audit.html``); ``_groups``: groupings (:func:`bands`);
  ``_changes``: what a counterfactual changes in the original columns.
"""

from ._audit import recourse_audit
from ._audit_report import GAP_LABEL, RecourseAuditReport
from ._grid import EVALUATION_METRICS, evaluate
from ._groups import bands
from ._scorers import (COUNTERFACTUAL_SCORERS, CounterfactualScorer, get_counterfactual_scorer,
                       make_counterfactual_scorer)

__all__ = ["evaluate", "EVALUATION_METRICS", "make_counterfactual_scorer", "CounterfactualScorer",
           "COUNTERFACTUAL_SCORERS", "get_counterfactual_scorer", "recourse_audit",
           "RecourseAuditReport", "bands", "GAP_LABEL"]
