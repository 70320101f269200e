"""Every data set of :mod:`skct.datasets` by name."""

from __future__ import annotations

from ._mnist import load_mnist
from ._synthetic import (
    make_circles,
    make_credit_example,
    make_linearly_separable,
    make_moons,
    make_overlapping,
)
from ._tabular import (
    load_adult,
    load_california_housing,
    load_compas,
    load_credit_default,
    load_german_credit,
    load_gmsc,
    load_heloc,
)

__all__ = ["DATASETS"]

#: Every data set by name: real loaders and synthetic makers.
DATASETS = {
    "adult": load_adult,
    "california_housing": load_california_housing,
    "credit_default": load_credit_default,
    "gmsc": load_gmsc,
    "german_credit": load_german_credit,
    "heloc": load_heloc,
    "compas": load_compas,
    "mnist": load_mnist,
    "linearly_separable": make_linearly_separable,
    "overlapping": make_overlapping,
    "circles": make_circles,
    "moons": make_moons,
    "credit_example": make_credit_example,
}
