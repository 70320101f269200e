"""Tests of the normalised and bootstrapped protected-feature sensitivity
(skct/metrics/_robustness.py): hand-computed values on linear models, where integrated
gradients are exact."""

import numpy as np
import pytest
from sklearn.utils import check_random_state

from skct.metrics import protected_feature_sensitivity
from skct.metrics._robustness import _normalize_rounds, _round_weights

from test_metrics import linear

pytest.importorskip("captum")

W = np.array([[1.0, -2.0, 0.0, 0.5], [-0.5, 3.0, 0.0, 1.0]])
BIAS = [0.3, -0.1]


def exact_ig(X, target, low, high, seed):
    """IG of a linear model with the function's baseline draws: (x - b) * W[t], [n, d]."""
    rng = check_random_state(seed)
    b = low + (high - low) * rng.random_sample(X.shape)
    return (X - b) * W[target], rng


@pytest.fixture
def rows():
    X = np.random.default_rng(0).normal(size=(12, 4))
    target = np.array([0, 1] * 6)
    return X, target


def test_default_unchanged_by_the_new_options(rows):
    X, target = rows
    model = linear(W, BIAS)
    ig, _ = exact_ig(X, target, X.min(0), X.max(0), 3)
    got = protected_feature_sensitivity(model, X, features=[0, 1], target=target,
                                        random_state=3)
    assert got == pytest.approx(np.abs(ig)[:, :2].mean(), rel=1e-5)
    same = protected_feature_sensitivity(model, X, features=[0, 1], target=target,
                                         normalize=None, baseline="data_range",
                                         random_state=3)
    assert same == got


@pytest.mark.parametrize("how", ["range", "minmax"])
def test_normalised_mean_attribution(rows, how):
    X, target = rows
    ig, _ = exact_ig(X, target, X.min(0), X.max(0), 5)
    g = ig.mean(0)  # signed mean over rows [d]
    span = g.max() - g.min()
    norm = np.abs(g) / span if how == "range" else (g - g.min()) / span
    got = protected_feature_sensitivity(linear(W, BIAS), X, features=[0, 2], target=target,
                                        normalize=how, per_feature=True, random_state=5)
    np.testing.assert_allclose(got, norm[[0, 2]], rtol=1e-5, atol=1e-7)
    mean = protected_feature_sensitivity(linear(W, BIAS), X, features=[0, 2], target=target,
                                         normalize=how, random_state=5)
    assert isinstance(mean, float) and mean == pytest.approx(norm[[0, 2]].mean(), rel=1e-5)


def test_paper_normalisation_picks_by_dimension(rows):
    X, target = rows
    kw = {"features": [0], "target": target, "random_state": 1}
    model4 = linear(W, BIAS)
    assert (protected_feature_sensitivity(model4, X, normalize="paper", **kw)
            == protected_feature_sensitivity(model4, X, normalize="minmax", **kw))
    model2 = linear(W[:, :2], BIAS)
    X2 = X[:, :2]
    assert (protected_feature_sensitivity(model2, X2, normalize="paper", **kw)
            == protected_feature_sensitivity(model2, X2, normalize="range", **kw))


def test_scale_free_where_the_absolute_figure_is_not(rows):
    X, target = rows
    kw = {"features": [1], "target": target, "random_state": 2}
    small, big = linear(W, BIAS), linear(10 * W, BIAS)
    absolute = [protected_feature_sensitivity(m, X, **kw) for m in (small, big)]
    assert absolute[1] == pytest.approx(10 * absolute[0], rel=1e-5)
    normalised = [protected_feature_sensitivity(m, X, normalize="minmax", **kw)
                  for m in (small, big)]
    assert normalised[1] == pytest.approx(normalised[0], rel=1e-5)


def test_baseline_interval(rows):
    X, target = rows
    ig, _ = exact_ig(X, target, np.full(4, -1.0), np.full(4, 1.0), 4)
    got = protected_feature_sensitivity(linear(W, BIAS), X, features=[0, 1, 3],
                                        target=target, baseline=(-1, 1), per_feature=True,
                                        random_state=4)
    np.testing.assert_allclose(got, np.abs(ig)[:, [0, 1, 3]].mean(0), rtol=1e-5)
    per_column = protected_feature_sensitivity(
        linear(W, BIAS), X, features=[0], target=target,
        baseline=(np.full(4, -1.0), [1.0, 1.0, 1.0, 1.0]), random_state=4)
    assert per_column == pytest.approx(got[0], rel=1e-6)


def test_rounds_are_bootstrap_means(rows):
    X, target = rows
    ig, rng = exact_ig(X, target, X.min(0), X.max(0), 9)
    idx = rng.randint(0, len(X), size=(6, 20))  # the rounds' draws follow the baselines'
    g = ig[idx].mean(axis=1)  # [R, d]
    expected = ((g - g.min(1, keepdims=True))
                / (g.max(1, keepdims=True) - g.min(1, keepdims=True)))[:, [1, 3]]
    got = protected_feature_sensitivity(linear(W, BIAS), X, features=[1, 3], target=target,
                                        normalize="minmax", n_rounds=6, round_size=20,
                                        per_feature=True, random_state=9)
    assert got.shape == (6, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    mean = protected_feature_sensitivity(linear(W, BIAS), X, features=[1, 3], target=target,
                                         normalize="minmax", n_rounds=6, round_size=20,
                                         random_state=9)
    np.testing.assert_allclose(mean, expected.mean(1), rtol=1e-5, atol=1e-7)
    absolute = protected_feature_sensitivity(linear(W, BIAS), X, features=[1], target=target,
                                             n_rounds=6, round_size=20, random_state=9)
    np.testing.assert_allclose(absolute, np.abs(ig)[idx][:, :, 1].mean(1), rtol=1e-5)


def test_round_weights_count_the_draws():
    rng = np.random.RandomState(0)
    w = _round_weights(5, 3, 7, rng)
    idx = np.random.RandomState(0).randint(0, 5, size=(3, 7))
    expected = np.stack([np.bincount(r, minlength=5) for r in idx]) / 7
    np.testing.assert_array_equal(w, expected)


def test_constant_attributions_normalise_to_zero():
    g = np.array([[2.0, 2.0, 2.0], [1.0, 3.0, 2.0]])
    out = _normalize_rounds(g, "minmax")
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(_normalize_rounds(g, "range")[1], [0.5, 1.5, 1.0])


def test_inputs_left_alone(rows):
    X, target = rows
    X0, model = X.copy(), linear(W, BIAS)
    model.train()
    protected_feature_sensitivity(model, X, features=[0], normalize="paper", n_rounds=3,
                                  target=target, random_state=0)
    np.testing.assert_array_equal(X, X0)
    assert all(p.grad is None for p in model.parameters()) and model.training


@pytest.mark.parametrize("kw, match", [
    ({"normalize": "zscore"}, "normalize"),
    ({"baseline": "zeros"}, "baseline"),
    ({"baseline": (1.0, -1.0)}, "low <= high"),
    ({"baseline": ([0.0, 0.0], [1.0, 1.0, 1.0])}, "baseline"),
    ({"n_rounds": 0}, "n_rounds"),
    ({"round_size": 0}, "round_size"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        protected_feature_sensitivity(linear(W, BIAS), np.zeros((3, 4)), features=[0], **kw)


def test_row_chunks_give_the_same_attributions(rows, monkeypatch):
    from skct.metrics import _robustness

    X, target = rows
    kw = {"features": [0, 1, 3], "target": target, "per_feature": True, "random_state": 6}
    whole = protected_feature_sensitivity(linear(W, BIAS), X, **kw)
    monkeypatch.setattr(_robustness, "_IG_POINTS", 5 * 50 * 4)  # chunks of 5 rows: 5, 5, 2
    chunked = protected_feature_sensitivity(linear(W, BIAS), X, **kw)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6)
