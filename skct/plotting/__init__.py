"""Displays (scikit-learn style): compute with from_estimator, draw with plot; matplotlib imported lazily."""

from . import _displays
from ._displays import *  # noqa: F401,F403

__all__ = list(_displays.__all__)
