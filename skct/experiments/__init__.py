"""The paper's experiments: settings, data, training, evaluation, statistics and the report."""

from . import _runner
from ._runner import *  # noqa: F401,F403

__all__ = list(_runner.__all__)
