"""The search's projection kernel: mutability masks, domain clipping, one-hot hardening."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skct.constraints import MUTABILITY_WORDS, TorchConstraints
from skct.search._projection import (
    _apply_mutability,
    _clip_to_bounds,
    harden_groups,
    mask_step,
    project,
    straight_through_harden,
)

WORDS = ["none", "increase", "decrease", "both"]
WORD_OF_CODE = {v: k for k, v in MUTABILITY_WORDS.items()}


# ---------------------------------------------------------------------------------------
# Torch helpers: hypothesis strategies
# ---------------------------------------------------------------------------------------

_finite = st.floats(-10, 10, width=32, allow_nan=False, allow_infinity=False)


@st.composite
def constrained_problem(draw):
    """Random factuals, proposals, mutability, bounds and one-hot groups (float32)."""
    n = draw(st.integers(1, 4))
    n_num = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.integers(2, 3), max_size=2))
    d = n_num + sum(sizes)
    groups, start = [], n_num
    for s in sizes:
        groups.append(list(range(start, start + s)))
        start += s

    x_ref = draw(arrays(np.float32, (n, d), elements=_finite))
    x_new = draw(arrays(np.float32, (n, d), elements=_finite))
    for g in groups:
        x_ref[:, g] = 0.0
        levels = draw(arrays(np.int64, (n,), elements=st.integers(0, len(g) - 1)))
        x_ref[np.arange(n), np.asarray(g)[levels]] = 1.0

    words = list(draw(st.lists(st.sampled_from(WORDS), min_size=n_num, max_size=n_num)))
    a = draw(arrays(np.float64, (n_num,), elements=st.floats(-10, 10)))
    b = draw(arrays(np.float64, (n_num,), elements=st.floats(-10, 10)))
    lower, upper = np.minimum(a, b), np.maximum(a, b)
    lower[draw(arrays(bool, (n_num,)))] = -np.inf
    upper[draw(arrays(bool, (n_num,)))] = np.inf
    g_lower, g_upper = [], []
    for g in groups:
        words += [draw(st.sampled_from(["none", "both"]))] * len(g)
        g_lower += [draw(st.sampled_from([0.0, -np.inf]))] * len(g)
        g_upper += [draw(st.sampled_from([1.0, np.inf]))] * len(g)
    lower = np.r_[lower, g_lower]
    upper = np.r_[upper, g_upper]
    c = TorchConstraints.from_arrays(lower, upper, words, groups)
    return torch.as_tensor(x_new), torch.as_tensor(x_ref), c, words, groups


def _numeric_columns(d, groups):
    in_group = {j for g in groups for j in g}
    return [j for j in range(d) if j not in in_group]


@settings(max_examples=50, deadline=None)
@given(constrained_problem())
def test_project_properties(problem):
    x_new, x_ref, c, words, groups = problem
    x_new_before, x_ref_before = x_new.clone(), x_ref.clone()
    out = project(x_new, x_ref, c)
    # inputs are not modified in place
    assert torch.equal(x_new, x_new_before) and torch.equal(x_ref, x_ref_before)
    assert out.shape == x_new.shape and out.dtype == x_new.dtype
    lo = torch.minimum(c.lower, x_ref)
    hi = torch.maximum(c.upper, x_ref)
    assert torch.all(out >= lo) and torch.all(out <= hi)
    for j in _numeric_columns(x_new.shape[1], groups):
        if words[j] == "none":
            assert torch.equal(out[:, j], x_ref[:, j])
        elif words[j] == "increase":
            assert torch.all(out[:, j] >= x_ref[:, j])
        elif words[j] == "decrease":
            assert torch.all(out[:, j] <= x_ref[:, j])
        # inside the widened domain the projection does not move a free feature
        if words[j] == "both":
            inside = (x_new[:, j] >= lo[:, j]) & (x_new[:, j] <= hi[:, j])
            assert torch.equal(out[inside, j], x_new[inside, j])
    for g in groups:
        block = out[:, g]
        if words[g[0]] == "none":
            assert torch.equal(block, x_ref[:, g])
        else:
            assert torch.all((block == 0) | (block == 1))
            assert torch.all(block.sum(dim=1) == 1)
            # the active level is the argmax of the (clipped) proposal
            clipped = _clip_to_bounds(x_new, x_ref, c.lower, c.upper)[:, g]
            assert torch.equal(block.argmax(dim=1), clipped.argmax(dim=1))
    # projecting twice changes nothing
    assert torch.equal(project(out, x_ref, c), out)


@settings(max_examples=50, deadline=None)
@given(constrained_problem())
def test_project_soft_leaves_groups_soft(problem):
    x_new, x_ref, c, words, groups = problem
    soft = project(x_new, x_ref, c, hard=False)
    expected = _clip_to_bounds(_apply_mutability(x_new, x_ref, c.mut), x_ref, c.lower, c.upper)
    if c.is_trivial:
        expected = x_new
    assert torch.equal(soft, expected)
    assert torch.equal(harden_groups(soft, c, x_ref), project(x_new, x_ref, c))


def test_project_trivial_constraints_is_identity():
    c = TorchConstraints.unconstrained(3)
    x = torch.randn(4, 3)
    assert c.is_trivial
    assert torch.equal(project(x * 100, x, c), x * 100)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=_finite),
       st.data())
def test_mask_step_per_word(step, data):
    d = step.shape[1]
    codes = data.draw(arrays(np.int8, (d,), elements=st.integers(0, 3)))
    s = torch.as_tensor(step)
    words = [WORD_OF_CODE[int(k)] for k in codes]
    c = TorchConstraints.from_arrays(np.full(d, -np.inf), np.full(d, np.inf), words, [])
    out = mask_step(s, c)
    for j in range(d):
        col, res = s[:, j], out[:, j]
        if codes[j] == MUTABILITY_WORDS["none"]:
            assert torch.all(res == 0)
        elif codes[j] == MUTABILITY_WORDS["increase"]:
            assert torch.equal(res, col.clamp(min=0))
        elif codes[j] == MUTABILITY_WORDS["decrease"]:
            assert torch.equal(res, col.clamp(max=0))
        else:
            assert torch.equal(res, col)


def test_mask_step_hand_example():
    step = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    c = TorchConstraints.from_arrays(np.full(4, -np.inf), np.full(4, np.inf),
                                     ["none", "increase", "decrease", "both"], [])
    expected = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, -1.0, -1.0]])
    assert torch.equal(mask_step(step, c), expected)


def _group_constraints():
    # columns 0, 1 numeric; group A = [2, 3, 4] mutable; group B = [5, 6] immutable
    words = ["both", "increase", "both", "both", "both", "none", "none"]
    lower = np.r_[-np.inf, -np.inf, np.zeros(5)]
    upper = np.r_[np.inf, np.inf, np.ones(5)]
    return TorchConstraints.from_arrays(lower, upper, words, [[2, 3, 4], [5, 6]])


def test_straight_through_harden_forward_and_gradient():
    c = _group_constraints()
    x_ref = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          [1.0, 2.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    x = torch.tensor([[0.3, -1.0, 0.2, 0.7, 0.1, 0.9, 0.4],
                      [0.5, 3.0, 0.6, 0.3, 0.35, 0.2, 0.8]], requires_grad=True)
    out = straight_through_harden(x, x_ref, c)
    expected = torch.tensor([[0.3, -1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
                             [0.5, 3.0, 1.0, 0.0, 0.0, 1.0, 0.0]])
    assert torch.equal(out.detach(), expected)
    w = torch.arange(14, dtype=torch.float32).reshape(2, 7)
    (grad,) = torch.autograd.grad((out * w).sum(), x)
    assert torch.equal(grad, w)  # identity Jacobian
    # the full Jacobian is the identity too
    jac = torch.autograd.functional.jacobian(lambda z: straight_through_harden(z, x_ref, c),
                                             x.detach())
    assert torch.equal(jac.reshape(14, 14), torch.eye(14))


def test_straight_through_harden_without_groups_is_identity():
    c = TorchConstraints.unconstrained(3)
    x = torch.randn(2, 3, requires_grad=True)
    assert straight_through_harden(x, x.detach(), c) is x


def test_harden_groups_without_reference_and_ties():
    c = _group_constraints()
    x = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.1, 0.3, 0.3]])
    out = harden_groups(x, c)  # no x_ref: immutable groups are hardened as well
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]]))
    assert torch.equal(x, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.1, 0.3, 0.3]]))  # not in place


@pytest.mark.parametrize("winner", [-0.3, -0.7, 0.3, 1.3, 1e8])
def test_straight_through_harden_forward_is_exactly_one_hot(winner):
    # the forward value must be the hard one-hot vector bit for bit, whatever the soft
    # values are (x + (hard - x) is not: -0.3 + 1.3 == 0.99999994 in float32)
    c = TorchConstraints.from_arrays(np.full(3, -np.inf), np.full(3, np.inf), ["both"] * 3,
                                     [[0, 1, 2]])
    x = torch.tensor([[winner - 5.0, winner, winner - 1.0]], requires_grad=True)
    out = straight_through_harden(x, torch.tensor([[1.0, 0.0, 0.0]]), c)
    assert torch.equal(out.detach(), torch.tensor([[0.0, 1.0, 0.0]]))
    (grad,) = torch.autograd.grad((out * torch.tensor([[1.0, 2.0, 3.0]])).sum(), x)
    assert torch.equal(grad, torch.tensor([[1.0, 2.0, 3.0]]))


# ---------------------------------------------------------------------------------------
# TorchConstraints.from_arrays: the optional per-column fields
# ---------------------------------------------------------------------------------------


def test_from_arrays_defaults_reproduce_plain_constraints():
    c = _group_constraints()
    assert c.feature_id.tolist() == [0, 1, 2, 2, 2, 5, 5]
    assert c.feature_index.tolist() == [0, 1, 2, 2, 2, 3, 3] and c.n_feature_ids == 4
    assert torch.equal(c.grid_scale, torch.zeros(7)) and torch.equal(c.grid_offset,
                                                                     torch.zeros(7))
    assert torch.equal(c.cost_weight, torch.ones(7)) and c.unit_cost
    assert c.max_changed is None and not c.has_grid
    assert c.group_has_dropped.tolist() == [False, False]
    assert c.grid_columns.numel() == 0
    assert torch.isinf(c.grid_lower).all() and torch.isinf(c.grid_upper).all()
    u = TorchConstraints.unconstrained(3)
    assert u.is_trivial and not u.needs_hardening and u.feature_id.tolist() == [0, 1, 2]
    # any one of the new fields makes the constraints non-trivial
    free = (np.full(2, -np.inf), np.full(2, np.inf), ["both"] * 2, [])
    assert not TorchConstraints.from_arrays(*free, max_changed=1).is_trivial
    assert not TorchConstraints.from_arrays(*free, grid_scale=[0.0, 2.0]).is_trivial
    assert TorchConstraints.from_arrays(*free, cost_weight=[2.0, 0.5]).is_trivial


def test_from_arrays_grid_bounds_round_inward_in_raw_units():
    # raw = model * 2 + 10; model bounds [-0.3, 2.2] -> raw [9.4, 14.4] -> grid [10, 14]
    # column 1: negative scale, raw = -model * 4; model [0.1, 1] -> raw [-4, -0.4] -> [-4, -1]
    # column 2: raw bound 250 up to float error (250.00002) stays 250
    lower = [-0.3, 0.1, (250 - 3.0) / 7.0]
    upper = [2.2, 1.0, np.inf]
    c = TorchConstraints.from_arrays(lower, upper, ["both"] * 3, [],
                                     grid_scale=[2.0, -4.0, 7.0], grid_offset=[10.0, 0.0, 3.0])
    assert c.grid_lower.tolist() == [10.0, -4.0, 250.0]
    assert c.grid_upper.tolist() == [14.0, -1.0, np.inf]
    assert c.grid_columns.tolist() == [0, 1, 2] and c.has_grid


def test_from_arrays_feature_ids_are_renumbered():
    c = TorchConstraints.from_arrays(np.zeros(4), np.ones(4), ["both"] * 4, [[2, 3]],
                                     feature_id=[7, 3, 9, 9])
    assert c.feature_index.tolist() == [1, 0, 2, 2] and c.n_feature_ids == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"feature_id": [0, 1, 2]}, "feature_id has 3 entries for 4 columns"),
    ({"feature_id": [0.0, 1.0, 2.0, 2.0]}, "feature_id must hold integers"),
    ({"feature_id": [0, 1, 2, 3]}, r"group of columns \[2, 3\] spans several features"),
    ({"grid_scale": [1.0, 0.0]}, "grid_scale has 2 entries for 4 columns"),
    ({"grid_scale": [np.nan, 0, 0, 0]}, "grid_scale must be finite; column 0"),
    ({"grid_scale": [0, 0, 1.0, 0]}, "grid_scale must be 0 for one-hot group columns; column 2"),
    ({"grid_offset": [0, np.inf, 0, 0]}, "grid_offset must be finite; column 1"),
    ({"cost_weight": [1, -1, 1, 1]}, "cost_weight must be non-negative; column 1"),
    ({"max_changed": -1}, "max_changed must be a non-negative integer"),
    ({"max_changed": 1.5}, "max_changed must be a non-negative integer"),
    ({"max_changed": True}, "max_changed must be a non-negative integer"),
    ({"group_has_dropped": [True, False]}, "group_has_dropped has 2 entries for 1 groups"),
])
def test_from_arrays_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TorchConstraints.from_arrays(np.zeros(4), np.ones(4), ["both"] * 4, [[2, 3]], **kwargs)


# ---------------------------------------------------------------------------------------
# Rounding of integer columns in raw units
# ---------------------------------------------------------------------------------------


@st.composite
def grid_problem(draw):
    """Integer columns with random affine maps, raw bounds, directions and factuals."""
    n = draw(st.integers(1, 5))
    k = draw(st.integers(1, 4))
    d = k + 1  # the last column is continuous
    scale = np.array([draw(st.sampled_from([1.0, 2.5, 0.3, -1.7, 1000.0, 1 / 7]))
                      for _ in range(k)] + [0.0])
    offset = np.array([draw(st.floats(-50, 50)) for _ in range(k)] + [0.0])
    raw_ref = draw(arrays(np.float64, (n, k), elements=st.integers(-20, 20).map(float)))
    off_grid = draw(arrays(bool, (n, k)))
    raw_ref = raw_ref + off_grid * draw(arrays(np.float64, (n, k),
                                               elements=st.floats(0.05, 0.95)))
    x_ref = np.empty((n, d), dtype=np.float32)
    x_ref[:, :k] = (raw_ref - offset[:k]) / scale[:k]
    x_ref[:, k] = draw(arrays(np.float32, (n,), elements=_finite))
    raw_new = draw(arrays(np.float64, (n, k), elements=st.floats(-30, 30)))
    x_new = np.empty((n, d), dtype=np.float32)
    x_new[:, :k] = (raw_new - offset[:k]) / scale[:k]
    x_new[:, k] = draw(arrays(np.float32, (n,), elements=_finite))
    # some entries unchanged
    same = draw(arrays(bool, (n, d)))
    x_new[same] = x_ref[same]
    lo_raw = np.array([draw(st.sampled_from([-np.inf, -10.0, -3.5, 0.0, 2.2]))
                       for _ in range(k)])
    hi_raw = np.array([lo + draw(st.sampled_from([np.inf, 0.3, 1.0, 4.5, 20.0]))
                       if np.isfinite(lo) else draw(st.sampled_from([np.inf, 3.0, -2.5]))
                       for lo in lo_raw])
    sk, ok = scale[:k], offset[:k]
    lower = np.r_[np.where(sk > 0, (lo_raw - ok) / sk, (hi_raw - ok) / sk), -np.inf]
    upper = np.r_[np.where(sk > 0, (hi_raw - ok) / sk, (lo_raw - ok) / sk), np.inf]
    words = [draw(st.sampled_from(WORDS)) for _ in range(d)]
    c = TorchConstraints.from_arrays(lower, upper, words, [], grid_scale=scale,
                                     grid_offset=offset)
    return torch.as_tensor(x_new), torch.as_tensor(x_ref), c, words, k


def _raw(x, c):
    return x.double() * c.grid_scale.double() + c.grid_offset.double()


@settings(max_examples=200, deadline=None)
@given(grid_problem())
def test_round_to_grid_properties(problem):
    x_new, x_ref, c, words, k = problem
    before = x_new.clone(), x_ref.clone()
    out = project(x_new, x_ref, c)
    assert torch.equal(x_new, before[0]) and torch.equal(x_ref, before[1])  # not in place
    lo, hi = torch.minimum(c.lower, x_ref), torch.maximum(c.upper, x_ref)
    assert torch.all(out >= lo) and torch.all(out <= hi)
    raw_out, raw_ref = _raw(out, c), _raw(x_ref, c)
    changed = out != x_ref
    for j in range(k + 1):
        if words[j] == "none":
            assert torch.equal(out[:, j], x_ref[:, j])
        elif words[j] == "increase":
            assert torch.all(out[:, j] >= x_ref[:, j])
        elif words[j] == "decrease":
            assert torch.all(out[:, j] <= x_ref[:, j])
    # a changed integer column is on its grid, inside the raw bounds rounded inward (widened
    # to the factual), and an unchanged proposal keeps the factual bit for bit
    ch = changed[:, :k]
    r = raw_out[:, :k]
    assert torch.all((r[ch] - r[ch].round()).abs() < 1e-2)
    g_lo = torch.minimum(c.grid_lower[:k].double(), raw_ref[:, :k].ceil() - 1e-2)
    g_hi = torch.maximum(c.grid_upper[:k].double(), raw_ref[:, :k].floor() + 1e-2)
    assert torch.all(r[ch] >= g_lo[ch] - 1e-2) and torch.all(r[ch] <= g_hi[ch] + 1e-2)
    same = x_new == x_ref
    assert torch.equal(out[same], x_ref[same])
    # the continuous column is not rounded
    soft = project(x_new, x_ref, c, hard=False)
    assert torch.equal(out[:, k], soft[:, k])
    # nearest rounding for a free column with an on-grid factual, inside the bounds
    on = (raw_ref[:, :k] - raw_ref[:, :k].round()).abs() < 1e-3
    raw_soft = _raw(soft, c)[:, :k]
    near = raw_soft.round()
    inside = (near >= c.grid_lower[:k].double()) & (near <= c.grid_upper[:k].double())
    free = torch.tensor([w == "both" for w in words[:k]])
    no_tie = ((raw_soft - raw_soft.floor()) - 0.5).abs() > 1e-3  # half-way: either side
    sel = on & inside & free & ch & no_tie
    assert torch.all((r[sel] - near[sel]).abs() < 1e-2)
    # projecting again changes nothing
    assert torch.equal(project(out, x_ref, c), out)


def test_round_to_grid_hand_examples():
    # raw = 2 * model + 1 on column 0 (bounds raw [0.5, 9.2] -> grid [1, 9]); column 1: raw =
    # model (increase only); column 2: continuous
    lower, upper = [-0.25, -np.inf, -np.inf], [4.1, np.inf, np.inf]
    c = TorchConstraints.from_arrays(lower, upper, ["both", "increase", "both"], [],
                                     grid_scale=[2.0, 1.0, 0.0], grid_offset=[1.0, 0.0, 0.0])
    x_ref = torch.tensor([[1.0, 2.3, 0.5],    # raw 3, off-grid 2.3
                          [1.0, 4.0, 0.5]])
    x_new = torch.tensor([[1.3, 2.4, 0.77],   # raw 3.6 -> 4; 2.4 -> ceil(2.3) = 3
                          [-9.0, 4.4, 0.5]])  # raw -17 -> lower grid 1; 4.4 -> 4 (factual)
    out = project(x_new, x_ref, c)
    assert torch.equal(out, torch.tensor([[1.5, 3.0, 0.77], [0.0, 4.0, 0.5]]))
    # off-grid factual inside bounds without a grid value in the allowed direction stays put
    c2 = TorchConstraints.from_arrays([-np.inf], [2.8], ["increase"], [], grid_scale=[1.0])
    x_ref2 = torch.tensor([[2.3]])
    assert torch.equal(project(torch.tensor([[2.7]]), x_ref2, c2), x_ref2)
    # decrease-only with a lower bound: stops at the bound; a factual below the bound widens
    # the domain to itself and cannot go lower
    c3 = TorchConstraints.from_arrays([5.0], [np.inf], ["decrease"], [], grid_scale=[1.0])
    out3 = project(torch.tensor([[4.4], [1.4]]), torch.tensor([[9.0], [2.0]]), c3)
    assert torch.equal(out3, torch.tensor([[5.0], [2.0]]))


def test_round_to_grid_float32_large_values_keep_the_factual():
    # Credit Amount-like column: raw = 2800 * model + 3270; the factual's raw value is an
    # integer only up to float32 error and must come back bit for bit when unchanged in raw
    s, o = 2822.7, 3271.3
    raw = np.array([250.0, 1234.0, 18424.0])
    x_ref = torch.tensor(((raw - o) / s)[:, None], dtype=torch.float32)
    c = TorchConstraints.from_arrays([(250 - o) / s], [(20000 - o) / s], ["both"], [],
                                     grid_scale=[s], grid_offset=[o])
    nudged = x_ref + 0.1 / s  # +0.1 in raw units: rounds back to the factual
    assert torch.equal(project(nudged, x_ref, c), x_ref)
    down = project(x_ref - 1.0, x_ref, c)  # -2822.7 raw, clipped at the 250 bound
    assert float(down[0]) == pytest.approx((250 - o) / s)
    assert torch.all(down >= c.lower)


def test_straight_through_rounding_forward_and_gradient():
    c = TorchConstraints.from_arrays([-np.inf] * 2, [np.inf] * 2, ["both", "both"], [],
                                     grid_scale=[1.0, 0.0])
    x_ref = torch.tensor([[1.0, 1.0]])
    x = torch.tensor([[1.7, 1.7]], requires_grad=True)
    out = straight_through_harden(x, x_ref, c)
    assert torch.equal(out.detach(), torch.tensor([[2.0, 1.7]]))
    (grad,) = torch.autograd.grad((out * torch.tensor([[3.0, 5.0]])).sum(), x)
    assert torch.equal(grad, torch.tensor([[3.0, 5.0]]))


# ---------------------------------------------------------------------------------------
# The limit on changed features (max_changed)
# ---------------------------------------------------------------------------------------


@st.composite
def limited_problem(draw):
    """constrained_problem plus feature ids, cost weights and max_changed."""
    x_new, x_ref, c, words, groups = draw(constrained_problem())
    d = x_new.shape[1]
    numeric = _numeric_columns(d, groups)
    fid = np.zeros(d, dtype=np.int64)
    fid[numeric] = draw(arrays(np.int64, (len(numeric),),
                               elements=st.integers(0, len(numeric) - 1)))
    for i, g in enumerate(groups):
        fid[g] = len(numeric) + i
    weight = draw(arrays(np.float64, (d,), elements=st.sampled_from([0.0, 0.5, 1.0, 3.0])))
    k = draw(st.integers(0, 4))
    same = draw(arrays(bool, x_new.shape))
    x_new = torch.where(torch.as_tensor(same), x_ref, x_new)
    args = (c.lower.numpy(), c.upper.numpy(), words, groups)
    limited = TorchConstraints.from_arrays(*args, feature_id=fid, cost_weight=weight,
                                           max_changed=k)
    free = TorchConstraints.from_arrays(*args, feature_id=fid, cost_weight=weight)
    return x_new, x_ref, limited, free, words, fid, weight, k


@settings(max_examples=150, deadline=None)
@given(limited_problem())
def test_limit_changes_properties(problem):
    x_new, x_ref, c, free, words, fid, weight, k = problem
    out = project(x_new, x_ref, c)
    full = project(x_new, x_ref, free)  # the same projection without the limit
    changed = (out != x_ref).numpy()
    full_changed = (full != x_ref).numpy()
    w_change = ((full - x_ref).abs() * torch.as_tensor(weight, dtype=torch.float32)).numpy()
    for i in range(out.shape[0]):
        feats = sorted(set(fid.tolist()))
        ch = {f for f in feats if changed[i, fid == f].any()}
        fch = {f for f in feats if full_changed[i, fid == f].any()}
        assert len(ch) <= k and ch <= fch
        assert len(ch) == min(k, len(fch))
        for f in feats:
            cols = fid == f
            # each feature is either the unlimited projection or the factual, as a whole
            expected = full[i, cols] if f in ch else x_ref[i, cols]
            assert torch.equal(out[i, cols], expected)
        # the kept features carry the largest weighted change
        size = {f: w_change[i, fid == f].sum() for f in fch}
        if ch and fch - ch:
            assert min(size[f] for f in ch) >= max(size[f] for f in fch - ch)
    for j, w in enumerate(words):
        if w == "none":
            assert torch.equal(out[:, j], x_ref[:, j])
    assert torch.equal(project(out, x_ref, c), out)


def test_limit_changes_hand_example():
    # features: {0}, {1, 2} (two columns of one user column), group {3, 4, 5}; weights make
    # the one-hot switch (2 columns * 0.4) smaller than 0.9 * |1.0| but larger than 0.5
    c = TorchConstraints.from_arrays([-np.inf] * 6, [np.inf] * 6, ["both"] * 6, [[3, 4, 5]],
                                     feature_id=[0, 1, 1, 2, 2, 2],
                                     cost_weight=[0.9, 0.25, 0.25, 0.4, 0.4, 0.4], max_changed=2)
    x_ref = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    x = torch.tensor([[1.0, 1.0, 1.0, 0.2, 0.9, 0.1],     # changes 0.9, 0.5, 0.8
                      [0.0, 1.0, 0.0, 0.9, 0.3, 0.0]])    # only feature 1 changes
    out = project(x, x_ref, c)
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                                          [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]]))
    zero = TorchConstraints.from_arrays([-np.inf] * 6, [np.inf] * 6, ["both"] * 6, [[3, 4, 5]],
                                        max_changed=0)
    assert torch.equal(project(x, x_ref, zero), x_ref)


def test_straight_through_limit_keeps_identity_gradient():
    c = TorchConstraints.from_arrays([-np.inf] * 3, [np.inf] * 3, ["both"] * 3, [],
                                     max_changed=1)
    x_ref = torch.zeros(1, 3)
    x = torch.tensor([[0.5, -2.0, 1.0]], requires_grad=True)
    out = straight_through_harden(x, x_ref, c)
    assert torch.equal(out.detach(), torch.tensor([[0.0, -2.0, 0.0]]))
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, torch.ones(1, 3))


# ---------------------------------------------------------------------------------------
# One-hot groups with a dropped level (the all-zero pattern is a legal level)
# ---------------------------------------------------------------------------------------


def _dropped_constraints(dropped=(True, False), words=("both", "both")):
    # group A = [0, 1, 2] (dropped level: all zero), group B = [3, 4]; column 5 numeric
    mut = [words[0]] * 3 + [words[1]] * 2 + ["both"]
    return TorchConstraints.from_arrays([0.0] * 5 + [-np.inf], [1.0] * 5 + [np.inf], mut,
                                        [[0, 1, 2], [3, 4]], group_has_dropped=list(dropped))


def test_dropped_level_is_kept_left_and_reached():
    c = _dropped_constraints()
    x_ref = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0, 0.5],    # A at its dropped level
                          [0.0, 1.0, 0.0, 0.0, 1.0, 0.5]])   # A at level 1
    # unchanged: bit for bit, also through the straight-through forward pass
    assert torch.equal(project(x_ref, x_ref, c), x_ref)
    assert torch.equal(straight_through_harden(x_ref.clone().requires_grad_(True), x_ref,
                                               c).detach(), x_ref)
    # a small move stays at the current level; a larger one switches
    small = x_ref + torch.tensor([[0.0, 0.3, 0.0, 0.0, 0.0, 0.0],
                                  [0.0, -0.3, 0.2, 0.0, 0.0, 0.0]])
    assert torch.equal(project(small, x_ref, c)[:, :3], x_ref[:, :3])
    big = x_ref + torch.tensor([[0.0, 0.6, 0.0, 0.0, 0.0, 0.0],     # leaves the dropped level
                                [0.0, -0.6, 0.0, 0.0, 0.0, 0.0]])   # reaches it (1 - 0.4)
    out = project(big, x_ref, c)
    assert torch.equal(out[:, :3], torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    # group B has no dropped level: always exactly one active level
    assert torch.all(out[:, 3:5].sum(dim=1) == 1)


def test_unchanged_group_keeps_a_factual_that_is_not_a_level():
    # an unseen category (all zeros) in a group without a dropped level stays as it is until
    # the search moves the group, then goes to a known level
    c = _dropped_constraints(dropped=(False, False))
    x_ref = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0, 0.5]])
    assert torch.equal(project(x_ref, x_ref, c), x_ref)
    moved = x_ref + torch.tensor([[0.0, 0.0, 0.1, 0.0, 0.0, 0.0]])
    assert torch.equal(project(moved, x_ref, c)[:, :3], torch.tensor([[0.0, 0.0, 1.0]]))
    # immutable: never changes
    c_none = _dropped_constraints(dropped=(False, False), words=("none", "both"))
    assert torch.equal(project(moved, x_ref, c_none)[:, :3], x_ref[:, :3])


@settings(max_examples=100, deadline=None)
@given(constrained_problem(), st.data())
def test_harden_groups_with_dropped_levels_properties(problem, data):
    x_new, x_ref, c0, words, groups = problem
    dropped = [data.draw(st.booleans()) for _ in groups]
    for g, drop in zip(groups, dropped):  # factuals may sit at the dropped level
        at_drop = data.draw(arrays(bool, (x_ref.shape[0],))) & drop
        rows = torch.as_tensor(at_drop).nonzero().squeeze(1)  # [R]
        x_ref[rows[:, None], torch.as_tensor(g)[None, :]] = 0.0
    c = TorchConstraints.from_arrays(c0.lower.numpy(), c0.upper.numpy(), words, groups,
                                     group_has_dropped=dropped)
    out = project(x_new, x_ref, c)
    clipped = _clip_to_bounds(x_new, x_ref, c.lower, c.upper)
    for g, drop in zip(groups, dropped):
        block, ref, soft = out[:, g], x_ref[:, g], clipped[:, g]
        assert torch.all((block == 0) | (block == 1))
        total = block.sum(dim=1)
        assert torch.all((total == 1) | ((total == 0) & drop))
        if words[g[0]] == "none":
            assert torch.equal(block, ref)
            continue
        same = (soft == ref).all(dim=1)
        assert torch.equal(block[same], ref[same])
        implicit = 1 - soft.sum(dim=1)
        best = soft.max(dim=1).values
        to_drop = (total == 0) & ~same
        if drop:
            # the dropped level wins exactly when its soft value beats every explicit level
            assert torch.equal(to_drop, (implicit > best) & ~same)
        active = ~same & (total == 1)
        assert torch.equal(block[active].argmax(dim=1), soft[active].argmax(dim=1))
    assert torch.equal(project(out, x_ref, c), out)
    assert torch.equal(project(x_ref, x_ref, c), x_ref)


def test_harden_groups_with_a_factual_equals_the_rule_on_every_group():
    # hardening against a factual computes only the mutable groups (padded to their own width);
    # the result must equal the rule applied to all groups: immutable groups and groups equal
    # to the factual's take the factual, the others their argmax level (or the dropped one)
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(1, 6, size=rng.integers(1, 5))
        pos, groups = int(rng.integers(0, 3)), []
        for s in sizes:
            groups.append(list(range(pos, pos + int(s))))
            pos += int(s)
        d = pos + int(rng.integers(0, 2))
        mut = ["both"] * d
        for g in groups:
            if rng.random() < 0.4:
                for j in g:
                    mut[j] = "none"
        drop = [bool(rng.random() < 0.4) for _ in groups]
        c = TorchConstraints.from_arrays(np.full(d, -np.inf), np.full(d, np.inf), mut, groups,
                                         group_has_dropped=drop)
        x = torch.tensor(rng.normal(size=(6, d)), dtype=torch.float32)
        ref = torch.tensor(rng.integers(0, 2, size=(6, d)), dtype=torch.float32)
        x[:2] = ref[:2]
        expected = harden_groups(x, c)  # every group hardened, no factual
        for g, word in zip(groups, [mut[g[0]] for g in groups]):
            keep = (x[:, g] == ref[:, g]).all(dim=1) | (word == "none")
            rows = keep.nonzero().squeeze(1)
            expected[rows[:, None], torch.as_tensor(g)[None, :]] = ref[rows][:, g]
        assert torch.equal(harden_groups(x, c, ref), expected)
