"""Generators' ``one_hot`` setting: soft one-hot states that accumulate, or are rehardened."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skct.constraints import TorchConstraints
from skct.search import search
from skct.search._compiled import compiled_search, supports
from skct.search._projection import harden_groups, mask_step, reharden_groups
from skct.search.generators import (
    GENERATORS,
    ECCCoGenerator,
    ECCoGenerator,
    GenericGenerator,
    REVISEGenerator,
    resolve_generator,
)

GRADIENT_GENERATORS = [GenericGenerator, ECCoGenerator, ECCCoGenerator, REVISEGenerator]


# ---------------------------------------------------------------------------------------
# the parameter
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", GRADIENT_GENERATORS, ids=lambda c: c.__name__)
def test_one_hot_is_a_parameter_of_every_gradient_generator(cls):
    gen = cls()
    assert gen.get_params()["one_hot"] == "accumulate"
    gen.set_params(one_hot="reharden")
    assert gen.one_hot == "reharden"
    assert clone(gen).get_params()["one_hot"] == "reharden"
    assert cls(one_hot="reharden").get_params() == gen.get_params()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_resolve_generator_passes_one_hot_through(name):
    assert resolve_generator(name, one_hot="reharden").one_hot == "reharden"
    assert resolve_generator(GENERATORS[name](one_hot="reharden")).one_hot == "reharden"


def test_unknown_one_hot_mode_is_a_clear_error():
    X = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(InvalidParameterError, match="one_hot"):
        GenericGenerator(one_hot="soft").fit(X)
    c = TorchConstraints.from_arrays(np.zeros(2), np.ones(2), ["both"] * 2, [[0, 1]])
    x = torch.tensor([[1.0, 0.0]])
    with pytest.raises(ValueError, match="one_hot must be one of"):
        GenericGenerator(one_hot="soft").update(x, torch.zeros_like(x), x, c)


# ---------------------------------------------------------------------------------------
# one step: the rule, on random groups
# ---------------------------------------------------------------------------------------
@st.composite
def grouped_step(draw):
    """A hard state, a gradient, and constraints with one-hot groups (some with a dropped
    level, some immutable) next to numeric columns with bounds and mutability."""
    n = draw(st.integers(1, 5))
    n_num = draw(st.integers(0, 3))
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    dropped = [draw(st.booleans()) or s == 1 for s in sizes]
    sizes = [max(s, 2) if not d else s for s, d in zip(sizes, dropped)]
    words = list(draw(st.lists(st.sampled_from(["none", "increase", "decrease", "both"]),
                               min_size=n_num, max_size=n_num)))
    groups, start = [], n_num
    for s in sizes:
        groups.append(list(range(start, start + s)))
        words += [draw(st.sampled_from(["none", "both", "both"]))] * s
        start += s
    d = start
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    lower = np.r_[rng.uniform(-3, -1, n_num), np.zeros(d - n_num)]
    upper = np.r_[rng.uniform(1, 3, n_num), np.ones(d - n_num)]
    c = TorchConstraints.from_arrays(lower, upper, words, groups, group_has_dropped=dropped)
    x = np.zeros((n, d), dtype=np.float32)
    x[:, :n_num] = rng.uniform(-1, 1, (n, n_num))
    state = x.copy()
    for g, dr in zip(groups, dropped):
        for arr in (x, state):  # the factual's level, and the current (hard) level
            level = rng.randint(0, len(g) + dr, n)
            for i, lv in enumerate(level):
                if lv < len(g):
                    arr[i, g[lv]] = 1.0
    state[:, :n_num] = np.clip(x[:, :n_num] + rng.uniform(-0.5, 0.5, (n, n_num)),
                               lower[:n_num], upper[:n_num])
    grad = rng.randn(n, d).astype(np.float32) * draw(st.sampled_from([0.1, 1.0, 4.0]))
    step_size = draw(st.sampled_from([0.1, 0.5, 1.0]))
    return (torch.as_tensor(state), torch.as_tensor(grad), torch.as_tensor(x), c, groups,
            dropped, words, step_size)


def _levels(block, has_dropped):
    """Level index per row of a one-hot block [N, L] (L: the dropped, all-zero level)."""
    vals = block.clone()
    if has_dropped:
        vals = torch.cat([vals, 1.0 - vals.sum(dim=1, keepdim=True)], dim=1)
    return vals.argmax(dim=1)


@settings(max_examples=60, deadline=None)
@given(grouped_step())
def test_reharden_step_is_one_hot_and_switches_only_when_the_step_flips_the_argmax(problem):
    state, grad, x, c, groups, dropped, words, step_size = problem
    before = (state.clone(), grad.clone(), x.clone())
    gen = GenericGenerator(step_size=step_size, one_hot="reharden")
    out = gen.update(state, grad, x, c)
    assert all(torch.equal(a, b) for a, b in zip(before, (state, grad, x)))  # not in place
    stepped = state + mask_step(-step_size * grad, c)  # [N, D]
    for g, dr in zip(groups, dropped):
        block = out[:, g]
        # every row exactly one-hot (or all zero: the dropped level)
        assert torch.all((block == 0) | (block == 1))
        assert torch.all(block.sum(dim=1) <= 1) if dr else torch.all(block.sum(dim=1) == 1)
        if words[g[0]] == "none":
            assert torch.equal(block, x[:, g])
            continue
        prev, new = _levels(state[:, g], dr), _levels(block, dr)
        flipped = _levels(stepped[:, g], dr)
        same_as_factual = (stepped[:, g] == x[:, g]).all(dim=1)
        expected = torch.where(same_as_factual, _levels(x[:, g], dr), flipped)
        assert torch.equal(new, expected)
        # a level switches only where one step moved another level above the current one
        assert torch.all((new == prev) | (flipped != prev))
    # numeric columns: the same step as the default (mutability, then bounds)
    num = [j for j in range(x.shape[1]) if all(j not in g for g in groups)]
    acc = GenericGenerator(step_size=step_size).update(state, grad, x, c)
    assert torch.equal(out[:, num], acc[:, num])


def test_accumulate_keeps_the_soft_state_and_reharden_does_not():
    c = TorchConstraints.from_arrays(np.zeros(3), np.ones(3), ["both"] * 3, [[0, 1, 2]])
    x = torch.tensor([[1.0, 0.0, 0.0]])
    grad = torch.tensor([[0.2, -0.2, 0.0]])
    soft = GenericGenerator(step_size=1.0).update(x, grad, x, c)
    torch.testing.assert_close(soft, torch.tensor([[0.8, 0.2, 0.0]]))
    assert torch.equal(GenericGenerator(step_size=1.0, one_hot="reharden").update(x, grad, x, c),
                       x)


def test_reharden_groups_hardens_before_clipping():
    """The argmax is taken on the stepped values, not on values clipped to [0, 1] (where
    1.5 and 1.2 would tie), as the reference decodes before it clamps."""
    c = TorchConstraints.from_arrays(np.zeros(2), np.ones(2), ["both"] * 2, [[0, 1]])
    x = torch.tensor([[0.0, 1.0]])
    out = reharden_groups(torch.tensor([[1.2, 1.5]]), x, c)
    assert torch.equal(out, torch.tensor([[0.0, 1.0]]))
    assert torch.equal(harden_groups(torch.tensor([[1.2, 1.5]]).clamp(0, 1), c, x),
                       torch.tensor([[1.0, 0.0]]))  # clipping first would tie


# ---------------------------------------------------------------------------------------
# whole searches
# ---------------------------------------------------------------------------------------
def _group_model():
    """Class 1 wants the second level of a 3-level group instead of the first."""
    model = torch.nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, -3.0, 3.0, 0.1]]))
        model.bias.copy_(torch.tensor([0.0, -1.0]))
    return model


def _group_constraints():
    return TorchConstraints.from_arrays([-5.0, 0, 0, 0], [5.0, 1, 1, 1], ["both"] * 4,
                                        [[1, 2, 3]])


def test_small_steps_switch_a_level_only_when_they_accumulate():
    model, c = _group_model(), _group_constraints()
    x = torch.tensor([[0.0, 1.0, 0.0, 0.0]] * 3)
    target = torch.ones(3, dtype=torch.long)
    acc = search(model, x, target, GenericGenerator(step_size=0.1), c, max_iter=50)
    hard = search(model, x, target, GenericGenerator(step_size=0.1, one_hot="reharden"), c,
                  max_iter=50, return_path=True)
    assert bool(acc.converged.all())
    assert torch.equal(acc.counterfactuals[:, 1:], torch.tensor([[0.0, 1.0, 0.0]] * 3))
    assert not bool(hard.converged.any())  # no single step of 0.1 flips the argmax
    assert torch.equal(hard.path[:, :, 1:], x[:, 1:].expand(51, 3, 3))
    big = search(model, x, target, GenericGenerator(step_size=2.0, one_hot="reharden"), c,
                 max_iter=50)
    assert bool(big.converged.all())  # one large step does
    assert torch.equal(big.counterfactuals[:, 1:], torch.tensor([[0.0, 1.0, 0.0]] * 3))


@pytest.mark.parametrize("cls", [GenericGenerator, ECCoGenerator], ids=lambda c: c.__name__)
def test_every_iterate_of_a_reharden_search_is_one_hot(cls):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    c = TorchConstraints.from_arrays([-3.0, -3.0] + [0.0] * 4, [3.0, 3.0] + [1.0] * 4,
                                     ["both", "increase"] + ["both"] * 4, [[2, 3], [4, 5]])
    x = torch.zeros(40, 6)
    x[:, :2] = torch.randn(40, 2)
    x[torch.arange(40), 2 + torch.randint(0, 2, (40,))] = 1.0
    x[torch.arange(40), 4 + torch.randint(0, 2, (40,))] = 1.0
    target = torch.randint(0, 3, (40,))
    res = search(model, x, target, cls(step_size=1.5, one_hot="reharden"), c, max_iter=25,
                 return_path=True)
    for g in ([2, 3], [4, 5]):
        for vals in (res.path[:, :, g], res.counterfactuals[:, g]):
            assert torch.all((vals == 0) | (vals == 1))
            assert torch.all(vals.sum(dim=-1) == 1)


def test_without_groups_reharden_is_the_default_search_and_keeps_the_fast_path():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x, target = torch.randn(60, 3), torch.ones(60, dtype=torch.long)
    c = TorchConstraints.from_arrays(np.full(3, -2.0), np.full(3, 2.0),
                                     ["increase", "none", "both"], [])
    gen = GenericGenerator(step_size=0.2, one_hot="reharden")
    a = search(model, x, target, GenericGenerator(step_size=0.2), c, max_iter=20,
               return_path=True)
    b = search(model, x, target, gen, c, max_iter=20, return_path=True)
    assert torch.equal(a.counterfactuals, b.counterfactuals) and torch.equal(a.path, b.path)
    assert supports(model, gen, c, x)
    fast = compiled_search(model, x, target, gen, c, max_iter=20)
    assert torch.equal(fast.n_iter, a.n_iter)
    torch.testing.assert_close(fast.counterfactuals, a.counterfactuals, atol=1e-5, rtol=1e-4)


def test_revise_reharden_reencodes_the_valid_decoded_point():
    rng = np.random.RandomState(0)
    X = np.zeros((120, 4), dtype=np.float32)
    X[:, 0] = rng.randn(120)
    X[np.arange(120), 1 + rng.randint(0, 3, 120)] = 1.0
    c = TorchConstraints.from_arrays([-3.0, 0, 0, 0], [3.0, 1, 1, 1], ["both"] * 4,
                                     [[1, 2, 3]])
    gen = REVISEGenerator(vae_epochs=3, latent_dim=2, hidden=8, random_state=0,
                          one_hot="reharden").fit(X)
    x = torch.as_tensor(X[:10])
    z = gen.init_state(x)
    grad = torch.randn_like(z)
    out = gen.update(z, grad, x, c)
    with torch.no_grad():
        valid = reharden_groups(gen.vae_.decode(z - gen.step_size * grad), x, c)
        expected, _ = gen.vae_.encode(valid)
    assert torch.equal(out, expected)
    assert not out.requires_grad
    plain = gen.set_params(one_hot="accumulate").update(z, grad, x, c)
    assert torch.equal(plain, z - gen.step_size * grad)
    model = torch.nn.Linear(4, 2)
    res = search(model, x, torch.ones(10, dtype=torch.long), gen.set_params(one_hot="reharden"),
                 c, max_iter=5)
    block = res.counterfactuals[:, 1:]
    assert torch.all((block == 0) | (block == 1)) and torch.all(block.sum(dim=1) == 1)


def test_the_classifier_and_the_explainer_accept_a_rehardening_generator():
    from skct import ActionabilityConstraints, CounterfactualExplainer
    from skct import CounterfactualTrainedClassifier

    rng = np.random.RandomState(0)
    level = rng.randint(0, 3, 150)
    X = pd.DataFrame({"a": rng.randn(150), "c0": (level == 0) * 1.0, "c1": (level == 1) * 1.0,
                      "c2": (level == 2) * 1.0})
    y = ((X.a + 1.5 * X.c1 - X.c2) > 0.3).astype(int).to_numpy()
    spec = ActionabilityConstraints(categorical=[["c0", "c1", "c2"]])
    clf = CounterfactualTrainedClassifier(
        generator=ECCoGenerator(one_hot="reharden"), constraints=spec, max_epochs=2,
        n_counterfactuals=40, random_state=0).fit(X, y)
    assert clf.generator_.one_hot == "reharden"
    explainer = CounterfactualExplainer(clf, generator=GenericGenerator(one_hot="reharden"),
                                        constraints=spec, random_state=0).fit(X, y)
    assert explainer.generator_.one_hot == "reharden"
    cf = np.asarray(explainer.explain(X.iloc[:20]).counterfactuals_model, dtype=float)
    block = cf[:, 1:]
    assert np.all((block == 0) | (block == 1)) and np.all(block.sum(axis=1) == 1)
