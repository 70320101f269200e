"""The paper code's versions of the data sets: ``variant="reference"`` makers, Adult with "?"."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skct.datasets import (
    REFERENCE_CENTERS,
    get_data_home,
    load_adult,
    load_synthetic,
    make_circles,
    make_linearly_separable,
    make_moons,
    make_overlapping,
)
from skct.datasets._synthetic import _reference_blobs

MAKERS = [make_linearly_separable, make_overlapping, make_circles, make_moons]


def _has_file(name):
    try:
        return (get_data_home() / name).is_file()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("maker", MAKERS)
def test_reference_variant_shapes_balance_and_seed(maker):
    X, y = maker(1000, random_state=0, variant="reference")
    assert X.shape == (1000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500, 500]
    assert 0.4 < y[:500].mean() < 0.6  # rows come shuffled
    X2, y2 = maker(1000, random_state=0, variant="reference")
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, maker(1000, random_state=1, variant="reference")[0])
    # the default is unchanged and differs from the reference
    np.testing.assert_array_equal(maker(1000, random_state=0)[0],
                                  maker(1000, random_state=0, variant="skct")[0])


@pytest.mark.parametrize("maker", MAKERS)
def test_variant_is_checked(maker):
    with pytest.raises(ValueError, match="variant"):
        maker(100, variant="julia")


def test_reference_blob_centres_and_stds():
    X, y = make_linearly_separable(20000, random_state=0, variant="reference")
    for cls in (0, 1):
        np.testing.assert_allclose(X[y == cls].mean(axis=0), REFERENCE_CENTERS[cls], atol=0.02)
    assert REFERENCE_CENTERS == ((2.587, -0.452), (-0.993, 4.063))
    X, y = make_overlapping(20000, random_state=0, variant="reference")
    np.testing.assert_allclose(X[y == 1].mean(axis=0), REFERENCE_CENTERS[1], atol=0.06)
    np.testing.assert_allclose(X[y == 1].std(axis=0), [2.0, 2.0], atol=0.05)
    # the paper's overlapping accuracy is about 0.92; the separable set is separable
    acc = LogisticRegression().fit(X, y).score(X, y)
    assert 0.9 < acc < 0.94
    X, y = make_linearly_separable(3000, random_state=0, variant="reference")
    assert LogisticRegression().fit(X, y).score(X, y) > 0.99


def test_reference_blobs_shared_row():
    # MLJBase's row ranges of the two centres share the last row of class 0: it gets both
    # shifts (and both scalings) and keeps label 0
    rng = np.random.RandomState(0)
    z = rng.standard_normal((10, 2))
    X, y = _reference_blobs(10, 0.5, np.random.RandomState(0))
    c0, c1 = np.asarray(REFERENCE_CENTERS)
    shared = (z[4] * 0.5 + c0) * 0.5 + c1
    hit = np.flatnonzero(np.isclose(X, shared.astype(np.float32)).all(axis=1))
    assert len(hit) == 1 and y[hit[0]] == 0
    assert np.bincount(y).tolist() == [5, 5]


def test_reference_moons_geometry():
    X, y = make_moons(4000, noise=0.0, random_state=0, variant="reference")
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.3), 1.0, atol=1e-5)
    assert upper[:, 1].min() >= 0 and lower[:, 1].max() <= 0.3 + 1e-6  # yshift 0.3, not 0.5
    assert lower[:, 1].max() > 0.29
    # angles drawn at random (scikit-learn spaces them evenly)
    gaps = np.diff(np.sort(np.arctan2(upper[:, 1], upper[:, 0])))
    assert gaps.std() > 0.5 * gaps.mean()
    Xn, yn = make_moons(4000, noise=0.1, random_state=0, variant="reference")
    radial = np.hypot(*Xn[yn == 0].T) - 1.0  # Gaussian noise of std 0.1 around the moon
    assert 0.08 < radial.std() < 0.12


def test_reference_moons_odd_rows():
    # as in MLJBase: n // 2 rows labelled 0, the middle row of an odd n lies on the upper moon
    X, y = make_moons(5, noise=0.0, random_state=0, variant="reference")
    assert np.bincount(y).tolist() == [2, 3]
    assert (X[:, 1] >= -1e-7).sum() >= 3


def test_reference_circles_inner_circle_is_class_0():
    X, y = make_circles(3000, random_state=0, variant="reference")
    r = np.linalg.norm(X, axis=1)
    assert r[y == 0].mean() < 0.3 and r[y == 1].mean() > 0.8
    # skct's (scikit-learn's) labels are the other way round
    Xs, ys = make_circles(3000, random_state=0)
    rs = np.linalg.norm(Xs, axis=1)
    assert rs[ys == 1].mean() < 0.3 and rs[ys == 0].mean() > 0.8
    X0, y0 = make_circles(2000, noise=0.0, factor=0.5, random_state=0, variant="reference")
    np.testing.assert_allclose(np.linalg.norm(X0[y0 == 0], axis=1), 0.5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(X0[y0 == 1], axis=1), 1.0, atol=1e-6)


def test_load_synthetic_passes_the_variant():
    X, y = load_synthetic("circles", n_samples=60, random_state=2, variant="reference")
    Xr, yr = make_circles(60, random_state=2, variant="reference")
    np.testing.assert_array_equal(X, Xr)
    np.testing.assert_array_equal(y, yr)


# --------------------------------------------------------------------------------------------
# Adult with "?" kept


@pytest.mark.skipif(not _has_file("adult.csv"), reason="adult.csv not in the data directory")
def test_adult_keep_missing():
    full = load_adult(missing="keep")
    assert full.data.shape == (32561, 14) and not full.data.isna().any().any()
    counts = {c: int((full.data[c] == "?").sum()) for c in full.categorical_features}
    assert counts["workclass"] == 1836 and counts["occupation"] == 1843
    assert counts["native-country"] == 583 and counts["sex"] == 0
    levels = sum(full.data[c].nunique() for c in full.categorical_features)
    assert levels == 102 and len(full.numerical_features) == 6  # 108 model columns
    Z = full.preprocessor.fit_transform(full.data.iloc[:26049])
    assert Z.shape == (26049, 108)
    dropped = load_adult()
    assert dropped.data.shape == (30162, 14)  # default unchanged
    assert "every row kept" in full.DESCR


@pytest.mark.skipif(not _has_file("adult_test.data"), reason="adult_test.data not present")
def test_adult_keep_missing_test_subset():
    test = load_adult(missing="keep", subset="test")
    assert test.data.shape == (16281, 14)
    assert int((test.data["workclass"] == "?").sum()) == 963


def test_adult_missing_is_checked():
    with pytest.raises(ValueError, match="missing"):
        load_adult(missing="impute")
