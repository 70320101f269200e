"""Exact domain clamping (``ActionabilityConstraints(widen_bounds=False)``, ``exact_bounds``)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError

import skct
from skct import ActionabilityConstraints
from skct.constraints import TorchConstraints
from skct.search import search
from skct.search._compiled import compiled_search, supports
from skct.search._projection import (
    _clip_to_bounds,
    limit_changes,
    project,
    round_to_grid,
    straight_through_harden,
)
from skct.search.generators import ECCoGenerator, GenericGenerator

WORDS = ["none", "increase", "decrease", "both"]


# ---------------------------------------------------------------------------------------
# the tensors
# ---------------------------------------------------------------------------------------
def test_exact_bounds_defaults_to_widening_and_is_checked():
    c = TorchConstraints.from_arrays(np.zeros(2), np.ones(2), ["both"] * 2, [])
    assert c.exact_bounds is False
    assert TorchConstraints.from_arrays(np.zeros(2), np.ones(2), ["both"] * 2, [],
                                        exact_bounds=True).exact_bounds is True
    with pytest.raises(TypeError, match="exact_bounds"):
        TorchConstraints.from_arrays(np.zeros(2), np.ones(2), ["both"] * 2, [],
                                     exact_bounds="yes")


def test_clip_without_widening_ignores_the_factual():
    lower, upper = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    x, ref = torch.tensor([[2.0, -1.0]]), torch.tensor([[3.0, -2.0]])
    assert torch.equal(_clip_to_bounds(x, ref, lower, upper), x)  # widened to the factual
    assert torch.equal(_clip_to_bounds(x, ref, lower, upper, widen=False),
                       torch.tensor([[1.0, 0.0]]))


# ---------------------------------------------------------------------------------------
# the projection: every iterate in bounds, even for a factual outside
# ---------------------------------------------------------------------------------------
@st.composite
def outside_problem(draw):
    """Factuals partly outside finite bounds, proposals, mutability, an integer grid column
    and optionally a limit on changed features."""
    n, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    lower = rng.uniform(-2, 0, d)
    upper = lower + rng.uniform(0.6, 3, d)
    lower[rng.rand(d) < 0.2] = -np.inf
    words = [WORDS[i] for i in rng.randint(0, 4, d)]
    grid = np.where(rng.rand(d) < 0.4, rng.choice([0.5, 1.0, -2.0], d), 0.0)
    c = TorchConstraints.from_arrays(lower, upper, words, [], grid_scale=grid,
                                     grid_offset=rng.uniform(-1, 1, d) * (grid != 0),
                                     max_changed=draw(st.sampled_from([None, 1, 2])),
                                     exact_bounds=True)
    x_ref = rng.uniform(-5, 5, (n, d)).astype(np.float32)
    x_new = (x_ref + rng.randn(n, d) * 2).astype(np.float32)
    return torch.as_tensor(x_new), torch.as_tensor(x_ref), c


def _inside(x, c):
    return bool(((x >= c.lower) & (x <= c.upper)).all())


@settings(max_examples=80, deadline=None)
@given(outside_problem())
def test_exact_projection_stays_in_bounds_for_factuals_outside(problem):
    x_new, x_ref, c = problem
    before = (x_new.clone(), x_ref.clone())
    for hard in (False, True):
        assert _inside(project(x_new, x_ref, c, hard=hard), c)
    assert _inside(straight_through_harden(x_ref, x_ref, c), c)  # the first iterate
    assert _inside(round_to_grid(project(x_new, x_ref, c, hard=False), x_ref, c), c)
    assert _inside(limit_changes(project(x_new, x_ref, c, hard=False), x_ref, c), c)
    assert torch.equal(x_new, before[0]) and torch.equal(x_ref, before[1])


def test_exact_projection_pulls_immutable_and_directed_factuals_inside():
    c = TorchConstraints.from_arrays([0.0, 0.0, 0.0], [1.0, 1.0, 1.0],
                                     ["none", "increase", "decrease"], [], exact_bounds=True)
    x_ref = torch.tensor([[5.0, 3.0, -2.0]])
    assert torch.equal(project(x_ref + 1, x_ref, c), torch.tensor([[1.0, 1.0, 0.0]]))
    widened = TorchConstraints.from_arrays([0.0, 0.0, 0.0], [1.0, 1.0, 1.0],
                                           ["none", "increase", "decrease"], [])
    assert torch.equal(project(x_ref + 1, x_ref, widened), x_ref)  # widened to the factual


def test_limit_changes_reverts_to_the_factual_clamped_into_the_domain():
    c = TorchConstraints.from_arrays([0.0, 0.0], [1.0, 1.0], ["both"] * 2, [], max_changed=1,
                                     exact_bounds=True)
    x_ref = torch.tensor([[4.0, 0.5]])  # clamped: [1.0, 0.5]
    # the larger change (0.8 against 1.0) stays, the other reverts to the clamped factual
    assert torch.equal(project(torch.tensor([[0.2, 0.9]]), x_ref, c),
                       torch.tensor([[0.2, 0.5]]))
    # being pulled in to 1.0 is no change: column 1 is the one change allowed
    assert torch.equal(project(torch.tensor([[3.0, 0.9]]), x_ref, c),
                       torch.tensor([[1.0, 0.9]]))


def test_straight_through_clamp_keeps_the_identity_gradient():
    c = TorchConstraints.from_arrays([0.0], [1.0], ["both"], [], exact_bounds=True)
    x = torch.tensor([[3.0]], requires_grad=True)
    out = straight_through_harden(x, x.detach(), c)
    assert torch.equal(out.detach(), torch.tensor([[1.0]]))
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones(1, 1))


# ---------------------------------------------------------------------------------------
# whole searches and the fast path
# ---------------------------------------------------------------------------------------
def _model(d=3, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(),
                                   torch.nn.Linear(8, 2))


@pytest.mark.parametrize("gen", [GenericGenerator(step_size=0.5),
                                 ECCoGenerator(step_size=0.5, lambda_energy=1.0)],
                         ids=["generic", "ecco"])
@pytest.mark.parametrize("grouped", [False, True])
def test_every_iterate_of_an_exact_search_is_in_bounds(gen, grouped):
    torch.manual_seed(1)
    d = 5 if grouped else 3
    groups = [[3, 4]] if grouped else []
    lower = [-1.0, -1.0, 0.0] + [0.0] * (d - 3)
    upper = [1.0, 1.0, 2.0] + [1.0] * (d - 3)
    c = TorchConstraints.from_arrays(lower, upper, ["increase", "none", "both"] + ["both"] *
                                     (d - 3), groups, grid_scale=[0, 0, 1.0] + [0] * (d - 3),
                                     exact_bounds=True)
    x = torch.randn(50, d) * 3  # many factuals outside the domain
    if grouped:
        x[:, 3:] = 0.0
        x[torch.arange(50), 3 + torch.randint(0, 2, (50,))] = 1.0
    res = search(_model(d), x, torch.ones(50, dtype=torch.long), gen, c, max_iter=20,
                 epsilon=0.3, return_path=True)
    assert _inside(res.path, c) and _inside(res.counterfactuals, c)
    # the nascent iterate is in bounds too, unless no iterate came within epsilon (then it
    # is the factual itself)
    kept = (res.nascent == x).all(dim=1)
    assert _inside(res.nascent[~kept], c)


def test_fast_path_runs_exact_bounds_only_when_every_factual_is_inside():
    torch.manual_seed(0)
    model, gen = _model(), GenericGenerator(step_size=0.3)
    c = TorchConstraints.from_arrays(np.full(3, -2.0), np.full(3, 2.0),
                                     ["increase", "both", "decrease"], [], exact_bounds=True)
    inside = torch.rand(80, 3) * 3.8 - 1.9
    outside = inside.clone()
    outside[0, 0] = 2.5
    assert supports(model, gen, c, inside)
    assert not supports(model, gen, c, outside)
    target = torch.ones(80, dtype=torch.long)
    with skct.config_context(fast_search=False):  # the eager engine
        slow = search(model, inside, target, gen, c, max_iter=25, return_path=True)
    fast = compiled_search(model, inside, target, gen, c, max_iter=25, return_path=True)
    assert torch.equal(slow.n_iter, fast.n_iter)
    torch.testing.assert_close(fast.path, slow.path, atol=1e-5, rtol=1e-4)
    res = search(model, outside, target, gen, c, max_iter=25, return_path=True)
    assert _inside(res.path, c)  # the eager engine ran it


# ---------------------------------------------------------------------------------------
# ActionabilityConstraints(widen_bounds=...)
# ---------------------------------------------------------------------------------------
def _frame():
    rng = np.random.RandomState(0)
    return pd.DataFrame({"age": rng.uniform(20, 60, 50), "debt": rng.uniform(0, 10, 50)})


def test_widen_bounds_parameter_reaches_the_tensors():
    X = _frame()
    default = ActionabilityConstraints().fit(X)
    assert default.get_params()["widen_bounds"] is True
    assert default.to_torch().exact_bounds is False
    exact = ActionabilityConstraints(widen_bounds=False).fit(X)
    assert exact.to_torch().exact_bounds is True
    # nothing else changes
    for name in ("lower_model_", "upper_model_", "cost_weight_model_"):
        np.testing.assert_array_equal(getattr(default, name), getattr(exact, name))
    np.testing.assert_array_equal(default.transform(X), exact.transform(X))
    with pytest.raises(InvalidParameterError, match="widen_bounds"):
        ActionabilityConstraints(widen_bounds="no").fit(X)


def test_bounds_on_an_immutable_feature_warn_only_when_they_are_widened():
    X = _frame()
    spec = dict(mutability={"age": "none"}, bounds={"age": (30, 50)})
    with pytest.warns(UserWarning, match="restrict nothing"):
        ActionabilityConstraints(**spec).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = ActionabilityConstraints(widen_bounds=False, **spec).fit(X).to_torch()
    x = torch.tensor([[25.0, 5.0]])
    assert float(project(x, x, c)[0, 0]) == 30.0  # pulled inside although immutable


def test_the_classifier_searches_with_exact_bounds(monkeypatch):
    import skct.training._search as search_module
    from skct import CounterfactualTrainedClassifier

    seen = []

    def spy(module, x, target, generator, constraints, **kw):
        seen.append(constraints.exact_bounds)
        return search(module, x, target, generator, constraints, **kw)

    monkeypatch.setattr(search_module, "search", spy)
    X = _frame().to_numpy(dtype=np.float32)
    y = (X[:, 0] > 40).astype(int)
    CounterfactualTrainedClassifier(constraints=ActionabilityConstraints(widen_bounds=False),
                                    max_epochs=2, n_counterfactuals=20, random_state=0).fit(X, y)
    assert seen == [True, True]
