"""ActionabilityConstraints (the sklearn transformer) and the torch constraint helpers."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skct.constraints import (
    MUTABILITY_WORDS,
    ActionabilityConstraints,
    TorchConstraints,
    _apply_mutability,
    _clip_to_bounds,
    _harden_groups,
    _mask_step,
    project,
    protect,
    straight_through_harden,
)

WORDS = ["none", "increase", "decrease", "both"]


@pytest.fixture
def frame():
    rng = np.random.RandomState(0)
    return pd.DataFrame({
        "age": rng.uniform(18, 80, 50),
        "debt": rng.exponential(3.0, 50),
        "income": rng.normal(40.0, 10.0, 50),
    })

WORD_OF_CODE = {v: k for k, v in MUTABILITY_WORDS.items()}


def _auto_bounds(X, n_sigma=3.0):
    X = np.asarray(X, dtype=np.float64)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    return (np.minimum(mu - n_sigma * sd, X.min(axis=0)),
            np.maximum(mu + n_sigma * sd, X.max(axis=0)))


# ---------------------------------------------------------------------------------------
# ActionabilityConstraints: fitting
# ---------------------------------------------------------------------------------------


def test_fit_dataframe_mutability_and_auto_bounds(frame):
    c = ActionabilityConstraints(mutability={"age": "increase", "debt": "decrease"}).fit(frame)
    assert c.n_features_in_ == 3
    assert list(c.feature_names_in_) == ["age", "debt", "income"]
    assert c.mutability_.tolist() == ["increase", "decrease", "both"]
    assert c.categorical_groups_ == []
    lo, hi = _auto_bounds(frame.to_numpy())
    np.testing.assert_allclose(c.lower_, lo, rtol=1e-12)
    np.testing.assert_allclose(c.upper_, hi, rtol=1e-12)
    # the domain always contains the fit data
    assert np.all(c.lower_ <= frame.min().to_numpy())
    assert np.all(c.upper_ >= frame.max().to_numpy())


def test_fit_ndarray_with_indices_and_n_sigma():
    rng = np.random.RandomState(1)
    X = rng.randn(40, 4).astype(np.float32)
    X[0, 2] = 25.0  # an outlier beyond mu + 0.5 sd: the data max wins
    c = ActionabilityConstraints(mutability={0: "none", -1: "decrease"}, n_sigma=0.5).fit(X)
    assert not hasattr(c, "feature_names_in_")
    assert c.mutability_.tolist() == ["none", "both", "both", "decrease"]
    lo, hi = _auto_bounds(X, n_sigma=0.5)
    np.testing.assert_allclose(c.lower_, lo, rtol=1e-12)
    np.testing.assert_allclose(c.upper_, hi, rtol=1e-12)
    assert c.upper_[2] == pytest.approx(25.0)
    assert c.lower_[0] == pytest.approx(X[:, 0].min())  # n_sigma=0.5 is inside the data range


def test_n_sigma_zero_gives_data_range():
    X = np.array([[0.0, 1.0], [2.0, 5.0], [4.0, 3.0]])
    c = ActionabilityConstraints(n_sigma=0.0).fit(X)
    np.testing.assert_array_equal(c.lower_, [0.0, 1.0])
    np.testing.assert_array_equal(c.upper_, [4.0, 5.0])


def test_bounds_none_is_unbounded(frame):
    c = ActionabilityConstraints(bounds=None).fit(frame)
    assert np.all(np.isneginf(c.lower_)) and np.all(np.isposinf(c.upper_))
    X_far = frame * 1e6
    np.testing.assert_array_equal(c.transform(X_far), X_far.to_numpy())
    tc = c.to_torch()
    assert tc.is_trivial


def test_bounds_dict_overrides_and_none_side(frame):
    c = ActionabilityConstraints(bounds={"age": (18, None), "debt": (0.0, 10.0),
                                         2: (None, 100.0)}).fit(frame)
    lo, hi = _auto_bounds(frame.to_numpy())
    assert c.lower_[0] == 18.0 and np.isposinf(c.upper_[0])
    assert c.lower_[1] == 0.0 and c.upper_[1] == 10.0
    assert np.isneginf(c.lower_[2]) and c.upper_[2] == 100.0
    # an unlisted feature keeps its "auto" bounds
    c2 = ActionabilityConstraints(bounds={"age": (18, 90)}).fit(frame)
    np.testing.assert_allclose(c2.lower_[1:], lo[1:], rtol=1e-12)
    np.testing.assert_allclose(c2.upper_[1:], hi[1:], rtol=1e-12)


def test_transform_clips_and_copies(frame):
    X = frame.to_numpy().copy()
    c = ActionabilityConstraints(bounds={0: (20, 60), 1: (0, 1)}).fit(X)
    X_before = X.copy()
    Xt = c.transform(X)
    np.testing.assert_array_equal(X, X_before)  # input unchanged
    assert Xt is not X and not np.shares_memory(Xt, X)
    np.testing.assert_array_equal(Xt, np.clip(X, c.lower_, c.upper_))
    assert Xt[:, 0].min() >= 20 and Xt[:, 0].max() <= 60
    assert Xt[:, 1].max() <= 1
    np.testing.assert_array_equal(Xt[:, 2], X[:, 2])  # inside its auto domain
    # a DataFrame input is not modified either
    c = ActionabilityConstraints(bounds={"age": (20, 60), "debt": (0, 1)}).fit(frame)
    df_before = frame.copy()
    out = c.transform(frame)
    pd.testing.assert_frame_equal(frame, df_before)
    np.testing.assert_array_equal(out, Xt)


def test_feature_names_out_and_pandas_output(frame):
    c = ActionabilityConstraints(bounds={"age": (20, 60)}).fit(frame)
    assert list(c.get_feature_names_out()) == ["age", "debt", "income"]
    c.set_output(transform="pandas")
    out = c.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(frame.columns)
    assert out["age"].min() >= 20 and out["age"].max() <= 60
    # fit_transform too
    out2 = ActionabilityConstraints().set_output(transform="pandas").fit_transform(frame)
    assert list(out2.columns) == list(frame.columns)


def _column_transformer_output():
    rng = np.random.RandomState(0)
    raw = pd.DataFrame({
        "age": rng.uniform(18, 80, 30),
        "debt": rng.exponential(3.0, 30),
        "sex": rng.choice(["F", "M"], 30),
    })
    ct = ColumnTransformer([("num", StandardScaler(), ["age", "debt"]),
                            ("cat", OneHotEncoder(sparse_output=False), ["sex"])])
    Z = ct.fit_transform(raw)
    return pd.DataFrame(Z, columns=ct.get_feature_names_out())


def test_names_resolve_through_column_transformer():
    Z = _column_transformer_output()
    assert list(Z.columns) == ["num__age", "num__debt", "cat__sex_F", "cat__sex_M"]
    c = ActionabilityConstraints(mutability={"age": "none", "sex": "none"}).fit(Z)
    assert c.mutability_.tolist() == ["none", "both", "none", "none"]
    assert len(c.categorical_groups_) == 1
    np.testing.assert_array_equal(c.categorical_groups_[0], [2, 3])
    # one-hot columns are bounded by (at least) [0, 1]
    assert np.all(c.lower_[2:] <= 0.0) and np.all(c.upper_[2:] >= 1.0)
    # explicit full names and a single raw group name in ``categorical`` work too
    c2 = ActionabilityConstraints(mutability={"num__debt": "decrease"},
                                  categorical=["sex"]).fit(Z)
    assert c2.mutability_.tolist() == ["both", "decrease", "both", "both"]
    np.testing.assert_array_equal(c2.categorical_groups_[0], [2, 3])
    tc = c.to_torch()
    assert tc.mut.tolist() == [0, 3, 0, 0]
    assert tc.group_mutable.tolist() == [False]


def test_bounds_resolve_through_column_transformer():
    Z = _column_transformer_output()
    c = ActionabilityConstraints(bounds={"debt": (-1.0, 1.0)}).fit(Z)
    assert c.lower_[1] == -1.0 and c.upper_[1] == 1.0


# ---------------------------------------------------------------------------------------
# ActionabilityConstraints: errors
# ---------------------------------------------------------------------------------------


def test_unknown_feature_name(frame):
    with pytest.raises(ValueError, match=r"mutability.*unknown feature 'height'"):
        ActionabilityConstraints(mutability={"height": "none"}).fit(frame)
    with pytest.raises(ValueError, match=r"bounds.*unknown feature 'height'"):
        ActionabilityConstraints(bounds={"height": (0, 1)}).fit(frame)
    with pytest.raises(ValueError, match=r"categorical.*unknown feature 'height'"):
        ActionabilityConstraints(categorical=[["height", "age"]]).fit(frame)


def test_bad_mutability_word(frame):
    with pytest.raises(ValueError, match=r"mutability: 'up' for feature 'age'"):
        ActionabilityConstraints(mutability={"age": "up"}).fit(frame)


def test_low_greater_than_high(frame):
    with pytest.raises(ValueError, match=r"bounds: feature 'debt' has low=5.0 > high=1.0"):
        ActionabilityConstraints(bounds={"debt": (5.0, 1.0)}).fit(frame)
    with pytest.raises(ValueError, match=r"bounds: feature 'debt' needs a \(low, high\) pair"):
        ActionabilityConstraints(bounds={"debt": 5.0}).fit(frame)


def test_increase_on_one_hot_group():
    Z = _column_transformer_output()
    with pytest.raises(ValueError, match=r"mutability: feature 'sex' is a one-hot group"):
        ActionabilityConstraints(mutability={"sex": "increase"}).fit(Z)
    with pytest.raises(ValueError, match=r"mutability.*one-hot"):
        ActionabilityConstraints(mutability={"cat__sex_F": "decrease", "cat__sex_M": "decrease"},
                                 categorical=[["cat__sex_F", "cat__sex_M"]]).fit(Z)
    with pytest.raises(ValueError, match=r"mutability.*mixed mutability"):
        ActionabilityConstraints(mutability={"cat__sex_F": "none"}, categorical=["sex"]).fit(Z)


def test_column_in_two_groups():
    X = np.eye(4)[np.arange(12) % 4]
    with pytest.raises(ValueError, match=r"categorical: column index 1 belongs to two"):
        ActionabilityConstraints(categorical=[[0, 1], [1, 2, 3]]).fit(X)
    with pytest.raises(ValueError, match=r"categorical.*at least two columns"):
        ActionabilityConstraints(categorical=[[0]]).fit(X)


def test_names_without_feature_names():
    X = np.random.RandomState(0).randn(10, 3)
    with pytest.raises(ValueError, match=r"mutability: feature 'age' is given by name"):
        ActionabilityConstraints(mutability={"age": "none"}).fit(X)
    with pytest.raises(ValueError, match=r"bounds: feature 'age' is given by name"):
        ActionabilityConstraints(bounds={"age": (0, 1)}).fit(X)


def test_out_of_range_index():
    X = np.random.RandomState(0).randn(10, 3)
    with pytest.raises(ValueError, match=r"mutability: feature index 3 is out of range"):
        ActionabilityConstraints(mutability={3: "none"}).fit(X)
    with pytest.raises(ValueError, match=r"bounds: feature index -4 is out of range"):
        ActionabilityConstraints(bounds={-4: (0, 1)}).fit(X)


def test_feature_key_of_wrong_type():
    X = np.random.RandomState(0).randn(10, 3)
    with pytest.raises(TypeError, match="mutability"):
        ActionabilityConstraints(mutability={1.5: "none"}).fit(X)


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
    assert torch.equal(_harden_groups(soft, c, x_ref), project(x_new, x_ref, c))


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
    out = _mask_step(s, c)
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
    assert torch.equal(_mask_step(step, c), expected)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=_finite),
       st.data())
def test_protect_rule(x_plus, data):
    n, d = x_plus.shape
    x_cf = data.draw(arrays(np.float32, (n, d), elements=_finite))
    # make ties likely too
    x_cf = np.where(data.draw(arrays(bool, (n, d))), x_plus, x_cf)
    codes = data.draw(arrays(np.int8, (d,), elements=st.integers(0, 3)))
    out = protect(torch.as_tensor(x_plus), torch.as_tensor(x_cf), torch.as_tensor(codes))
    out = out.numpy()
    for i in range(n):
        for j in range(d):
            swap = (codes[j] == 0 or (codes[j] == 1 and x_cf[i, j] > x_plus[i, j])
                    or (codes[j] == 2 and x_cf[i, j] < x_plus[i, j]))
            assert out[i, j] == (x_cf[i, j] if swap else x_plus[i, j])


def test_protect_hand_example():
    x_plus = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    x_cf = torch.tensor([[5.0, 2.0, 0.0, 2.0, 0.0, 9.0]])
    mut = torch.tensor([0, 1, 1, 2, 2, 3], dtype=torch.int8)
    expected = torch.tensor([[5.0, 2.0, 1.0, 1.0, 0.0, 1.0]])
    assert torch.equal(protect(x_plus, x_cf, mut), expected)


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
    out = _harden_groups(x, c)  # no x_ref: immutable groups are hardened as well
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]]))
    assert torch.equal(x, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.1, 0.3, 0.3]]))  # not in place


def test_to_torch_from_fitted_constraints():
    X = np.c_[np.random.RandomState(0).randn(12, 2), np.eye(3)[np.arange(12) % 3]]
    ac = ActionabilityConstraints(mutability={0: "increase", 1: "none"},
                                  categorical=[[2, 3, 4]]).fit(X)
    tc = ac.to_torch(dtype=torch.float64)
    assert tc.n_features == 5 and tc.has_groups and not tc.is_trivial
    assert tc.lower.dtype == torch.float64
    assert tc.mut.tolist() == [1, 0, 3, 3, 3]
    assert tc.group_index.tolist() == [[2, 3, 4]]
    assert tc.group_mask.tolist() == [[True, True, True]]
    assert tc.group_mutable.tolist() == [True]
    np.testing.assert_array_equal(tc.lower.numpy(), ac.lower_)
    np.testing.assert_array_equal(tc.upper.numpy(), ac.upper_)


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


@pytest.mark.parametrize("bounds", ["auto", None, {"a": (-5.0, 5.0)}])
def test_one_hot_columns_are_bounded_by_unit_interval(bounds):
    # documented: "Columns of one-hot groups are always bounded by [0, 1]"
    levels = np.arange(20) % 2
    X = pd.DataFrame({"x": np.linspace(-1, 1, 20), "a": levels.astype(float),
                      "b": 1.0 - levels})
    c = ActionabilityConstraints(bounds=bounds, categorical=[["a", "b"]]).fit(X)
    np.testing.assert_array_equal(c.lower_[1:], [0.0, 0.0])
    np.testing.assert_array_equal(c.upper_[1:], [1.0, 1.0])
