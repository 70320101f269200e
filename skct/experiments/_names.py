"""The names of the paper's data sets, in a module that imports nothing.

The command line reads them to build its help (``skct --help``, ``skct experiment --help``)
without loading numpy, torch, scikit-learn or the runner; :mod:`._settings` takes them from
here, so they are defined once.

Examples
--------
>>> from skct.experiments import DATASET_NAMES, PAPER_LABELS, SYNTHETIC_DATASETS
>>> DATASET_NAMES[:4] == SYNTHETIC_DATASETS
True
>>> PAPER_LABELS["california_housing"]
'CH'
"""

__all__ = ["DATASET_NAMES", "DATASET_TITLES", "PAPER_LABELS", "SYNTHETIC_DATASETS"]

#: Data sets of the paper, in the order of its tables.
DATASET_NAMES = ("linearly_separable", "circles", "moons", "overlapping", "adult",
                 "california_housing", "credit_default", "gmsc", "mnist")

#: The paper's synthetic data sets (generated in code; the others are read from data files).
SYNTHETIC_DATASETS = ("linearly_separable", "circles", "moons", "overlapping")

#: The paper's abbreviation of each data set (its table rows), e.g. ``"CH"`` for
#: ``"california_housing"``; the results page and ``skct datasets`` show data sets by these.
PAPER_LABELS = {"linearly_separable": "LS", "circles": "Circ", "moons": "Moon",
                "overlapping": "OL", "adult": "Adult", "california_housing": "CH",
                "credit_default": "Cred", "gmsc": "GMSC", "mnist": "MNIST"}

#: Each data set's name in full, as pages show it (with the paper's abbreviation).
DATASET_TITLES = {"linearly_separable": "Linearly separable", "circles": "Circles",
                  "moons": "Moons", "overlapping": "Overlapping",
                  "adult": "Adult (census income)", "california_housing": "California housing",
                  "credit_default": "Credit card default (Taiwan)",
                  "gmsc": "Give Me Some Credit", "mnist": "MNIST"}
