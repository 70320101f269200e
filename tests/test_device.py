"""GPU runs: every tensor of the search and of counterfactual training stays on the device.

These tests need a CUDA device and are skipped without one (CI machines have none). They
check what a user of ``device="cuda"`` relies on: results on the device, the same answers as
on the CPU up to float rounding, and host round trips that do not grow with the number of
rows (the per-step convergence count is the only synchronisation the search needs).
"""

import warnings

import numpy as np
import pytest
import torch

from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.constraints import ActionabilityConstraints
from skct.search import search
from skct.search.generators import ECCoGenerator, GenericGenerator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine")

FIELDS = ("counterfactuals", "converged", "n_iter", "target_proba", "nascent")


def _problem(n, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    for p in model.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    x = torch.randn(n, 6, generator=gen)
    with torch.no_grad():
        target = 1 - model(x).argmax(1)
    return model.to(device), x.to(device), target.to(device)


def _constraints(device):
    x = np.random.RandomState(0).randn(200, 6).astype(np.float32)
    ac = ActionabilityConstraints(mutability={0: "none", 1: "increase", 2: "decrease"})
    return ac.fit(x).to_torch(torch.float32, device)


@pytest.mark.parametrize("gen", [GenericGenerator(step_size=0.1), ECCoGenerator(step_size=0.1)])
def test_search_on_the_device_matches_the_cpu(gen):
    model, x, target = _problem(300, "cuda")
    res = search(model, x, target, gen, _constraints("cuda"), decision_threshold=0.8,
                 max_iter=40, epsilon=0.5, return_path=True)
    for name in FIELDS:
        assert getattr(res, name).device.type == "cuda", name
    assert res.path.device.type == "cuda"
    cpu = search(model.cpu(), x.cpu(), target.cpu(), gen, _constraints("cpu"),
                 decision_threshold=0.8, max_iter=40, epsilon=0.5)
    # same convergence rule; iterates agree up to float rounding of different kernels
    agree = (res.n_iter.cpu() == cpu.n_iter).float().mean()
    assert agree > 0.97
    same = res.n_iter.cpu() == cpu.n_iter
    torch.testing.assert_close(res.counterfactuals.cpu()[same], cpu.counterfactuals[same],
                               atol=1e-3, rtol=1e-3)


def _syncs(n):
    """Host synchronisations of one 30-step search of n rows (CUDA sync debug mode)."""
    model, x, target = _problem(n, "cuda", seed=1)
    c = _constraints("cuda")
    search(model, x, target, GenericGenerator(step_size=0.05), c, max_iter=30,
           decision_threshold=1.1)  # warm-up: lazy initialisation is not the search's
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            search(model, x, target, GenericGenerator(step_size=0.05), c, max_iter=30,
                   decision_threshold=1.1)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    return sum("synchroniz" in str(w.message) for w in seen)


def test_search_host_round_trips_do_not_grow_with_the_rows():
    small, large = _syncs(100), _syncs(5000)
    assert small == large  # no per-row transfer
    assert large <= 10 * 30  # a few per step at most


def _table(n=400, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def test_counterfactual_training_runs_on_the_device(monkeypatch):
    import skct.training._search as training_search

    devices = []

    def spy(module, x, *args, **kwargs):
        devices.append((x.device.type, next(module.parameters()).device.type))
        return search(module, x, *args, **kwargs)

    monkeypatch.setattr(training_search, "search", spy)
    X, y = _table()
    clf = CounterfactualTrainedClassifier(device="cuda", max_epochs=20, n_counterfactuals=64,
                                          random_state=0).fit(X, y)
    assert devices and set(devices) == {("cuda", "cuda")}
    assert next(clf.net_.module_.parameters()).device.type == "cuda"
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.score(X, y) > 0.8
    for key in ("train_div", "train_adv", "train_reg"):  # loss components logged as numbers
        assert all(np.isfinite(v) for v in clf.history_[:, "batches", -1, key])


def test_explainer_on_a_device_model():
    X, y = _table()
    clf = CounterfactualTrainedClassifier(device="cuda", max_epochs=20, lambda_div=0,
                                          lambda_adv=0, lambda_reg=0, random_state=0).fit(X, y)
    exp = CounterfactualExplainer(estimator=clf, target="opposite", max_iter=200,
                                  random_state=0).fit(X, y)
    res = exp.explain(X[:50])
    cf = np.asarray(res.counterfactuals)
    assert cf.shape == (50, 4) and np.isfinite(cf[res.valid]).all()
    assert res.valid.mean() > 0.8
