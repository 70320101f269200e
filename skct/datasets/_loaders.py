"""Data sets of the counterfactual training paper: synthetic generators and real-data loaders.

Synthetic sets are generated in code (``make_*``). Real sets are read from CSV/NPZ files that are
**not** shipped with the package (their licences differ); the loaders look for them in a data
directory, resolved in this order:

1. the ``data_home`` argument, when given (only that directory is searched);
2. else the environment variable ``SKCT_DATA_HOME``, when set and not empty (only that
   directory is searched);
3. else ``../shared/data`` relative to the current working directory, then ``shared/data``
   beside the repository that contains this package; the first one that holds the file wins.

A missing file raises a :class:`FileNotFoundError` that names every directory searched and the
file expected.

Every real loader returns a :class:`sklearn.utils.Bunch` whose ``target`` is 0/1 with 1 the
desirable outcome, plus the paper's immutable features and an *unfitted*
:class:`~sklearn.compose.ColumnTransformer` (``"num"``: standardisation, ``"cat"``: one-hot
encoding) that reproduces the paper's preprocessing once fitted on the training rows
(see :func:`train_test_split_paper`).
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn.datasets as _skd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import Bunch

__all__ = [
    "DATASETS",
    "get_data_home",
    "load_adult",
    "load_california_housing",
    "load_compas",
    "load_credit_default",
    "load_german_credit",
    "load_gmsc",
    "load_heloc",
    "load_mnist",
    "load_synthetic",
    "make_circles",
    "make_credit_example",
    "make_linearly_separable",
    "make_moons",
    "make_overlapping",
    "train_test_split_paper",
]

#: Environment variable that points the loaders at the data directory.
DATA_HOME_ENV = "SKCT_DATA_HOME"

_SUBSETS = ("train", "test")


# --------------------------------------------------------------------------------------------
# Data directory resolution
# --------------------------------------------------------------------------------------------


def _default_dirs():
    """Default candidate directories, in search order, without duplicates."""
    candidates = [
        Path.cwd() / ".." / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    out = []
    for d in candidates:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def _candidate_dirs(data_home):
    """Directories to search, in order, and a short label saying where they came from."""
    if data_home is not None:
        if not isinstance(data_home, (str, os.PathLike)):
            raise TypeError(
                f"data_home must be a str, a path-like object or None, got {data_home!r}."
            )
        return [Path(data_home).expanduser().resolve()], "the data_home argument"
    env = os.environ.get(DATA_HOME_ENV, "")
    if env.strip():
        return [Path(env).expanduser().resolve()], f"the {DATA_HOME_ENV} environment variable"
    return _default_dirs(), "the default locations"


def _how_to_point():
    return (
        f"Pass data_home='/path/to/data' to the loader or set the environment variable "
        f"{DATA_HOME_ENV}=/path/to/data (the data sets live in ../shared/data beside the "
        "project; they are not shipped with the package)."
    )


def get_data_home(data_home=None):
    """Resolve the directory the real-data loaders read from.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Explicit data directory. When ``None``, the environment variable ``SKCT_DATA_HOME`` is
        used if set, else the first existing one of ``../shared/data`` (relative to the current
        working directory) and ``shared/data`` beside the repository holding this package.

    Returns
    -------
    path : pathlib.Path
        The resolved directory (absolute).

    Raises
    ------
    FileNotFoundError
        If no candidate directory exists; the message lists the directories tried.

    Examples
    --------
    >>> from skct.datasets import get_data_home
    >>> get_data_home().is_dir()
    True
    """
    dirs, source = _candidate_dirs(data_home)
    for d in dirs:
        if d.is_dir():
            return d
    tried = ", ".join(f"'{d}'" for d in dirs)
    raise FileNotFoundError(
        f"No data directory found: looked in {tried} (from {source}). {_how_to_point()}"
    )


def _find_file(filename, data_home):
    """Return the path of ``filename`` in the first candidate directory that holds it."""
    dirs, source = _candidate_dirs(data_home)
    for d in dirs:
        path = d / filename
        if path.is_file():
            return path
    tried = ", ".join(f"'{d}'" for d in dirs)
    raise FileNotFoundError(
        f"Data file '{filename}' not found: looked in {tried} (from {source}). {_how_to_point()}"
    )


# --------------------------------------------------------------------------------------------
# Parameter checks
# --------------------------------------------------------------------------------------------


def _check_n_samples(n_samples):
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool):
        raise TypeError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    if n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    return int(n_samples)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")
    return bool(value)


def _check_subset(subset):
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {list(_SUBSETS)}, got {subset!r}.")
    return subset


def _check_real(value, name, low=0.0):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= low:
        raise ValueError(f"{name} must be a real number >= {low}, got {value!r}.")
    return float(value)


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


def _as_xy(X, y):
    return np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)


def make_linearly_separable(n_samples=3000, *, random_state=None):
    """Two well separated Gaussian blobs in 2D (the paper's "linearly separable" set).

    Class 0 is centred at ``(-2, -2)`` and class 1 at ``(2, 2)``, both with standard deviation
    0.5 per axis (:func:`sklearn.datasets.make_blobs`), so the classes are, in practice,
    perfectly separable by a line. Rows come shuffled.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows, split as evenly as possible between the two classes.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64
        Labels in ``{0, 1}``.

    Examples
    --------
    >>> from skct.datasets import make_linearly_separable
    >>> X, y = make_linearly_separable(100, random_state=0)
    >>> X.shape, X.dtype, y.dtype, int(y.sum())
    ((100, 2), dtype('float32'), dtype('int64'), 50)
    """
    n_samples = _check_n_samples(n_samples)
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-2.0, -2.0], [2.0, 2.0]],
        cluster_std=0.5,
        random_state=random_state,
    )
    return _as_xy(X, y)


def make_overlapping(n_samples=3000, *, random_state=None):
    """Two overlapping Gaussian blobs in 2D (the paper's "overlapping" set).

    Same centres as :func:`make_linearly_separable`, ``(-2, -2)`` and ``(2, 2)``, but with
    standard deviation 2.0 per axis, so the classes overlap (the Bayes accuracy is about 92%).

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows, split as evenly as possible between the two classes.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import make_overlapping
    >>> X, y = make_overlapping(100, random_state=0)
    >>> X.shape, int(y.sum())
    ((100, 2), 50)
    """
    n_samples = _check_n_samples(n_samples)
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-2.0, -2.0], [2.0, 2.0]],
        cluster_std=2.0,
        random_state=random_state,
    )
    return _as_xy(X, y)


def make_circles(n_samples=3000, *, noise=0.15, factor=0.01, random_state=None):
    """A small circle inside a larger one (wraps :func:`sklearn.datasets.make_circles`).

    The paper's settings are the defaults: ``noise=0.15``, ``factor=0.01`` (the inner "circle"
    is nearly a point at the origin). Class 0 is the outer circle, class 1 the inner one.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows.
    noise : float, default=0.15
        Standard deviation of the Gaussian noise added to the points.
    factor : float, default=0.01
        Scale of the inner circle relative to the outer one, in ``[0, 1)``.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import make_circles
    >>> X, y = make_circles(100, random_state=0)
    >>> X.shape, X.dtype, int(y.sum())
    ((100, 2), dtype('float32'), 50)
    """
    n_samples = _check_n_samples(n_samples)
    noise = _check_real(noise, "noise")
    factor = _check_real(factor, "factor")
    if not factor < 1.0:
        raise ValueError(f"factor must be in [0, 1), got {factor!r}.")
    X, y = _skd.make_circles(
        n_samples=n_samples, noise=noise, factor=factor, random_state=random_state
    )
    return _as_xy(X, y)


def make_moons(n_samples=3000, *, noise=0.1, random_state=None):
    """Two interleaving half circles (wraps :func:`sklearn.datasets.make_moons`).

    The paper does not state the noise level; ``noise=0.1`` (the default of the ``make_moons``
    generator used by the Julia ecosystem the paper builds on) gives two clearly visible but
    slightly overlapping moons.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import make_moons
    >>> X, y = make_moons(100, random_state=0)
    >>> X.shape, y.dtype, int(y.sum())
    ((100, 2), dtype('int64'), 50)
    """
    n_samples = _check_n_samples(n_samples)
    noise = _check_real(noise, "noise")
    X, y = _skd.make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    return _as_xy(X, y)


def make_credit_example(n_samples=1000, *, random_state=None, as_frame=True):
    """The paper's two-feature credit example: "age" (immutable) and "debt" (mutable).

    Each class is an isotropic Gaussian on a standardised scale with standard deviation 0.7:

    * class 0 ("rejected"): mean ``age = -1``, ``debt = +1`` (younger, more debt);
    * class 1 ("approved"): mean ``age = +1``, ``debt = -1`` (older, less debt).

    Both features are discriminative, so an unconstrained counterfactual for a rejected
    applicant typically "ages" them; with ``age`` immutable it must lower the debt instead.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows, split as evenly as possible between the two classes (rows shuffled).
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.
    as_frame : bool, default=True
        Return ``data`` as a DataFrame with columns ``["age", "debt"]`` (and ``target`` as a
        Series); else as arrays, with ``frame=None``.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data`` (float32), ``target`` (int64, 1 = approved), ``frame``, ``feature_names``,
        ``immutable_features=["age"]``, ``categorical_features=[]``, ``numerical_features``,
        ``target_names=["rejected", "approved"]``, ``preprocessor=None`` (already on a
        standardised scale) and ``DESCR``.

    Examples
    --------
    >>> from skct.datasets import make_credit_example
    >>> credit = make_credit_example(200, random_state=0)
    >>> list(credit.data.columns), credit.immutable_features
    (['age', 'debt'], ['age'])
    >>> bool(credit.data["age"][credit.target == 1].mean() > 0)
    True
    """
    n_samples = _check_n_samples(n_samples)
    as_frame = _check_bool(as_frame, "as_frame")
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-1.0, 1.0], [1.0, -1.0]],
        cluster_std=0.7,
        random_state=random_state,
    )
    X, y = _as_xy(X, y)
    feature_names = ["age", "debt"]
    frame = None
    if as_frame:
        data = pd.DataFrame(X, columns=feature_names)
        target = pd.Series(y, name="target")
        frame = pd.concat([data, target], axis=1)
    else:
        data, target = X, y
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=feature_names,
        immutable_features=["age"],
        categorical_features=[],
        numerical_features=list(feature_names),
        target_names=["rejected", "approved"],
        preprocessor=None,
        DESCR=(
            "Synthetic 2D credit example of the paper: age (immutable) and debt (mutable), "
            "Gaussian classes with std 0.7; rejected (0) centred at (age=-1, debt=1), "
            "approved (1) at (age=1, debt=-1)."
        ),
    )


_SYNTHETIC = {
    "linearly_separable": make_linearly_separable,
    "overlapping": make_overlapping,
    "circles": make_circles,
    "moons": make_moons,
}


def load_synthetic(name, *, n_samples=3000, random_state=None):
    """Generate one of the paper's synthetic sets by name.

    Parameters
    ----------
    name : {"linearly_separable", "overlapping", "circles", "moons"}
        Which generator to call (with its default parameters).
    n_samples : int, default=3000
        Number of rows.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import load_synthetic
    >>> X, y = load_synthetic("moons", n_samples=50, random_state=1)
    >>> X.shape
    (50, 2)
    """
    if not isinstance(name, str) or name not in _SYNTHETIC:
        raise ValueError(
            f"Unknown synthetic data set {name!r}; valid names are {sorted(_SYNTHETIC)}."
        )
    return _SYNTHETIC[name](n_samples, random_state=random_state)


# --------------------------------------------------------------------------------------------
# Real tabular data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TabularSpec:
    filename: str
    target: str
    dtypes: dict  # every column of the file, in file order -> dtype
    categorical: tuple
    immutable: tuple
    target_names: tuple
    descr: str

    @property
    def feature_names(self):
        return [c for c in self.dtypes if c != self.target]


def _spec_dtypes(*groups):
    out = {}
    for dtype, names in groups:
        for n in names:
            out[n] = dtype
    return out


_ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]  # fmt: skip
_ADULT_CATEGORICAL = (
    "workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
    "native-country",
)  # fmt: skip

_ADULT = _TabularSpec(
    filename="adult.csv",
    target="income",
    dtypes={
        c: (str if c in _ADULT_CATEGORICAL or c == "income" else "int64") for c in _ADULT_COLUMNS
    },
    categorical=_ADULT_CATEGORICAL,
    immutable=("age",),
    target_names=("<=50K", ">50K"),
    descr=(
        "UCI Adult (census income). Target income: 1 = '>50K'. Rows with a missing value "
        "('?' in workclass, occupation or native-country) are dropped: the training file "
        "keeps 30162 of 32561 rows (24.9% positive), the test file 15060 of 16281 rows "
        "(24.6% positive). Immutable in the paper: age."
    ),
)

_CAL_HOUSING = _TabularSpec(
    filename="cal_housing.csv",
    target="target",
    dtypes=_spec_dtypes(
        (
            "float64",
            [
                "MedInc",
                "HouseAge",
                "AveRooms",
                "AveBedrms",
                "Population",
                "AveOccup",
                "Latitude",
                "Longitude",
                "target",
            ],
        ),
    ),
    categorical=(),
    immutable=("HouseAge",),
    target_names=("below_median", "above_median"),
    descr=(
        "California housing (CounterfactualExplanations.jl preprocessing): 20630 rows, 8 "
        "numerical features, target 1 = median house value above the median; balanced "
        "(10315 / 10315). Immutable in the paper: HouseAge."
    ),
)

_CREDIT_DEFAULT = _TabularSpec(
    filename="credit_default.csv",
    target="target",
    dtypes=_spec_dtypes(
        ("float64", ["LIMIT_BAL"]),
        (
            "int64",
            [
                "SEX",
                "EDUCATION",
                "MARRIAGE",
                "AGE",
                "PAY_0",
                "PAY_2",
                "PAY_3",
                "PAY_4",
                "PAY_5",
                "PAY_6",
            ],
        ),
        ("float64", [f"BILL_AMT{i}" for i in range(1, 7)] + [f"PAY_AMT{i}" for i in range(1, 7)]),
        ("int64", ["target"]),
    ),
    categorical=("SEX", "EDUCATION", "MARRIAGE"),
    immutable=("AGE",),
    target_names=("default", "no_default"),
    descr=(
        "Taiwan 'default of credit card clients' (CounterfactualExplanations.jl "
        "preprocessing): 13272 rows, 23 features (SEX, EDUCATION, MARRIAGE categorical, "
        "integer coded), target 1 = no default; balanced (6636 / 6636). Immutable in the "
        "paper: AGE."
    ),
)

_GMSC = _TabularSpec(
    filename="gmsc.csv",
    target="target",
    dtypes=_spec_dtypes(
        ("int64", ["target"]),
        ("float64", ["RevolvingUtilizationOfUnsecuredLines"]),
        ("int64", ["age", "NumberOfTime30-59DaysPastDueNotWorse"]),
        ("float64", ["DebtRatio"]),
        (
            "int64",
            [
                "MonthlyIncome",
                "NumberOfOpenCreditLinesAndLoans",
                "NumberOfTimes90DaysLate",
                "NumberRealEstateLoansOrLines",
                "NumberOfTime60-89DaysPastDueNotWorse",
                "NumberOfDependents",
            ],
        ),
    ),
    categorical=(),
    immutable=("age",),
    target_names=("serious_delinquency", "no_serious_delinquency"),
    descr=(
        "Give Me Some Credit (CounterfactualExplanations.jl preprocessing, rows with missing "
        "values dropped): 16714 rows, 10 numerical features, target 1 = no serious "
        "delinquency; balanced (8357 / 8357). Immutable in the paper: age."
    ),
)

_GERMAN_COLUMNS = [
    "target", "Account Balance", "Duration of Credit (month)",
    "Payment Status of Previous Credit", "Purpose", "Credit Amount", "Value Savings/Stocks",
    "Length of current employment", "Instalment per cent", "Sex & Marital Status",
    "Guarantors", "Duration in Current address", "Most valuable available asset",
    "Age (years)", "Concurrent Credits", "Type of apartment", "No of Credits at this Bank",
    "Occupation", "No of dependents", "Telephone", "Foreign Worker",
]  # fmt: skip

_GERMAN = _TabularSpec(
    filename="german_credit.csv",
    target="target",
    dtypes=_spec_dtypes(("int64", _GERMAN_COLUMNS)),
    categorical=(),
    immutable=("Age (years)",),
    target_names=("bad", "good"),
    descr=(
        "UCI German credit, numeric coding (CounterfactualExplanations.jl preprocessing): "
        "1000 rows, 20 integer-coded features, all treated as numerical (standardised) as in "
        "that preprocessing; target 1 = good credit; imbalanced (700 good / 300 bad). "
        "Immutable: 'Age (years)' (our choice; the paper does not report one for this set)."
    ),
)

_HELOC_FEATURES = [
    "ExternalRiskEstimate", "MSinceOldestTradeOpen", "MSinceMostRecentTradeOpen",
    "AverageMInFile", "NumSatisfactoryTrades", "NumTrades60Ever2DerogPubRec",
    "NumTrades90Ever2DerogPubRec", "PercentTradesNeverDelq", "MSinceMostRecentDelq",
    "NumTotalTrades", "NumTradesOpeninLast12M", "PercentInstallTrades",
    "MSinceMostRecentInqexcl7days", "NumInqLast6M", "NumInqLast6Mexcl7days",
    "NetFractionRevolvingBurden", "NetFractionInstallBurden", "NumRevolvingTradesWBalance",
    "NumInstallTradesWBalance", "NumBank2NatlTradesWHighUtilization", "PercentTradesWBalance",
]  # fmt: skip

_HELOC = _TabularSpec(
    filename="heloc.csv",
    target="RiskPerformance",
    dtypes=_spec_dtypes(("float64", _HELOC_FEATURES + ["RiskPerformance"])),
    categorical=(),
    immutable=("MSinceOldestTradeOpen",),
    target_names=("Bad", "Good"),
    descr=(
        "FICO HELOC (CARLA preprocessing: numeric only, special values imputed): 9871 rows, "
        "21 numerical features. The file already codes RiskPerformance as 0/1; 1 = 'Good' "
        "(4735 rows, 48.0%), 0 = 'Bad' (5136), as the counts imply (the raw file has 5000 "
        "Good and 5459 Bad rows). Immutable: MSinceOldestTradeOpen, the length of the credit "
        "history (our choice; the paper does not report one for this set)."
    ),
)

_COMPAS = _TabularSpec(
    filename="compas.csv",
    target="score",
    dtypes=_spec_dtypes(
        ("int64", ["age", "two_year_recid"]),
        (str, ["c_charge_degree", "race", "sex"]),
        ("int64", ["priors_count", "length_of_stay", "score"]),
    ),
    categorical=("c_charge_degree", "race", "sex"),
    immutable=("age", "race", "sex"),
    target_names=("high_risk", "low_or_medium_risk"),
    descr=(
        "ProPublica COMPAS (CARLA preprocessing): 6172 rows, 7 features (c_charge_degree, race "
        "and sex categorical). Target score: 1 = COMPAS score Low or Medium (5028 rows, "
        "81.5%), 0 = High (1144), as the counts imply (ProPublica's filtered set has 3421 "
        "Low, 1607 Medium and 1144 High). Immutable: age, race, sex (our choice; the paper "
        "does not report one for this set)."
    ),
)


def _make_preprocessor(numerical, categorical):
    transformers = [("num", StandardScaler(), numerical)]
    if len(categorical):
        transformers.append(
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)
        )
    return ColumnTransformer(transformers)


def _read_csv(path, spec, **kwargs):
    try:
        return pd.read_csv(path, dtype=spec.dtypes, **kwargs)
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"Could not parse '{path}' as the expected {spec.filename}: {exc}"
        ) from exc


def _check_columns(df, spec, path):
    expected = list(spec.dtypes)
    if list(df.columns) != expected:
        raise ValueError(
            f"'{path}' does not have the expected columns.\nExpected: {expected}\n"
            f"Found:    {list(df.columns)}"
        )


def _binary_target(series, path):
    values = pd.unique(series)
    if series.isna().any() or not set(values.tolist()) <= {0, 1}:
        raise ValueError(
            f"The label column {series.name!r} of '{path}' should hold 0/1, found "
            f"{sorted(map(str, values))[:10]}."
        )
    return series.astype("int64")


def _tabular_bunch(frame, spec, as_frame, descr=None):
    """Build the Bunch from a clean frame (features in file order, target as int64)."""
    features = spec.feature_names
    categorical = [c for c in features if c in spec.categorical]
    numerical = [c for c in features if c not in spec.categorical]
    frame = frame[features + [spec.target]].reset_index(drop=True)
    if as_frame:
        data = frame[features]
        target = frame[spec.target]
        preprocessor = _make_preprocessor(numerical, categorical)
    else:
        data = frame[features].to_numpy()
        target = frame[spec.target].to_numpy()
        pos = {c: i for i, c in enumerate(features)}
        preprocessor = _make_preprocessor(
            [pos[c] for c in numerical], [pos[c] for c in categorical]
        )
        frame = None
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=list(features),
        categorical_features=categorical,
        numerical_features=numerical,
        immutable_features=list(spec.immutable),
        target_names=list(spec.target_names),
        preprocessor=preprocessor,
        DESCR=descr or spec.descr,
    )


def _load_simple(spec, data_home, as_frame):
    as_frame = _check_bool(as_frame, "as_frame")
    path = _find_file(spec.filename, data_home)
    df = _read_csv(path, spec)
    _check_columns(df, spec, path)
    df[spec.target] = _binary_target(df[spec.target], path)
    return _tabular_bunch(df, spec, as_frame)


_RETURNS = """
    Returns
    -------
    bunch : sklearn.utils.Bunch
        Dictionary-like object with attributes

        data : DataFrame (ndarray if ``as_frame=False``)
            The features, in file order.
        target : Series of int64 (ndarray if ``as_frame=False``)
            0/1 labels, 1 the desirable outcome.
        frame : DataFrame or None
            ``data`` with the target as last column (``None`` if ``as_frame=False``).
        feature_names, categorical_features, numerical_features : list of str
            All feature names, and those of the categorical and the numerical features.
        immutable_features : list of str
            Features a counterfactual must not change.
        target_names : list of str
            Names of classes 0 and 1.
        preprocessor : sklearn.compose.ColumnTransformer
            Unfitted; ``"num"`` standardises the numerical features, ``"cat"`` (only when there
            are categorical features) one-hot encodes the categorical ones. With
            ``as_frame=False`` it selects columns by position.
        DESCR : str
            Short description.

    Raises
    ------
    FileNotFoundError
        If the file is in none of the searched directories.
"""

_PARAMS = """
    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Directory holding the file; see :func:`get_data_home` for the search order.
    as_frame : bool, default=True
        Return pandas objects; else NumPy arrays (``object`` dtype when there are string
        columns) and ``frame=None``.
"""


def load_adult(*, data_home=None, as_frame=True, subset="train"):
    """Load UCI Adult (census income), reading ``adult.csv`` or ``adult_test.data``.

    Leading spaces of values are stripped, ``"?"`` is read as missing and rows with a missing
    value are dropped (train: 30162 of 32561 rows remain; test: 15060 of 16281), and the index
    is reset. Target ``income``: 1 = ``">50K"`` (about 25%). Categorical: workclass,
    education, marital-status, occupation, relationship, race, sex, native-country.
    Immutable (as in the paper): age. Duplicate rows are kept.
    {params}
    subset : {{"train", "test"}}, default="train"
        ``"train"`` reads ``adult.csv``; ``"test"`` reads the UCI test file
        ``adult_test.data`` (no header, a comment first line, labels ending in ``"."``).
        The test file lacks the native-country level "Holand-Netherlands"; the preprocessor's
        one-hot encoder ignores unknown levels.
    {returns}
    Examples
    --------
    >>> from skct.datasets import load_adult
    >>> adult = load_adult()
    >>> adult.data.shape, round(float(adult.target.mean()), 3)
    ((30162, 14), 0.249)
    """
    subset = _check_subset(subset)
    as_frame = _check_bool(as_frame, "as_frame")
    spec = _ADULT
    common = {"skipinitialspace": True, "na_values": ["?"], "keep_default_na": False}
    if subset == "train":
        path = _find_file(spec.filename, data_home)
        df = _read_csv(path, spec, **common)
        _check_columns(df, spec, path)
    else:
        path = _find_file("adult_test.data", data_home)
        df = _read_csv(path, spec, header=None, names=_ADULT_COLUMNS, skiprows=1, **common)
        df["income"] = df["income"].str.rstrip(".")
    df = df.dropna().reset_index(drop=True)
    labels = df["income"]
    unknown = sorted(set(labels.unique().tolist()) - {"<=50K", ">50K"})
    if unknown:
        raise ValueError(f"Unexpected income labels in '{path}': {unknown[:10]}.")
    df["income"] = (labels == ">50K").astype("int64")
    return _tabular_bunch(df, spec, as_frame)


def load_california_housing(*, data_home=None, as_frame=True):
    """Load California housing, binarised at the median house value (``cal_housing.csv``).

    20630 rows, 8 numerical features (MedInc, HouseAge, AveRooms, AveBedrms, Population,
    AveOccup, Latitude, Longitude). Target: 1 = above the median house value; balanced
    (10315 / 10315). Immutable (as in the paper): HouseAge.
    {params}{returns}
    Examples
    --------
    >>> from skct.datasets import load_california_housing
    >>> housing = load_california_housing()
    >>> housing.data.shape, housing.immutable_features
    ((20630, 8), ['HouseAge'])
    """
    return _load_simple(_CAL_HOUSING, data_home, as_frame)


def load_credit_default(*, data_home=None, as_frame=True):
    """Load the Taiwan "default of credit card clients" data (``credit_default.csv``).

    13272 rows, 23 features; SEX, EDUCATION and MARRIAGE are categorical (integer codes,
    one-hot encoded by the preprocessor), the rest numerical. Target: 1 = no default;
    balanced (6636 / 6636). Immutable (as in the paper): AGE.
    {params}{returns}
    Examples
    --------
    >>> from skct.datasets import load_credit_default
    >>> credit = load_credit_default()
    >>> credit.data.shape, credit.categorical_features
    ((13272, 23), ['SEX', 'EDUCATION', 'MARRIAGE'])
    """
    return _load_simple(_CREDIT_DEFAULT, data_home, as_frame)


def load_gmsc(*, data_home=None, as_frame=True):
    """Load Give Me Some Credit (``gmsc.csv``; rows with missing values already dropped).

    16714 rows, 10 numerical features. Target: 1 = no serious delinquency within two years;
    balanced (8357 / 8357). Immutable (as in the paper): age.
    {params}{returns}
    Examples
    --------
    >>> from skct.datasets import load_gmsc
    >>> gmsc = load_gmsc()
    >>> gmsc.data.shape, gmsc.immutable_features
    ((16714, 10), ['age'])
    """
    return _load_simple(_GMSC, data_home, as_frame)


def load_german_credit(*, data_home=None, as_frame=True):
    """Load UCI German credit, numeric coding (``german_credit.csv``).

    1000 rows, 20 integer-coded features; as in the preprocessing the paper used, they are
    all treated as numerical (standardised), so ``categorical_features`` is empty. Target:
    1 = good credit; imbalanced (700 good / 300 bad). Immutable: ``"Age (years)"`` (our
    choice: the paper does not report immutable features for this set).
    {params}{returns}
    Examples
    --------
    >>> from skct.datasets import load_german_credit
    >>> german = load_german_credit()
    >>> german.data.shape, german.immutable_features
    ((1000, 20), ['Age (years)'])
    """
    return _load_simple(_GERMAN, data_home, as_frame)


def load_heloc(*, data_home=None, as_frame=True):
    """Load FICO HELOC (``heloc.csv``, numerical columns only).

    9871 rows, 21 numerical features. The file already codes ``RiskPerformance`` as 0/1
    (floats); 1 = "Good" (4735 rows, 48.0%) and 0 = "Bad" (5136), as the class counts imply
    (the raw FICO file has 5000 Good and 5459 Bad rows, so the larger class here must be Bad).
    Immutable: MSinceOldestTradeOpen, the length of the credit history (our choice: the
    paper does not report immutable features for this set).
    {params}{returns}
    Examples
    --------
    >>> from skct.datasets import load_heloc
    >>> heloc = load_heloc()
    >>> heloc.data.shape, heloc.target_names
    ((9871, 21), ['Bad', 'Good'])
    """
    return _load_simple(_HELOC, data_home, as_frame)


def load_compas(*, data_home=None, as_frame=True):
    """Load ProPublica COMPAS, reduced to 7 features (``compas.csv``).

    6172 rows; features age, two_year_recid, c_charge_degree (F/M), race
    (African-American/Other), sex, priors_count, length_of_stay; c_charge_degree, race and sex
    are categorical. Target ``score``: 1 = COMPAS risk score Low or Medium (5028 rows, 81.5%),
    0 = High (1144), as the counts imply (ProPublica's filtered set of 6172 people has 3421
    Low, 1607 Medium and 1144 High scores). The file holds 1195 duplicated rows; they are
    kept. Immutable: age, race, sex (our choice: the paper does not report immutable
    features for this set).
    {params}{returns}
    Examples
    --------
    >>> from skct.datasets import load_compas
    >>> compas = load_compas()
    >>> compas.data.shape, compas.immutable_features
    ((6172, 7), ['age', 'race', 'sex'])
    """
    return _load_simple(_COMPAS, data_home, as_frame)


for _f in (
    load_adult,
    load_california_housing,
    load_credit_default,
    load_gmsc,
    load_german_credit,
    load_heloc,
    load_compas,
):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__.format(params=_PARAMS.rstrip("\n"), returns=_RETURNS)
del _f


# --------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------

#: Pixel rows treated as immutable in the paper: the top 5 and bottom 5 rows of the image.
_MNIST_IMMUTABLE_ROWS = (0, 1, 2, 3, 4, 23, 24, 25, 26, 27)


def load_mnist(*, data_home=None, subset="train"):
    """Load MNIST from ``mnist.npz``, pixels scaled to [-1, 1] as in the paper.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Directory holding ``mnist.npz``; see :func:`get_data_home` for the search order.
    subset : {"train", "test"}, default="train"
        60000 training or 10000 test images.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data``: float32 ndarray (n, 784), pixel ``p`` mapped to ``p / 127.5 - 1``;
        ``images``: the same values as (n, 28, 28) (a view of ``data``: they share memory);
        ``target``: int64 ndarray of digits 0-9; ``feature_names``: ``"pixel_0"`` ...
        ``"pixel_783"`` (row-major); ``immutable_features``: the 280 indices of the pixels in
        the top 5 and bottom 5 pixel rows (the paper's choice); ``categorical_features=[]``;
        ``numerical_features`` (all pixel names); ``target_names``: ``"0"`` ... ``"9"``;
        ``frame=None``; ``preprocessor=None``; ``DESCR``.

    Examples
    --------
    >>> from skct.datasets import load_mnist
    >>> mnist = load_mnist(subset="test")
    >>> mnist.data.shape, mnist.images.shape, len(mnist.immutable_features)
    ((10000, 784), (10000, 28, 28), 280)
    >>> float(mnist.data.min()), float(mnist.data.max())
    (-1.0, 1.0)
    """
    subset = _check_subset(subset)
    path = _find_file("mnist.npz", data_home)
    with np.load(path) as npz:
        try:
            x = npz[f"x_{subset}"]
            y = npz[f"y_{subset}"]
        except KeyError as exc:
            raise ValueError(
                f"'{path}' should hold arrays x_train, y_train, x_test, y_test; found "
                f"{sorted(npz.files)}."
            ) from exc
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise ValueError(f"Unexpected MNIST array shapes in '{path}': {x.shape}, {y.shape}.")
    n = len(x)
    data = x.reshape(n, 28 * 28).astype(np.float32)
    data /= np.float32(127.5)
    data -= np.float32(1.0)
    immutable = [r * 28 + c for r in _MNIST_IMMUTABLE_ROWS for c in range(28)]
    feature_names = [f"pixel_{i}" for i in range(28 * 28)]
    return Bunch(
        data=data,
        images=data.reshape(n, 28, 28),
        target=np.asarray(y, dtype=np.int64),
        frame=None,
        feature_names=feature_names,
        categorical_features=[],
        numerical_features=list(feature_names),
        immutable_features=immutable,
        target_names=[str(i) for i in range(10)],
        preprocessor=None,
        DESCR=(
            f"MNIST {subset} set: {n} 28x28 grey-scale digits, pixels scaled to [-1, 1]; the "
            "top 5 and bottom 5 pixel rows (280 pixels) are immutable, as in the paper."
        ),
    )


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


def _n_rows(a):
    if hasattr(a, "shape") and len(getattr(a, "shape", ())) > 0:
        return int(a.shape[0])
    return len(a)


def _head_tail(a, n_train):
    if hasattr(a, "iloc"):
        return a.iloc[:n_train].copy(), a.iloc[n_train:].copy()
    if isinstance(a, (list, tuple)):
        return a[:n_train], a[n_train:]
    head, tail = a[:n_train], a[n_train:]
    if hasattr(head, "copy"):
        head, tail = head.copy(), tail.copy()
    return head, tail


def train_test_split_paper(X, y, *, train_size=0.8):
    """Split as in the paper: the first ``train_size`` share of rows train, the rest test.

    No shuffling: row order is kept, so the split is deterministic. Works with NumPy arrays,
    sparse matrices, pandas DataFrames/Series and lists; returned pieces are copies.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    train_size : float in (0, 1) or int, default=0.8
        Share of rows (float) or number of rows (int) in the training part; a share is
        rounded down to ``floor(train_size * n_samples)`` rows. Both parts must be non-empty.

    Returns
    -------
    X_train, X_test, y_train, y_test
        Same types as the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from skct.datasets import train_test_split_paper
    >>> X, y = np.arange(20).reshape(10, 2), np.arange(10)
    >>> X_train, X_test, y_train, y_test = train_test_split_paper(X, y)
    >>> y_train.tolist(), y_test.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    n = _n_rows(X)
    if _n_rows(y) != n:
        raise ValueError(f"X and y have different numbers of rows: {n} and {_n_rows(y)}.")
    if isinstance(train_size, bool) or not isinstance(train_size, numbers.Real):
        raise TypeError(f"train_size must be a float in (0, 1) or an int, got {train_size!r}.")
    if isinstance(train_size, numbers.Integral):
        n_train = int(train_size)
    else:
        if not 0.0 < train_size < 1.0:
            raise ValueError(f"A float train_size must be in (0, 1), got {train_size!r}.")
        # the small tolerance keeps e.g. 0.7 * 10 == 6.999... from losing a row
        n_train = math.floor(float(train_size) * n + 1e-9)
    if not 0 < n_train < n:
        raise ValueError(
            f"train_size={train_size!r} gives {n_train} training rows out of {n}; both the "
            "training and the test part must be non-empty."
        )
    X_train, X_test = _head_tail(X, n_train)
    y_train, y_test = _head_tail(y, n_train)
    return X_train, X_test, y_train, y_test


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
