"""Explanation at scale: the compact search path and chunked explanation."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import skct
from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.constraints import ActionabilityConstraints
from skct.explain._result import CounterfactualPath
from skct.search import search
from skct.search._engine import SearchPath
from skct.search.generators import ECCoGenerator, GenericGenerator

CONVENTIONAL = dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)


def _dense_reference_path(model, x, target, generator, c, decision_threshold, max_iter):
    """The path as the engine stored it before (a full [N, D] copy at every step, padded)."""
    n = x.shape[0]
    with torch.enable_grad():
        s_act, x_act, t_act = generator.init_state(x).detach(), x, target
        idx, x_cf, path = torch.arange(n), x.clone(), []
        for t in range(max_iter + 1):
            s = s_act.requires_grad_(True)
            xc = generator.to_input(s, x_act, c)
            logits = model(xc)
            ld = logits.detach()
            pa = (ld.gather(1, t_act[:, None]).squeeze(1) - torch.logsumexp(ld, 1)).exp()
            done = pa >= decision_threshold
            x_cf[idx] = xc.detach()
            path.append(x_cf.clone())
            if t == max_iter or bool(done.all()):
                break
            loss = generator.loss(xc, x_act, t_act, logits, t, max_iter)
            keep = (~done).nonzero().squeeze(1)
            (grad,) = torch.autograd.grad(loss[~done].sum(), s)
            s_old, grad = s.detach()[keep], grad[keep]
            x_act, t_act, idx = x_act[keep], t_act[keep], idx[keep]
            s_act = generator.update(s_old, grad, x_act, c).detach()
    while len(path) < max_iter + 1:
        path.append(x_cf.clone())
    return torch.stack(path)


def _problem(n=40, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    torch.manual_seed(seed)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.7)
    with torch.no_grad():
        target = 1 - model(x).argmax(1)
    return x, target, model


@pytest.mark.parametrize("gen", [GenericGenerator(step_size=0.2), ECCoGenerator(step_size=0.2)])
def test_compact_path_equals_the_dense_reference(gen):
    with skct.config_context(fast_search=False):  # the eager engine's own compact path
        _check_compact_path(gen)


def _check_compact_path(gen):
    x, target, model = _problem()
    c = ActionabilityConstraints(mutability={0: "none", 3: "increase"}).fit(
        x.numpy()).to_torch()
    res = search(model, x, target, gen, c, decision_threshold=0.8, max_iter=30,
                 return_path=True)
    assert isinstance(res.compact_path, SearchPath)
    ref = _dense_reference_path(model, x, target, gen, c, 0.8, 30)
    assert 0 < int(res.n_iter.min()) < int(res.n_iter.max()) == 30  # rows leave at steps
    assert res.path.shape == ref.shape == (31, 40, 5)
    assert torch.equal(res.path, ref)
    assert res.path is res.path  # built once
    # the compact form holds only the rows still searching: sum(n_iter + 1) rows
    stored = sum(v.shape[0] for _, _, v in res.compact_path.updates)
    assert stored == int((res.n_iter + 1).sum()) < 31 * 40
    # the search is the same without the path
    plain = search(model, x, target, gen, c, decision_threshold=0.8, max_iter=30)
    assert plain.path is None and plain.compact_path is None
    assert torch.equal(plain.counterfactuals, res.counterfactuals)


def test_search_path_to_dense_order_dtype_and_errors():
    path = SearchPath(torch.zeros(2, 1), n_steps=3)
    path.record(1, torch.tensor([0]), torch.tensor([[5.0]]))
    path.record(0, torch.tensor([0, 1]), torch.tensor([[1.0], [2.0]]))  # any recording order
    dense = path.to_dense(dtype=torch.float64)
    assert dense.dtype == torch.float64 and path.shape == (3, 2, 1)
    assert dense[:, :, 0].tolist() == [[1.0, 2.0], [5.0, 2.0], [5.0, 2.0]]
    with pytest.raises(ValueError, match="step 3"):
        path.record(3, torch.tensor([0]), torch.tensor([[1.0]]))


def test_explainer_path_compact_and_the_same_for_any_batch_size():
    x, target, _ = _problem(n=200, d=2, seed=1)
    X = x.numpy().astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=15, lr=0.01,
                                          batch_size=32, random_state=0).fit(X, y)
    ex = CounterfactualExplainer(clf, target="opposite", return_path=True, max_iter=20,
                                 random_state=0).fit(X, y)
    res = ex.explain(X[:50])
    assert isinstance(res.compact_path, CounterfactualPath)
    assert res.path.shape == (21, 50, 2) and res.path.dtype == np.float64
    # dense reference: factuals everywhere, the search's dense path on the searched rows
    rows = np.flatnonzero(~res.converged | (res.n_iter > 0))
    ref = np.broadcast_to(res.factuals_model, res.path.shape).copy()
    ref[:, rows] = res.compact_path.pieces[0][1].to_dense().double().numpy()
    np.testing.assert_array_equal(res.path, ref)
    np.testing.assert_array_equal(res.path[0], res.factuals_model)
    chunked = clone(ex).set_params(batch_size=8).fit(X, y).explain(X[:50])
    assert len(chunked.compact_path.pieces) > 1
    np.testing.assert_allclose(chunked.path, res.path, rtol=0, atol=1e-6)
    # a path given dense is kept as it is
    dense = CounterfactualPath(np.zeros((1, 2)), 2)
    dense.add(np.array([0]), torch.ones(2, 1, 2))
    assert dense.to_dense().tolist() == [[[1.0, 1.0]], [[1.0, 1.0]]]


def test_evaluate_reaches_batch_size_through_explainer_params():
    from conftest import make_blobs2d

    from skct.evaluation import evaluate

    X, y = make_blobs2d(n=120, sep=1.0)
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=8, lr=1e-2,
                                          hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    kw = dict(generators=["generic"], n_runs=1, n_factuals=20, max_iter=20,
              metrics=("validity", "cost"), n_jobs=1, random_state=0)
    one = evaluate({"m": clf}, X, y, **kw)
    chunked = evaluate({"m": clf}, X, y, explainer_params={"batch_size": 3}, **kw)
    pd.testing.assert_frame_equal(one, chunked, check_exact=False, rtol=0, atol=1e-6)
