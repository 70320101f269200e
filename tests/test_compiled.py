"""The fast search path (skct.search._compiled): same results as the eager engine."""

import functools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import skct
import skct.search._compiled as compiled
from skct.search import _fast_kernels
from skct.constraints import TorchConstraints
from skct.search import SearchPath
from skct.search import search as dispatching_search
from skct.search._compiled import compiled_search, supports
from skct.search._compiled_plan import model_plan
from skct.search.generators import ECCoGenerator, GenericGenerator, REVISEGenerator
from skct.training import MLP

D = 5
WORDS = ["increase", "none", "both", "decrease", "both"]


def _train(model, X, y, epochs=150):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


@functools.lru_cache(maxsize=None)
def _problem(dtype=torch.float32, n_classes=2, kind="tanh", last="relu"):
    """Factuals, targets and a trained MLP: rows converge at many different steps."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        X = torch.randn(300, D, dtype=dtype)
        score = X[:, 0] + 0.5 * X[:, 1]
        y = (score > 0).long() if n_classes == 2 else torch.bucketize(
            score, torch.tensor([-0.5, 0.5], dtype=dtype))
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid,
                "leaky": functools.partial(nn.LeakyReLU, 0.1)}
        model = nn.Sequential(nn.Linear(D, 16), acts[kind](), nn.Linear(16, 16), acts[last](),
                              nn.Linear(16, n_classes)).to(dtype)
        _train(model, X, y)
    with torch.no_grad():
        target = (model(X).argmax(1) + 1) % n_classes
    return X, target, model


def _constraints(dtype=torch.float32, **kw):
    return TorchConstraints.from_arrays(np.full(D, -2.5), np.full(D, 2.5), WORDS, [],
                                        dtype=dtype, **kw)


def _assert_same(a, b, atol=1e-5):
    assert torch.equal(a.n_iter, b.n_iter)
    assert torch.equal(a.converged, b.converged)
    torch.testing.assert_close(a.counterfactuals, b.counterfactuals, atol=atol, rtol=1e-4)
    torch.testing.assert_close(a.target_proba, b.target_proba, atol=atol, rtol=1e-4)
    torch.testing.assert_close(a.nascent, b.nascent, atol=atol, rtol=1e-4)
    if a.path is not None or b.path is not None:
        torch.testing.assert_close(a.path, b.path, atol=atol, rtol=1e-4)


def search(*args, **kwargs):
    """The eager engine (``fast_search=False``): the reference of the fast path's tests."""
    with skct.config_context(fast_search=False):
        return dispatching_search(*args, **kwargs)


def _both(model, x, target, gen, cons=None, **kw):
    """(eager engine, fast path) results; the fast path must not warn (no fallback)."""
    kw.setdefault("max_iter", 30)
    slow = search(model, x, target, gen, cons, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fast = compiled_search(model, x, target, gen, cons, **kw)
    return slow, fast


GENERATORS = [GenericGenerator(step_size=0.02), ECCoGenerator(step_size=0.02, lambda_energy=1.0)]


@pytest.fixture(params=["native", "steps", "aten"])
def mode(request, monkeypatch):
    """The default (the whole search in one native call where it applies, else the chain step
    with native loops), the chain step with native loops only, and with ATen calls only."""
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", request.param)
    if request.param != "aten" and _fast_kernels.library() is None:
        pytest.skip(f"native kernels unavailable: {_fast_kernels.status()}")
    return request.param


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("epsilon", [None, 0.3])
def test_same_results_as_engine(gen, constrained, epsilon, mode):
    X, target, model = _problem()
    cons = _constraints() if constrained else None
    assert supports(model, gen, cons, X)
    slow, fast = _both(model, X, target, gen, cons, epsilon=epsilon, decision_threshold=0.8)
    _assert_same(slow, fast)
    # rows leave the search at many different steps, some never converge
    assert len(slow.n_iter.unique()) > 5 and 0 < int(slow.converged.sum()) < len(X)


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
def test_same_path(gen, mode):
    X, target, model = _problem()
    slow, fast = _both(model, X, target, gen, _constraints(), return_path=True,
                       decision_threshold=0.8)
    assert fast.path.shape == (31, len(X), D)
    _assert_same(slow, fast)
    # stored compactly, like the engine's: per step only the rows still searching
    assert isinstance(fast.compact_path, SearchPath)
    stored = sum(v.shape[0] for _, _, v in fast.compact_path.updates)
    assert stored == int((fast.n_iter + 1).sum()) == sum(
        v.shape[0] for _, _, v in slow.compact_path.updates)


@pytest.mark.parametrize("max_iter", [0, 1])
def test_max_iter_zero_and_one(max_iter, mode):
    X, target, model = _problem()
    slow, fast = _both(model, X, target, GenericGenerator(), max_iter=max_iter, epsilon=0.1)
    _assert_same(slow, fast)
    assert int(fast.n_iter.max()) <= max_iter


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "leaky"])
def test_activations(kind, mode):
    X, target, model = _problem(kind=kind)
    _assert_same(*_both(model, X, target, GenericGenerator(step_size=0.1)))


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
@pytest.mark.parametrize("last", ["tanh", "sigmoid", "leaky"])
def test_activation_before_the_head(last, gen, mode):
    X, target, model = _problem(last=last)
    _assert_same(*_both(model, X, target, gen, _constraints(), decision_threshold=0.8))


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
def test_three_classes(gen, mode):
    X, target, model = _problem(n_classes=3)
    _assert_same(*_both(model, X, target, gen, _constraints(), decision_threshold=0.6))


def test_float64(mode):
    X, target, model = _problem(dtype=torch.float64)
    gen = ECCoGenerator(step_size=0.1)
    slow, fast = _both(model, X, target, gen, _constraints(torch.float64), epsilon=0.2)
    assert fast.counterfactuals.dtype == torch.float64
    _assert_same(slow, fast, atol=1e-10)


def test_cost_weights(mode):
    X, target, model = _problem()
    cons = _constraints(cost_weight=np.array([1.0, 2.0, 0.5, 1.0, 3.0]))
    assert supports(model, GenericGenerator(), cons, X)
    gen = GenericGenerator(step_size=0.1, lambda_cost=0.05)
    _assert_same(*_both(model, X, target, gen, cons, decision_threshold=0.8))


def test_linear_without_bias_and_trailing_activation(mode):
    X, target, _ = _problem()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(D, 8, bias=False), nn.Dropout(0.5), nn.Tanh(),
                          nn.Sequential(nn.Linear(8, 2), nn.Identity()), nn.LeakyReLU(0.2))
    model.train()  # the search runs in eval mode: dropout is the identity
    _assert_same(*_both(model, X, target, GenericGenerator(step_size=0.5)))
    assert model.training and model[1].training


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
@pytest.mark.parametrize("shape", ["linear", "act-linear", "leaky-head", "no-bias-head"])
def test_small_chains(shape, gen, mode):
    """Chains whose head reads the iterate itself, an activation of it, or a LeakyReLU."""
    X, target, _ = _problem()
    torch.manual_seed(5)
    model = {"linear": lambda: nn.Sequential(nn.Linear(D, 2)),
             "act-linear": lambda: nn.Sequential(nn.Tanh(), nn.Linear(D, 2)),
             "leaky-head": lambda: nn.Sequential(nn.Linear(D, 8), nn.LeakyReLU(0.2),
                                                 nn.Linear(8, 2)),
             "no-bias-head": lambda: nn.Sequential(nn.Linear(D, 8), nn.Sigmoid(),
                                                   nn.Linear(8, 2, bias=False))}[shape]()
    gen = type(gen)(**{**gen.get_params(), "step_size": 0.3})
    _assert_same(*_both(model, X, target, gen, _constraints(), epsilon=0.5, return_path=True,
                        decision_threshold=0.7))


def test_skct_mlp_read_as_a_chain(mode):
    X, target, _ = _problem()
    torch.manual_seed(2)
    module = MLP(D, 2, hidden_layer_sizes=(8, 8))
    assert [layer[0] for layer in model_plan(module)] == ["linear", "act"] * 2 + ["linear"]
    assert supports(module, GenericGenerator(), None, X)
    _assert_same(*_both(module, X, target, GenericGenerator(step_size=0.5)))


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(D, D), nn.Linear(D, 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


class _SideEffects(nn.Module):
    """A chain of layers in a module of its own whose forward records each call."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, 2))
        self.calls = []

    def forward(self, x):
        self.calls.append((len(x), self.training))
        return self.body(x)


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
def test_custom_module_through_autograd(gen):
    """A model that is not a chain of layers (here a residual block) runs with autograd."""
    X, target, _ = _problem()
    torch.manual_seed(3)
    model = _Residual()
    assert model_plan(model) is None and supports(model, gen, None, X)
    _assert_same(*_both(model, X, target, gen, _constraints(), epsilon=0.3, return_path=True))


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
def test_custom_module_with_three_classes_through_autograd(gen):
    """Two logits take the sigmoid form of the head, more take the log-sum-exp one."""
    X, _, _ = _problem()
    torch.manual_seed(5)
    model = _Residual()
    model.b = nn.Linear(D, 3)
    with torch.no_grad():
        target = (model(X).argmax(1) + 1) % 3
    assert model_plan(model) is None
    _assert_same(*_both(model, X, target, gen, _constraints(), epsilon=0.3))


def test_custom_module_code_runs_only_in_the_search():
    """Reading the structure never runs the model's code; the search runs it in eval mode."""
    X, target, _ = _problem()
    torch.manual_seed(4)
    model = _SideEffects().train()
    assert supports(model, GenericGenerator(), None, X) and not model.calls
    res = compiled_search(model, X, target, GenericGenerator(), max_iter=4)
    assert len(model.calls) == int(res.n_iter.max()) + 1
    assert not any(training for _, training in model.calls) and model.training


def test_hooks_and_callables_through_autograd():
    X, target, model = _problem()
    model = nn.Sequential(*[m for m in model])  # same weights, its own hooks
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])) or o * 1.5)
    try:
        assert model_plan(model) is None and supports(model, GenericGenerator(), None, X)
        slow, fast = _both(model, X, target, GenericGenerator(step_size=0.02))
        _assert_same(slow, fast)  # the hook scales the logits in both
    finally:
        handle.remove()
    assert calls
    func = functools.partial(model)  # any callable returning logits
    _assert_same(*_both(func, X, target, GenericGenerator(step_size=0.02)))


@pytest.mark.parametrize("max_iter", [0, 3])
def test_model_runs_with_gradients_as_in_the_engine(max_iter):
    """A hook that sees the grad mode behaves the same, even at the last (tested-only) step."""
    X, target, model = _problem()
    model = nn.Sequential(*[m for m in model])
    modes = []
    handle = model.register_forward_pre_hook(lambda m, a: modes.append(torch.is_grad_enabled()))
    try:
        compiled_search(model, X, target, GenericGenerator(), max_iter=max_iter)
    finally:
        handle.remove()
    assert modes and all(modes)


def test_unsupported_searches():
    X, target, model = _problem()
    gen = GenericGenerator()
    assert not supports(model, REVISEGenerator(), None, X)

    class MyGenerator(GenericGenerator):
        pass

    assert not supports(model, MyGenerator(), None, X)
    assert not supports(model, gen, None, X.to(torch.float16))
    # a rehardened state (one_hot="reharden") stays with the engine where there is something
    # to harden
    reharden = GenericGenerator(one_hot="reharden")
    assert supports(model, reharden, _constraints(), X)
    for cons in _hardening_constraints().values():
        assert supports(model, gen, cons, X)
        assert not supports(model, reharden, cons, X)
        slow, fast = _both(model, X, target, reharden, cons)
        assert torch.equal(slow.counterfactuals, fast.counterfactuals)


def _hardening_constraints():
    """Constraints whose iterates the search hardens: a one-hot group (with a dropped level),
    an integer grid, a limit on changed features, and all three."""
    words = ["increase", "both", "both", "both", "both"]
    bounds = (np.full(D, -2.5), np.full(D, 2.5))
    return {
        "grid": _constraints(grid_scale=np.array([4.0, 0, 0, 0, 0]),
                             grid_offset=np.array([10.0, 0, 0, 0, 0])),
        "limited": _constraints(max_changed=2),
        "grouped": TorchConstraints.from_arrays(*bounds, words, [[3, 4]],
                                                group_has_dropped=[True]),
        "all": TorchConstraints.from_arrays(*bounds, words, [[3, 4]], max_changed=2,
                                            grid_scale=np.array([4.0, 0, 0, 0, 0]),
                                            grid_offset=np.array([10.0, 0, 0, 0, 0])),
    }


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
@pytest.mark.parametrize("name", ["grid", "limited", "grouped", "all"])
def test_hardened_iterates_as_the_engine(name, gen, mode):
    """The model sees each iterate hardened (groups one-hot, grid columns rounded, at most
    max_changed features changed) while the soft state moves, as in the engine."""
    X, target, model = _problem(kind="relu")
    X = X.clone()
    X[:, 3:5] = torch.nn.functional.one_hot((X[:, 3] > 0).long(), 2).float()
    X[:150, 3:5] = 0.0  # half the rows at the group's dropped level
    X[:, 0] = (torch.round(X[:, 0] * 4 + 10) - 10) / 4  # on the integer grid
    cons = _hardening_constraints()[name]
    assert supports(model, gen, cons, X)
    slow, fast = _both(model, X, target, gen, cons, epsilon=0.3, return_path=True,
                       decision_threshold=0.8)
    _assert_same(slow, fast)
    assert len(slow.n_iter.unique()) > 3
    hard = compiled.straight_through_harden(fast.counterfactuals, X, cons)
    assert torch.equal(hard, fast.counterfactuals)  # every counterfactual is a valid point


def test_hardened_iterates_of_a_custom_module():
    X, target, _ = _problem()
    cons = _hardening_constraints()["all"]
    _assert_same(*_both(_Residual(), X, target, GenericGenerator(step_size=0.1), cons,
                        decision_threshold=0.7, max_iter=10))


def test_chain_with_other_dtype_or_width_uses_autograd():
    X, target, model = _problem()
    gen = GenericGenerator(step_size=0.02)
    key = compiled._structure_key(model, gen, None, X.double())
    assert key is not None and key[0] == "autograd"
    with pytest.raises(RuntimeError):  # the engine fails the same way: dtypes differ
        search(model, X.double(), target, gen, max_iter=2)
    with pytest.raises(RuntimeError):
        compiled_search(model, X.double(), target, gen, max_iter=2)


def test_dispatch_from_the_engine_never_recurses(monkeypatch):
    """With ``search`` dispatching to the fast path (as the engine will), every search ends."""
    import skct.search._engine as engine

    eager = engine.search

    def dispatching(model, x, target, generator, constraints=None, **kw):
        if supports(model, generator, constraints, x):
            return compiled_search(model, x, target, generator, constraints, **kw)
        return eager(model, x, target, generator, constraints, **kw)

    monkeypatch.setattr(engine, "search", dispatching)
    X, target, model = _problem()
    _assert_same(search(model, X, target, GenericGenerator()),
                 dispatching(model, X, target, GenericGenerator()))
    dispatching(model, X, target, GenericGenerator(), _constraints(max_changed=1), max_iter=2)
    with pytest.raises(ValueError, match="2D"):
        dispatching(model, X[0], target[:1], GenericGenerator())
    with pytest.raises(ValueError, match="entries"):
        dispatching(model, X, target[:3], GenericGenerator())
    for bad in (torch.full((len(X),), 2), torch.full((len(X),), -1)):
        with pytest.raises(RuntimeError):
            dispatching(model, X, bad, GenericGenerator())
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "0")
    dispatching(model, X, target, GenericGenerator(), max_iter=2)


@pytest.mark.parametrize("gen", GENERATORS, ids=["generic", "ecco"])
def test_large_searches_run_in_chunks(monkeypatch, gen, mode):
    X, target, model = _problem()
    monkeypatch.setattr(compiled, "CHUNK_ROWS", 64)  # 300 rows: 5 chunks of 60
    _assert_same(*_both(model, X, target, gen, _constraints(), epsilon=0.3, return_path=True,
                        decision_threshold=0.8))
    custom = _Residual()
    _assert_same(*_both(custom, X, target, gen, max_iter=5))


def test_off_switch(monkeypatch):
    X, _, model = _problem()
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "0")
    assert not supports(model, GenericGenerator(), None, X)


def test_model_untouched_and_inputs_unchanged():
    X, target, model = _problem()
    model.train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    before = [p.detach().clone() for p in model.parameters()]
    x = X.clone().requires_grad_(True)
    compiled_search(model, x, target, GenericGenerator(), _constraints(), epsilon=0.2)
    assert model.training
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())
    assert torch.equal(x.detach(), X) and x.grad is None
    for p in model.parameters():
        p.grad = None
    model.eval()


def test_weights_read_at_call_time():
    X, target, model = _problem()
    model = nn.Sequential(*[m for m in model])  # a copy of the structure, shared weights
    first = compiled_search(model, X, target, GenericGenerator())
    with torch.no_grad():
        model[-1].bias.add_(torch.tensor([3.0, -3.0]))
    second = compiled_search(model, X, target, GenericGenerator())
    _assert_same(search(model, X, target, GenericGenerator()), second)
    assert not torch.equal(first.counterfactuals, second.counterfactuals)
    with torch.no_grad():
        model[-1].bias.sub_(torch.tensor([3.0, -3.0]))


def test_invalid_targets_raise_like_the_engine():
    X, _, model = _problem()
    with pytest.raises(ValueError, match="entries"):
        compiled_search(model, X, torch.zeros(3, dtype=torch.long), GenericGenerator())
    with pytest.raises(RuntimeError):
        compiled_search(model, X, torch.full((len(X),), 5), GenericGenerator())
    with pytest.raises(RuntimeError):  # autograd path: no plan to check the classes against
        compiled_search(_Residual(), X, torch.full((len(X),), 5), GenericGenerator())


# ---------------------------------------------------------------------------------------------
# the torch.compile tier (opt-in): one compilation per structure, weights and sizes change freely
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("gen, constrained, epsilon", [(GENERATORS[0], True, 0.3),
                                                       (GENERATORS[1], False, None)],
                         ids=["generic-constrained-eps", "ecco"])
def test_compiled_step(monkeypatch, gen, constrained, epsilon):
    torch._dynamo.reset()
    compiled.clear_cache()
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "compile")
    X, target, model = _problem()
    cons = _constraints() if constrained else None
    kw = dict(epsilon=epsilon, decision_threshold=0.8, return_path=constrained)
    _assert_same(*_both(model, X, target, gen, cons, **kw), atol=1e-4)
    assert len(compiled.compile_times()) == 1
    frames = torch._dynamo.utils.counters["frames"]["ok"]
    _assert_same(*_both(model, X[:77], target[:77], gen, cons, **kw), atol=1e-4)
    with torch.no_grad():
        model[0].weight.mul_(1.01)
    try:
        _assert_same(*_both(model, X, target, gen, cons, **kw), atol=1e-4)
    finally:
        with torch.no_grad():
            model[0].weight.div_(1.01)
    assert torch._dynamo.utils.counters["frames"]["ok"] == frames  # no recompilation


def test_failed_compilation_falls_back(monkeypatch):
    compiled.clear_cache()
    monkeypatch.setenv("SKCT_COMPILED_SEARCH", "compile")

    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no compiler")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    X, target, model = _problem()
    slow = search(model, X, target, GenericGenerator())
    with pytest.warns(RuntimeWarning, match="could not be compiled"):
        fast = compiled_search(model, X, target, GenericGenerator())
    _assert_same(slow, fast)
    with warnings.catch_warnings():  # once per structure
        warnings.simplefilter("error", RuntimeWarning)
        _assert_same(slow, compiled_search(model, X, target, GenericGenerator()))
    compiled.clear_cache()


# ---------------------------------------------------------------------------------------------
# the native loops against the torch operations they replace
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def lib():
    out = _fast_kernels.library()
    if out is None:
        pytest.skip(f"native kernels unavailable: {_fast_kernels.status()}")
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_update_is_mask_step_and_project(lib, dtype):
    from skct.search import mask_step, project

    gen = torch.Generator().manual_seed(0)
    n, d = 64, 8
    x0 = torch.randn(n, d, generator=gen, dtype=dtype)
    x = x0 + torch.randn(n, d, generator=gen, dtype=dtype) * (torch.rand(n, d) > 0.3)
    gx = torch.randn(n, d, generator=gen, dtype=dtype)
    gx[0, 0], x[1, 1] = float("nan"), float("nan")  # NaN stays NaN, as in torch
    words = ["none", "increase", "decrease", "both"] * 2
    c = TorchConstraints.from_arrays(np.r_[-1.0, -np.inf, -0.5, -1, -2, -np.inf, 0, -1],
                                     np.r_[1.0, 0.5, np.inf, 1, 2, np.inf, 1, 0.2], words, [],
                                     dtype=dtype)
    w = torch.rand(d, dtype=dtype) + 0.5
    for cons, weight in ((None, None), (c, None), (c, w), (None, w)):
        cost = torch.sign(x - x0) * (1 if weight is None else weight)
        step = -0.3 * (gx + 0.01 * cost)
        want = x + step if cons is None else project(x + mask_step(step, cons), x0, cons,
                                                     hard=False)
        got = _fast_kernels.update(lib, x, x0, gx, weight, 0.3, 0.01, cons)
        torch.testing.assert_close(got, want, equal_nan=True)
        assert torch.equal(got.isnan(), want.isnan())
        strided = _fast_kernels.update(lib, x, x0, gx.t().contiguous().t(), weight, 0.3, 0.01,
                                       cons)  # a non-contiguous gradient is copied first
        assert torch.equal(strided.isnan(), got.isnan())
        torch.testing.assert_close(strided, got, equal_nan=True, rtol=0, atol=0)
        if cons is not None:  # immutable columns keep the factual bit for bit
            assert torch.equal(got[2:, 0], x0[2:, 0]) and torch.equal(got[2:, 4], x0[2:, 4])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_activation_backward(lib, dtype):
    aten = torch.ops.aten
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(50, 7, generator=gen, dtype=dtype)
    g = torch.randn(50, 7, generator=gen, dtype=dtype)
    cases = [("relu", torch.relu(h), aten.threshold_backward(g, torch.relu(h), 0)),
             ("tanh", torch.tanh(h), aten.tanh_backward(g, torch.tanh(h))),
             ("sigmoid", torch.sigmoid(h), aten.sigmoid_backward(g, torch.sigmoid(h))),
             ("leaky_relu", h, aten.leaky_relu_backward(g, h, 0.1, False))]
    for act, saved, want in cases:
        got = _fast_kernels.act_back(lib, g.clone(), saved, act, 0.1)
        torch.testing.assert_close(got, want, rtol=0, atol=0 if act == "relu" else 1e-6)


def test_without_a_compiler_the_aten_step_runs(monkeypatch):
    from skct._utils import _native

    monkeypatch.setattr(_native, "compiler", lambda: None)
    lib = _fast_kernels._LIBRARY
    lib.reset()
    try:
        assert _fast_kernels.library() is None and "compiler" in _fast_kernels.status()
        X, target, model = _problem()
        _assert_same(*_both(model, X, target, GENERATORS[1], _constraints()))
    finally:
        monkeypatch.undo()
        lib.reset()  # the next search loads the kernels again


def test_kernel_cache_only_in_a_private_directory(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    (shared / "kernels").mkdir(parents=True)
    (shared / "kernels").chmod(0o777)
    monkeypatch.setenv("SKCT_CACHE_DIR", str(shared))
    from skct._utils._native import private_dir

    assert private_dir() != shared / "kernels"
    private = tmp_path / "private"
    monkeypatch.setenv("SKCT_CACHE_DIR", str(private))
    assert private_dir() == private / "kernels"
    assert not (private / "kernels").stat().st_mode & 0o022


def test_search_dispatches_to_the_fast_path_unless_turned_off():
    import skct
    from skct.search import _compiled, search
    from skct.search.generators import GenericGenerator

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(32, 4)
    target = torch.ones(32, dtype=torch.long)
    calls = []
    real = _compiled.fast_search

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    _compiled.fast_search = spy
    try:
        fast = search(model, x, target, GenericGenerator(), max_iter=20)
        assert calls == [1]  # on by default
        with skct.config_context(fast_search=False):
            eager = search(model, x, target, GenericGenerator(), max_iter=20)
        assert calls == [1]
    finally:
        _compiled.fast_search = real
    torch.testing.assert_close(fast.counterfactuals, eager.counterfactuals, rtol=1e-5, atol=1e-5)
    assert torch.equal(fast.converged, eager.converged)
    assert torch.equal(fast.n_iter, eager.n_iter)
