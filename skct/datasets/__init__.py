"""Synthetic data sets of the paper and loaders for the real tables in data_home."""

from . import _loaders
from ._loaders import *  # noqa: F401,F403

__all__ = list(_loaders.__all__)
