"""Tests of skct.datasets: synthetic makers, real-data loaders (on the real files), the split."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.utils import Bunch

from skct import datasets
from skct.datasets import _tabular
from skct.datasets import (
    DATASETS,
    get_data_home,
    load_adult,
    load_california_housing,
    load_compas,
    load_credit_default,
    load_german_credit,
    load_gmsc,
    load_heloc,
    load_mnist,
    load_synthetic,
    make_circles,
    make_credit_example,
    make_linearly_separable,
    make_moons,
    make_overlapping,
    train_test_split_paper,
)

# The real data sit beside the repository (../shared/data); they are always there in CI.
DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data"

MAKERS = [make_linearly_separable, make_overlapping, make_circles, make_moons]


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", MAKERS)
def test_maker_shapes_dtypes_balance(maker):
    X, y = maker(random_state=0)
    assert X.shape == (3000, 2) and y.shape == (3000,)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert np.isfinite(X).all()
    assert set(np.unique(y).tolist()) == {0, 1}
    assert np.bincount(y).tolist() == [1500, 1500]
    # rows come shuffled, so a head/tail split sees both classes
    assert 0.4 < y[:2400].mean() < 0.6


@pytest.mark.parametrize("maker", MAKERS)
def test_maker_reproducible(maker):
    X1, y1 = maker(500, random_state=42)
    X2, y2 = maker(500, random_state=42)
    X3, _ = maker(500, random_state=43)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert X1.shape == (500, 2)


@pytest.mark.parametrize("maker", MAKERS)
@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (1, ValueError), (-5, ValueError), (2.5, TypeError), ("100", TypeError),
     (True, TypeError), (None, TypeError)],
)  # fmt: skip
def test_maker_rejects_bad_n_samples(maker, bad, error):
    with pytest.raises(error, match="n_samples"):
        maker(bad)


def test_blob_geometry():
    X, y = make_linearly_separable(random_state=0)
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [-2, -2], atol=0.05)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [2, 2], atol=0.05)
    np.testing.assert_allclose(X[y == 0].std(axis=0), [0.5, 0.5], atol=0.05)
    X, y = make_overlapping(random_state=0)
    np.testing.assert_allclose(X[y == 1].std(axis=0), [2.0, 2.0], atol=0.15)


def test_linearly_separable_is_separable_and_overlapping_is_not():
    X, y = make_linearly_separable(random_state=0)
    assert LogisticRegression().fit(X, y).score(X, y) > 0.99
    X, y = make_overlapping(random_state=0)
    acc = LogisticRegression().fit(X, y).score(X, y)
    assert 0.8 < acc < 0.97  # Bayes accuracy is about 0.92


def test_circles_and_moons_parameters():
    X, y = make_circles(2000, random_state=0)
    r = np.linalg.norm(X, axis=1)
    # factor=0.01: the inner class is a blob at the origin, the outer one a ring of radius 1
    assert r[y == 1].mean() < 0.3
    assert r[y == 0].mean() > 0.8
    X0, _ = make_circles(200, noise=0.0, factor=0.5, random_state=0)
    np.testing.assert_allclose(np.sort(np.linalg.norm(X0, axis=1))[[0, -1]], [0.5, 1.0], atol=1e-5)
    Xa, _ = make_moons(200, noise=0.0, random_state=0)
    Xb, _ = make_moons(200, noise=0.3, random_state=0)
    assert not np.allclose(Xa, Xb)
    with pytest.raises(ValueError, match="noise"):
        make_moons(100, noise=-0.1)
    with pytest.raises(ValueError, match="factor"):
        make_circles(100, factor=1.5)


def test_make_credit_example():
    b = make_credit_example(random_state=0)
    assert isinstance(b, Bunch)
    assert list(b.data.columns) == ["age", "debt"] == b.feature_names
    assert b.data.shape == (1000, 2) and b.frame.shape == (1000, 3)
    assert b.immutable_features == ["age"]
    assert b.target_names == ["rejected", "approved"]
    assert b.target.dtype == np.int64 and b.target.value_counts().tolist() == [500, 500]
    assert (b.data.dtypes == np.float32).all()
    age, debt = b.data["age"], b.data["debt"]
    # approved applicants are older and have less debt; both features discriminate
    assert age[b.target == 1].mean() > 0.8 and age[b.target == 0].mean() < -0.8
    assert debt[b.target == 1].mean() < -0.8 and debt[b.target == 0].mean() > 0.8
    for col in ["age", "debt"]:
        acc = LogisticRegression().fit(b.data[[col]], b.target).score(b.data[[col]], b.target)
        assert acc > 0.8
    arr = make_credit_example(random_state=0, as_frame=False)
    assert isinstance(arr.data, np.ndarray) and arr.frame is None
    np.testing.assert_array_equal(arr.data, b.data.to_numpy())
    np.testing.assert_array_equal(arr.target, b.target.to_numpy())
    pd.testing.assert_frame_equal(make_credit_example(random_state=0).frame, b.frame)
    with pytest.raises(TypeError, match="as_frame"):
        make_credit_example(as_frame="yes")


def test_load_synthetic_dispatch():
    for name, maker in [
        ("linearly_separable", make_linearly_separable),
        ("overlapping", make_overlapping),
        ("circles", make_circles),
        ("moons", make_moons),
    ]:
        X1, y1 = load_synthetic(name, n_samples=300, random_state=3)
        X2, y2 = maker(300, random_state=3)
        np.testing.assert_array_equal(X1, X2)
        np.testing.assert_array_equal(y1, y2)
    assert load_synthetic("moons")[0].shape == (3000, 2)
    with pytest.raises(ValueError, match="linearly_separable.*moons|circles"):
        load_synthetic("spirals")


def test_datasets_registry():
    assert set(DATASETS) == {
        "adult", "california_housing", "credit_default", "gmsc", "german_credit", "heloc",
        "compas", "mnist", "linearly_separable", "overlapping", "circles", "moons",
        "credit_example",
    }  # fmt: skip
    assert DATASETS["adult"] is load_adult and DATASETS["moons"] is make_moons
    assert all(callable(f) for f in DATASETS.values())
    assert set(datasets.__all__) >= {f.__name__ for f in DATASETS.values()}


# --------------------------------------------------------------------------------------------
# Real tabular data (exact numbers observed in the files of ../shared/data)
# --------------------------------------------------------------------------------------------

# loader, rows, features, label column, positives, categorical, immutable, balanced
REAL = {
    "adult": (load_adult, 30162, 14, "income", 7508,
              ["workclass", "education", "marital-status", "occupation", "relationship",
               "race", "sex", "native-country"], ["age"], False),
    "california_housing": (load_california_housing, 20630, 8, "target", 10315, [],
                           ["HouseAge"], True),
    "credit_default": (load_credit_default, 13272, 23, "target", 6636,
                       ["SEX", "EDUCATION", "MARRIAGE"], ["AGE"], True),
    "gmsc": (load_gmsc, 16714, 10, "target", 8357, [], ["age"], True),
    "german_credit": (load_german_credit, 1000, 20, "target", 700, [], ["Age (years)"], False),
    "heloc": (load_heloc, 9871, 21, "RiskPerformance", 4735, [], ["MSinceOldestTradeOpen"],
              False),
    "compas": (load_compas, 6172, 7, "score", 5028, ["c_charge_degree", "race", "sex"],
               ["age", "race", "sex"], False),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_loader(name):
    loader, n, d, label, n_pos, categorical, immutable, balanced = REAL[name]
    b = loader(data_home=DATA_HOME)
    assert isinstance(b, Bunch)
    assert isinstance(b.data, pd.DataFrame) and isinstance(b.target, pd.Series)
    assert b.data.shape == (n, d) and b.frame.shape == (n, d + 1)
    assert list(b.frame.columns) == b.feature_names + [label]
    assert list(b.data.columns) == b.feature_names
    assert b.target.name == label and b.target.dtype == np.int64
    assert set(b.target.unique().tolist()) == {0, 1}
    assert int(b.target.sum()) == n_pos
    if balanced:
        assert abs(b.target.mean() - 0.5) <= 0.02
    assert b.categorical_features == categorical
    assert b.numerical_features == [c for c in b.feature_names if c not in categorical]
    assert b.immutable_features == immutable
    assert set(immutable) <= set(b.feature_names)
    assert len(b.target_names) == 2 and isinstance(b.DESCR, str) and b.DESCR
    assert not b.data.isna().any().any()
    assert b.data.index.equals(pd.RangeIndex(n))

    pre = b.preprocessor
    assert isinstance(pre, ColumnTransformer)
    assert not hasattr(pre, "transformers_")  # unfitted
    assert [t[0] for t in pre.transformers] == (["num", "cat"] if categorical else ["num"])
    Xt = pre.fit_transform(b.data)
    assert isinstance(Xt, np.ndarray) and Xt.dtype.kind == "f" and Xt.shape[0] == n
    assert np.isfinite(Xt).all()
    names = pre.get_feature_names_out()
    assert len(names) == Xt.shape[1]
    assert [f"num__{c}" for c in b.numerical_features] == list(names[: len(b.numerical_features)])
    assert all(s.startswith(("num__", "cat__")) for s in names)
    np.testing.assert_allclose(Xt[:, : len(b.numerical_features)].mean(axis=0), 0, atol=1e-6)
    if categorical:
        onehot = Xt[:, len(b.numerical_features) :]
        assert set(np.unique(onehot).tolist()) == {0.0, 1.0}
        np.testing.assert_array_equal(onehot.sum(axis=1), len(categorical))
    # a fresh, independent preprocessor on each call
    assert loader(data_home=DATA_HOME).preprocessor is not pre


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_loader_as_arrays(name):
    loader = REAL[name][0]
    framed = loader(data_home=DATA_HOME)
    b = loader(data_home=DATA_HOME, as_frame=False)
    assert isinstance(b.data, np.ndarray) and isinstance(b.target, np.ndarray)
    assert b.frame is None and b.target.dtype == np.int64
    np.testing.assert_array_equal(b.target, framed.target.to_numpy())
    Xt = b.preprocessor.fit_transform(b.data)
    np.testing.assert_allclose(Xt, framed.preprocessor.fit_transform(framed.data))


def test_adult_details():
    b = load_adult(data_home=DATA_HOME)
    # values have no leading spaces and no "?"
    for col in b.categorical_features:
        values = b.data[col].astype(str)
        assert not values.str.startswith(" ").any()
        assert not (values == "?").any()
    assert set(b.data["sex"].unique().tolist()) == {"Male", "Female"}
    assert b.target_names == ["<=50K", ">50K"]
    assert b.data["age"].dtype == np.int64
    names = b.preprocessor.fit(b.data).get_feature_names_out().tolist()
    assert "num__age" in names and "cat__sex_Male" in names


def test_adult_test_subset():
    train = load_adult(data_home=DATA_HOME)
    test = load_adult(data_home=DATA_HOME, subset="test")
    assert test.data.shape == (15060, 14)
    assert int(test.target.sum()) == 3700
    assert list(test.frame.columns) == list(train.frame.columns)
    assert (test.data.dtypes == train.data.dtypes).all()
    assert set(test.target.unique().tolist()) == {0, 1}
    # the test file lacks a native-country level of the training file: ignored, not an error
    Xt = train.preprocessor.fit(train.data).transform(test.data)
    assert Xt.shape == (15060, 104) and np.isfinite(Xt).all()
    with pytest.raises(ValueError, match="subset"):
        load_adult(data_home=DATA_HOME, subset="validation")


def test_label_meanings():
    heloc = load_heloc(data_home=DATA_HOME)
    assert heloc.target_names == ["Bad", "Good"]
    # good risk performance goes with a higher external risk estimate (a higher score is better)
    ext = heloc.data["ExternalRiskEstimate"]
    assert ext[heloc.target == 1].mean() > ext[heloc.target == 0].mean()
    compas = load_compas(data_home=DATA_HOME)
    # score 1 is the desirable (low/medium risk) outcome: fewer priors than score 0
    priors = compas.data["priors_count"]
    assert priors[compas.target == 1].mean() < priors[compas.target == 0].mean()
    credit = load_credit_default(data_home=DATA_HOME)
    pay = credit.data["PAY_0"]  # repayment delay last month
    assert pay[credit.target == 1].mean() < pay[credit.target == 0].mean()


def test_loaders_validate_as_frame():
    with pytest.raises(TypeError, match="as_frame"):
        load_gmsc(data_home=DATA_HOME, as_frame="no")
    with pytest.raises(TypeError, match="data_home"):
        load_gmsc(data_home=3)


# --------------------------------------------------------------------------------------------
# Locating the data
# --------------------------------------------------------------------------------------------


def test_data_home_argument_and_str(monkeypatch):
    monkeypatch.delenv("SKCT_DATA_HOME", raising=False)
    assert load_german_credit(data_home=str(DATA_HOME)).data.shape == (1000, 20)
    assert get_data_home(DATA_HOME) == DATA_HOME.resolve()


def test_env_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SKCT_DATA_HOME", str(DATA_HOME))
    assert load_german_credit().data.shape == (1000, 20)
    assert get_data_home() == DATA_HOME.resolve()
    # the env variable is authoritative: an empty directory there means "not found"
    monkeypatch.setenv("SKCT_DATA_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        load_german_credit()
    msg = str(err.value)
    assert str(tmp_path.resolve()) in msg and "german_credit.csv" in msg
    assert "SKCT_DATA_HOME" in msg
    # but an explicit data_home wins over the env variable
    assert load_german_credit(data_home=DATA_HOME).data.shape == (1000, 20)


def test_default_locations(monkeypatch, tmp_path):
    monkeypatch.delenv("SKCT_DATA_HOME", raising=False)
    # from an unrelated cwd, the repository-relative default still finds the real data
    monkeypatch.chdir(tmp_path)
    assert load_german_credit().data.shape == (1000, 20)
    assert get_data_home() == DATA_HOME.resolve()
    # ../shared/data relative to the cwd comes first
    project, shared = tmp_path / "project", tmp_path / "shared" / "data"
    project.mkdir()
    shared.mkdir(parents=True)
    head = (DATA_HOME / "german_credit.csv").read_text().splitlines()[:11]
    (shared / "german_credit.csv").write_text("\n".join(head) + "\n")
    monkeypatch.chdir(project)
    assert load_german_credit().data.shape == (10, 20)
    assert get_data_home() == shared.resolve()
    # a file missing in the cwd-relative directory is taken from the next default
    assert load_gmsc().data.shape == (16714, 10)


def test_missing_file_message(tmp_path):
    empty = tmp_path / "nothing here"
    empty.mkdir()
    for loader, filename in [
        (load_adult, "adult.csv"),
        (load_heloc, "heloc.csv"),
        (load_mnist, "mnist.npz"),
    ]:
        with pytest.raises(FileNotFoundError) as err:
            loader(data_home=empty)
        msg = str(err.value)
        assert str(empty.resolve()) in msg and filename in msg
        assert "data_home" in msg and "SKCT_DATA_HOME" in msg
    with pytest.raises(FileNotFoundError, match="adult_test.data"):
        load_adult(data_home=empty, subset="test")
    with pytest.raises(FileNotFoundError, match="No data directory"):
        get_data_home(tmp_path / "does-not-exist")


def test_default_missing_file_lists_every_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("SKCT_DATA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    missing = _tabular._TabularSpec(**{**_tabular._GMSC.__dict__, "filename": "no_such_file.csv"})
    with pytest.raises(FileNotFoundError) as err:
        _tabular._load_simple(missing, None, True)
    msg = str(err.value)
    assert "no_such_file.csv" in msg
    assert str((tmp_path / ".." / "shared" / "data").resolve()) in msg
    assert str(DATA_HOME.resolve()) in msg


def test_wrong_columns_are_reported(tmp_path):
    (tmp_path / "gmsc.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected columns"):
        load_gmsc(data_home=tmp_path)


# --------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------


def test_mnist_train():
    b = load_mnist(data_home=DATA_HOME)
    assert b.data.shape == (60000, 784) and b.data.dtype == np.float32
    assert b.images.shape == (60000, 28, 28) and b.images.dtype == np.float32
    assert b.target.shape == (60000,) and b.target.dtype == np.int64
    assert b.data.min() == -1.0 and b.data.max() == 1.0
    assert np.bincount(b.target).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                              5851, 5949]  # fmt: skip
    np.testing.assert_array_equal(b.images.reshape(60000, 784), b.data)
    assert b.preprocessor is None and b.frame is None
    assert b.feature_names[0] == "pixel_0" and b.feature_names[-1] == "pixel_783"
    assert len(b.feature_names) == 784


def test_mnist_test_subset_and_immutable_pixels():
    b = load_mnist(data_home=DATA_HOME, subset="test")
    assert b.data.shape == (10000, 784) and b.target.shape == (10000,)
    assert set(np.unique(b.target).tolist()) == set(range(10))
    imm = b.immutable_features
    assert len(imm) == 10 * 28 == 280 and len(set(imm)) == 280
    assert sorted(imm) == list(range(140)) + list(range(644, 784))
    mask = np.zeros((28, 28), bool)
    mask.flat[imm] = True
    assert mask[:5].all() and mask[-5:].all() and not mask[5:-5].any()
    # pixel scaling: uint8 p -> p / 127.5 - 1
    with np.load(DATA_HOME / "mnist.npz") as raw:
        x = raw["x_test"][:5]
    np.testing.assert_allclose(b.images[:5], x / 127.5 - 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="subset"):
        load_mnist(data_home=DATA_HOME, subset="all")


# --------------------------------------------------------------------------------------------
# The paper's split
# --------------------------------------------------------------------------------------------


def test_split_arrays_keep_order():
    X = np.arange(200, dtype=float).reshape(100, 2)
    y = np.arange(100)
    X0, y0 = X.copy(), y.copy()
    X_train, X_test, y_train, y_test = train_test_split_paper(X, y)
    assert X_train.shape == (80, 2) and X_test.shape == (20, 2)
    np.testing.assert_array_equal(y_train, np.arange(80))
    np.testing.assert_array_equal(y_test, np.arange(80, 100))
    np.testing.assert_array_equal(np.vstack([X_train, X_test]), X)
    X_train[:] = -1  # copies: the inputs stay untouched
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_split_frames_and_sizes():
    b = load_german_credit(data_home=DATA_HOME)
    X_train, X_test, y_train, y_test = train_test_split_paper(b.data, b.target)
    assert isinstance(X_train, pd.DataFrame) and isinstance(y_test, pd.Series)
    assert len(X_train) == 800 and len(X_test) == 200
    pd.testing.assert_series_equal(y_train, b.target.iloc[:800])
    pd.testing.assert_frame_equal(X_train, b.data.iloc[:800])
    pd.testing.assert_series_equal(y_test, b.target.iloc[800:])
    assert list(X_test.index) == list(range(800, 1000))
    X_train, X_test, _, y_test = train_test_split_paper(
        list(range(10)), list(range(10)), train_size=0.7
    )
    assert X_train == list(range(7)) and y_test == [7, 8, 9]
    X_train, _, _, _ = train_test_split_paper(np.zeros((10, 1)), np.zeros(10), train_size=3)
    assert len(X_train) == 3


@pytest.mark.parametrize("train_size", [0.0, 1.0, 1.5, -0.2, 0, 10, 0.01])
def test_split_rejects_bad_train_size(train_size):
    with pytest.raises(ValueError, match="train_size"):
        train_test_split_paper(np.zeros((10, 2)), np.zeros(10), train_size=train_size)


@pytest.mark.parametrize("train_size", ["0.8", True, None])
def test_split_rejects_train_size_of_wrong_type(train_size):
    with pytest.raises(TypeError, match="train_size"):
        train_test_split_paper(np.zeros((10, 2)), np.zeros(10), train_size=train_size)


def test_split_rejects_length_mismatch():
    with pytest.raises(ValueError, match="rows"):
        train_test_split_paper(np.zeros((10, 2)), np.zeros(9))
