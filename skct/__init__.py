"""skct: counterfactual training and counterfactual explanations for scikit-learn.

The subpackages follow the data flow, each using only those above it in this list:
``constraints`` (what may change), ``search`` (the batched engine, its projection kernel and the
generators), ``training`` (the counterfactually trained classifier), ``explain`` (model adapter
and explainer), ``metrics``, ``evaluation`` (grid, scorers, audits), ``plotting``, ``datasets``
and ``experiments`` (the paper's reproduction).
"""

from ._config import config_context, get_config, set_config
from ._version import __version__
from .constraints import ActionabilityConstraints
from .evaluation import RecourseAuditReport, evaluate, make_counterfactual_scorer, recourse_audit
from .explain import CounterfactualExplainer, CounterfactualResult
from .plotting import CounterfactualDisplay, ImageCounterfactualDisplay, RobustnessCurveDisplay
from .search.generators import ECCCoGenerator, ECCoGenerator, GenericGenerator, REVISEGenerator
from .training import CounterfactualTrainedClassifier

__all__ = [
    "__version__",
    "get_config",
    "set_config",
    "config_context",
    "ActionabilityConstraints",
    "CounterfactualTrainedClassifier",
    "CounterfactualExplainer",
    "CounterfactualResult",
    "GenericGenerator",
    "ECCoGenerator",
    "ECCCoGenerator",
    "REVISEGenerator",
    "evaluate",
    "make_counterfactual_scorer",
    "recourse_audit",
    "RecourseAuditReport",
    "CounterfactualDisplay",
    "ImageCounterfactualDisplay",
    "RobustnessCurveDisplay",
]
