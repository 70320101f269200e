"""skct.evaluation: recourse audit with k options per person (n_options)."""

import copy
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.evaluation import bands, recourse_audit

K = 3
GROUPS = {"sex": "sex", "age band": bands("age", [0, 40, 120])}


@pytest.fixture(scope="module")
def setup():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"income": rng.normal(50, 10, 200), "age": rng.randint(18, 70, 200),
                      "sex": rng.choice(["F", "M"], 200)})
    y = (X["income"] - 0.3 * X["age"] > 38).astype(int)
    pre = make_column_transformer((StandardScaler(), ["income", "age"]),
                                  (OneHotEncoder(sparse_output=False), ["sex"]))
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=20, random_state=0)
    model = make_pipeline(pre, clf).fit(X, y)
    return model, X, X[model.predict(X) == 0].iloc[:24]


def _audit(setup, **kw):
    model, X, rejected = setup
    params = dict(target=1, reference=X, random_state=0, max_iter=60, batch_size=10,
                  decision_threshold=0.56, groups=GROUPS,
                  constraints=ActionabilityConstraints(mutability={"sex": "none",
                                                                   "age": "increase"}))
    params.update(kw)
    return recourse_audit(model, rejected, **params)


@pytest.fixture(scope="module")
def single(setup):
    return _audit(setup)


@pytest.fixture(scope="module")
def options(setup):
    return _audit(setup, n_options=K)


def _page(report, path, **kw):
    page = report.to_html(path, **kw).read_text(encoding="utf-8")
    page = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", page)
    return re.sub(r'base64,[^"]*"', "", page)


def test_one_option_leaves_every_output_as_it_was(setup, single, tmp_path):
    one = _audit(setup, n_options=1, diversity="subsets")  # diversity unused for one option
    assert single.options_ is None and one.options_ is None
    assert one.explainer_.n_per_row == 1
    for a, b in ((single.rows_, one.rows_), (single.counterfactuals_, one.counterfactuals_),
                 (single.changes_, one.changes_), (single.changed_, one.changed_),
                 (single.summary(), one.summary()), (single.gaps(), one.gaps())):
        pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(single.counterfactuals_model_, one.counterfactuals_model_)
    assert list(single.summary().columns) == [
        "n", "n_recourse", "share_recourse", "median_n_changed", "median_cost", "mean_cost",
        "mean_n_changed", "share_valid", "top_changed"]
    assert "n_options" not in single.params_ and "diversity" not in single.params_
    page = _page(single, tmp_path / "a.html")
    assert page == _page(one, tmp_path / "b.html")
    assert "Options per person" not in page and "options per person" not in page
    assert page.endswith("</table>\n</body></html>\n")


def test_options_table_and_the_option_each_row_reports(setup, options):
    _, _, rejected = setup
    n = len(rejected)
    rows, opts = options.rows_, options.options_
    assert options.explainer_.n_per_row == K and options.params_["n_options"] == K
    assert rows.index.equals(rejected.index) and len(opts) == n * K
    assert options.counterfactuals_.index.equals(rejected.index)
    np.testing.assert_array_equal(opts["position"], np.repeat(np.arange(n), K))
    np.testing.assert_array_equal(opts["person"], np.repeat(rejected.index.to_numpy(), K))
    np.testing.assert_array_equal(opts["rank"], np.tile(np.arange(K), n))
    assert list(opts.columns[:4]) == ["person", "position", "rank", "chosen"]
    assert (opts.groupby("position")["chosen"].sum() == 1).all()
    # every option is rechecked: the immutable column stays, age never decreases
    for j in range(K):
        o = opts[opts["rank"] == j]
        np.testing.assert_array_equal(o["cf_sex"], rejected["sex"])
        assert (o["cf_age"].to_numpy() >= rejected["age"].to_numpy()).all()
    np.testing.assert_array_equal(
        opts["recourse"], opts["valid"] & opts["in_domain"] & opts["actionable"])
    # a person has recourse when one of their options has; rows_ reports the chosen one
    any_ok = opts.groupby("position")["recourse"].any().to_numpy()
    np.testing.assert_array_equal(rows["recourse"], any_ok)
    chosen = opts[opts["chosen"]]
    first_ok = opts[opts["recourse"]].groupby("position")["rank"].min()
    expected = np.zeros(n, dtype=np.int64)
    expected[first_ok.index.to_numpy()] = first_ok.to_numpy()
    np.testing.assert_array_equal(chosen["rank"], expected)
    for col in ("valid", "reason", "cost", "n_changed", "changes", "changed_features",
                "target_proba"):
        np.testing.assert_array_equal(rows[col].to_numpy(), chosen[col].to_numpy())
    for col in rejected.columns:
        np.testing.assert_array_equal(options.counterfactuals_[col], chosen[f"cf_{col}"])
    assert options.counterfactuals_model_.shape[0] == n
    # more options: at least as many people with recourse as with one
    assert rows["recourse"].sum() > 0


def test_recourse_at_least_as_with_one_option(single, options):
    assert options.rows_["recourse"].sum() >= single.rows_["recourse"].sum()


def test_summary_counts_options_and_change_sets(options):
    opts, rows = options.options_, options.rows_
    s = options.summary()
    cols = list(s.columns)
    after = cols[cols.index("mean_n_changed") + 1:]
    assert after[:2] == ["mean_n_options", "mean_n_change_sets"]
    ok = opts[opts["recourse"]]
    n_opt = ok.groupby("position")["changes"].nunique().reindex(
        range(len(rows)), fill_value=0).to_numpy()
    n_sets = ok.groupby("position")["changed_features"].nunique().reindex(
        range(len(rows)), fill_value=0).to_numpy()
    for g in options.groups_["sex"]:
        mask = (rows["sex"] == g).to_numpy()
        assert s.loc[("sex", g), "mean_n_options"] == pytest.approx(n_opt[mask].mean())
        assert s.loc[("sex", g), "mean_n_change_sets"] == pytest.approx(n_sets[mask].mean())
    assert (s["mean_n_change_sets"] <= s["mean_n_options"] + 1e-12).all()
    assert ((s["mean_n_options"] >= 0) & (s["mean_n_options"] <= K)).all()
    assert "mean_n_options" in options.gaps().loc["sex"].index


def test_identical_options_count_once(options):
    # copies of a search that meet at one point are one option to the person, not k
    twin = copy.copy(options)
    opts = options.options_.copy()
    first = opts.index[opts["position"] == opts.loc[opts["recourse"], "position"].iloc[0]]
    for col in opts.columns:
        if col not in ("rank", "chosen"):
            opts.loc[first, col] = [opts.loc[first[0], col]] * len(first)
    twin.options_ = opts
    n_options, n_sets = twin._option_counts()
    assert n_options[opts.loc[first[0], "position"]] == 1 == n_sets[opts.loc[first[0],
                                                                             "position"]]
    before, _ = options._option_counts()
    others = np.arange(len(before)) != opts.loc[first[0], "position"]
    np.testing.assert_array_equal(n_options[others], before[others])


def test_page_shows_the_options_of_the_first_rows(options, tmp_path):
    page = _page(options, tmp_path / "k.html", max_option_rows=2)
    assert "<h2>Options per person</h2>" in page and "First 2 of 24 persons." in page
    assert "<th>options per person</th><td>3 (diversity: pairwise)</td>" in page
    section = page[page.index("<h2>Options per person</h2>"):]
    assert section.count("<tr>") == 2 * K  # body rows (the header row has a style)
    full = _page(options, tmp_path / "all.html", max_option_rows=None)
    assert "First " not in full[full.index("<h2>Options per person</h2>"):]


def test_first_option_with_recourse_decides(setup, monkeypatch):
    """Rank 0 changed to flip an immutable column: the next option with recourse is kept."""
    original = CounterfactualExplainer.explain

    def explain(self, X, target=None):
        res = original(self, X, target=target)
        cf = res.counterfactuals.copy()
        first = np.flatnonzero(res.rank == 0)
        col = cf.columns.get_loc("sex")
        cf.iloc[first, col] = np.where(cf.iloc[first, col] == "F", "M", "F")
        res.counterfactuals = cf
        return res

    monkeypatch.setattr(CounterfactualExplainer, "explain", explain)
    rep = _audit(setup, n_options=K)
    opts = rep.options_
    assert not opts.loc[opts["rank"] == 0, "actionable"].any()
    assert opts.loc[opts["rank"] == 0, "reason"].str.contains("not actionable: sex").all()
    chosen = opts[opts["chosen"]]
    has = rep.rows_["recourse"].to_numpy()
    assert has.any() and (chosen["rank"].to_numpy()[has] > 0).all()
    assert rep.rows_["actionable"].to_numpy()[has].all()
    assert (rep.counterfactuals_.loc[has, "sex"] == setup[2].loc[has, "sex"]).all()


def test_numpy_input_and_validation(setup):
    model, X, rejected = setup
    Xn = rejected[["income", "age"]].to_numpy()
    ref = X[["income", "age"]]
    m2 = make_pipeline(StandardScaler(), CounterfactualTrainedClassifier(
        lambda_div=0, lambda_adv=0, lambda_reg=0, max_epochs=5, random_state=0)).fit(
        ref.to_numpy(), (ref["income"] > 50).astype(int))
    rep = recourse_audit(m2, Xn, target=1, n_options=2, max_iter=20, random_state=0)
    assert len(rep.rows_) == len(Xn) and len(rep.options_) == 2 * len(Xn)
    assert rep.rows_.index.equals(pd.RangeIndex(len(Xn)))
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(ValueError, match="n_options must be a positive integer"):
            recourse_audit(model, rejected, target=1, n_options=bad)
