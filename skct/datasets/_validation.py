"""Parameter checks shared by the makers and loaders (errors name the parameter)."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = []

SUBSETS = ("train", "test")


def check_n_samples(n_samples):
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool):
        raise TypeError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    if n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    return int(n_samples)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")
    return bool(value)


def check_subset(subset):
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {list(SUBSETS)}, got {subset!r}.")
    return subset


def check_real(value, name, low=0.0):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= low:
        raise ValueError(f"{name} must be a real number >= {low}, got {value!r}.")
    return float(value)
