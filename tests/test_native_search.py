"""The whole fast search in one native call (skct.search._native_search)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import skct
import skct.search._compiled as compiled
from skct.constraints import TorchConstraints
from skct.search import _native_search, search
from skct.search._compiled import compiled_search
from skct.search._compiled_plan import model_plan, plan_key
from skct.search.generators import ECCoGenerator, GenericGenerator

pytestmark = pytest.mark.skipif(_native_search.library() is None,
                                reason=f"native search unavailable: {_native_search.status()}")


def _engine(*args, **kw):
    with skct.config_context(fast_search=False):
        return search(*args, **kw)


def _steps(monkeypatch, *args, **kw):
    """The same search on the chain step (native loops per step)."""
    with monkeypatch.context() as m:
        m.setenv("SKCT_COMPILED_SEARCH", "steps")
        return compiled_search(*args, **kw)


def _spy(monkeypatch):
    """Count the calls of the native search (it must run where it applies)."""
    calls = []
    real = _native_search.run

    def run(*args, **kw):
        calls.append(args[3].shape[0])
        return real(*args, **kw)

    monkeypatch.setattr(_native_search, "run", run)
    return calls


def _assert_close(a, b, atol=2e-5):
    assert torch.equal(a.n_iter, b.n_iter)
    assert torch.equal(a.converged, b.converged)
    for name in ("counterfactuals", "target_proba", "nascent"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=atol, rtol=1e-4)


def _mlp(widths, act="relu", bias=True, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], bias=bias))
        if i < len(widths) - 2 and act:
            layers.append({"relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.1),
                           "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[act]())
    return nn.Sequential(*layers).eval()


def _trained(widths):
    """A ReLU MLP trained on a linear rule: rows converge at many different steps."""
    with torch.random.fork_rng(devices=[]):
        model = _mlp(widths, seed=0).train()
        x = _problem(400, widths[0], seed=3)
        score = x[:, 0] + 0.5 * x[:, 1]
        edges = torch.quantile(score, torch.linspace(0, 1, widths[-1] + 1)[1:-1])
        y = torch.bucketize(score, edges)  # widths[-1] classes of equal size
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval().requires_grad_(False)


def _problem(n=200, d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g)


def _constraints(d, **kw):
    words = (["increase", "none", "both", "decrease"] * d)[:d]
    return TorchConstraints.from_arrays(np.full(d, -2.0), np.full(d, 2.5), words, [], **kw)


def test_applies_to_chains_of_linear_layers_and_activations():
    f32, f64 = torch.float32, torch.float64
    assert _native_search.applies(plan_key(model_plan(_mlp([5, 8, 8, 2]))), f32)
    assert _native_search.applies(plan_key(model_plan(_mlp([5, 8, 2], act="leaky"))), f32)
    assert _native_search.applies(plan_key(model_plan(_mlp([5, 8, 2], act=None))), f32)
    for act in ("tanh", "sigmoid"):
        assert _native_search.applies(plan_key(model_plan(_mlp([5, 8, 8, 2], act=act))), f32)
    assert _native_search.applies(plan_key(model_plan(_mlp([5, 8, 3]))), f32)
    assert not _native_search.applies(plan_key(model_plan(_mlp([5, 8, 2]))), f64)
    assert not _native_search.applies(plan_key(model_plan(_mlp([5, 1]))), f32)
    first = nn.Sequential(nn.Tanh(), nn.Linear(5, 8), nn.Linear(8, 2))  # an activation first
    assert not _native_search.applies(plan_key(model_plan(first)), f32)
    double = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Tanh(), nn.Linear(8, 2))
    assert not _native_search.applies(plan_key(model_plan(double)), f32)
    trailing = nn.Sequential(nn.Linear(5, 2), nn.ReLU())
    assert not _native_search.applies(plan_key(model_plan(trailing)), f32)
    negative = nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(-0.5), nn.Linear(8, 2))
    assert not _native_search.applies(plan_key(model_plan(negative)), f32)


@pytest.mark.parametrize("gen", [GenericGenerator(step_size=0.02),
                                 ECCoGenerator(step_size=0.02, lambda_energy=1.0)],
                         ids=["generic", "ecco"])
@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("epsilon", [None, 0.3])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_same_results_as_the_engine_and_the_chain_step(monkeypatch, gen, constrained, epsilon,
                                                       n_classes):
    x = _problem()
    model = _trained([7, 20, 20, n_classes])
    with torch.no_grad():
        target = (model(x).argmax(1) + 1) % n_classes
    cons = _constraints(7, cost_weight=np.linspace(0.5, 2, 7)) if constrained else None
    # (the four-class model is very confident: fewer steps leave some rows unconverged)
    kw = dict(decision_threshold=0.8 if n_classes == 2 else 0.99,
              max_iter=8 if n_classes == 2 else 5, epsilon=epsilon)
    calls = _spy(monkeypatch)
    fast = search(model, x, target, gen, cons, **kw)
    assert calls == [len(x)]
    _assert_close(fast, _engine(model, x, target, gen, cons, **kw))
    _assert_close(fast, _steps(monkeypatch, model, x, target, gen, cons, **kw))
    # rows leave the search at many different steps, some never converge
    assert len(fast.n_iter.unique()) > 3 and 0 < int(fast.converged.sum()) < len(x)
    if constrained:  # immutable columns kept, bounds respected
        assert torch.equal(fast.counterfactuals[:, 1], x[:, 1])
        assert bool((fast.counterfactuals[:, 0] >= x[:, 0]).all())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 40), min_size=0, max_size=3),
       d=st.integers(1, 37), n=st.integers(1, 40), n_classes=st.sampled_from([2, 2, 3, 10, 17]),
       act=st.sampled_from(["relu", "leaky", "tanh", "sigmoid", None]),
       bias=st.booleans(), ecco=st.booleans(), eps=st.sampled_from([None, 0.2]),
       constrained=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_any_relu_chain_matches_the_engine(widths, d, n, n_classes, act, bias, ecco, eps,
                                           constrained, seed):
    """Every width (not only multiples of the vector width), depth, class count, bias and
    setting."""
    model = _mlp([d, *widths, n_classes], act=act, bias=bias, seed=seed)
    x = _problem(n, d, seed)
    gen_t = torch.Generator().manual_seed(seed)
    target = torch.randint(0, n_classes, (n,), generator=gen_t)
    gen = (ECCoGenerator(step_size=0.2, lambda_energy=0.5) if ecco
           else GenericGenerator(step_size=0.2))
    cons = _constraints(d) if constrained else None
    kw = dict(decision_threshold=0.7, max_iter=12, epsilon=eps)
    assert _native_search.applies(plan_key(model_plan(model)), torch.float32)
    _assert_close(search(model, x, target, gen, cons, **kw),
                  _engine(model, x, target, gen, cons, **kw), atol=5e-5)


def test_rows_do_not_depend_on_each_other_or_on_threads():
    """A row's result is bit for bit the same alone, in any batch, on any number of threads."""
    x = _problem(500, 9)
    model = _mlp([9, 32, 16, 2])
    target = torch.randint(0, 2, (500,), generator=torch.Generator().manual_seed(1))
    gen = ECCoGenerator(step_size=0.1)
    kw = dict(decision_threshold=0.9, max_iter=25, epsilon=0.4)
    with skct.config_context(torch_threads=1):
        one = search(model, x, target, gen, **kw)
    with skct.config_context(torch_threads=2):
        two = search(model, x, target, gen, **kw)
    part = search(model, x[137:141], target[137:141], gen, **kw)
    for name in ("counterfactuals", "n_iter", "converged", "target_proba", "nascent"):
        assert torch.equal(getattr(one, name), getattr(two, name))
        assert torch.equal(getattr(one, name)[137:141], getattr(part, name))


def test_path_is_that_of_the_search_without_it(monkeypatch):
    x = _problem(60, 4)
    model = _mlp([4, 16, 2])
    with torch.no_grad():
        target = 1 - model(x).argmax(1)
    gen = GenericGenerator(step_size=0.1)
    calls = _spy(monkeypatch)
    res = search(model, x, target, gen, max_iter=20, return_path=True)
    assert calls == [60, 60]  # once for the lengths, once writing the iterates
    plain = search(model, x, target, gen, max_iter=20)
    assert torch.equal(res.counterfactuals, plain.counterfactuals)
    stored = sum(v.shape[0] for _, _, v in res.compact_path.updates)
    assert stored == int((res.n_iter + 1).sum())
    path = res.path
    assert torch.equal(path[0], x) and torch.equal(path[-1], res.counterfactuals)
    torch.testing.assert_close(path, _engine(model, x, target, gen, max_iter=20,
                                             return_path=True).path, atol=2e-5, rtol=1e-4)


def test_fallbacks_keep_the_chain_step(monkeypatch):
    calls = _spy(monkeypatch)
    x = _problem(30, 5)
    target = torch.ones(30, dtype=torch.long)
    double = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Tanh(), nn.Linear(8, 2))
    search(double, x, target, GenericGenerator(), max_iter=3)
    search(_mlp([5, 8, 2]).double(), x.double(), target, GenericGenerator(), max_iter=3)
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "steps")
    search(_mlp([5, 8, 2]), x, target, GenericGenerator(), max_iter=3)
    assert calls == []
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "native")
    with pytest.raises(RuntimeError):  # a target outside the classes: the engine's error
        search(_mlp([5, 8, 2]), x, torch.full((30,), 2), GenericGenerator(), max_iter=3)
    assert calls == []


def test_weights_read_at_call_time_and_inputs_untouched(monkeypatch):
    x = _problem(50, 5)
    model = _mlp([5, 8, 2])
    x_before, w_before = x.clone(), [p.detach().clone() for p in model.parameters()]
    target = torch.ones(50, dtype=torch.long)
    first = search(model, x, target, GenericGenerator(), max_iter=10)
    assert torch.equal(x, x_before)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), w_before))
    with torch.no_grad():
        model[-1].bias.add_(torch.tensor([-2.0, 2.0]))
    second = search(model, x, target, GenericGenerator(), max_iter=10)
    assert not torch.equal(first.target_proba, second.target_proba)
    _assert_close(second, _engine(model, x, target, GenericGenerator(), max_iter=10))
    assert compiled.supports(model, GenericGenerator(), None, x)


def test_a_failed_allocation_falls_back_to_the_chain_step(monkeypatch):
    x = _problem(40, 5)
    model = _mlp([5, 8, 2])
    target = torch.ones(40, dtype=torch.long)

    def no_memory(*args, **kw):
        raise MemoryError("skct: the native search could not allocate its working memory.")

    monkeypatch.setattr(_native_search, "run", no_memory)
    res = search(model, x, target, GenericGenerator(), max_iter=10)
    _assert_close(res, _engine(model, x, target, GenericGenerator(), max_iter=10))
