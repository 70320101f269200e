"""skct: counterfactual training and counterfactual explanations for scikit-learn."""

from ._config import config_context, get_config, set_config
from ._version import __version__
from .classifier import CounterfactualTrainedClassifier
from .constraints import ActionabilityConstraints
from .explainer import CounterfactualExplainer, CounterfactualResult
from .generators import ECCoGenerator, GenericGenerator, REVISEGenerator

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
    "REVISEGenerator",
]
