"""The gradient-free generator: counterfactuals for any classifier with predict_proba."""

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_actionability_props import check_row_properties, column_transformer, tables

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.datasets import load_adult
from skct.evaluation import evaluate, make_counterfactual_scorer, recourse_audit
from skct.explain import ModelAdapter
from skct.metrics import compute_metrics
from skct.search import GradientFreeGenerator, ProbaLogits, gradient_free_search, sparsify

DATA_HOME = Path(os.environ.get("SKCT_DATA_HOME",
                                Path(__file__).resolve().parents[2] / "shared" / "data"))
FAST = GradientFreeGenerator(n_neighbors=8, n_rings=4, n_candidates=24, n_generations=4)


def _blobs(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(n // 2, 3) - 1.5, rng.randn(n // 2, 3) + 1.5]
    y = np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int)
    return X, y


def _sk_pipeline(kinds, frame, seed):
    y = np.random.RandomState(seed).randint(0, 2, len(frame))
    y[:2] = [0, 1]
    final = [RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
             LogisticRegression(), HistGradientBoostingClassifier(max_iter=10)][seed % 3]
    return make_pipeline(column_transformer(kinds, frame), final).fit(frame, y), y


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_every_constraint_holds(case):
    kinds, frame, mutability, bounds, max_changed, seed = case
    pipe, y = _sk_pipeline(kinds, frame, seed)
    constraints = ActionabilityConstraints(mutability=mutability, bounds=bounds or None,
                                           max_changed=max_changed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bounds on immutable columns
        ex = CounterfactualExplainer(pipe, generator=FAST, target="opposite",
                                     constraints=constraints, decision_threshold=0.6,
                                     random_state=0).fit(frame, y)
    res = ex.explain(frame.iloc[:24])
    check_row_properties(res, frame, ex.constraints_, mutability, bounds, max_changed)
    proba = pipe.predict_proba(res.counterfactuals)[np.arange(24), res.target_index]
    np.testing.assert_array_equal(res.valid, (proba >= 0.6) & (
        pipe.predict_proba(res.counterfactuals).argmax(1) == res.target_index))


@pytest.mark.parametrize("final", [LogisticRegression(), RandomForestClassifier(
    n_estimators=20, random_state=0), HistGradientBoostingClassifier(max_iter=20)])
@pytest.mark.parametrize("in_pipeline", [False, True])
def test_any_classifier_in_or_out_of_a_pipeline(final, in_pipeline):
    X, y = _blobs()
    model = make_pipeline(StandardScaler(), clone(final)) if in_pipeline else clone(final)
    model.fit(X, y)
    ex = CounterfactualExplainer(model, generator="gradient_free", target="opposite",
                                 random_state=0).fit(X, y)
    assert not ex.adapter_.differentiable and ex.adapter_.dtype == torch.float64
    res = ex.explain(X[::6])
    assert res.valid.mean() >= 0.9
    pred = model.predict(res.counterfactuals[res.valid])
    np.testing.assert_array_equal(pred, res.targets[res.valid])


def test_our_nets_and_the_gradient_default():
    X, y = _blobs()
    X = X.astype(np.float32)
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=15, random_state=0).fit(X, y)
    ex = CounterfactualExplainer(clf, generator="gradient_free", target="opposite",
                                 random_state=0).fit(X, y)
    assert ex.adapter_.differentiable  # the torch module, evaluated only
    assert ex.explain(X[::10]).valid.all()
    assert CounterfactualExplainer(clf).fit(X, y).generator_.__class__.__name__ == \
        "GenericGenerator"
    lr = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="torch-backed.*generator='gradient_free'"):
        CounterfactualExplainer(lr).fit(X, y)
    with pytest.raises(ValueError, match="return_path"):
        CounterfactualExplainer(lr, generator="gradient_free", return_path=True).fit(X, y)


def test_search_and_sparsify_with_proba_logits():
    X, y = _blobs()
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    gen = GradientFreeGenerator(random_state=0).fit(X, rf.predict(X))
    x = torch.tensor(X[y == 0][:15])
    t = torch.ones(15, dtype=torch.long)
    model = ProbaLogits(rf)
    x_cf, p, found = gradient_free_search(model, x, t, gen, decision_threshold=0.7)
    assert found.all() and (p >= 0.7).all()
    again, p2, _ = gradient_free_search(model, x, t, gen, decision_threshold=0.7)
    assert torch.equal(x_cf, again)  # seeded
    sparse = sparsify(model, x_cf, x, t, decision_threshold=0.7)
    assert (rf.predict_proba(sparse.numpy())[:, 1] >= 0.7).all()
    assert ((sparse != x).sum(1) <= (x_cf != x).sum(1)).all()
    with pytest.raises(RuntimeError, match="no gradients"):
        model(x.clone().requires_grad_(True))
    with pytest.raises(TypeError, match="gradient_free_search"):
        gen.loss(x, x, t, None, 0, 1)
    with pytest.raises(ValueError, match="fit the GradientFreeGenerator"):
        gradient_free_search(model, x, t, GradientFreeGenerator())


def test_audit_evaluate_scorers_and_metrics_accept_such_models():
    X, y = _blobs(160)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    hgb = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=20))
    hgb.fit(frame, y)
    rejected = frame[hgb.predict(frame) == 0].iloc[:20]
    report = recourse_audit(hgb, rejected, target=1, generator=FAST, reference=frame,
                            random_state=0, constraints=ActionabilityConstraints(
                                mutability={"a": "none"}))
    assert report.rows_["valid"].mean() >= 0.9
    assert (report.counterfactuals_["a"] == rejected["a"]).all()
    table = evaluate({"hgb": hgb}, frame, y, generators={"gf": FAST}, n_runs=1, n_factuals=10,
                     metrics=["validity", "cost"], random_state=0)
    assert set(table["metric"]) == {"validity", "cost"}
    assert (table.loc[table["metric"] == "validity", "value"] >= 0.8).all()
    scorer = make_counterfactual_scorer("validity", generator="gradient_free", n_samples=20)
    assert scorer(hgb, frame, y) >= 0.8
    with pytest.raises(TypeError, match="gradient_free"):
        make_counterfactual_scorer("validity")(hgb, frame, y)  # gradient generator
    module = ModelAdapter(hgb, gradients=False).module
    Z = StandardScaler().fit_transform(X)[:5]
    with pytest.raises(ValueError, match=r"\['faithfulness'\] need the model's gradients"):
        compute_metrics(["validity", "faithfulness"], Z, Z, [1] * 5, model=module)


def test_adult_hist_gradient_boosting():
    bunch = load_adult(data_home=DATA_HOME)
    idx = np.random.RandomState(0).permutation(len(bunch.data))[:3000]
    X, y = bunch.data.iloc[idx], bunch.target.iloc[idx]
    pipe = make_pipeline(clone(bunch.preprocessor),
                         HistGradientBoostingClassifier(max_iter=50, random_state=0)).fit(X, y)
    immutable = ["age", "sex", "race", "native-country"]
    constraints = ActionabilityConstraints(mutability={
        **{c: "none" for c in immutable}, "education-num": "increase"})
    rejected = X[pipe.predict(X) == 0].iloc[:60]
    ex = CounterfactualExplainer(pipe, generator="gradient_free", target=1,
                                 constraints=constraints, random_state=0).fit(X)
    res = ex.explain(rejected)
    cf = res.counterfactuals
    assert res.valid.mean() >= 0.95
    assert np.median(res.n_changed[res.valid]) <= 3
    for col in immutable:
        pd.testing.assert_series_equal(cf[col], rejected[col])
    assert (cf["education-num"] >= rejected["education-num"]).all()


class _CountingProba(ProbaLogits):
    """ProbaLogits that counts the rows it scores."""

    def __init__(self, estimator):
        super().__init__(estimator)
        self.n_rows = 0

    def forward(self, x):
        self.n_rows += x.shape[0]
        return super().forward(x)


def test_early_stop_scores_fewer_candidates():
    X, y = _blobs(200)
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    x = torch.tensor(X[y == 0][:40])
    t = torch.ones(40, dtype=torch.long)
    out, rows = {}, {}
    for patience in (None, 1, 3):
        gen = GradientFreeGenerator(patience=patience, random_state=0).fit(X, rf.predict(X))
        model = _CountingProba(rf)
        out[patience] = gradient_free_search(model, x, t, gen, decision_threshold=0.7)
        rows[patience] = model.n_rows
    n_full = 40 * (20 * 8 + 64 * 8)  # every ring point and child of every row
    assert rows[None] == n_full
    assert rows[1] < rows[3] < n_full
    for patience, (x_cf, p, found) in out.items():
        assert found.all() and (p >= 0.7).all()
        np.testing.assert_allclose(rf.predict_proba(x_cf.numpy())[:, 1], p.numpy())
    with pytest.raises(ValueError, match="patience"):
        GradientFreeGenerator(patience=0).fit(X, y)
