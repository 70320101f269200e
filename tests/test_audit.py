"""skct.evaluation: recourse audit of a fitted Pipeline on raw Adult data, per group."""

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_HOME
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skct import ActionabilityConstraints, CounterfactualTrainedClassifier
from skct.evaluation import GAP_LABEL, RecourseAuditReport, bands, recourse_audit
from skct.datasets import load_adult

MUTABILITY = {"age": "none", "sex": "none", "race": "none", "hours-per-week": "increase"}
IMMUTABLE = ["age", "sex", "race"]
GROUPS = {"sex": "sex", "age band": bands("age", [0, 30, 50, 120])}


@pytest.fixture(scope="module")
def adult_setup():
    b = load_adult(data_home=DATA_HOME)
    X = b.data.sample(3000, random_state=0)
    y = b.target.loc[X.index]
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=3, random_state=0)
    model = make_pipeline(b.preprocessor, clf).fit(X, y)
    rejected = X[model.predict(X) == 0].iloc[:150]
    assert len(rejected) == 150
    return model, X, rejected


def _audit(model, X, rejected, **kw):
    params = dict(target=1, constraints=ActionabilityConstraints(mutability=MUTABILITY),
                  groups=GROUPS, reference=X, batch_size=50, random_state=0)
    params.update(kw)
    return recourse_audit(model, rejected, **params)


@pytest.fixture(scope="module")
def report(adult_setup):
    return _audit(*adult_setup)


def test_rows_respect_constraints(adult_setup, report):
    _, _, rejected = adult_setup
    assert isinstance(report, RecourseAuditReport)
    rows, cf = report.rows_, report.counterfactuals_
    assert rows.index.equals(rejected.index) and cf.index.equals(rejected.index)
    assert list(cf.columns) == list(rejected.columns)
    for col in IMMUTABLE:  # exactly as given, in every reported row
        assert (cf[col] == rejected[col]).all(), col
        assert (rows[f"cf_{col}"] == rejected[col]).all(), col
        assert cf[col].dtype == rejected[col].dtype
        assert col not in set(report.changes_["feature"])
    assert (cf["hours-per-week"] >= rejected["hours-per-week"]).all()
    assert rows["actionable"].all() and rows["in_domain"].all()
    assert report.checked_constraints_ == MUTABILITY
    np.testing.assert_array_equal(rows["recourse"], rows["valid"])
    np.testing.assert_array_equal(rows["reason"], np.where(rows["valid"], "", "invalid"))
    # categoricals come back as category names the column already knows
    for col in ["workclass", "education", "occupation", "native-country"]:
        assert set(cf[col]) <= set(load_adult(data_home=DATA_HOME).data[col])
    assert (rows["prediction"] == 0).all() and (rows["target"] == 1).all()
    assert rows["valid"].mean() > 0.5
    assert (rows["target_proba"][rows["valid"]] >= 0.75).all()


def test_costs_and_changes_in_original_columns(adult_setup, report):
    _, _, rejected = adult_setup
    rows, cf = report.rows_, report.counterfactuals_
    manual = np.zeros(len(rows), dtype=int)
    for col in rejected.columns:  # a one-hot encoded column counts once
        manual += (cf[col].astype(object).to_numpy() != rejected[col].astype(object)
                   .to_numpy())
    np.testing.assert_array_equal(rows["n_changed"].to_numpy(), manual)
    assert rows["n_changed"].max() <= rejected.shape[1] - len(IMMUTABLE)
    # cost="l1": the distance in the model's input space (the default is now "mad")
    rep_l1 = _audit(*adult_setup, cost="l1")
    pd.testing.assert_frame_equal(rep_l1.counterfactuals_, cf)  # the cost only measures
    seen = rep_l1.factuals_model_.astype(np.float32).astype(np.float64)  # model precision
    np.testing.assert_allclose(rep_l1.rows_["cost"],
                               np.abs(rep_l1.counterfactuals_model_ - seen).sum(1))
    assert (rep_l1.rows_["cost"] >= 0).all()
    # the default: L1 in the user's units over each column's MAD, a category change costs 1
    c = report.explainer_.constraints_
    mad = np.zeros(len(rows))
    for j, col in enumerate(rejected.columns):
        if c.feature_kinds_[j] == "categorical":
            mad += cf[col].astype(object).to_numpy() != rejected[col].astype(object).to_numpy()
        else:
            mad += np.abs(cf[col].to_numpy(float) - rejected[col].to_numpy(float)) \
                / c.cost_scale_[j]
    np.testing.assert_allclose(rows["cost"], mad)
    assert (rows["cost"] >= 0).all()
    # the long change table agrees with the per-row counts and values
    counts = report.changes_.groupby("position").size()
    np.testing.assert_array_equal(counts.reindex(range(len(rows)), fill_value=0), manual)
    cat = report.changes_[report.changes_["kind"] == "categorical"].iloc[0]
    assert cat["old"] == rejected.loc[cat["row"], cat["feature"]]
    assert cat["new"] == cf.loc[cat["row"], cat["feature"]]
    assert cat["change"] == f"{cat['old']} -> {cat['new']}"
    num = report.changes_[report.changes_["kind"] == "numerical"].iloc[0]
    assert num["delta"] == pytest.approx(num["new"] - num["old"])
    hours = report.changes_[report.changes_["feature"] == "hours-per-week"]
    assert (hours["delta"] > 0).all()


def test_summary_groups_and_gaps(report):
    s = report.summary()
    assert report.groups_ == {"sex": ["Female", "Male"],
                              "age band": ["(0, 30]", "(30, 50]", "(50, 120]"]}
    expected = [(g, lab) for g, labs in report.groups_.items() for lab in labs + [GAP_LABEL]]
    assert list(s.index) == expected
    groups = s.drop(index=GAP_LABEL, level="group")
    assert groups["share_recourse"].between(0, 1).all()
    assert groups["n"].sum() == 2 * len(report.rows_)
    for grouping, labels in report.groups_.items():
        part = s.loc[grouping]
        sv = part.loc[labels, "share_recourse"]
        assert part.loc[GAP_LABEL, "share_recourse"] == pytest.approx(sv.max() - sv.min())
        mc = part.loc[labels, "median_cost"]
        assert part.loc[GAP_LABEL, "median_cost"] == pytest.approx(mc.max() - mc.min())
        # recomputed by hand
        for lab in labels:
            rows = report.rows_[report.rows_[grouping] == lab]
            ok = rows[rows["recourse"]]
            assert part.loc[lab, "n"] == len(rows)
            assert part.loc[lab, "share_recourse"] == pytest.approx(len(ok) / len(rows))
            assert part.loc[lab, "median_cost"] == pytest.approx(ok["cost"].median())
            assert part.loc[lab, "mean_cost"] == pytest.approx(ok["cost"].mean())
    freq = report.feature_change_frequencies()
    assert list(freq.index) == [i for i in expected if i[1] != GAP_LABEL]
    assert ((freq >= 0) & (freq <= 1)).all().all()
    assert (freq[IMMUTABLE] == 0).all().all()
    gaps = report.gaps()
    assert gaps.loc[("sex", "share_recourse"), "gap"] == pytest.approx(
        s.loc[("sex", GAP_LABEL), "share_recourse"])
    assert "RecourseAuditReport(n_rows=150" in repr(report)


def test_plot_and_html(report, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = report.plot()
    assert isinstance(fig, Figure) and report.figure_ is fig
    assert len(fig.axes) >= 4  # (cost, frequency) per grouping
    plt.close(fig)
    path = report.to_html(tmp_path / "audit.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<img alt="recourse audit figure" src="data:image/png;base64,' in text
    for name in ["Female", "Male", "(0, 30]", "(50, 120]", "age band", GAP_LABEL]:
        assert name in text
    assert "http://" not in text and "https://" not in text and "<script" not in text


@pytest.mark.slow
def test_n_jobs_gives_the_same_report(adult_setup, report):
    par = _audit(*adult_setup, n_jobs=2)
    pd.testing.assert_frame_equal(par.rows_, report.rows_)
    pd.testing.assert_frame_equal(par.summary(), report.summary())
    np.testing.assert_array_equal(par.counterfactuals_model_, report.counterfactuals_model_)


def test_validation(adult_setup):
    model, X, rejected = adult_setup
    small = rejected.iloc[:5]
    with pytest.raises(ValueError, match="unknown class label 7"):
        recourse_audit(model, small, target=7, reference=X)
    with pytest.raises(ValueError, match="'gender'"):
        recourse_audit(model, small, target=1, groups="gender", reference=X)
    with pytest.raises(ValueError, match="'gender'"):
        recourse_audit(model, small, target=1, groups={"g": bands("gender", [0, 1])},
                       reference=X)
    with pytest.raises(ValueError, match="expected 5 group labels"):
        recourse_audit(model, small, target=1, groups={"g": ["a", "b"]}, reference=X)
    with pytest.raises(ValueError, match="no group label"):
        recourse_audit(model, small, target=1, groups=rejected["sex"].iloc[:3], reference=X)
    with pytest.raises(ValueError, match="reserved"):
        recourse_audit(model, small, target=1, groups={"cost": "sex"}, reference=X)
    with pytest.raises(ValueError, match="cost"):
        recourse_audit(model, small, target=1, cost="l3", reference=X)


def test_defaults_single_group_and_rows_already_accepted(adult_setup):
    model, X, _ = adult_setup
    accepted = X[model.predict_proba(X)[:, 1] >= 0.8].iloc[:3]
    rows = pd.concat([accepted, X[model.predict(X) == 0].iloc[:5]])
    rep = recourse_audit(model, rows, target=1, reference=X, max_iter=20, random_state=0)
    assert rep.groups_ == {"all": ["all"]}
    assert list(rep.summary().index) == [("all", "all"), ("all", GAP_LABEL)]
    assert rep.summary().loc[("all", GAP_LABEL), "share_recourse"] == 0
    already = rep.rows_.iloc[:3]  # already predicted as the target: nothing to change
    assert already["valid"].all() and (already["cost"] == 0).all()
    assert (already["n_changed"] == 0).all()
    pd.testing.assert_frame_equal(rep.counterfactuals_.iloc[:3], accepted, check_dtype=False)
    # per-row labels, an array and a Series of labels are groupings too
    labels = np.array(["a", "b"] * 4)
    rep2 = recourse_audit(model, rows, target=1, reference=X, max_iter=20, random_state=0,
                          groups={"arr": labels, "series": pd.Series(labels, index=rows.index)})
    assert rep2.groups_ == {"arr": ["a", "b"], "series": ["a", "b"]}
    pd.testing.assert_series_equal(rep2.rows_["cost"], rep.rows_["cost"])


def test_numpy_input_and_opposite_target():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(200, 2), rng.randint(0, 2, 200)].astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=20, random_state=0).fit(X, y)
    c = ActionabilityConstraints(mutability={2: "none"})
    rep = recourse_audit(clf, X[:30], target="opposite", constraints=c, groups=X[:30, 2],
                         random_state=0)
    assert list(rep.counterfactuals_.columns) == ["x0", "x1", "x2"]
    np.testing.assert_array_equal(rep.counterfactuals_["x2"], X[:30, 2])
    np.testing.assert_array_equal(rep.rows_["target"], 1 - clf.predict(X[:30]))
    assert rep.groups_ == {"group": ["0.0", "1.0"]}
    assert rep.summary()["share_recourse"].between(0, 1).all()


def test_custom_cost_and_tolerance():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"income": rng.normal(50, 10, 200), "debt": rng.normal(5, 2, 200),
                      "sex": rng.choice(["F", "M"], 200)})
    y = (X["income"] - 3 * X["debt"] > 35).astype(int)
    pre = make_column_transformer((StandardScaler(), ["income", "debt"]),
                                  (OneHotEncoder(sparse_output=False), ["sex"]))
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=20, random_state=0)
    model = make_pipeline(pre, clf).fit(X, y)
    rejected = X[model.predict(X) == 0].iloc[:20]
    c = ActionabilityConstraints(mutability={"sex": "none", "debt": "decrease"})
    rep = recourse_audit(model, rejected, target=1, constraints=c, groups="sex",
                         reference=X, cost="linf", change_tol={"income": 1e9})
    assert (rep.counterfactuals_["debt"] <= rejected["debt"]).all()
    assert "income" not in set(rep.changes_["feature"])  # below the tolerance
    np.testing.assert_allclose(
        rep.rows_["cost"],
        np.abs(rep.counterfactuals_model_ - rep.factuals_model_).max(axis=1), atol=1e-6)


# -- user text, decisions, ties, the page header, threads -------------------------------------
@pytest.fixture(scope="module")
def dollars():
    """A model whose column and group names hold '$' (matplotlib's maths delimiter)."""
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"income": rng.normal(50, 10, 200), "a$^$b": rng.normal(5, 2, 200),
                      "sex": rng.choice(["F", "M"], 200)})
    y = (X["income"] - 3 * X["a$^$b"] > 35).astype(int)
    pre = make_column_transformer((StandardScaler(), ["income", "a$^$b"]),
                                  (OneHotEncoder(sparse_output=False), ["sex"]))
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=20, random_state=0)
    model = make_pipeline(pre, clf).fit(X, y)
    return model, X, X[model.predict(X) == 0].iloc[:20]


def test_dollar_signs_are_shown_literally(dollars, tmp_path):
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    model, X, rejected = dollars
    labels = np.where(np.arange(len(rejected)) % 2 == 0, "g$^$", "$x$")
    rep = recourse_audit(model, rejected, target=1, reference=X, random_state=0,
                         groups={"g$^$": labels}, max_iter=50)
    fig = rep.plot(fig=Figure())
    fig.canvas.draw()  # a maths parse error would raise here
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    shown = {t.get_text() for t in texts}
    assert "a$^$b" in shown and "g$^$: cost of recourse" in shown
    assert {"g$^$", "$x$"} <= shown  # legend entries
    assert not any(t.get_parse_math() for t in texts if "$" in t.get_text())
    page = rep.to_html(tmp_path / "audit.html").read_text(encoding="utf-8")
    assert "a$^$b" in page and "g$^$" in page


def test_unknown_prediction_is_an_error(dollars, monkeypatch):
    model, X, rejected = dollars
    monkeypatch.setattr(model, "predict", lambda Z: np.full(len(Z), 7))
    with pytest.raises(ValueError, match=r"predicts label\(s\) \[7\] that are not among"):
        recourse_audit(model, rejected, target=1, reference=X)


def test_ties_are_reported_as_ties():
    rows = pd.DataFrame({"g": ["a", "a", "b", "b"], "recourse": [True, False, True, False],
                         "cost": [1.0, 0.0, 1.0, 0.0], "n_changed": [1, 0, 2, 0]})
    changed = pd.DataFrame({"x": [True, False, True, False], "z": [False, False, True, False]})
    rep = RecourseAuditReport(
        rows=rows, counterfactuals=None, factuals=None, changed=changed, changes=None,
        groups={"g": ["a", "b"]}, counterfactuals_model=None, factuals_model=None,
        feature_names_model=None, explainer=None, checked_constraints={}, params={})
    gaps = rep.gaps().loc["g"]
    tie = gaps.loc["share_recourse"]
    assert tie["highest_group"] == tie["lowest_group"] == "tie: a, b" and tie["gap"] == 0
    assert gaps.loc["mean_n_changed", "highest_group"] == "b"
    assert gaps.loc["mean_n_changed", "lowest_group"] == "a"


def test_page_names_the_model_and_the_target_class(dollars, tmp_path):
    model, X, rejected = dollars
    kw = dict(target=1, reference=X, random_state=0, max_iter=20)
    page = recourse_audit(model, rejected.iloc[:5], class_names=["rejected", "approved"],
                          **kw).to_html(tmp_path / "a.html").read_text(encoding="utf-8")
    assert "Desired decision: <strong>approved (class 1)</strong>" in page
    assert "Pipeline(ColumnTransformer, CounterfactualTrainedClassifier)" in page
    rep = recourse_audit(model, rejected.iloc[:5], class_names={1: "approved"},
                         model_name="credit <model>", **kw)
    page = rep.to_html(tmp_path / "b.html").read_text(encoding="utf-8")
    assert "credit &lt;model&gt;" in page and "approved (class 1)" in page
    assert rep.params_["target"] == 1 and rep.params_["model"] == "credit <model>"
    with pytest.raises(ValueError, match="class_names"):
        recourse_audit(model, rejected.iloc[:5], class_names=["one"], **kw)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_search_runs_with_the_configured_torch_threads(dollars, n_jobs):
    import joblib
    import torch

    import skct

    model, X, rejected = dollars
    seen = []
    handle = model[-1].logits_module_.register_forward_pre_hook(
        lambda m, a: seen.append(torch.get_num_threads()))
    try:
        with skct.config_context(torch_threads=2), \
                joblib.parallel_backend("threading", n_jobs=n_jobs):
            recourse_audit(model, rejected, target=1, reference=X, batch_size=5, max_iter=5)
    finally:
        handle.remove()
    assert seen and set(seen) == {2}


def test_warns_when_the_step_budget_decides_the_recourse(adult_setup):
    """Rows that end without recourse at max_iter make the shares depend on the budget: the
    audit says so, with each group's share of such rows; the same audit with budget enough
    does not warn, nor does the gradient-free search (it has no step limit)."""
    import warnings

    model, X, rejected = adult_setup
    with pytest.warns(UserWarning, match=r"stopped at max_iter=2 steps") as caught:
        short = _audit(model, X, rejected, max_iter=2)
    stopped = (~short.rows_["valid"]) & (short.rows_["n_iter"] >= 2)
    assert stopped.any()
    message = str(next(w.message for w in caught if "max_iter=2" in str(w.message)))
    assert message.startswith(f"{int(stopped.sum())} of 150 rows")
    female = short.rows_["sex"] == "Female"
    assert f"sex: Female {stopped[female].mean():.0%}" in message
    assert "age band: " in message
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*stopped at max_iter", category=UserWarning)
        full = _audit(model, X, rejected, max_iter=2000)
        assert full.rows_["valid"].all()
        _audit(model, X, rejected.iloc[:20], generator="gradient_free")
