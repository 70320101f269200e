"""Tests of skct.metrics: hand-computed values on tiny arrays, attack invariants, bad input."""

import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.utils import check_random_state

from skct.metrics import _faithfulness, _plausibility
from skct.metrics import (
    METRICS,
    adversarial_accuracy,
    cost,
    energy_differential,
    faithfulness,
    fgsm,
    implausibility,
    mmd,
    pgd,
    protected_feature_sensitivity,
    redundancy,
    sparsity,
    strict_validity,
    validity,
)


def linear(weight, bias=None):
    """A torch Linear layer with the given weight [C, d] (and bias [C]), float32."""
    weight = torch.as_tensor(weight, dtype=torch.float32)
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return layer


def assert_untouched(model, training=True):
    """Parameters have no .grad and every submodule kept its training flag."""
    assert all(p.grad is None for p in model.parameters())
    assert all(m.training is training for m in model.modules())


# 3 classes in 2D: logits = (x0, x1, -x0 - x1)
W3 = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]


@pytest.fixture(scope="module")
def blobs_model():
    """A small MLP trained on two well separated 2D blobs (standardised)."""
    X, y = make_blobs(n_samples=300, centers=[[-2, -2], [2, 2]], cluster_std=1.2,
                      random_state=0)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
                                torch.nn.Dropout(0.1), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y).long()
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    model.train()
    return model, X, y


# -- validity ------------------------------------------------------------------------------
def test_validity_and_strict_validity_hand_computed():
    model = linear(W3)
    X_cf = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]], dtype=np.float32)
    y_target = np.array([0, 1, 0])
    # logits: [2, 0, -2] -> 0 (valid); [0, 3, -3] -> 1 (valid); [-1, -1, 2] -> 2 (target 0: not)
    assert validity(model, X_cf, y_target) == pytest.approx(2 / 3)
    # p(target): e^2 / (e^2 + 1 + e^-2) = 0.867; e^3 / (1 + e^3 + e^-3) = 0.950;
    # e^-1 / (2 e^-1 + e^2) = 0.045
    assert strict_validity(model, X_cf, y_target, decision_threshold=0.75) == pytest.approx(2 / 3)
    assert strict_validity(model, X_cf, y_target, decision_threshold=0.9) == pytest.approx(1 / 3)
    assert strict_validity(model, X_cf, y_target, decision_threshold=0.0) == 1.0


def test_validity_accepts_plain_callable_and_keeps_training_mode():
    model = linear(W3)
    model.train()
    X_cf = [[2.0, 0.0], [0.0, 3.0]]
    assert validity(lambda x: model(x), X_cf, [0, 1]) == 1.0
    assert validity(model, X_cf, [0, 1]) == 1.0
    assert_untouched(model)


# -- closeness -------------------------------------------------------------------------------
def test_cost_hand_computed():
    X = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    X_cf = np.array([[1.0, -2.0, 0.0], [1.0, 1.5, 1.0]])
    # L1: |1| + |-2| + 0 = 3; 0 + 0.5 + 0 = 0.5 -> mean 1.75
    assert cost(X_cf, X) == pytest.approx(1.75)
    np.testing.assert_allclose(cost(X_cf, X, per_row=True), [3.0, 0.5])
    # L2: sqrt(1 + 4) and 0.5; L-inf: 2 and 0.5
    np.testing.assert_allclose(cost(X_cf, X, ord=2, per_row=True), [np.sqrt(5), 0.5])
    np.testing.assert_allclose(cost(X_cf, X, ord=np.inf, per_row=True), [2.0, 0.5])


def test_redundancy_hand_computed():
    X = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    X_cf = np.array([[1.0, -2.0, 1e-7], [1.0, 1.5, 1.0]])
    # row 0: only feature 2 unchanged (|1e-7| < 1e-5) -> 1/3; row 1: features 0, 2 -> 2/3
    np.testing.assert_allclose(redundancy(X_cf, X, per_row=True), [1 / 3, 2 / 3])
    assert redundancy(X_cf, X) == pytest.approx(0.5)
    # with a tolerance below 1e-7 the tiny change counts: row 0 -> 0
    np.testing.assert_allclose(redundancy(X_cf, X, tol=1e-8, per_row=True), [0.0, 2 / 3])
    assert sparsity is redundancy


def test_cost_accepts_dataframes():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [0.0, 1.0], "b": [0.0, 1.0]})
    assert cost(X + 1.0, X) == pytest.approx(2.0)


# -- plausibility ----------------------------------------------------------------------------
def test_implausibility_hand_computed():
    X_ref = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [10.0, 10.0]])
    y_ref = np.array([0, 0, 1, 1])
    X_cf = np.array([[1.0, 1.0], [0.0, 0.0]])
    y_target = np.array([0, 1])
    # row 0 vs class 0 {(0,0), (2,0)}: (1+1 + 1+1) / 2 = 2
    # row 1 vs class 1 {(0,4), (10,10)}: (4 + 20) / 2 = 12
    np.testing.assert_allclose(
        implausibility(X_cf, y_target, X_ref, y_ref, n_neighbors=2, per_row=True), [2.0, 12.0])
    assert implausibility(X_cf, y_target, X_ref, y_ref) == pytest.approx(7.0)
    # labels that are not indices work as long as y_ref uses the same ones
    assert implausibility(X_cf, ["a", "b"], X_ref, ["a", "a", "b", "b"]) == pytest.approx(7.0)


def test_implausibility_subsampling_is_seeded():
    X_ref = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [10.0, 10.0]])
    y_ref = np.array([0, 0, 1, 1])
    X_cf = np.array([[0.0, 0.0]])
    # one neighbour of class 1: distance 4 (to (0,4)) or 20 (to (10,10))
    values = {implausibility(X_cf, [1], X_ref, y_ref, n_neighbors=1, random_state=s)
              for s in range(20)}
    assert values == {4.0, 20.0}
    a = implausibility(X_cf, [1], X_ref, y_ref, n_neighbors=1, random_state=3)
    assert a == implausibility(X_cf, [1], X_ref, y_ref, n_neighbors=1, random_state=3)


def test_implausibility_missing_class():
    with pytest.raises(ValueError, match="y_ref"):
        implausibility([[0.0]], [2], [[0.0], [1.0]], [0, 1])


def unbiased_mmd2_loop(A, B, length_scale):
    """The unbiased estimator by explicit double loops."""
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * length_scale**2))
    n, m = len(A), len(B)
    xx = sum(k(A[i], A[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(B[i], B[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(A[i], B[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_matches_double_loop():
    A = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]])
    B = np.array([[2.0, 2.0], [2.5, 1.5], [1.0, 3.0]])
    expected = unbiased_mmd2_loop(A, B, 1.5)
    assert expected > 0
    assert mmd(A, B, length_scale=1.5) == pytest.approx(expected, rel=1e-10)
    # vectorised statistic of arbitrary splits of the pooled sample
    Z = np.concatenate([A, B])
    K0 = _plausibility._gaussian_gram(torch.tensor(Z), torch.tensor(Z), 1.5)
    K0.fill_diagonal_(0.0)
    splits = [[0, 3, 4], [1, 2, 5], [0, 1]]
    s = torch.zeros(len(splits), 6, dtype=torch.float64)
    for r, idx in enumerate(splits):
        s[r, idx] = 1.0
    got = _plausibility._mmd2_from_gram(K0, s).numpy()
    for r, idx in enumerate(splits):
        rest = [j for j in range(6) if j not in idx]
        assert got[r] == pytest.approx(unbiased_mmd2_loop(Z[idx], Z[rest], 1.5), rel=1e-10)


def test_mmd_same_vs_different_distribution_and_permutation_test():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 2))
    A2 = rng.normal(size=(40, 2))
    B = rng.normal(loc=2.0, size=(40, 2))
    same = mmd(A, A2)
    diff = mmd(A, B)
    assert 0.0 <= same < 0.05 < diff
    mmd2, p = mmd(A, B, n_permutations=200, random_state=0)
    assert mmd2 == pytest.approx(diff)
    assert p == pytest.approx(1 / 201)  # no permutation reaches a clear difference
    _, p_same = mmd(A, A2, n_permutations=200, random_state=0)
    assert 0.0 < p_same <= 1.0 and p_same > 0.05
    assert mmd(A, A2, n_permutations=50, random_state=1) == mmd(A, A2, n_permutations=50,
                                                                random_state=1)
    assert mmd(A, A) == 0.0  # negative unbiased estimate clamped


def test_mmd_needs_two_rows():
    with pytest.raises(ValueError, match="X_target"):
        mmd([[0.0], [1.0]], [[0.0]])


# -- model-based plausibility ----------------------------------------------------------------
def test_energy_differential_hand_computed():
    model = linear(W3, bias=[0.5, 0.0, 0.0])
    X_ref = np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    y_ref = np.array([0, 0, 1, 1])
    X_cf = np.array([[3.0, 0.0], [0.0, 5.0]])
    # E(x, y) = -logit_y(x)
    # class 0 reference: -(2 + 0.5) = -2.5, -(0 + 0.5) = -0.5 -> mean -1.5
    # class 1 reference: -1, -3 -> mean -2
    # row 0: E = -(3 + 0.5) = -3.5 -> -3.5 + 1.5 = -2; row 1: E = -5 -> -5 + 2 = -3
    np.testing.assert_allclose(
        energy_differential(model, X_cf, [0, 1], X_ref, y_ref, per_row=True), [-2.0, -3.0])
    assert energy_differential(model, X_cf, [0, 1], X_ref, y_ref) == pytest.approx(-2.5)
    with pytest.raises(ValueError, match="y_ref"):
        energy_differential(model, X_cf, [0, 2], X_ref, y_ref)


W2 = [[-1.0, -0.5], [1.0, 0.5]]  # w1 - w0 = (2, 1)


def test_sgld_samples_sit_on_the_class_side():
    model = linear(W2)
    lower, upper = np.full(2, -1.0), np.full(2, 1.0)
    samples = _faithfulness._conditional_samples(
        model, np.array([0, 1]), lower, upper, n_samples=50, n_steps=20, step_size=0.1,
        noise_scale=0.01, init="uniform", random_state=0)  # [2, 50, 2]
    assert samples.shape == (2, 50, 2)
    direction = np.array([2.0, 1.0])
    proj = samples.mean(axis=1) @ direction  # [2]
    assert proj[1] > 0 > proj[0]
    # the linear energy has constant gradient -w_y: the mean moves 20 * 0.05 * w_y
    np.testing.assert_allclose(samples[1].mean(0), np.array(W2[1]) * 1.0, atol=0.2)


def test_faithfulness_exact_with_degenerate_sampler():
    model = linear(W2)
    X_cf = np.array([[0.0, 0.0], [3.0, 3.0]])
    # no steps, chains start at the single point (1, 1): L1 distances |0-1|+|0-1| = 2 and 4
    np.testing.assert_allclose(
        faithfulness(model, X_cf, [0, 1], n_steps=0, bounds=(1.0, 1.0), per_row=True),
        [2.0, 4.0])
    # one noise-free step of size 2 from 0: x = 0 - (2/2) * grad E = w_y exactly
    value = faithfulness(model, [[1.0, 0.5], [-1.0, 0.0]], [1, 0], n_steps=1, step_size=2.0,
                         noise_scale=0.0, bounds=(0.0, 0.0), per_row=True)
    np.testing.assert_allclose(value, [0.0, 0.5], atol=1e-6)


def test_faithfulness_prefers_counterfactuals_the_model_finds_typical():
    model = linear(W2)
    model.train()
    deep = faithfulness(model, [[3.0, 1.5]], [1], bounds=(-1.0, 1.0), n_steps=30,
                        random_state=0)
    wrong_side = faithfulness(model, [[-3.0, -1.5]], [1], bounds=(-1.0, 1.0), n_steps=30,
                              random_state=0)
    assert np.isfinite(deep) and deep < wrong_side
    assert_untouched(model)
    again = faithfulness(model, [[3.0, 1.5]], [1], bounds=(-1.0, 1.0), n_steps=30,
                         random_state=0)
    assert again == deep


def test_faithfulness_accepts_bounds_array():
    model = linear(W2)
    bounds = np.array([[1.0, 1.0], [1.0, 1.0]])  # rows: lower, upper
    assert faithfulness(model, [[0.0, 0.0]], [0], n_steps=0, bounds=bounds) == 2.0


def test_faithfulness_default_bounds_and_mlp(blobs_model):
    model, X, _ = blobs_model
    value = faithfulness(model, X[:20], np.r_[np.zeros(10, int), np.ones(10, int)],
                         n_samples=30, n_steps=30, random_state=0)
    assert np.isfinite(value) and value > 0
    assert_untouched(model)


# -- adversarial robustness ------------------------------------------------------------------
def test_fgsm_exact_on_linear_model():
    model = linear(W2)
    model.train()
    X = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    y = np.array([0, 1])
    # grad_x CE = sum_c (p_c - 1[c = y]) w_c: for y = 0 it is (1 - p_0)(w1 - w0), sign (+, +);
    # for y = 1 it is (1 - p_1)(w0 - w1), sign (-, -)
    np.testing.assert_allclose(fgsm(model, X, y, 0.1), [[0.1, 0.1], [0.9, 0.9]], atol=1e-7)
    # bounds clip the step (row 1's factual is inside [0, 0.95])
    np.testing.assert_allclose(fgsm(model, X, y, 0.1, lower=0.0, upper=[0.95, 0.05]),
                               [[0.1, 0.05], [0.9, 0.9]], atol=1e-7)
    assert_untouched(model)


def test_pgd_stays_in_ball_and_domain(blobs_model):
    model, X, y = blobs_model
    lower = np.array([-1.0, -1.5])
    upper = np.array([1.0, 1.2])
    X_in = np.clip(X, lower, upper)
    X_before = X_in.copy()
    eps = 0.3
    X_adv = pgd(model, X_in, y, eps, n_steps=10, step_size=0.05, lower=lower, upper=upper,
                random_state=0)
    np.testing.assert_array_equal(X_in, X_before)
    assert np.abs(X_adv - X_in).max() <= eps + 1e-6
    assert (X_adv >= lower - 1e-6).all() and (X_adv <= upper + 1e-6).all()
    # rows outside the domain keep their own values as bounds: the ball constraint still holds
    X_adv2 = pgd(model, X, y, eps, n_steps=5, lower=lower, upper=upper, random_state=0)
    assert np.abs(X_adv2 - X).max() <= eps + 1e-6
    assert_untouched(model)
    # eps = 0 leaves the points where they are
    np.testing.assert_array_equal(pgd(model, X, y, 0.0, n_steps=3, random_state=0), X)


def test_adversarial_accuracy_curves(blobs_model):
    model, X, y = blobs_model
    with torch.no_grad():
        clean = float((model.eval()(torch.from_numpy(X)).argmax(1).numpy() == y).mean())
    model.train()
    eps = [0.0, 0.25, 0.5, 1.0, 2.0]
    for attack in ("fgsm", "pgd"):
        res = adversarial_accuracy(model, X, y, attack=attack, epsilons=eps, n_steps=20,
                                   step_size=0.1, random_state=0)
        np.testing.assert_array_equal(res["epsilon"], eps)
        acc = res["accuracy"]
        assert acc[0] == pytest.approx(clean)
        assert np.all(np.diff(acc) <= 0.02), (attack, acc)
        assert acc[-1] < clean - 0.3
    default = adversarial_accuracy(model, X[:10], y[:10])
    assert default["epsilon"].shape == default["accuracy"].shape == (10,)
    assert_untouched(model)


def test_pgd_is_at_least_as_strong_as_fgsm(blobs_model):
    model, X, y = blobs_model
    kw = {"epsilons": [0.5], "random_state": 0}
    fgsm_acc = adversarial_accuracy(model, X, y, attack="fgsm", **kw)["accuracy"][0]
    pgd_acc = adversarial_accuracy(model, X, y, attack="pgd", n_steps=20, step_size=0.05,
                                   **kw)["accuracy"][0]
    assert pgd_acc <= fgsm_acc + 0.01


# -- protected-feature sensitivity -----------------------------------------------------------
def test_integrated_gradients_completeness_on_linear_model():
    pytest.importorskip("captum")
    W = np.array([[1.0, -2.0, 0.0], [-0.5, 3.0, 0.0]])
    model = linear(W, bias=[0.3, -0.1])
    model.train()
    X = np.random.default_rng(0).normal(size=(8, 3))
    # the function's baseline: uniform per row in the per-feature range of X
    rng = check_random_state(7)
    b = X.min(0) + (X.max(0) - X.min(0)) * rng.random_sample(X.shape)
    target = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    # linear model: IG_j = (x_j - b_j) * W[t, j] exactly
    expected = np.abs((X - b) * W[target]).mean(axis=0)  # [3]
    got = protected_feature_sensitivity(model, X, features=[0, 1, 2], target=target,
                                        per_feature=True, random_state=7)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # mean over the protected features, negative indices allowed
    assert protected_feature_sensitivity(model, X, features=[0, -2], target=target,
                                         random_state=7) == pytest.approx(expected[:2].mean(),
                                                                          rel=1e-5)
    # predicted class by default
    pred = (X @ W.T + [0.3, -0.1]).argmax(1)
    expected_pred = np.abs((X - b) * W[pred]).mean(axis=0)
    np.testing.assert_allclose(
        protected_feature_sensitivity(model, X, features=[0, 1], per_feature=True,
                                      random_state=7), expected_pred[:2], rtol=1e-5)
    # a feature the model does not use has zero sensitivity
    assert protected_feature_sensitivity(model, X, features=[2], random_state=7) == 0.0
    assert_untouched(model)


def test_sensitivity_without_captum(monkeypatch):
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ImportError, match=r"skct\[attribution\]"):
        protected_feature_sensitivity(linear(W2), [[0.0, 0.0]], features=[0])


def test_sensitivity_bad_features():
    pytest.importorskip("captum")
    with pytest.raises(ValueError, match="features"):
        protected_feature_sensitivity(linear(W2), [[0.0, 0.0]], features=[5])
    with pytest.raises(ValueError, match="features"):
        protected_feature_sensitivity(linear(W2), [[0.0, 0.0]], features=[])


# -- registry and input handling -------------------------------------------------------------
def test_metrics_registry():
    assert set(METRICS) == {"validity", "strict_validity", "cost", "redundancy",
                            "implausibility", "mmd", "faithfulness", "energy_differential",
                            "diversity", "coverage"}
    assert METRICS["cost"] is cost


def test_inputs_are_not_modified():
    model = linear(W2)
    X = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    X_cf = np.array([[1.0, 0.0], [1.0, 2.0]], dtype=np.float32)
    y = np.array([0, 1])
    copies = [a.copy() for a in (X, X_cf, y)]
    cost(X_cf, X)
    redundancy(X_cf, X)
    implausibility(X_cf, y, X, y)
    energy_differential(model, X_cf, y, X, y)
    faithfulness(model, X_cf, y, n_samples=5, n_steps=3, random_state=0)
    fgsm(model, X, y, 0.1)
    pgd(model, X, y, 0.1, n_steps=3, random_state=0)
    for a, c in zip((X, X_cf, y), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: cost([[0.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]]), "X_cf and X"),
        (lambda: cost(np.zeros((0, 2)), np.zeros((0, 2))), "X_cf"),
        (lambda: cost([[np.nan, 1.0]], [[0.0, 1.0]]), "X_cf"),
        (lambda: cost([[0.0, 1.0]], [[0.0, np.inf]]), "X"),
        (lambda: cost([0.0, 1.0], [0.0, 1.0]), "X_cf"),
        (lambda: cost([["a", "b"]], [["a", "b"]]), "X_cf"),
        (lambda: redundancy([[0.0]], [[0.0]], tol=0.0), "tol"),
        (lambda: implausibility([[0.0, 1.0]], [0], [[0.0]], [0]), "X_ref"),
        (lambda: implausibility([[0.0]], [0, 1], [[0.0]], [0]), "y_target"),
        (lambda: implausibility([[0.0]], [0], np.zeros((0, 1)), []), "X_ref"),
        (lambda: mmd([[0.0], [1.0]], [[0.0, 1.0], [1.0, 1.0]]), "X_target"),
        (lambda: mmd([[0.0], [np.nan]], [[0.0], [1.0]]), "X_cf"),
        (lambda: mmd([[0.0], [1.0]], [[0.0], [1.0]], length_scale=-1.0), "length_scale"),
        (lambda: validity(linear(W2), [[0.0, 0.0]], [2]), "y_target"),
        (lambda: validity(linear(W2), [[0.0, 0.0]], ["yes"]), "y_target"),
        (lambda: validity(linear(W2), [[0.0, 0.0]], [0.5]), "y_target"),
        (lambda: validity(linear(W2), [[0.0, 0.0]], [-1]), "y_target"),
        (lambda: validity(linear(W2), [[0.0, 0.0]], [0, 1]), "y_target"),
        (lambda: validity(linear(W2), [[0.0, 0.0, 0.0]][:0], []), "X_cf"),
        (lambda: strict_validity(linear(W2), [[0.0, 0.0]], [0], decision_threshold=1.5),
         "decision_threshold"),
        (lambda: energy_differential(linear(W2), [[0.0, 0.0]], [0], [[0.0, np.nan]], [0]),
         "X_ref"),
        (lambda: energy_differential(linear(W2), [[0.0, 0.0]], [0], [[0.0, 0.0]], [0, 1]),
         "y_ref"),
        (lambda: faithfulness(linear(W2), [[0.0, 0.0]], [0], bounds=(0.0,)), "bounds"),
        (lambda: faithfulness(linear(W2), [[0.0, 0.0]], [0], bounds=(1.0, 0.0)), "bounds"),
        (lambda: faithfulness(linear(W2), [[0.0, 0.0]], [0], init="gauss"), "init"),
        (lambda: fgsm(linear(W2), [[0.0, 0.0]], [0], -0.1), "eps"),
        (lambda: fgsm(linear(W2), [[0.0, 0.0]], [0], 0.1, lower=[0.0, 0.0, 0.0]), "lower"),
        (lambda: fgsm(linear(W2), [[0.0, 0.0]], [0], 0.1, lower=1.0, upper=0.0), "lower"),
        (lambda: pgd(linear(W2), [[0.0, np.nan]], [0], 0.1), "X"),
        (lambda: adversarial_accuracy(linear(W2), [[0.0, 0.0]], [0], attack="cw"), "attack"),
        (lambda: adversarial_accuracy(linear(W2), [[0.0, 0.0]], [0], epsilons=[]), "epsilons"),
        (lambda: adversarial_accuracy(linear(W2), [[0.0, 0.0]], [0], epsilons=[-0.1]),
         "epsilons"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_model_must_be_callable():
    with pytest.raises(TypeError, match="model"):
        validity("not a model", [[0.0]], [0])
    with pytest.raises(ValueError, match="model"):
        validity(lambda x: x.sum(1), [[0.0, 1.0]], [0])  # 1D output, not logits
