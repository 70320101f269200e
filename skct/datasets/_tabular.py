"""Loaders of the real tabular data sets (CSV files in ``data_home``), preprocessing included.

Every loader returns a :class:`sklearn.utils.Bunch` whose ``target`` is 0/1 with 1 the desirable
outcome, plus the paper's immutable features and an *unfitted*
:class:`~sklearn.compose.ColumnTransformer` (``"num"``: standardisation, ``"cat"``: one-hot
encoding) that reproduces the paper's preprocessing once fitted on the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import Bunch

from ._home import find_file
from ._validation import check_bool, check_subset

__all__ = [
    "load_adult",
    "load_california_housing",
    "load_compas",
    "load_credit_default",
    "load_german_credit",
    "load_gmsc",
    "load_heloc",
]


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
    as_frame = check_bool(as_frame, "as_frame")
    path = find_file(spec.filename, data_home)
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


def load_adult(*, data_home=None, as_frame=True, subset="train", missing="drop"):
    """Load UCI Adult (census income), reading ``adult.csv`` or ``adult_test.data``.

    Leading spaces of values are stripped. By default ``"?"`` is read as missing and rows with
    a missing value are dropped (train: 30162 of 32561 rows remain; test: 15060 of 16281), and
    the index is reset; ``missing="keep"`` keeps every row, ``"?"`` being one more level of
    the categorical columns that hold it (workclass, occupation, native-country), as the
    paper's code does. Target ``income``: 1 = ``">50K"`` (about 25%). Categorical: workclass,
    education, marital-status, occupation, relationship, race, sex, native-country.
    Immutable (as in the paper): age. Duplicate rows are kept.
    {params}
    subset : {{"train", "test"}}, default="train"
        ``"train"`` reads ``adult.csv``; ``"test"`` reads the UCI test file
        ``adult_test.data`` (no header, a comment first line, labels ending in ``"."``).
        The test file lacks the native-country level "Holand-Netherlands"; the preprocessor's
        one-hot encoder ignores unknown levels.
    missing : {{"drop", "keep"}}, default="drop"
        ``"drop"``: drop the rows with a ``"?"``. ``"keep"``: keep them, with ``"?"`` as a
        level of its categorical column (train: 32561 rows; test: 16281); the one-hot
        encoding of the training file then has 102 columns (98 with the default).
    {returns}
    Examples
    --------
    >>> from skct.datasets import load_adult
    >>> adult = load_adult()
    >>> adult.data.shape, round(float(adult.target.mean()), 3)
    ((30162, 14), 0.249)
    >>> full = load_adult(missing="keep")
    >>> full.data.shape, int((full.data["workclass"] == "?").sum())
    ((32561, 14), 1836)
    """
    subset = check_subset(subset)
    as_frame = check_bool(as_frame, "as_frame")
    if missing not in ("drop", "keep"):
        raise ValueError(f"missing must be 'drop' or 'keep', got {missing!r}.")
    spec = _ADULT
    na = ["?"] if missing == "drop" else []
    common = {"skipinitialspace": True, "na_values": na, "keep_default_na": False}
    if subset == "train":
        path = find_file(spec.filename, data_home)
        df = _read_csv(path, spec, **common)
        _check_columns(df, spec, path)
    else:
        path = find_file("adult_test.data", data_home)
        df = _read_csv(path, spec, header=None, names=_ADULT_COLUMNS, skiprows=1, **common)
        df["income"] = df["income"].str.rstrip(".")
    df = df.dropna().reset_index(drop=True)
    labels = df["income"]
    unknown = sorted(set(labels.unique().tolist()) - {"<=50K", ">50K"})
    if unknown:
        raise ValueError(f"Unexpected income labels in '{path}': {unknown[:10]}.")
    df["income"] = (labels == ">50K").astype("int64")
    descr = None
    if missing == "keep":
        descr = (f"UCI Adult (census income), {subset} file with every row kept ({len(df)}): "
                 "'?' is a level of workclass, occupation and native-country. Target income: "
                 "1 = '>50K'. Immutable in the paper: age.")
    return _tabular_bunch(df, spec, as_frame, descr=descr)


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
