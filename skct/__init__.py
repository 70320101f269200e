"""skct: counterfactual training and counterfactual explanations for scikit-learn."""

from ._config import config_context, get_config, set_config
from ._version import __version__
from .audit import RecourseAuditReport, recourse_audit
from .classifier import CounterfactualTrainedClassifier
from .constraints import ActionabilityConstraints
from .evaluation import evaluate
from .explainer import CounterfactualExplainer, CounterfactualResult
from .generators import ECCCoGenerator, ECCoGenerator, GenericGenerator, REVISEGenerator
from .plotting import CounterfactualDisplay, ImageCounterfactualDisplay, RobustnessCurveDisplay
from .scorers import make_counterfactual_scorer

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
