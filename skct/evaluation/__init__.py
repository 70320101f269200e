"""Front ends over explain -> measure: the evaluation grid, scorers for model selection, audits.

- ``_grid``: :func:`evaluate`, a tidy grid over models, generators, class pairs and runs
  (joblib or Dask).
- ``_scorers``: counterfactual scorers for ``GridSearchCV``.
- ``_audit``: :func:`recourse_audit` and its :class:`RecourseAuditReport`.
"""

from ._audit import GAP_LABEL, RecourseAuditReport, bands, recourse_audit
from ._grid import EVALUATION_METRICS, evaluate
from ._scorers import (COUNTERFACTUAL_SCORERS, CounterfactualScorer, get_counterfactual_scorer,
                       make_counterfactual_scorer)

__all__ = ["evaluate", "EVALUATION_METRICS", "make_counterfactual_scorer", "CounterfactualScorer",
           "COUNTERFACTUAL_SCORERS", "get_counterfactual_scorer", "recourse_audit",
           "RecourseAuditReport", "bands"]
