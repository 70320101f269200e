"""skct: counterfactual training and counterfactual explanations for scikit-learn."""

from ._version import __version__
from .classifier import CounterfactualTrainedClassifier
from .constraints import ActionabilityConstraints
from .explainer import CounterfactualExplainer, CounterfactualResult
from .generators import ECCoGenerator, GenericGenerator, REVISEGenerator

__all__ = [
    "__version__",
    "ActionabilityConstraints",
    "CounterfactualTrainedClassifier",
    "CounterfactualExplainer",
    "CounterfactualResult",
    "GenericGenerator",
    "ECCoGenerator",
    "REVISEGenerator",
]
