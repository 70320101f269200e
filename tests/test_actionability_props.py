"""Property tests: random mixed tables and constraint specs through a Pipeline.

Whatever the table (continuous, integer, binary, bool, categorical with and without a dropped
level, ordinal) and the constraints (mutability, bounds in the user's units, max_changed), every
returned row lies in the domain, holds values of each column's kind and dtype, respects the
direction rules in the user's units, keeps immutable columns bit for bit, changes at most
``max_changed`` features, and is valid exactly when the model says so.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier

N_ROWS = 80
THRESHOLD = 0.6
KINDS = ["continuous", "integer", "binary", "bool", "onehot", "onehot_drop", "ordinal"]
GRADES = ["low", "mid", "high", "top"]


def _column(kind, rng):
    if kind == "continuous":
        return rng.gamma(2.0, 3.0, N_ROWS).round(3)
    if kind == "integer":
        return rng.randint(0, 7, N_ROWS).astype(np.int64)
    if kind == "binary":
        return rng.choice([1, 2], N_ROWS).astype(np.int32)
    if kind == "bool":
        return rng.rand(N_ROWS) < 0.5
    if kind in ("onehot", "onehot_drop"):
        return rng.choice(["a", "b", "c"], N_ROWS).astype(object)
    return pd.Categorical(rng.choice(GRADES, N_ROWS), categories=GRADES, ordered=True)


@st.composite
def tables(draw):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=2, max_size=5))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame({f"{k}{i}": _column(k, rng) for i, k in enumerate(kinds)})
    words = draw(st.lists(st.sampled_from(["both", "none", "increase", "decrease"]),
                          min_size=len(kinds), max_size=len(kinds)))
    mutability, bounds = {}, {}
    for (name, kind), word in zip(zip(frame.columns, kinds), words):
        if kind.startswith("onehot") and word in ("increase", "decrease"):
            word = "both"
        mutability[name] = word
        if kind in ("continuous", "integer") and draw(st.booleans()):
            lo = float(frame[name].min()) + draw(st.floats(-2.0, 2.0))
            bounds[name] = (round(lo, 1), round(lo + draw(st.floats(0.3, 8.0)), 1))
    max_changed = draw(st.one_of(st.none(), st.integers(0, 3)))
    return kinds, frame, mutability, bounds, max_changed, seed


def column_transformer(kinds, frame):
    """The preprocessing of a random table: scaled numbers, passthrough flags, one-hot (with
    and without a dropped level) and ordinal grades (shared with other test modules)."""
    names = list(frame.columns)
    num = [n for n, k in zip(names, kinds) if k in ("continuous", "integer", "binary")]
    parts = []
    if num:
        parts.append(("num", StandardScaler(), num))
    flags = [n for n, k in zip(names, kinds) if k == "bool"]
    if flags:
        parts.append(("flag", "passthrough", flags))
    for kind, enc in (("onehot", OneHotEncoder(sparse_output=False)),
                      ("onehot_drop", OneHotEncoder(drop="first", sparse_output=False))):
        cols = [n for n, k in zip(names, kinds) if k == kind]
        if cols:
            parts.append((kind, enc, cols))
    grades = [n for n, k in zip(names, kinds) if k == "ordinal"]
    if grades:
        parts.append(("grade", make_pipeline(OrdinalEncoder(categories=[GRADES] * len(grades)),
                                             MinMaxScaler()), grades))
    return ColumnTransformer(parts)


def _pipeline(kinds, frame, seed):
    names = list(frame.columns)
    score = np.zeros(N_ROWS)
    rng = np.random.RandomState(seed + 1)
    for n in names:
        values = frame[n].cat.codes if kinds[names.index(n)] == "ordinal" else frame[n]
        if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            values = pd.factorize(values)[0]
        v = np.asarray(values, dtype=float)
        score += rng.randn() * (v - v.mean()) / (v.std() + 1e-9)
    y = (score > np.median(score)).astype(int)
    pipe = make_pipeline(column_transformer(kinds, frame), CounterfactualTrainedClassifier(
        lambda_div=0, lambda_adv=0, lambda_reg=0, max_epochs=12, lr=0.01,
        batch_size=16, random_state=0)).fit(frame, y)
    return pipe, y


def check_row_properties(res, frame, constraints, mutability, bounds, max_changed):
    cf, fac = res.counterfactuals, res.factuals
    assert list(cf.columns) == list(frame.columns)
    for j, name in enumerate(frame.columns):
        column = constraints.schema_[j]
        new, old = cf[name], fac[name]
        assert new.dtype == old.dtype, (name, new.dtype, old.dtype)
        word = mutability[name]
        if word == "none":
            pd.testing.assert_series_equal(new, old)  # bit for bit
            continue
        changed = ~(new.astype(object) == old.astype(object)).to_numpy()
        if column.numeric:
            v, f = new.to_numpy(float), old.to_numpy(float)
            lo, hi = constraints.lower_[j], constraints.upper_[j]
            assert (v[changed] >= np.minimum(lo, f[changed])).all(), name
            assert (v[changed] <= np.maximum(hi, f[changed])).all(), name
            if name in bounds:  # explicit bounds hold in the returned dtype
                low, high = bounds[name]
                inside = (f >= low) & (f <= high)
                assert (v[inside] >= low).all() and (v[inside] <= high).all(), name
            if column.kind != "continuous":
                assert (v == np.round(v)).all(), name
            if column.levels is not None:
                assert set(v) <= set(np.asarray(column.levels, dtype=float)), name
            if word == "increase":
                assert (v >= f).all(), name
            if word == "decrease":
                assert (v <= f).all(), name
        else:
            assert set(new[changed]) <= set(column.levels), name
            if word in ("increase", "decrease"):  # ordinal: direction on the levels' order
                codes_new, codes_old = new.cat.codes.to_numpy(), old.cat.codes.to_numpy()
                assert ((codes_new >= codes_old) if word == "increase"
                        else (codes_new <= codes_old)).all(), name
    if max_changed is not None:
        assert (res.n_changed <= max_changed).all()


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_returned_rows_are_actionable(case):
    kinds, frame, mutability, bounds, max_changed, seed = case
    pipe, y = _pipeline(kinds, frame, seed)
    constraints = ActionabilityConstraints(mutability=mutability, bounds=bounds or None,
                                           max_changed=max_changed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bounds on immutable columns
        ex = CounterfactualExplainer(pipe, target="opposite", constraints=constraints,
                                     decision_threshold=THRESHOLD, max_iter=60,
                                     random_state=0).fit(frame, y)
    rows = frame.iloc[:24]
    res = ex.explain(rows)
    check_row_properties(res, frame, ex.constraints_, mutability, bounds, max_changed)
    proba = pipe.predict_proba(res.counterfactuals)
    p_t = proba[np.arange(len(rows)), res.target_index]
    np.testing.assert_array_equal(res.target_proba, p_t)
    np.testing.assert_array_equal(
        res.valid, (pipe.predict(res.counterfactuals) == res.targets) & (p_t >= THRESHOLD))


def test_ordered_categorical_through_an_ordinal_encoder():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"continuous0": _column("continuous", rng),
                          "ordinal1": _column("ordinal", rng)})
    pipe, y = _pipeline(["continuous", "ordinal"], frame, 0)
    ex = CounterfactualExplainer(pipe, target="opposite", max_iter=30, random_state=0)
    res = ex.fit(frame, y).explain(frame.iloc[:10])
    assert res.counterfactuals["ordinal1"].dtype == frame["ordinal1"].dtype
    assert ex.constraints_.feature_kinds_.tolist() == ["continuous", "ordinal"]


@pytest.mark.parametrize("bounds", [(0.3, 0.7), (0.25, 2.0)])
def test_explicit_bounds_hold_in_the_returned_dtype(bounds):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"share": rng.uniform(0, 1, N_ROWS).astype(np.float32),
                          "other": rng.randn(N_ROWS)})
    y = (frame["share"] > 0.5).astype(int).to_numpy()
    pipe = make_pipeline(StandardScaler(), CounterfactualTrainedClassifier(
        lambda_div=0, lambda_adv=0, lambda_reg=0, max_epochs=20, random_state=0)).fit(frame, y)
    ex = CounterfactualExplainer(pipe, target="opposite", constraints=ActionabilityConstraints(
        bounds={"share": bounds}, mutability={"other": "none"}), random_state=0).fit(frame, y)
    rows = frame[frame["share"].between(*bounds)]
    res = ex.explain(rows)
    share = res.counterfactuals["share"]
    assert share.dtype == np.float32
    assert (share >= np.float32(bounds[0])).all() and (share <= np.float32(bounds[1])).all()
    assert (share == np.float32(bounds[0])).any() or (share == np.float32(bounds[1])).any() \
        or res.valid.all()
