"""skct: counterfactual training and counterfactual explanations for scikit-learn.

The subpackages follow the data flow, each using only those above it in this list:
``constraints`` (what may change), ``search`` (the batched engine, its projection kernel and the
generators), ``training`` (the counterfactually trained classifier), ``explain`` (model adapter
and explainer), ``metrics``, ``evaluation`` (grid, scorers, audits), ``plotting``, ``datasets``
and ``experiments`` (the paper's reproduction).

Public names are imported on first use (PEP 562), so ``import skct`` and the ``skct`` command's
``--help`` do not pay for torch, scikit-learn, matplotlib or the experiment runner until
something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._config import config_context, get_config, set_config
from ._version import __version__

#: Public name -> the subpackage that defines it.
_LAZY = {
    "ActionabilityConstraints": "constraints",
    "CounterfactualTrainedClassifier": "training",
    "CounterfactualExplainer": "explain",
    "CounterfactualResult": "explain",
    "GenericGenerator": "search.generators",
    "ECCoGenerator": "search.generators",
    "ECCCoGenerator": "search.generators",
    "REVISEGenerator": "search.generators",
    "GradientFreeGenerator": "search.generators",
    "evaluate": "evaluation",
    "make_counterfactual_scorer": "evaluation",
    "recourse_audit": "evaluation",
    "RecourseAuditReport": "evaluation",
    "CounterfactualDisplay": "plotting",
    "ImageCounterfactualDisplay": "plotting",
    "RobustnessCurveDisplay": "plotting",
}

_SUBPACKAGES = ("constraints", "search", "training", "explain", "metrics", "evaluation",
                "plotting", "datasets", "experiments", "losses", "io", "cli")

__all__ = ["__version__", "get_config", "set_config", "config_context", *_LAZY]

if TYPE_CHECKING:  # static analysers and IDEs see the real imports
    from .constraints import ActionabilityConstraints  # noqa: F401
    from .evaluation import (RecourseAuditReport, evaluate,  # noqa: F401
                             make_counterfactual_scorer, recourse_audit)
    from .explain import CounterfactualExplainer, CounterfactualResult  # noqa: F401
    from .plotting import (CounterfactualDisplay, ImageCounterfactualDisplay,  # noqa: F401
                           RobustnessCurveDisplay)
    from .search.generators import (ECCCoGenerator, ECCoGenerator,  # noqa: F401
                                    GenericGenerator, GradientFreeGenerator, REVISEGenerator)
    from .training import CounterfactualTrainedClassifier  # noqa: F401


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'skct' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))
