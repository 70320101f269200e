"""Counterfactual metrics: validity, cost, plausibility, faithfulness, robustness, sensitivity."""

from . import _metrics
from ._metrics import *  # noqa: F401,F403

__all__ = list(_metrics.__all__)
