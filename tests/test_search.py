"""The batched counterfactual search engine: constraints, bookkeeping, side effects, validity."""

import functools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skct.constraints import ActionabilityConstraints, TorchConstraints
from skct.search.generators import ECCoGenerator, GenericGenerator, REVISEGenerator
from skct._utils import eval_mode
from skct.search import SearchResult, search

from conftest import make_blobs2d, train_mlp

# Property-test problems: 3 numeric columns and one one-hot group of 3 levels.
N_NUM, GROUP = 3, [3, 4, 5]
D = N_NUM + len(GROUP)
WORDS = ["none", "increase", "decrease", "both"]


def _one_hot_rows(rng, n):
    X = np.zeros((n, D), dtype=np.float32)
    X[:, :N_NUM] = rng.randn(n, N_NUM)
    X[np.arange(n), N_NUM + rng.randint(0, len(GROUP), n)] = 1.0
    return X


@functools.lru_cache(maxsize=None)
def _revise_mixed():
    """A REVISE generator fitted once on mixed (numeric + one-hot) reference data."""
    X = _one_hot_rows(np.random.RandomState(0), 200)
    return REVISEGenerator(vae_epochs=10, latent_dim=3, hidden=16, vae_lr=1e-2,
                           random_state=0).fit(X)


@functools.lru_cache(maxsize=None)
def _blobs_setup():
    X, y = make_blobs2d(n=200, seed=0)
    model = train_mlp(X, y)
    revise = REVISEGenerator(vae_epochs=50, latent_dim=2, hidden=32, vae_lr=1e-2,
                             random_state=0).fit(X)
    return X, y, model, revise


def _random_mlp(seed, d=D, hidden=8):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(),
                                   torch.nn.Linear(hidden, 2))


@st.composite
def search_problem(draw):
    """Random factuals, mutability, bounds (as ActionabilityConstraints sees them), model seed."""
    n = draw(st.integers(1, 6))
    X = np.zeros((n, D), dtype=np.float32)
    X[:, :N_NUM] = draw(arrays(np.float32, (n, N_NUM),
                               elements=st.floats(-3, 3, width=32)))
    levels = draw(arrays(np.int64, (n,), elements=st.integers(0, len(GROUP) - 1)))
    X[np.arange(n), np.asarray(GROUP)[levels]] = 1.0

    mutability = {j: draw(st.sampled_from(WORDS)) for j in range(N_NUM)}
    mutability[GROUP[0]] = mutability[GROUP[1]] = mutability[GROUP[2]] = draw(
        st.sampled_from(["none", "both"]))
    bounds = {}
    for j in range(N_NUM):
        kind = draw(st.sampled_from(["auto", "pair", "low", "high"]))
        a, b = sorted(draw(st.lists(st.floats(-2, 2), min_size=2, max_size=2)))
        if kind == "pair":
            bounds[j] = (a, b)
        elif kind == "low":
            bounds[j] = (a, None)
        elif kind == "high":
            bounds[j] = (None, b)
    spec = ActionabilityConstraints(mutability=mutability, bounds=bounds or "auto",
                                    categorical=[GROUP])
    # the domain is learned on other data, so factuals may lie outside of it
    ref = _one_hot_rows(np.random.RandomState(draw(st.integers(0, 10))), 20)
    with warnings.catch_warnings():  # bounds drawn for immutable columns restrict nothing
        warnings.filterwarnings("ignore", "bounds: column .* is immutable", UserWarning)
        c = spec.fit(ref).to_torch()
    target = draw(arrays(np.int64, (n,), elements=st.integers(0, 1)))
    seed = draw(st.integers(0, 2**16))
    return torch.as_tensor(X), torch.as_tensor(target), c, spec.mutability_, seed


def _check_valid_point(z, x, c, words, where=""):
    """All constraints hold for points z [N, D] relative to factuals x [N, D]."""
    lo = torch.minimum(c.lower, x)
    hi = torch.maximum(c.upper, x)
    assert torch.all(z >= lo) and torch.all(z <= hi), f"{where}: outside the widened domain"
    for j in range(N_NUM):
        if words[j] == "none":
            assert torch.equal(z[:, j], x[:, j]), f"{where}: immutable feature {j} changed"
        elif words[j] == "increase":
            assert torch.all(z[:, j] >= x[:, j]), f"{where}: feature {j} decreased"
        elif words[j] == "decrease":
            assert torch.all(z[:, j] <= x[:, j]), f"{where}: feature {j} increased"
    block = z[:, GROUP]
    assert torch.all((block == 0) | (block == 1)), f"{where}: soft one-hot group"
    assert torch.all(block.sum(dim=1) == 1), f"{where}: not exactly one active level"
    if words[GROUP[0]] == "none":
        assert torch.equal(block, x[:, GROUP]), f"{where}: immutable group changed"


def _check_bookkeeping(res, max_iter, threshold):
    assert torch.all(res.n_iter >= 0) and torch.all(res.n_iter <= max_iter)
    assert torch.all(res.target_proba[res.converged] >= threshold)
    assert torch.all(res.target_proba[~res.converged] < threshold)
    assert torch.all(res.n_iter[~res.converged] == max_iter)
    assert res.total_steps == int(res.n_iter.sum())


@pytest.mark.parametrize("generator", [GenericGenerator(step_size=0.5),
                                       ECCoGenerator(step_size=0.5, lambda_energy=1.0)],
                         ids=["generic", "ecco"])
@settings(max_examples=15, deadline=None)
@given(problem=search_problem())
def test_search_respects_constraints(generator, problem):
    x, target, c, words, seed = problem
    model = _random_mlp(seed)
    x_before = x.clone()
    max_iter, thr = 12, 0.99
    res = search(model, x, target, generator, c, decision_threshold=thr, max_iter=max_iter,
                 epsilon=0.2, return_path=True)
    assert torch.equal(x, x_before)  # factuals are not modified in place
    _check_valid_point(res.counterfactuals, x, c, words, "counterfactuals")
    _check_valid_point(res.nascent, x, c, words, "nascent")
    for t in range(res.path.shape[0]):
        _check_valid_point(res.path[t], x, c, words, f"path[{t}]")
    _check_bookkeeping(res, max_iter, thr)
    assert (res.nascent - x).abs().amax(dim=1).le(0.2).all()


@settings(max_examples=8, deadline=None)
@given(problem=search_problem())
def test_search_respects_constraints_revise(problem):
    x, target, c, words, seed = problem
    model = _random_mlp(seed)
    gen = _revise_mixed()
    max_iter, thr = 12, 0.99
    res = search(model, x, target, gen, c, decision_threshold=thr, max_iter=max_iter,
                 return_path=True)
    _check_valid_point(res.counterfactuals, x, c, words, "counterfactuals")
    for t in range(res.path.shape[0]):
        _check_valid_point(res.path[t], x, c, words, f"path[{t}]")
    _check_bookkeeping(res, max_iter, thr)
    assert torch.equal(res.path[-1], res.counterfactuals)


def test_constraints_bind_in_a_real_search():
    # the properties above are not vacuous: features move, bounds bind, levels switch
    X = _one_hot_rows(np.random.RandomState(0), 40)
    x = torch.as_tensor(X)
    spec = ActionabilityConstraints(mutability={0: "increase", 1: "decrease"},
                                    bounds={2: (-0.5, 0.5)}, categorical=[GROUP]).fit(X)
    c = spec.to_torch()
    model = _random_mlp(2)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    res = search(model, x, target, GenericGenerator(step_size=1.0), c,
                 decision_threshold=0.999, max_iter=30)
    cf = res.counterfactuals
    _check_valid_point(cf, x, c, spec.mutability_, "counterfactuals")
    assert (cf[:, 0] > x[:, 0]).sum() >= 10
    assert (cf[:, 1] < x[:, 1]).sum() >= 3
    assert ((cf[:, 2] == 0.5) | (cf[:, 2] == -0.5)).sum() >= 10
    assert (cf[:, GROUP] != x[:, GROUP]).any(dim=1).sum() >= 10
    # a factual outside the domain is not forced inside: its own domain is widened
    outside = (x[:, 2] > 0.5) | (x[:, 2] < -0.5)
    assert outside.any()
    lo, hi = torch.minimum(c.lower, x), torch.maximum(c.upper, x)
    assert torch.all((cf[outside, 2] >= lo[outside, 2]) & (cf[outside, 2] <= hi[outside, 2]))


def test_counterfactual_groups_are_exactly_one_hot_with_wide_group_bounds():
    # Regression (found by the property test above): with one-hot columns whose domain is wider
    # than [0, 1], the soft search state leaves [0, 1] and the straight-through forward value
    # x + (hard - x) came out as 0.99999994 instead of 1.
    c = TorchConstraints.from_arrays(
        [-3.117661714553833, -2.818263053894043, -3.1280789375305176, -1.0, -1.0,
         -0.8696938753128052],
        [3.669130802154541, 3.2100062370300293, 2.6448705196380615, 1.399999976158142,
         1.399999976158142, 2.0696938037872314],
        ["none"] * 3 + ["both"] * 3, [GROUP])
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    res = search(_random_mlp(1), x, torch.tensor([0]), ECCoGenerator(step_size=0.5,
                 lambda_energy=1.0), c, decision_threshold=0.99, max_iter=12, return_path=True)
    for t in range(res.path.shape[0]):
        block = res.path[t][:, GROUP]
        assert torch.all((block == 0) | (block == 1)), f"path[{t}] = {block.tolist()}"
    assert torch.equal(res.counterfactuals[:, GROUP], torch.tensor([[0.0, 0.0, 1.0]]))


# ---------------------------------------------------------------------------------------
# Bookkeeping on the trained blobs model
# ---------------------------------------------------------------------------------------


def _blobs_tensors(n=None):
    X, y, model, revise = _blobs_setup()
    if n is not None:
        idx = np.r_[0:n // 2, 100:100 + n - n // 2]
        X, y = X[idx], y[idx]
    return torch.as_tensor(X), torch.as_tensor(y), model, revise


@pytest.mark.parametrize("name", ["generic", "ecco", "revise"])
def test_return_path(name):
    x, y, model, revise = _blobs_tensors(20)
    gen = {"generic": GenericGenerator(step_size=0.1), "ecco": ECCoGenerator(step_size=0.1),
           "revise": revise}[name]
    max_iter = 25
    res = search(model, x, 1 - y, gen, max_iter=max_iter, return_path=True)
    assert isinstance(res, SearchResult)
    assert res.path.shape == (max_iter + 1, 20, 2)
    assert torch.equal(res.path[-1], res.counterfactuals)
    if name != "revise":
        assert torch.equal(res.path[0], x)
    # a frozen row repeats its final value until the end of the path
    for i in range(20):
        k = int(res.n_iter[i])
        assert torch.equal(res.path[k:, i], res.counterfactuals[i].expand(max_iter + 1 - k, 2))
        if k > 0:
            assert not torch.equal(res.path[k - 1, i], res.path[k, i])
    # without return_path there is no path, and the result is the same
    res2 = search(model, x, 1 - y, gen, max_iter=max_iter)
    assert res2.path is None
    assert torch.equal(res2.counterfactuals, res.counterfactuals)
    assert torch.equal(res2.n_iter, res.n_iter)


def test_path_when_all_rows_converge_early():
    x, y, model, _ = _blobs_tensors(10)
    res = search(model, x, y, GenericGenerator(), max_iter=30, return_path=True)
    # every row already is of its own class: nothing moves
    assert res.path.shape == (31, 10, 2)
    assert torch.equal(res.path, x.expand(31, 10, 2))


@pytest.mark.parametrize("max_iter", [0, 1, 5, 40])
def test_converged_and_n_iter(max_iter):
    x, y, model, _ = _blobs_tensors(40)
    thr = 0.9
    res = search(model, x, 1 - y, GenericGenerator(step_size=0.1), decision_threshold=thr,
                 max_iter=max_iter)
    _check_bookkeeping(res, max_iter, thr)
    with torch.no_grad():
        p = torch.softmax(model(res.counterfactuals), dim=1).gather(1, (1 - y)[:, None])
    torch.testing.assert_close(res.target_proba, p.squeeze(1))
    if max_iter == 0:
        assert torch.equal(res.counterfactuals, x) and not res.converged.any()
    assert res.converged.dtype == torch.bool and res.n_iter.dtype == torch.long


@pytest.mark.parametrize("gen", [GenericGenerator(), ECCoGenerator()], ids=["generic", "ecco"])
def test_rows_already_of_target_class(gen):
    x, y, model, _ = _blobs_tensors(20)
    target = y.clone()
    target[::2] = 1 - y[::2]  # half the rows need to move, half are already there
    res = search(model, x, target, gen, decision_threshold=0.75, max_iter=50)
    with torch.no_grad():
        p0 = torch.softmax(model(x), dim=1).gather(1, target[:, None]).squeeze(1)
    already = p0 >= 0.75
    assert already[1::2].all()
    assert torch.all(res.n_iter[already] == 0)
    assert torch.all(res.converged[already])
    assert torch.equal(res.counterfactuals[already], x[already])
    torch.testing.assert_close(res.target_proba[already], p0[already])
    assert torch.all(res.n_iter[~already] > 0)


def test_nascent_iterate():
    x, y, model, _ = _blobs_tensors(20)
    gen = GenericGenerator(step_size=0.2)
    eps = 0.5
    res = search(model, x, 1 - y, gen, max_iter=30, epsilon=eps, return_path=True)
    dist = (res.nascent - x).abs().amax(dim=1)
    assert torch.all(dist <= eps)
    # the nascent iterate is the last path iterate within epsilon of the factual
    within = (res.path - x).abs().amax(dim=2) <= eps  # [T + 1, N]
    for i in range(20):
        last = int(within[:, i].nonzero().max())
        assert torch.equal(res.nascent[i], res.path[last, i])
    # somewhere the search did leave the epsilon ball, so nascent != counterfactual
    assert (res.nascent != res.counterfactuals).any()
    # a tiny epsilon (or none) gives the factuals
    tiny = search(model, x, 1 - y, gen, max_iter=30, epsilon=1e-9)
    assert torch.equal(tiny.nascent, x)
    none = search(model, x, 1 - y, gen, max_iter=30)
    assert torch.equal(none.nascent, x)
    # epsilon does not change the search itself
    assert torch.equal(tiny.counterfactuals, res.counterfactuals)


@pytest.mark.parametrize("name", ["generic", "ecco", "revise"])
def test_batch_independence(name):
    x, y, model, revise = _blobs_tensors(12)
    target = 1 - y
    gen = {"generic": GenericGenerator(step_size=0.1, lambda_cost=0.05),
           "ecco": ECCoGenerator(step_size=0.1, lambda_cost=0.05), "revise": revise}[name]
    batch = search(model, x, target, gen, decision_threshold=0.9, max_iter=40, epsilon=0.3)
    for i in range(12):
        one = search(model, x[i:i + 1], target[i:i + 1], gen, decision_threshold=0.9,
                     max_iter=40, epsilon=0.3)
        torch.testing.assert_close(one.counterfactuals[0], batch.counterfactuals[i],
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(one.nascent[0], batch.nascent[i], atol=1e-5, rtol=0)
        assert int(one.n_iter[0]) == int(batch.n_iter[i])
        assert bool(one.converged[0]) == bool(batch.converged[i])


def test_batch_independence_with_constraints():
    rng = np.random.RandomState(3)
    X = _one_hot_rows(rng, 10)
    x = torch.as_tensor(X)
    c = ActionabilityConstraints(mutability={0: "increase", 1: "none", 2: "decrease"},
                                 categorical=[GROUP]).fit(X).to_torch()
    model = _random_mlp(7)
    target = torch.as_tensor(rng.randint(0, 2, 10))
    gen = ECCoGenerator(step_size=0.3)
    batch = search(model, x, target, gen, c, decision_threshold=0.95, max_iter=20)
    for i in range(10):
        one = search(model, x[i:i + 1], target[i:i + 1], gen, c, decision_threshold=0.95,
                     max_iter=20)
        torch.testing.assert_close(one.counterfactuals[0], batch.counterfactuals[i],
                                   atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------
# Side effects on the model
# ---------------------------------------------------------------------------------------


class _DropoutNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.5))
        self.head = torch.nn.Linear(16, 2)
        self.seen_training = []

    def forward(self, x):
        self.seen_training.append([m.training for m in self.modules()])
        return self.head(self.body(x))


def test_search_leaves_model_untouched():
    torch.manual_seed(0)
    net = _DropoutNet()
    net.train()
    net.head.eval()  # mixed flags must be restored one by one
    flags = [m.training for m in net.modules()]
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    pre_grad = torch.full_like(net.head.weight, 0.25)
    net.head.weight.grad = pre_grad.clone()
    grad_obj = net.head.weight.grad
    x = torch.as_tensor(make_blobs2d(n=20)[0])
    target = torch.ones(20, dtype=torch.long)

    res1 = search(net, x, target, ECCoGenerator(), decision_threshold=0.99, max_iter=10)
    res2 = search(net, x, target, ECCoGenerator(), decision_threshold=0.99, max_iter=10)

    assert [m.training for m in net.modules()] == flags
    for k, v in net.named_parameters():
        assert torch.equal(v, params[k]), k
        assert v.requires_grad
    assert net.head.weight.grad is grad_obj
    assert torch.equal(net.head.weight.grad, pre_grad)
    for name in ["head.bias", "body.0.weight", "body.0.bias"]:
        assert net.get_parameter(name).grad is None, name
    # the model ran in eval mode throughout, so dropout was off and the search deterministic
    assert net.seen_training and all(not any(f) for f in net.seen_training)
    assert torch.equal(res1.counterfactuals, res2.counterfactuals)


def test_search_with_plain_callable_model():
    w = torch.tensor([[1.0, -1.0], [0.5, -0.5]])
    x = torch.tensor([[2.0, 2.0], [-1.0, 0.0]])
    res = search(lambda z: z @ w, x, torch.tensor([1, 1]), GenericGenerator(), max_iter=50)
    assert res.converged.all()


def test_search_under_no_grad_and_with_grad_requiring_input():
    x, y, model, _ = _blobs_tensors(6)
    xr = x.clone().requires_grad_(True)
    with torch.no_grad():
        res = search(model, xr, 1 - y, GenericGenerator(), max_iter=30)
    assert not res.counterfactuals.requires_grad and not res.nascent.requires_grad
    assert xr.grad is None
    assert res.converged.all()


def test_eval_mode_restores_on_exception():
    net = _DropoutNet()
    net.train()
    net.body[2].eval()
    flags = [m.training for m in net.modules()]
    with pytest.raises(KeyError, match="boom"):
        with eval_mode(net) as m:
            assert m is net
            assert not any(mod.training for mod in net.modules())
            raise KeyError("boom")
    assert [m.training for m in net.modules()] == flags
    # a model that fails inside the search is restored as well
    net.train()

    def failing(z):
        raise FloatingPointError("bad model")

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = net

        def forward(self, z):
            return failing(z)

    wrapper = Wrapper()
    wrapper.train()
    with pytest.raises(FloatingPointError):
        search(wrapper, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), GenericGenerator())
    assert wrapper.training and all(m.training for m in net.modules())


def test_eval_mode_passes_through_callables():
    def f(z):
        return z

    with eval_mode(f) as g:
        assert g is f


# ---------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------


def test_search_input_errors():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="2D"):
        search(model, torch.zeros(3), torch.zeros(3), GenericGenerator())
    with pytest.raises(ValueError, match="target has 2 entries for 3 rows"):
        search(model, torch.zeros(3, 2), torch.zeros(2), GenericGenerator())
    with pytest.raises(ValueError, match="constraints were fitted on 3 features, x has 2"):
        search(model, torch.zeros(3, 2), torch.zeros(3), GenericGenerator(),
               TorchConstraints.unconstrained(3))


# ---------------------------------------------------------------------------------------
# Validity on a well separated problem
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["generic", "ecco", "revise"])
def test_validity_on_blobs(name):
    x, y, model, revise = _blobs_tensors()
    gen = {"generic": GenericGenerator(), "ecco": ECCoGenerator(), "revise": revise}[name]
    tau = 0.75
    res = search(model, x, 1 - y, gen, decision_threshold=tau, max_iter=100)
    with torch.no_grad():
        p = torch.softmax(model(res.counterfactuals), dim=1).gather(1, (1 - y)[:, None])
    valid = (p.squeeze(1) >= tau).float().mean().item()
    assert valid >= 0.95, f"{name}: only {valid:.0%} valid"
    assert res.converged.float().mean().item() >= 0.95


# ---------------------------------------------------------------------------------------
# Integer columns: every iterate the model sees is on the grid
# ---------------------------------------------------------------------------------------

# columns 0, 1: integers in raw units (raw = 3 * model + 10, raw = 0.5 * model); column 2
# continuous; columns 3-5: one-hot group
GRID_SCALE, GRID_OFFSET = [3.0, 0.5, 0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@st.composite
def grid_search_problem(draw):
    n = draw(st.integers(1, 6))
    raw = draw(arrays(np.int64, (n, 2), elements=st.integers(-8, 16))).astype(np.float64)
    X = np.zeros((n, D), dtype=np.float32)
    X[:, 0] = (raw[:, 0] - 10.0) / 3.0
    X[:, 1] = raw[:, 1] / 0.5
    X[:, 2] = draw(arrays(np.float32, (n,), elements=st.floats(-3, 3, width=32)))
    X[np.arange(n), 3 + draw(arrays(np.int64, (n,), elements=st.integers(0, 2)))] = 1.0
    words = [draw(st.sampled_from(WORDS)) for _ in range(3)] + [draw(st.sampled_from(
        ["none", "both"]))] * 3
    lower = np.r_[(-6.0 - 10.0) / 3.0, draw(st.sampled_from([-np.inf, -5.0])), -np.inf,
                  [0.0] * 3]
    upper = np.r_[(14.5 - 10.0) / 3.0, draw(st.sampled_from([np.inf, 7.0])), np.inf, [1.0] * 3]
    c = TorchConstraints.from_arrays(lower, upper, words, [GROUP], grid_scale=GRID_SCALE,
                                     grid_offset=GRID_OFFSET)
    target = draw(arrays(np.int64, (n,), elements=st.integers(0, 1)))
    return torch.as_tensor(X), torch.as_tensor(target), c, words, draw(st.integers(0, 2**16))


def _check_on_grid(z, x, where=""):
    """Integer columns of z on their raw grid, inside the raw bounds widened to the factual."""
    s = torch.tensor([3.0, 0.5], dtype=torch.float64)
    o = torch.tensor([10.0, 0.0], dtype=torch.float64)
    raw, raw_ref = z[:, :2].double() * s + o, x[:, :2].double() * s + o
    assert torch.all((raw - raw.round()).abs() < 1e-4), f"{where}: off the grid {raw}"
    assert torch.all(raw[:, 0] >= torch.clamp(raw_ref[:, 0], max=-6.0) - 1e-4), where
    assert torch.all(raw[:, 0] <= torch.clamp(raw_ref[:, 0], min=14.0) + 1e-4), where


@pytest.mark.parametrize("name", ["generic", "ecco", "revise"])
@settings(max_examples=10, deadline=None)
@given(problem=grid_search_problem())
def test_search_keeps_integer_columns_on_their_grid(name, problem):
    x, target, c, words, seed = problem
    gen = {"generic": GenericGenerator(step_size=0.7),
           "ecco": ECCoGenerator(step_size=0.7, lambda_energy=1.0),
           "revise": _revise_mixed()}[name]
    res = search(_random_mlp(seed), x, target, gen, c, decision_threshold=0.99, max_iter=10,
                 return_path=True)
    if name != "revise":
        assert torch.equal(res.path[0], x)  # step 0 changes nothing
    for t in range(res.path.shape[0]):
        _check_valid_point(res.path[t], x, c, words, f"path[{t}]")
        _check_on_grid(res.path[t], x, f"path[{t}]")
    _check_bookkeeping(res, 10, 0.99)
    # validity is decided on the rounded point
    with torch.no_grad():
        p = torch.softmax(_random_mlp(seed)(res.counterfactuals), 1).gather(1, target[:, None])
    torch.testing.assert_close(res.target_proba, p.squeeze(1))


def test_integer_columns_move_in_a_real_search():
    # not vacuous: the integer column does change, in whole raw units
    X = _one_hot_rows(np.random.RandomState(0), 40)
    X[:, 0] = np.round(X[:, 0] * 3 + 10) / 3 - 10 / 3  # raw integers
    x = torch.as_tensor(X)
    c = TorchConstraints.from_arrays([-np.inf] * D, [np.inf] * D, ["both"] * 3 + ["none"] * 3,
                                     [GROUP], grid_scale=GRID_SCALE[:1] + [0.0] * 5,
                                     grid_offset=GRID_OFFSET[:1] + [0.0] * 5)
    model = _random_mlp(2)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    res = search(model, x, target, GenericGenerator(step_size=1.0), c,
                 decision_threshold=0.9, max_iter=30)
    moved = res.counterfactuals[:, 0] != x[:, 0]
    assert moved.sum() >= 10
    raw = res.counterfactuals[:, 0].double() * 3 + 10
    assert torch.all((raw - raw.round()).abs() < 1e-4)


# ---------------------------------------------------------------------------------------
# max_changed: no iterate changes more features than allowed
# ---------------------------------------------------------------------------------------


def _n_changed(z, x):
    """Changed features per row: numeric columns one each, the one-hot group one."""
    num = (z[:, :N_NUM] != x[:, :N_NUM]).sum(dim=1)
    return num + (z[:, GROUP] != x[:, GROUP]).any(dim=1).long()


@pytest.mark.parametrize("name", ["generic", "revise"])
@settings(max_examples=10, deadline=None)
@given(problem=search_problem(), k=st.integers(0, 3))
def test_search_respects_max_changed(name, problem, k):
    x, target, c0, words, seed = problem
    c = TorchConstraints.from_arrays(c0.lower.numpy(), c0.upper.numpy(), words, [GROUP],
                                     max_changed=k)
    gen = GenericGenerator(step_size=0.7) if name == "generic" else _revise_mixed()
    res = search(_random_mlp(seed), x, target, gen, c, decision_threshold=0.99, max_iter=10,
                 return_path=True)
    for t in range(res.path.shape[0]):
        _check_valid_point(res.path[t], x, c, words, f"path[{t}]")
        assert torch.all(_n_changed(res.path[t], x) <= k), f"path[{t}]"
    _check_bookkeeping(res, 10, 0.99)


def test_max_changed_binds_in_a_real_search():
    X = _one_hot_rows(np.random.RandomState(1), 40)
    x = torch.as_tensor(X)
    model = _random_mlp(4)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    args = ([-np.inf] * D, [np.inf] * D, ["both"] * D, [GROUP])
    gen = GenericGenerator(step_size=1.0)
    free = search(model, x, target, gen, TorchConstraints.from_arrays(*args),
                  decision_threshold=0.65, max_iter=30)
    one = search(model, x, target, gen, TorchConstraints.from_arrays(*args, max_changed=1),
                 decision_threshold=0.65, max_iter=30)
    assert torch.all(_n_changed(free.counterfactuals, x) >= 3)
    assert torch.all(_n_changed(one.counterfactuals, x) == 1)
    assert one.converged.sum() >= 30  # one feature is enough for most rows


# ---------------------------------------------------------------------------------------
# One-hot groups with a dropped level
# ---------------------------------------------------------------------------------------


def _dropped_rows(rng, n):
    """Like _one_hot_rows, but a third of the rows sit at the group's dropped level."""
    X = _one_hot_rows(rng, n)
    X[::3, N_NUM:] = 0.0
    return X


@pytest.mark.parametrize("name", ["generic", "revise"])
def test_search_with_a_dropped_level(name):
    X = _dropped_rows(np.random.RandomState(5), 60)
    x = torch.as_tensor(X)
    c = TorchConstraints.from_arrays([-np.inf] * N_NUM + [0.0] * 3,
                                     [np.inf] * N_NUM + [1.0] * 3, ["none"] * N_NUM + ["both"] * 3,
                                     [GROUP], group_has_dropped=[True])
    gen = GenericGenerator(step_size=1.0) if name == "generic" else _revise_mixed()
    model = _random_mlp(11)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    still = search(model, x, target, gen, c, max_iter=0)
    if name == "generic":
        assert torch.equal(still.counterfactuals, x)  # nothing changes before the search
    res = search(model, x, target, gen, c, decision_threshold=0.6, max_iter=30,
                 return_path=True)
    for t in range(res.path.shape[0]):
        block = res.path[t][:, GROUP]
        assert torch.all((block == 0) | (block == 1)) and torch.all(block.sum(dim=1) <= 1)
        assert torch.equal(res.path[t][:, :N_NUM], x[:, :N_NUM])
    cf_drop = res.counterfactuals[:, GROUP].sum(dim=1) == 0
    x_drop = x[:, GROUP].sum(dim=1) == 0
    if name == "generic":
        assert torch.equal(res.path[0], x)
        assert (x_drop & ~cf_drop).sum() >= 3  # factuals leave the dropped level
        assert (~x_drop & cf_drop).sum() >= 1  # and others reach it


def test_search_reaches_a_dropped_level():
    # the target class needs the group at its dropped level (all zeros)
    def model(z):
        s = z[:, GROUP].sum(dim=1, keepdim=True)  # [N, 1]
        return torch.cat([5.0 * s, torch.zeros_like(s)], dim=1)

    x = torch.as_tensor(_one_hot_rows(np.random.RandomState(0), 6))
    c = TorchConstraints.from_arrays([-np.inf] * N_NUM + [0.0] * 3,
                                     [np.inf] * N_NUM + [1.0] * 3, ["both"] * D, [GROUP],
                                     group_has_dropped=[True])
    res = search(model, x, torch.ones(6, dtype=torch.long), GenericGenerator(step_size=0.2),
                 c, decision_threshold=0.45, max_iter=20)
    assert res.converged.all()
    assert torch.equal(res.counterfactuals[:, GROUP], torch.zeros(6, 3))
    # without the dropped level the target cannot be reached
    c_no = TorchConstraints.from_arrays(c.lower.numpy(), c.upper.numpy(), ["both"] * D, [GROUP])
    assert not search(model, x, torch.ones(6, dtype=torch.long), GenericGenerator(step_size=0.2),
                      c_no, decision_threshold=0.45, max_iter=20).converged.any()


def test_batch_independence_with_grids_limits_and_dropped_levels():
    X = _dropped_rows(np.random.RandomState(8), 9)
    X[:, 0] = (np.round(X[:, 0] * 3 + 10) - 10) / 3
    x = torch.as_tensor(X)
    c = TorchConstraints.from_arrays([-3.0] * N_NUM + [0.0] * 3, [3.0] * N_NUM + [1.0] * 3,
                                     ["increase", "both", "decrease"] + ["both"] * 3, [GROUP],
                                     grid_scale=GRID_SCALE, grid_offset=GRID_OFFSET,
                                     cost_weight=[0.5, 2.0, 1.0, 0.3, 0.3, 0.3], max_changed=2,
                                     group_has_dropped=[True])
    model = _random_mlp(1)
    target = 1 - model(x).argmax(dim=1).detach()
    gen = ECCoGenerator(step_size=0.4)
    batch = search(model, x, target, gen, c, decision_threshold=0.6, max_iter=20)
    moved = batch.counterfactuals != x
    assert moved[:, 0].sum() >= 2 and moved[:, GROUP].any(dim=1).sum() >= 2  # not vacuous
    for i in range(9):
        one = search(model, x[i:i + 1], target[i:i + 1], gen, c, decision_threshold=0.6,
                     max_iter=20)
        torch.testing.assert_close(one.counterfactuals[0], batch.counterfactuals[i],
                                   atol=1e-5, rtol=0)
        assert int(one.n_iter[0]) == int(batch.n_iter[i])


@pytest.mark.parametrize("fast", [True, False])
def test_non_finite_factuals_are_refused(fast):
    """NaN or infinity in a factual has no counterfactual: a clear error, not NaN results."""
    import skct

    x, y, model, _ = _blobs_tensors(6)
    for bad in (float("nan"), float("inf")):
        xb = x.clone()
        xb[4, 1] = bad
        with skct.config_context(fast_search=fast), pytest.raises(ValueError, match=r"rows \[4\]"):
            search(model, xb, 1 - y, GenericGenerator(), max_iter=3)
