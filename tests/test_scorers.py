"""Counterfactual scorers: the sklearn scorer protocol, GridSearchCV (n_jobs 1 and 2), errors."""

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import make_blobs2d
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skct import CounterfactualTrainedClassifier
from skct.metrics import cost, implausibility, validity
from skct.evaluation import (
    COUNTERFACTUAL_SCORERS,
    CounterfactualScorer,
    get_counterfactual_scorer,
    make_counterfactual_scorer,
)

GRID = {"counterfactualtrainedclassifier__lambda_div": [0.0, 0.5]}


def _pipe():
    clf = CounterfactualTrainedClassifier(max_epochs=4, n_counterfactuals=32, max_iter_cf=10,
                                          hidden_layer_sizes=(8,), random_state=0)
    return make_pipeline(StandardScaler(), clf)


@pytest.fixture(scope="module")
def data():
    return make_blobs2d(n=120, sep=1.0)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=20, random_state=0)
    return make_pipeline(StandardScaler(), clf).fit(X, y)


def _scoring():
    return {"accuracy": "accuracy",
            **{name: make_counterfactual_scorer(name[3:], max_iter=30, n_samples=30)
               for name in ("cf_validity", "cf_implausibility", "cf_cost", "cf_mmd")}}


def _search(X, y, n_jobs):
    return GridSearchCV(_pipe(), GRID, scoring=_scoring(), refit="accuracy", cv=2,
                        n_jobs=n_jobs, error_score="raise").fit(X, y)


def _scores(search):
    keys = sorted(k for k in search.cv_results_ if k.startswith(("split", "mean_test")))
    return pd.DataFrame({k: search.cv_results_[k] for k in keys})


def test_grid_search_multimetric_n_jobs_1_and_2(data):
    X, y = data
    s1 = _search(X, y, n_jobs=1)
    s2 = _search(X, y, n_jobs=2)
    res = _scores(s1)
    for name in ("accuracy", "cf_validity", "cf_implausibility", "cf_cost", "cf_mmd"):
        values = res[f"mean_test_{name}"].to_numpy()
        assert values.shape == (2,) and np.isfinite(values).all(), name
    assert ((res["mean_test_cf_validity"] >= 0) & (res["mean_test_cf_validity"] <= 1)).all()
    assert (res["mean_test_cf_cost"] <= 0).all() and (res["mean_test_cf_implausibility"] < 0).all()
    assert hasattr(s1, "best_estimator_") and s1.best_params_ in list(s1.cv_results_["params"])
    pd.testing.assert_frame_equal(res, _scores(s2))


def test_scorer_matches_metrics_in_model_space(data, fitted):
    X, y = data
    scorer = make_counterfactual_scorer("cost", target="opposite", max_iter=30, cache=False)
    from skct import CounterfactualExplainer

    res = CounterfactualExplainer(fitted, target="opposite", max_iter=30, prefit=True,
                                  random_state=0).fit(X, y).explain(X)
    Z_cf, Z = res.counterfactuals_model, res.factuals_model
    module = fitted[-1].logits_module_
    assert scorer(fitted, X, y) == pytest.approx(-cost(Z_cf, Z))
    assert make_counterfactual_scorer("validity", target="opposite", max_iter=30)(
        fitted, X, y) == pytest.approx(validity(module, Z_cf, res.target_index))
    expected = implausibility(Z_cf, res.target_index, fitted[:-1].transform(X), y,
                              random_state=0)  # < 1000 rows per class: no subsampling
    assert -make_counterfactual_scorer("implausibility", target="opposite", max_iter=30)(
        fitted, X, y) == pytest.approx(expected)


def test_cache_shares_one_search_and_sees_refits(data, fitted, monkeypatch):
    X, y = data
    import skct.evaluation._scorers as mod

    calls = []
    real = mod.CounterfactualExplainer.explain
    monkeypatch.setattr(mod.CounterfactualExplainer, "explain",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    a = make_counterfactual_scorer("cost", max_iter=20)
    b = make_counterfactual_scorer("validity", max_iter=20)
    a(fitted, X, y), b(fitted, X, y)
    assert len(calls) == 1  # same settings, estimator and fold: one search
    make_counterfactual_scorer("cost", max_iter=21)(fitted, X, y)
    assert len(calls) == 2  # other settings
    refit = pickle.loads(pickle.dumps(fitted))
    a(refit, X, y)
    assert len(calls) == 3  # other estimator


def test_cross_validate_with_ready_scorers_and_dataframe(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b"])
    scoring = {k: get_counterfactual_scorer(k) for k in ("cf_validity", "cf_redundancy")}
    scoring["cf_validity"].n_samples = scoring["cf_redundancy"].n_samples = 20
    out = cross_validate(_pipe(), frame, y, cv=2, scoring=scoring, error_score="raise")
    assert np.isfinite(out["test_cf_validity"]).all()
    assert ((out["test_cf_redundancy"] >= 0) & (out["test_cf_redundancy"] <= 1)).all()


def test_ready_scorers_are_picklable_and_signed():
    assert set(COUNTERFACTUAL_SCORERS) >= {"cf_validity", "cf_implausibility", "cf_cost",
                                           "cf_mmd"}
    for name, scorer in COUNTERFACTUAL_SCORERS.items():
        again = pickle.loads(pickle.dumps(scorer))
        assert isinstance(again, CounterfactualScorer) and again.metric == scorer.metric
        assert again._sign == (1 if name in ("cf_validity", "cf_strict_validity",
                                             "cf_redundancy") else -1)
    assert get_counterfactual_scorer("mmd").metric == "mmd"
    assert get_counterfactual_scorer("cf_cost") is not COUNTERFACTUAL_SCORERS["cf_cost"]
    assert "make_counterfactual_scorer('cost'" in repr(COUNTERFACTUAL_SCORERS["cf_cost"])


@pytest.mark.parametrize("kwargs, match", [
    ({"metric": "accuracy"}, "metric"),
    ({"metric": "cost", "generator": "nope"}, "generator"),
    ({"metric": "cost", "n_samples": 0}, "n_samples"),
    ({"metric": "cost", "decision_threshold": 1.5}, "decision_threshold"),
    ({"metric": "cost", "random_state": np.random.RandomState(0)}, "random_state"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_counterfactual_scorer(**kwargs)
    with pytest.raises(ValueError, match="name"):
        get_counterfactual_scorer("cf_accuracy")


def test_reference_metrics_need_y(data, fitted):
    X, _ = data
    with pytest.raises(ValueError, match="needs y"):
        make_counterfactual_scorer("implausibility", max_iter=5)(fitted, X, None)
