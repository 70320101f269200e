"""skct: counterfactual training and counterfactual explanations for scikit-learn."""

from ._version import __version__
from .constraints import ActionabilityConstraints
from .generators import ECCoGenerator, GenericGenerator, REVISEGenerator

__all__ = [
    "__version__",
    "ActionabilityConstraints",
    "GenericGenerator",
    "ECCoGenerator",
    "REVISEGenerator",
]
