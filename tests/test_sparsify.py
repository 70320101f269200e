"""Post-hoc sparsification of counterfactuals: batched greedy reverts that keep validity."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skct.constraints import TorchConstraints
from skct.search import project, search, sparsify
from skct.search.generators import GenericGenerator

# 4 numeric columns (0 and 1 form one user feature), then a one-hot group of 3 levels, then an
# integer column (raw = 2 * model + 1)
GROUP = [4, 5, 6]
D = 8
FEATURE_ID = [0, 0, 1, 2, 3, 3, 3, 4]
WORDS = ["none", "increase", "decrease", "both"]


def _mlp(seed, d=D):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(),
                                   torch.nn.Linear(16, 2))


def _proba(model, z, target):
    with torch.no_grad():
        return torch.softmax(model(z), dim=1).gather(1, target[:, None]).squeeze(1)


def _feature_changed(z, x, fid=FEATURE_ID):
    """[N, F] whether each feature of z differs from x."""
    fid = np.asarray(fid)
    diff = (z != x).numpy()
    return np.stack([diff[:, fid == f].any(axis=1) for f in sorted(set(fid))], axis=1)


def _reference_sparsify(model, x_cf, x, target, c, thr):
    """The same greedy procedure, one row at a time (the specification of sparsify)."""
    fid = c.feature_index.numpy()
    w = c.cost_weight.numpy()
    out = x_cf.clone()
    for i in range(x.shape[0]):
        row = out[i:i + 1]
        if _engine_proba(model, row, target[i:i + 1]) < thr:
            continue
        delta = ((x_cf[i] - x[i]).abs().numpy() * w)
        feats = [f for f in range(c.n_feature_ids) if (x_cf[i] != x[i]).numpy()[fid == f].any()]
        feats.sort(key=lambda f: delta[fid == f].sum())  # stable: ties by feature index
        for f in feats:
            cand = row.clone()
            cols = torch.as_tensor(fid == f)
            cand[0, cols] = x[i, cols]
            if _engine_proba(model, cand, target[i:i + 1]) >= thr:
                row = cand
        out[i] = row[0]
    return out


def _engine_proba(model, z, target):
    with torch.no_grad():
        logits = model(z)
        return float((logits.gather(1, target[:, None]).squeeze(1)
                      - torch.logsumexp(logits, 1)).exp())


@st.composite
def sparsify_problem(draw):
    n = draw(st.integers(1, 8))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    X = np.zeros((n, D), dtype=np.float32)
    X[:, :4] = rng.randn(n, 4)
    X[np.arange(n), GROUP[0] + rng.randint(0, 3, n)] = 1.0
    X[:, 7] = (rng.randint(-3, 4, n) - 1.0) / 2.0
    words = [draw(st.sampled_from(WORDS))] * 2 + [draw(st.sampled_from(WORDS)) for _ in range(2)]
    words += [draw(st.sampled_from(["none", "both"]))] * 3 + [draw(st.sampled_from(WORDS))]
    weight = draw(arrays(np.float64, (D,), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])))
    k = draw(st.sampled_from([None, 1, 2, 3]))
    lower = np.r_[[-2.0] * 4, [0.0] * 3, -3.0]
    upper = np.r_[[2.0] * 4, [1.0] * 3, 3.0]
    c = TorchConstraints.from_arrays(lower, upper, words, [GROUP], feature_id=FEATURE_ID,
                                     grid_scale=[0.0] * 7 + [2.0],
                                     grid_offset=[0.0] * 7 + [1.0], cost_weight=weight,
                                     max_changed=k)
    return torch.as_tensor(X), c, words, draw(st.integers(0, 2**16))


@settings(max_examples=40, deadline=None)
@given(problem=sparsify_problem(), thr=st.sampled_from([0.5, 0.6, 0.8]))
def test_sparsify_properties(problem, thr):
    x, c, words, seed = problem
    model = _mlp(seed)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    res = search(model, x, target, GenericGenerator(step_size=0.8), c, decision_threshold=thr,
                 max_iter=15)
    x_cf = res.counterfactuals
    before = x_cf.clone(), x.clone()
    out, proba = sparsify(model, x_cf, x, target, c, thr, return_proba=True)
    assert torch.equal(x_cf, before[0]) and torch.equal(x, before[1])  # not in place
    p_cf, p_out = _proba(model, x_cf, target), _proba(model, out, target)
    torch.testing.assert_close(proba, p_out)
    valid = torch.as_tensor([_engine_proba(model, x_cf[i:i + 1], target[i:i + 1]) >= thr
                             for i in range(x.shape[0])])
    # a valid row stays valid; an invalid row is returned as it is
    assert torch.all(proba[valid] >= thr)
    assert torch.equal(out[~valid], x_cf[~valid])
    # each feature is either the counterfactual's or the factual's, as a whole
    fid = np.asarray(FEATURE_ID)
    for f in sorted(set(FEATURE_ID)):
        cols = torch.as_tensor(fid == f)
        kept = (out[:, cols] == x_cf[:, cols]).all(dim=1)
        reverted = (out[:, cols] == x[:, cols]).all(dim=1)
        assert torch.all(kept | reverted)
    # never more changed features, immutables untouched, still a valid point
    ch_out, ch_cf = _feature_changed(out, x), _feature_changed(x_cf, x)
    assert np.all(ch_out <= ch_cf)
    for j, w in enumerate(words):
        if w == "none":
            assert torch.equal(out[:, j], x[:, j])
    assert torch.equal(project(out, x, c), out)
    assert torch.all(p_out[valid] >= thr - 1e-6) and torch.equal(p_cf[~valid], p_out[~valid])
    # the batched result is the row-by-row greedy procedure
    assert torch.equal(out, _reference_sparsify(model, x_cf, x, target, c, thr))


def _linear(w, b):
    model = torch.nn.Linear(len(w), 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0] * len(w), w]))
        model.bias.copy_(torch.tensor([0.0, b]))
    return model


def test_sparsify_hand_example():
    # logit of class 1 minus that of class 0: 3 * x0 + 1 * x1 + 0.2 * x2 - 2
    model = _linear([3.0, 1.0, 0.2], -2.0)
    x = torch.zeros(3, 3)
    x_cf = torch.tensor([[1.0, 1.5, 0.5],    # order x2, x0, x1: x2 goes, x0 stays, x1 goes
                         [0.5, 2.0, 0.1],    # x2 goes, then x0 and x1 are both needed
                         [0.1, 0.1, 0.1]])   # invalid: untouched
    target = torch.ones(3, dtype=torch.long)
    out = sparsify(model, x_cf, x, target, decision_threshold=0.7)
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.1, 0.1, 0.1]]))
    # a factual that is already valid comes back as the factual
    assert torch.equal(sparsify(model, torch.tensor([[2.0, 2.0, 2.0]]),
                                torch.tensor([[1.0, 0.0, 0.0]]), target[:1], None, 0.7),
                       torch.tensor([[1.0, 0.0, 0.0]]))


def test_sparsify_order_follows_the_weighted_change():
    # either feature alone is enough: the one reverted first (smallest weighted change) goes
    model = _linear([1.0, 1.0], -0.9)
    x, x_cf, target = torch.zeros(1, 2), torch.tensor([[1.0, 1.2]]), torch.tensor([1])
    assert torch.equal(sparsify(model, x_cf, x, target, None, 0.5), torch.tensor([[0.0, 1.2]]))
    c = TorchConstraints.from_arrays([-np.inf] * 2, [np.inf] * 2, ["both"] * 2, [],
                                     cost_weight=[5.0, 1.0])
    assert torch.equal(sparsify(model, x_cf, x, target, c, 0.5), torch.tensor([[1.0, 0.0]]))


def test_sparsify_reverts_a_one_hot_group_as_one_feature():
    # the group matters not at all to the model: it is reverted as a whole
    def model(z):
        return torch.stack([torch.zeros_like(z[:, 0]), 4.0 * z[:, 0]], dim=1)

    c = TorchConstraints.from_arrays([-np.inf] * 4, [np.inf] * 4, ["both"] * 4, [[1, 2, 3]])
    x = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    x_cf = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    out = sparsify(model, x_cf, x, torch.tensor([1]), c, 0.9)
    assert torch.equal(out, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))


def test_sparsify_reduces_changes_on_a_real_search():
    # two features carry the decision, four matter little: the search moves all six, the
    # sparsified counterfactuals keep only what is needed
    rng = np.random.RandomState(0)
    x = torch.as_tensor(rng.randn(60, 6).astype(np.float32))
    model = _linear([2.0, -1.5, 0.05, 0.05, -0.05, 0.02], 0.0)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    res = search(model, x, target, GenericGenerator(step_size=0.5), decision_threshold=0.6,
                 max_iter=40)
    out = sparsify(model, res.counterfactuals, x, target, decision_threshold=0.6)
    ok = res.converged
    before = (res.counterfactuals != x).sum(dim=1)[ok].float()
    after = (out != x).sum(dim=1)[ok].float()
    assert ok.sum() >= 50
    assert torch.all(after <= before)
    assert float(before.median()) == 6.0 and float(after.median()) <= 2.0
    assert torch.all(_proba(model, out[ok], target[ok]) >= 0.6 - 1e-6)


def test_sparsify_leaves_the_model_untouched():
    model = _mlp(0)
    model.train()
    x = torch.zeros(4, D)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sparsify(model, x + 0.5, x, torch.ones(4, dtype=torch.long), decision_threshold=0.0)
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_sparsify_empty_and_bad_input():
    model = torch.nn.Linear(2, 2)
    empty = torch.zeros(0, 2)
    assert sparsify(model, empty, empty, torch.zeros(0)).shape == (0, 2)
    with pytest.raises(ValueError, match="same shape"):
        sparsify(model, torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="target has 2 entries for 3 rows"):
        sparsify(model, torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="decision_threshold must be a number in"):
        sparsify(model, torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3),
                 decision_threshold=1.5)
    with pytest.raises(ValueError, match="constraints were fitted on 3 features, x has 2"):
        sparsify(model, torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3),
                 TorchConstraints.unconstrained(3))


def test_exact_bounds_revert_to_the_factual_clamped_into_the_domain():
    # a factual outside the domain [-1, 1] in both columns; the counterfactual inside it
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [5.0, 0.0]]))  # only column 0 matters
        model.bias.zero_()
    c = TorchConstraints.from_arrays([-1.0, -1.0], [1.0, 1.0], ["both", "both"], [],
                                     exact_bounds=True)
    x = torch.tensor([[-3.0, 4.0]])
    x_cf = torch.tensor([[1.0, 0.5]])
    out = sparsify(model, x_cf, x, torch.tensor([1]), c, decision_threshold=0.9)
    # column 1 is not needed: back to the factual clamped into the domain (1.0), not to 4.0
    torch.testing.assert_close(out, torch.tensor([[1.0, 1.0]]))
    assert bool(((out >= -1) & (out <= 1)).all())
    # widened bounds (the default) keep reverting to the factual itself
    wide = TorchConstraints.from_arrays([-1.0, -1.0], [1.0, 1.0], ["both", "both"], [])
    out = sparsify(model, x_cf, x, torch.tensor([1]), wide, decision_threshold=0.9)
    torch.testing.assert_close(out, torch.tensor([[1.0, 4.0]]))
