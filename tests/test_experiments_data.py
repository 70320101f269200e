"""The experiment's data preparation: skct's and the paper code's (``data="reference"``)."""

import warnings

import numpy as np
import pytest

from skct.datasets import REFERENCE_CENTERS, get_data_home
from skct.experiments import load_experiment_data
from skct.experiments._data import (
    _balanced_sample,
    _julia_ratio_rows,
    _reference_encode,
    constraints_for,
    reference_domain,
    reference_validation_split,
)


def _has_file(name):
    try:
        return (get_data_home() / name).is_file()
    except FileNotFoundError:
        return False


needs_adult = pytest.mark.skipif(not _has_file("adult.csv"),
                                 reason="adult.csv not in the data directory")


def test_skct_data_has_empty_validation_and_records_variants():
    d = load_experiment_data("circles", n_samples=200, random_state=1)
    assert d.X_train.shape == (160, 2) and d.X_test.shape == (40, 2)
    assert d.X_val.shape == (0, 2) and d.X_val.dtype == np.float32
    assert d.y_val.shape == (0,) and d.y_val.dtype == np.int64
    assert d.bounds == "auto"
    assert d.info["data"] == "skct" and d.info["domain"] == "skct" and d.info["n_val"] == 0


@pytest.mark.parametrize("name", ["data", "domain"])
def test_variants_are_checked(name):
    with pytest.raises(ValueError, match=name):
        load_experiment_data("moons", n_samples=100, **{name: "julia"})


@pytest.mark.parametrize("dataset", ["linearly_separable", "circles", "moons", "overlapping"])
def test_reference_synthetic_split_sizes(dataset):
    d = load_experiment_data(dataset, data="reference", random_state=0)
    assert d.X_train.shape[0] + d.X_val.shape[0] == 3600 and d.X_test.shape == (900, 2)
    # floor(600 / 3600 * n_c) rows of each class: 600 only when both counts divide by 6
    n_c = np.bincount(np.concatenate([d.y_train, d.y_val]))
    assert d.X_val.shape[0] == sum(int(c // 6) for c in n_c) in (599, 600)
    assert d.X_train.shape[0] in (3000, 3001)
    assert d.info["data"] == "reference" and d.info["n_val"] == d.X_val.shape[0]
    # the validation split is stratified
    assert abs(d.y_val.mean() - d.y_train.mean()) < 0.01


def test_reference_synthetic_uses_the_reference_generator_and_seed():
    d = load_experiment_data("linearly_separable", data="reference", random_state=0)
    X = np.concatenate([d.X_train, d.X_val, d.X_test])
    y = np.concatenate([d.y_train, d.y_val, d.y_test])
    np.testing.assert_allclose(X[y == 1].mean(axis=0), REFERENCE_CENTERS[1], atol=0.05)
    again = load_experiment_data("linearly_separable", data="reference", random_state=0)
    for key in ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test"):
        np.testing.assert_array_equal(d[key], again[key])
    other = load_experiment_data("linearly_separable", data="reference", random_state=1)
    assert not np.array_equal(d.X_train[:10], other.X_train[:10])
    small = load_experiment_data("moons", data="reference", n_samples=300)
    assert small.X_train.shape[0] + small.X_val.shape[0] == 240
    assert small.X_test.shape[0] == 60


def test_validation_split_rule():
    y = np.array([0] * 601 + [1] * 599)
    train, val = reference_validation_split(y, 1 / 6, 0)
    assert np.bincount(y[val]).tolist() == [100, 99]  # floor(100.17), floor(99.83)
    assert np.all(np.diff(val) > 0) and np.all(np.diff(train) > 0)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    again = reference_validation_split(y, 1 / 6, 0)
    assert np.array_equal(val, again[1])


def test_julia_rounding_of_the_split():
    # Int(round(0.8f0 * n)): Adult's 32561 rows give 26049 training rows (floor: 26048)
    assert _julia_ratio_rows(32561) == 26049
    assert _julia_ratio_rows(13272) == 10618
    assert _julia_ratio_rows(4500) == 3600 and _julia_ratio_rows(16714) == 13371


def test_reference_domain_formula():
    X = np.column_stack([[0.0] * 9 + [10.0], [1.0] * 10])  # mu 1, sd 3.16 in column 0
    mu, sd = X[:, 0].mean(), X[:, 0].std(ddof=1)
    bounds = reference_domain(X)
    assert bounds[0] == pytest.approx((min(mu - 2 * sd, 0.0), max(mu + 2 * sd, 10.0)))
    assert bounds[0][0] == pytest.approx(mu - 2 * sd)  # below the smallest value
    assert bounds[0][1] == 10.0  # the largest value lies beyond mu + 2 sd
    assert bounds[1] == (1.0, 1.0)


def test_reference_domain_on_loaded_data():
    d = load_experiment_data("moons", data="reference", domain="reference")
    X = np.concatenate([d.X_train, d.X_val]).astype(np.float64)
    assert sorted(d.bounds) == [0, 1] and d.info["domain"] == "reference"
    for j in (0, 1):
        expected = (min(X[:, j].mean() - 2 * X[:, j].std(ddof=1), X[:, j].min()),
                    max(X[:, j].mean() + 2 * X[:, j].std(ddof=1), X[:, j].max()))
        assert d.bounds[j] == pytest.approx(expected)
    # the skct preparation can take the reference domain too
    s = load_experiment_data("moons", n_samples=200, domain="reference")
    expected = reference_domain(s.X_train)
    assert all(s.bounds[j] == pytest.approx(expected[j]) for j in (0, 1))


def test_balanced_sample_rule():
    y = np.array([3] * 50 + [1] * 10 + [2] * 40)
    idx = _balanced_sample(y, 30, np.random.RandomState(0))
    assert len(idx) == 30 and np.all(np.diff(idx) >= 0)
    assert np.bincount(y[idx], minlength=4)[1:].tolist() == [10, 10, 10]


def test_reference_mnist_on_a_small_file(tmp_path):
    rng = np.random.RandomState(0)
    y_train = np.repeat(np.arange(10), [50, 30, 20, 40, 40, 40, 40, 40, 40, 40])
    rng.shuffle(y_train)
    x_train = rng.randint(0, 256, size=(len(y_train), 28, 28)).astype(np.uint8)
    x_test = rng.randint(0, 256, size=(20, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=np.arange(20) % 10)
    d = load_experiment_data("mnist", data_home=tmp_path, data="reference", n_train=100)
    # 1100 images, 110 per digit (with replacement), 100 per digit to validation
    assert d.X_train.shape == (100, 784) and d.X_val.shape == (1000, 784)
    assert np.bincount(d.y_train).tolist() == [10] * 10
    assert np.bincount(d.y_val).tolist() == [100] * 10
    assert d.X_test.shape == (20, 784) and d.bounds[0] == (-1.0, 1.0)
    assert float(d.X_train.min()) >= -1.0 and float(d.X_train.max()) <= 1.0
    dom = load_experiment_data("mnist", data_home=tmp_path, data="reference", n_train=100,
                               domain="reference")
    assert dom.bounds == d.bounds  # MNIST keeps [-1, 1]
    skct = load_experiment_data("mnist", data_home=tmp_path, n_train=100)
    np.testing.assert_allclose(skct.X_train, x_train[:100].reshape(100, -1) / 127.5 - 1,
                               atol=1e-6)


def test_reference_encoding_rule():
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 10.0], "c": ["x", "y", "x", "z"],
                          "b": [0, 1, 0, 1]})
    Z_train, Z_test = _reference_encode(frame, 3, ["a", "b"], ["c"])
    assert list(Z_train.columns) == ["num__a", "cat__c_x", "cat__c_y", "cat__c_z", "num__b"]
    np.testing.assert_allclose(Z_train["num__a"], [-1.0, 0.0, 1.0])  # sample std of 1, 2, 3
    np.testing.assert_allclose(Z_test["num__a"], [8.0])
    # every level of the file, also one only in the test rows
    assert Z_train["cat__c_z"].tolist() == [0.0, 0.0, 0.0] and Z_test["cat__c_z"].item() == 1.0


@needs_adult
def test_reference_adult():
    d = load_experiment_data("adult", data="reference", domain="reference")
    assert d.X_train.shape[0] + d.X_val.shape[0] == 26049 and d.X_test.shape[0] == 6512
    assert d.X_train.shape[1] == 108 and 995 <= d.X_val.shape[0] <= 1000
    assert [len(g) for g in d.categorical] == [9, 16, 7, 15, 6, 5, 2, 42]
    assert d.feature_names[0] == "num__age" and d.immutable == [0]
    assert "cat__workclass_?" in d.feature_names
    assert sorted(d.bounds) == list(range(108))
    # training rows (train + validation) standardised with the sample std
    X = np.concatenate([d.X_train, d.X_val]).astype(np.float64)
    assert abs(X[:, 0].mean()) < 1e-5 and X[:, 0].std(ddof=1) == pytest.approx(1.0, abs=1e-5)
    # one-hot columns get bounds too: [min(mu - 2 sd, 0), max(mu + 2 sd, 1)]
    j = d.categorical[6][0]
    assert d.bounds[j][0] < 0.0 and d.bounds[j][1] > 1.0
    skct = load_experiment_data("adult")
    assert skct.X_train.shape == (24129, 104) and skct.X_val.shape == (0, 104)


@needs_adult
def test_constraints_with_reference_bounds_on_one_hot_columns():
    d = load_experiment_data("adult", data="reference", domain="reference")
    X = np.concatenate([d.X_train, d.X_val])
    g = d.categorical[6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bounds given to the immutable age column
        grouped = constraints_for(d, True).fit(X)
        plain = constraints_for(d, True, categorical=False).fit(X)
    assert len(grouped.categorical_groups_) == 8
    np.testing.assert_array_equal(grouped.lower_model_[g], 0.0)  # a group lives in [0, 1]
    assert len(plain.categorical_groups_) == 0
    np.testing.assert_allclose(plain.lower_model_[g], [d.bounds[j][0] for j in g])
    np.testing.assert_allclose(plain.upper_model_[g], [d.bounds[j][1] for j in g])
    assert set(plain.feature_kinds_[g].tolist()) == {"continuous"}  # never rounded
    assert plain.mutability_model_[0] == "none"


def test_constraints_for_without_groups_is_unchanged():
    d = load_experiment_data("moons", n_samples=100)
    a = constraints_for(d, True).fit(d.X_train)
    b = constraints_for(d, True, categorical=False).fit(d.X_train)
    np.testing.assert_array_equal(a.lower_model_, b.lower_model_)
    assert list(a.mutability_model_) == list(b.mutability_model_) == ["none", "both"]


def test_constraints_for_passes_widen_bounds():
    d = load_experiment_data("moons", n_samples=100, domain="reference")
    assert constraints_for(d, False).widen_bounds is True
    assert constraints_for(d, False, widen_bounds=False).widen_bounds is False
