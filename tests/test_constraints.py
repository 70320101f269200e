"""ActionabilityConstraints (the sklearn transformer) and its tensor form."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skct.constraints import MUTABILITY_WORDS, ActionabilityConstraints

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


@pytest.mark.parametrize("bounds", ["auto", None, {"a": (-5.0, 5.0)}])
def test_one_hot_columns_are_bounded_by_unit_interval(bounds):
    # documented: "Columns of one-hot groups are always bounded by [0, 1]"
    levels = np.arange(20) % 2
    X = pd.DataFrame({"x": np.linspace(-1, 1, 20), "a": levels.astype(float),
                      "b": 1.0 - levels})
    c = ActionabilityConstraints(bounds=bounds, categorical=[["a", "b"]]).fit(X)
    np.testing.assert_array_equal(c.lower_[1:], [0.0, 0.0])
    np.testing.assert_array_equal(c.upper_[1:], [1.0, 1.0])


def test_duplicated_column_in_a_group_is_an_error():
    X = np.eye(3)[np.arange(12) % 3]
    with pytest.raises(ValueError, match=r"categorical.*index 0.*twice"):
        ActionabilityConstraints(categorical=[[0, 0]]).fit(X)


def test_name_that_prefixes_another_column():
    Z = pd.DataFrame({"cat__job_a": [1.0, 0.0], "cat__job_b": [0.0, 1.0],
                      "num__job_years": [1.0, 2.0]})
    c = ActionabilityConstraints(mutability={"job": "none", "job_years": "increase"}).fit(Z)
    assert c.mutability_.tolist() == ["none", "none", "increase"]
    np.testing.assert_array_equal(c.categorical_groups_[0], [0, 1])


# ---------------------------------------------------------------------------------------
# fitted on the user's raw columns through a ModelEncoding (as the explainer fits them)
# ---------------------------------------------------------------------------------------


def _raw_and_encoded(drop=None):
    from sklearn.pipeline import make_pipeline

    from skct.explain._encoding import encoding_of

    rng = np.random.RandomState(0)
    raw = pd.DataFrame({
        "amount": rng.gamma(2.0, 1000.0, 60).round(2),
        "count": rng.randint(0, 5, 60),
        "job": rng.choice(["a", "b", "c"], 60).astype(object),
    })
    ct = ColumnTransformer([("num", StandardScaler(), ["amount", "count"]),
                            ("cat", OneHotEncoder(drop=drop, sparse_output=False), ["job"])])
    pre = make_pipeline(ct).fit(raw)
    Z = pre.transform(raw)
    return raw, Z, encoding_of(pre, raw, names=pre.get_feature_names_out()), ct


def test_encoded_fit_reports_the_users_columns_and_units():
    raw, Z, enc, ct = _raw_and_encoded()
    c = ActionabilityConstraints(mutability={"count": "increase"},
                                 bounds={"amount": (250, 20000)}).fit(raw, encoding=enc,
                                                                      X_model=Z)
    assert c.n_features_in_ == 3 and c.n_features_model_ == 5
    assert c.feature_kinds_.tolist() == ["continuous", "integer", "categorical"]
    assert c.mutability_.tolist() == ["both", "increase", "both"]
    assert c.mutability_model_.tolist() == ["both", "increase", "both", "both", "both"]
    # raw units in lower_/upper_, the model's space in lower_model_/upper_model_
    assert (c.lower_[0], c.upper_[0]) == (250.0, 20000.0)
    assert (c.lower_[1], c.upper_[1]) == (raw["count"].min(), raw["count"].max())
    assert np.isnan(c.lower_[2])
    sc = ct.named_transformers_["num"]
    np.testing.assert_allclose(c.lower_model_[:2], (np.r_[250.0, raw["count"].min()]
                                                    - sc.mean_) / sc.scale_)
    np.testing.assert_array_equal(c.lower_model_[2:], 0.0)
    np.testing.assert_array_equal(c.categorical_groups_[0], [2, 3, 4])
    assert c.feature_id_model_.tolist() == [0, 1, 2, 2, 2]
    # the integer column is on the grid: raw = model * scale + offset
    assert c.grid_scale_model_[1] == pytest.approx(sc.scale_[1])
    assert c.grid_offset_model_[1] == pytest.approx(sc.mean_[1])
    assert c.grid_scale_model_[0] == 0.0 and (c.grid_scale_model_[2:] == 0).all()
    np.testing.assert_allclose(c.cost_weight_model_[:2], sc.scale_ / c.cost_scale_[:2])
    np.testing.assert_array_equal(c.cost_weight_model_[2:], 0.5)


def test_encoded_default_domain_is_the_observed_range_sigma_is_the_papers():
    raw, Z, enc, _ = _raw_and_encoded()
    c = ActionabilityConstraints().fit(raw, encoding=enc, X_model=Z)
    np.testing.assert_array_equal(c.lower_[:2], raw[["amount", "count"]].min())
    np.testing.assert_allclose(c.lower_model_[:2], Z[:, :2].min(axis=0))
    np.testing.assert_allclose(c.upper_model_[:2], Z[:, :2].max(axis=0))
    assert c.lower_[1] >= 0  # never below 0 for a column without negative values
    for word in ("sigma", "auto"):
        s = ActionabilityConstraints(bounds=word).fit(raw, encoding=enc, X_model=Z)
        lo, hi = _auto_bounds(Z)
        np.testing.assert_array_equal(s.lower_model_[:2], lo[:2])  # exactly the paper's rule
        np.testing.assert_array_equal(s.upper_model_[:2], hi[:2])
        assert s.lower_[1] < 0  # mean - 3 std of a count reaches below zero
    # fitted directly, the default stays the paper's domain
    direct = ActionabilityConstraints().fit(Z)
    np.testing.assert_array_equal(direct.lower_, _auto_bounds(Z)[0])


def test_to_torch_rounding_cost_and_max_changed():
    raw, Z, enc, _ = _raw_and_encoded("first")
    c = ActionabilityConstraints(max_changed=2).fit(raw, encoding=enc, X_model=Z)
    plain = c.to_torch()
    assert plain.max_changed == 2 and not plain.has_grid and plain.unit_cost
    assert plain.group_has_dropped.tolist() == [True]
    t = c.to_torch(torch.float64, rounding=True, cost="mad")
    assert t.has_grid and not t.unit_cost
    np.testing.assert_allclose(t.grid_scale.numpy(), c.grid_scale_model_)
    np.testing.assert_allclose(t.cost_weight.numpy(), c.cost_weight_model_)
    with pytest.raises(ValueError, match="cost: expected 'l1' or 'mad'"):
        c.to_torch(cost="l2")


def test_encoded_names_resolve_raw_first_then_model_names():
    raw, Z, enc, _ = _raw_and_encoded()
    c = ActionabilityConstraints(mutability={"job": "none", "num__count": "decrease"}).fit(
        raw, encoding=enc, X_model=Z)
    assert c.mutability_.tolist() == ["both", "decrease", "none"]
    # one level's model name stands for its whole user column
    c = ActionabilityConstraints(mutability={"cat__job_a": "none"}).fit(raw, encoding=enc,
                                                                        X_model=Z)
    assert c.mutability_model_.tolist() == ["both", "both", "none", "none", "none"]


def test_encoded_bad_input_names_the_column():
    raw, Z, enc, _ = _raw_and_encoded()

    def fit(**kw):
        return ActionabilityConstraints(**kw).fit(raw, encoding=enc, X_model=Z)

    with pytest.raises(ValueError, match=r"bounds: column 'job' is categorical"):
        fit(bounds={"job": (0, 1)})
    with pytest.raises(ValueError, match=r"bounds: feature 'count' has low=5.0 > high=1.0"):
        fit(bounds={"count": (5, 1)})
    with pytest.raises(ValueError, match=r"max_changed"):
        fit(max_changed=-1)
    with pytest.raises(ValueError, match=r"categorical: the group \['cat__job_a', "
                                         r"'num__amount'\] mixes columns of the features "
                                         r"\['amount', 'job'\]"):
        fit(categorical=[["cat__job_a", "num__amount"]])
    with pytest.raises(ValueError, match=r"part of an encoder's one-hot group"):
        fit(categorical=[["cat__job_a", "cat__job_b"]])
    with pytest.raises(ValueError, match=r"categorical: column 'cat__job_a' appears twice"):
        fit(categorical=[["cat__job_a", "job"]])
    with pytest.raises(ValueError, match=r"integer: column 'amount' is declared 'integer'"):
        fit(integer=["amount"])
    with pytest.raises(ValueError, match=r"mutability: feature 'job' is a one-hot group"):
        fit(mutability={"job": "increase"})
    with pytest.raises(ValueError, match="X_model"):
        ActionabilityConstraints().fit(raw, encoding=enc)


def test_bounds_on_an_immutable_column_warn_that_they_restrict_nothing():
    raw, Z, enc, _ = _raw_and_encoded()
    with pytest.warns(UserWarning, match=r"bounds: the immutable \('none'\) column\(s\) "
                                         r"'count' \(2.0, 3.0\) were given bounds; they restrict "
                                         "nothing"):
        ActionabilityConstraints(mutability={"count": "none"}, bounds={"count": (2, 3)}).fit(
            raw, encoding=enc, X_model=Z)


def test_bounds_on_many_immutable_columns_warn_once():
    # one warning for the whole table (784 MNIST pixels used to give 784 warnings)
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(20, 12))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ActionabilityConstraints(mutability={j: "none" for j in range(12)},
                                 bounds={j: (-1.0, 1.0) for j in range(12)}).fit(X)
    msgs = [str(w.message) for w in caught if "restrict nothing" in str(w.message)]
    assert len(msgs) == 1
    assert "and 7 more" in msgs[0]


def test_bounds_through_a_step_that_cannot_be_mapped_name_the_step():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PowerTransformer

    from skct.explain._encoding import encoding_of

    raw = pd.DataFrame({"a": np.linspace(1, 10, 30), "b": np.linspace(-1, 1, 30) ** 2})
    pre = make_pipeline(ColumnTransformer([("pow", PowerTransformer(), ["a"]),
                                           ("num", StandardScaler(), ["b"])])).fit(raw)
    enc = encoding_of(pre, raw)
    Z = pre.transform(raw)
    with pytest.raises(ValueError, match=r"bounds: column 'a' goes through the preprocessing "
                                         r"step 'preprocessing > columntransformer > pow "
                                         r"\(PowerTransformer\)'"):
        ActionabilityConstraints(bounds={"a": (0, 5)}).fit(raw, encoding=enc, X_model=Z)
    c = ActionabilityConstraints(bounds={"b": (0, 0.5)}).fit(raw, encoding=enc, X_model=Z)
    np.testing.assert_allclose(c.lower_model_[0], Z[:, 0].min())  # the model-space range


def test_encoded_transform_clips_raw_numeric_columns():
    raw, Z, enc, _ = _raw_and_encoded()
    c = ActionabilityConstraints(bounds={"amount": (500, 1000)}).fit(raw, encoding=enc,
                                                                     X_model=Z)
    out = c.transform(raw)
    assert out["amount"].between(500, 1000).all()
    pd.testing.assert_series_equal(out["job"], raw["job"])
