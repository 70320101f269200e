"""Actionable counterfactuals on the real tables of ../shared/data (COMPAS, German credit, ...).

Every returned counterfactual must be something a person could do, in the user's own columns
and units: inside the observed range (unless explicit bounds say otherwise), no negative count,
integer columns integral and of their dtype, rows without a valid counterfactual visible.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.datasets import load_adult, load_compas, load_german_credit, load_heloc

CONVENTIONAL = dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)
DATA_HOME = Path(os.environ.get("SKCT_DATA_HOME",
                                Path(__file__).resolve().parents[2] / "shared" / "data"))


def _sample(bunch, n, seed=0):
    idx = np.random.RandomState(seed).permutation(len(bunch.data))[:n]
    return bunch.data.iloc[idx], bunch.target.iloc[idx]


def _pipe(bunch, X, y, epochs=15):
    return make_pipeline(clone(bunch.preprocessor), CounterfactualTrainedClassifier(
        **CONVENTIONAL, max_epochs=epochs, random_state=0)).fit(X, y)


@pytest.fixture(scope="module")
def german():
    bunch = load_german_credit(data_home=DATA_HOME)
    X, y = _sample(bunch, 500)
    pipe = _pipe(bunch, X, y)
    rejected = X[pipe.predict(X) == 0]
    assert len(rejected) >= 20
    return bunch, pipe, X, y, rejected


@pytest.fixture(scope="module")
def compas():
    bunch = load_compas(data_home=DATA_HOME)
    X, y = _sample(bunch, 1500)
    pipe = _pipe(bunch, X, y, epochs=10)
    rejected = X[pipe.predict(X) == 0]
    assert len(rejected) >= 20
    return bunch, pipe, X, y, rejected


def _in_observed_range(cf, X, columns):
    for col in columns:
        values = cf[col].dropna()
        assert values.min() >= X[col].min(), (col, values.min(), X[col].min())
        assert values.max() <= X[col].max(), (col, values.max(), X[col].max())


# ---------------------------------------------------------------------------------------
# what was seen
# ---------------------------------------------------------------------------------------


def test_compas_counts_never_negative(compas):
    bunch, pipe, X, y, rejected = compas
    constraints = ActionabilityConstraints(mutability={
        "age": "none", "race": "none", "sex": "none", "two_year_recid": "none"})
    ex = CounterfactualExplainer(pipe, target=1, constraints=constraints, max_iter=100,
                                 random_state=0).fit(X, y)
    res = ex.explain(rejected)
    cf = res.counterfactuals
    # the observed range: priors_count >= 0; length_of_stay >= -1, the file's own minimum
    assert (cf["priors_count"] >= 0).all()
    for col in ("priors_count", "length_of_stay"):
        assert cf[col].dtype == X[col].dtype, col
    _in_observed_range(cf, X, ["priors_count", "length_of_stay"])
    # explicit bounds in the user's units: a stay is never negative
    ex.set_params(constraints=ActionabilityConstraints(mutability={
        "age": "none", "race": "none", "sex": "none", "two_year_recid": "none"},
        bounds={"length_of_stay": (0, None)})).fit(X, y)
    cf = ex.explain(rejected).counterfactuals
    keep = rejected["length_of_stay"] >= 0  # factuals outside the bounds keep their value
    assert (cf.loc[keep, "length_of_stay"] >= 0).all()


def test_german_values_of_their_kind_in_observed_range(german):
    bunch, pipe, X, y, rejected = german
    ex = CounterfactualExplainer(pipe, target=1, constraints=ActionabilityConstraints(
        mutability={"Age (years)": "none"}), max_iter=100, random_state=0).fit(X, y)
    cf = ex.explain(rejected).counterfactuals
    assert (cf.dtypes == X.dtypes).all()
    _in_observed_range(cf, X, X.columns)
    for col in X.columns:  # every German credit column is integer-coded
        assert (cf[col] == np.round(cf[col])).all(), col
    assert set(cf["Telephone"]) <= set(X["Telephone"])


def test_german_bounds_are_in_raw_units(german):
    bunch, pipe, X, y, rejected = german
    ex = CounterfactualExplainer(pipe, target=1, constraints=ActionabilityConstraints(
        bounds={"Credit Amount": (250, 20000)}), max_iter=10, random_state=0).fit(X, y)
    c = ex.constraints_
    j = list(X.columns).index("Credit Amount")
    assert c.lower_[j] == 250.0 and c.upper_[j] == 20000.0
    scaler = pipe[0].named_transformers_["num"]
    expected = (250.0 - scaler.mean_[j]) / scaler.scale_[j]
    assert c.lower_model_[j] == pytest.approx(expected)


def test_german_transform_marks_rows_without_a_valid_counterfactual(german):
    bunch, pipe, X, y, rejected = german
    ex = CounterfactualExplainer(pipe, target=1, max_iter=2, random_state=0).fit(X, y)
    res = ex.explain(rejected)
    assert not res.valid.all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ex.transform(rejected)
    message = next(str(w.message) for w in caught if "no valid counterfactual" in str(w.message))
    assert message.startswith(f"{int((~res.valid).sum())} of {len(rejected)}")
    # the rows whose search stopped at the step limit are counted as such
    stopped = int(((~res.valid) & (res.n_iter >= 2)).sum())
    assert stopped and f"{stopped} of them stopped at max_iter=2 steps" in message
    assert isinstance(out, pd.DataFrame)
    assert out[~res.valid].isna().all(axis=None)
    assert not out[res.valid].isna().any(axis=None)


def test_german_sparsity_median_changes_at_most_three(german):
    bunch, pipe, X, y, rejected = german
    results = {}
    for on in (False, True):
        ex = CounterfactualExplainer(pipe, target=1, max_iter=300, sparsify_changes=on,
                                     random_state=0).fit(X, y)
        res = ex.explain(rejected)
        results[on] = (float(res.valid.mean()), float(np.median(res.n_changed)))
        # n_changed counts the user columns that differ from the factual
        np.testing.assert_array_equal(
            res.n_changed, (res.counterfactuals != rejected).sum(axis=1).to_numpy())
    print(f"German credit, {len(rejected)} rejected: validity / median changed columns "
          f"without sparsity {results[False]}, with {results[True]}")
    assert results[True][1] <= 3
    assert results[True][0] >= results[False][0] - 0.05
    assert results[True][1] < results[False][1]


@pytest.mark.parametrize("loader, n, immutable", [
    (load_heloc, 1500, ["MSinceOldestTradeOpen"]),
    (load_adult, 2000, ["age", "sex", "race"]),
    (load_german_credit, 500, ["Age (years)"]),
    (load_compas, 1500, ["age", "race", "sex"]),
])
def test_real_tables_in_range_integral_and_of_their_dtype(loader, n, immutable):
    bunch = loader(data_home=DATA_HOME)
    X, y = _sample(bunch, n)
    pipe = _pipe(bunch, X, y, epochs=5)
    rejected = X[pipe.predict(X) == 0].iloc[:60]
    ex = CounterfactualExplainer(pipe, target=1, constraints=ActionabilityConstraints(
        mutability={c: "none" for c in immutable}), max_iter=100, random_state=0).fit(X, y)
    res = ex.explain(rejected)
    cf = res.counterfactuals
    kinds = dict(zip(X.columns, ex.constraints_.feature_kinds_))
    assert (cf.dtypes == X.dtypes).all()
    numeric = [c for c in X.columns if kinds[c] in ("continuous", "integer", "binary")]
    _in_observed_range(cf, X, numeric)
    for col in numeric:
        if X[col].min() >= 0:
            assert (cf[col] >= 0).all(), col  # no negative count
        if kinds[col] != "continuous":
            assert (cf[col] == np.round(cf[col])).all(), col
    for col in X.columns:
        if kinds[col] == "categorical":
            assert set(cf[col]) <= set(X[col]), col
    for col in immutable:
        pd.testing.assert_series_equal(cf[col], rejected[col])
    np.testing.assert_array_equal(pipe.predict(cf[res.valid]), res.targets[res.valid])
