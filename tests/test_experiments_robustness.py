"""Tests of the experiment's robustness stage (skct/experiments/_robustness.py): both
integrated-gradients figures, the absolute one unchanged and the paper's normalised one."""

import numpy as np
import pytest
import torch

from skct._utils import derive_seed
from skct.experiments import _robustness, load_experiment_data
from skct.experiments._settings import evaluation_config
from skct.metrics import protected_feature_sensitivity

pytest.importorskip("captum")


class LinearClassifier:
    """The two attributes the stage reads from a fitted classifier."""

    def __init__(self, weight):
        self.logits_module_ = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.logits_module_.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.logits_module_.bias.zero_()

    def predict_proba(self, X):
        with torch.no_grad():
            logits = self.logits_module_(torch.as_tensor(X, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()


@pytest.fixture(scope="module")
def setup():
    data = load_experiment_data("moons", n_samples=300)
    cfg = evaluation_config("moons", None, None, None, None, 0,
                            {"n_attack": 10, "n_sensitivity": 20, "pgd_steps": 2,
                             "epsilons": (0.0, 0.1)})
    return data, cfg


W = [[0.2, 1.0], [-0.2, -1.0]]


def test_both_figures_reported(setup):
    data, cfg = setup
    clf = LinearClassifier(W)
    res = _robustness.robustness(clf, data, cfg)
    # the absolute figure: as before, n_sensitivity seeded test rows, predicted class
    rng = np.random.default_rng(derive_seed(cfg["random_state"], "attack"))
    n = len(data.X_test)
    rng.choice(n, size=min(cfg["n_attack"], n), replace=False)
    sidx = np.sort(rng.choice(n, size=20, replace=False))
    absolute = protected_feature_sensitivity(
        clf.logits_module_, data.X_test[sidx], features=data.immutable,
        random_state=derive_seed(cfg["random_state"], "ig"))
    assert res["ig_sensitivity"] == absolute and res["n_sensitivity"] == 20
    # the normalised one: 100 rounds of 2500 rows of the whole (small) test set
    rounds = protected_feature_sensitivity(
        clf.logits_module_, data.X_test, features=data.immutable, target=data.y_test,
        normalize="range", baseline=(-1, 1), n_rounds=100, round_size=2500,
        random_state=derive_seed(cfg["random_state"], "ig_rounds"))
    assert res["ig_sensitivity_normalized"] == pytest.approx(np.median(rounds))
    low, high = res["ig_sensitivity_normalized_interval"]
    assert low <= res["ig_sensitivity_normalized"] <= high
    assert (res["ig_normalized_rounds"], res["ig_normalized_round_size"],
            res["ig_normalized_pool"]) == (100, 2500, n)


def test_normalised_figure_ignores_the_logit_scale(setup):
    data, cfg = setup
    small = _robustness.robustness(LinearClassifier(W), data, cfg)
    big = _robustness.robustness(LinearClassifier(10 * np.asarray(W)), data, cfg)
    assert big["ig_sensitivity"] == pytest.approx(10 * small["ig_sensitivity"], rel=1e-4)
    assert big["ig_sensitivity_normalized"] == pytest.approx(
        small["ig_sensitivity_normalized"], rel=1e-4)
    # x1 carries most of the weight: the protected x0 has a small relative attribution
    assert small["ig_sensitivity_normalized"] < 0.5


def test_pool_is_a_seeded_sample_of_large_test_sets(setup, monkeypatch):
    data, cfg = setup
    monkeypatch.setattr(_robustness, "IG_POOL_SIZE", 50)
    res = _robustness.robustness(LinearClassifier(W), data, cfg)
    again = _robustness.robustness(LinearClassifier(W), data, cfg)
    assert res["ig_normalized_pool"] == 50
    assert res["ig_sensitivity_normalized"] == again["ig_sensitivity_normalized"]
