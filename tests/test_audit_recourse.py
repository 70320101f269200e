"""The recourse audit counts as recourse only what is valid, in the domain and actionable.

On the real COMPAS and German credit tables through a Pipeline: a counterfactual that leaves the
fitted domain (a negative ``length_of_stay``, a value above the observed range, a fractional
value of an integer column) or breaks a fitted mutability word is never recourse, and the
report says why, naming the columns. Sparsity (changed columns) is reported next to the share
with recourse, and the changes read in the user's units.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_HOME
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.datasets import load_compas, load_german_credit
from skct.evaluation import recourse_audit
from skct.evaluation._changes import format_number, recourse_checks

CONVENTIONAL = dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)
COMPAS_IMMUTABLE = {"age": "none", "race": "none", "sex": "none", "two_year_recid": "none"}


def _setup(loader, n, epochs):
    bunch = loader(data_home=DATA_HOME)
    idx = np.random.RandomState(0).permutation(len(bunch.data))[:n]
    X, y = bunch.data.iloc[idx], bunch.target.iloc[idx]
    pipe = make_pipeline(clone(bunch.preprocessor), CounterfactualTrainedClassifier(
        **CONVENTIONAL, max_epochs=epochs, random_state=0)).fit(X, y)
    rejected = X[pipe.predict(X) == 0].iloc[:40]
    assert len(rejected) >= 20
    return pipe, X, rejected


@pytest.fixture(scope="module")
def compas():
    return _setup(load_compas, 1500, 10)


@pytest.fixture(scope="module")
def german():
    return _setup(load_german_credit, 500, 15)


def _audit(setup, constraints=None, **kw):
    pipe, X, rejected = setup
    params = dict(target=1, reference=X, max_iter=50, random_state=0, constraints=constraints)
    params.update(kw)
    return recourse_audit(pipe, rejected, **params)


def _tamper(monkeypatch, edit):
    """Let the explainer return ``edit(counterfactuals, factuals)``, still marked valid.

    This is what the audit saw before the explainer learned the user's domain and kinds: rows
    accepted by the search that no person could act on.
    """
    original = CounterfactualExplainer.explain

    def explain(self, X, target=None):
        res = original(self, X, target=target)
        res.counterfactuals = edit(res.counterfactuals.copy(), X)
        return res

    monkeypatch.setattr(CounterfactualExplainer, "explain", explain)


@pytest.fixture(scope="module")
def compas_report(compas):
    return _audit(compas, ActionabilityConstraints(mutability=COMPAS_IMMUTABLE))


# ---------------------------------------------------------------------------------------
# the domain in the user's units
# ---------------------------------------------------------------------------------------


def test_compas_negative_stay_or_out_of_range_is_not_recourse(compas, monkeypatch):
    _, X, rejected = compas
    lo, hi = X["length_of_stay"].min(), X["length_of_stay"].max()

    def edit(cf, fact):
        cf = cf.astype({"length_of_stay": np.float64})
        cf.iloc[0::3, cf.columns.get_loc("length_of_stay")] = -32.8  # below the domain
        cf.iloc[1::3, cf.columns.get_loc("length_of_stay")] = hi + 100.0  # above it
        return cf

    _tamper(monkeypatch, edit)
    rep = _audit(compas, ActionabilityConstraints(mutability=COMPAS_IMMUTABLE))
    rows = rep.rows_
    stay = rep.counterfactuals_["length_of_stay"]
    outside = ((stay < np.minimum(lo, rejected["length_of_stay"]))
               | (stay > np.maximum(hi, rejected["length_of_stay"]))).to_numpy()
    assert outside[0::3].all() and outside[1::3].all()
    assert not rows["in_domain"].to_numpy()[outside].any()
    assert not rows["recourse"].to_numpy()[outside].any()
    assert rows["valid"].to_numpy()[outside].any()  # valid, yet no recourse
    for text in rows["reason"].to_numpy()[outside]:
        assert "out of domain: length_of_stay" in text, text
    # the untouched rows keep their verdict: valid rows in the domain have recourse
    rest = ~outside
    np.testing.assert_array_equal(rows["recourse"].to_numpy()[rest],
                                  rows["valid"].to_numpy()[rest])
    assert rep.summary().loc[("all", "all"), "n_recourse"] == int(rows["recourse"].sum())


def test_compas_audit_counts_only_rows_in_the_domain(compas, compas_report):
    _, X, rejected = compas
    rows, cf = compas_report.rows_, compas_report.counterfactuals_
    ok = rows["recourse"].to_numpy()
    assert ok.any()
    assert (cf.loc[ok, "priors_count"] >= 0).all()
    assert (cf.loc[ok, "length_of_stay"] >= X["length_of_stay"].min()).all()
    for col in ("priors_count", "length_of_stay"):
        assert cf[col].dtype == rejected[col].dtype
        assert (cf.loc[ok, col] == np.round(cf.loc[ok, col])).all()
    np.testing.assert_array_equal(ok, rows["valid"] & rows["in_domain"] & rows["actionable"])
    assert (rows["reason"].to_numpy()[ok] == "").all()
    assert (rows["reason"].to_numpy()[~ok] != "").all()
    assert compas_report.checked_constraints_ == COMPAS_IMMUTABLE


def test_german_fractional_values_of_integer_columns_never_count(german, monkeypatch):
    _, X, rejected = german

    def edit(cf, fact):
        cf = cf.astype({"Telephone": np.float64, "No of dependents": np.float64,
                        "Duration of Credit (month)": np.float64})
        cf.iloc[0::3, cf.columns.get_loc("Telephone")] = 1.869
        cf.iloc[1::3, cf.columns.get_loc("No of dependents")] = 0.771  # also below 1
        cf.iloc[2::3, cf.columns.get_loc("Duration of Credit (month)")] = 19.38
        return cf

    _tamper(monkeypatch, edit)
    rep = _audit(german, ActionabilityConstraints(mutability={"Age (years)": "none"}))
    rows = rep.rows_
    assert not rows["recourse"].any() and not rows["in_domain"].any()
    reasons = rows["reason"].to_numpy()
    assert all("out of domain: Telephone" in r for r in reasons[0::3])
    assert all("out of domain: No of dependents" in r for r in reasons[1::3])
    assert all("out of domain: Duration of Credit (month)" in r for r in reasons[2::3])
    counts = rep.reason_counts().loc[("all", "all")]
    assert counts["out of domain"] == len(rows) and counts["recourse"] == 0


# ---------------------------------------------------------------------------------------
# actionability from the fitted mutability, whatever key named the column
# ---------------------------------------------------------------------------------------


def test_directions_and_immutables_from_the_fitted_mutability(compas, monkeypatch):
    _, _, rejected = compas
    j_priors = list(rejected.columns).index("priors_count")
    assert j_priors == 5
    # priors_count named by its index: a key the raw-name recheck used to skip
    constraints = ActionabilityConstraints(mutability={**COMPAS_IMMUTABLE, 5: "increase"})

    def edit(cf, fact):
        col = cf.columns.get_loc("priors_count")
        cf.iloc[0::2, col] = fact["priors_count"].to_numpy()[0::2] - 1  # goes down
        race = cf.columns.get_loc("race")
        other = np.where(fact["race"].to_numpy()[1::2] == "White", "Other", "White")
        cf.iloc[1::2, race] = other  # an immutable column changes
        return cf

    _tamper(monkeypatch, edit)
    rep = _audit(compas, constraints)
    rows = rep.rows_
    assert rep.checked_constraints_ == {**COMPAS_IMMUTABLE, "priors_count": "increase"}
    down = (rep.counterfactuals_["priors_count"] < rejected["priors_count"]).to_numpy()
    assert down[0::2].all()
    assert not rows["actionable"].to_numpy()[0::2].any()
    assert all("not actionable: priors_count" in r for r in rows["reason"].to_numpy()[0::2])
    # a negative priors_count (a factual at 0) is out of the domain as well
    zero = (rejected["priors_count"] == 0).to_numpy()[0::2]
    assert all("out of domain: priors_count" in r for r in rows["reason"].to_numpy()[0::2][zero])
    assert not rows["actionable"].to_numpy()[1::2].any()
    assert all("not actionable: race" in r for r in rows["reason"].to_numpy()[1::2])
    assert not rows["recourse"].any()


def test_checks_of_object_categorical_bool_and_ordinal_columns():
    X = pd.DataFrame({
        "job": pd.Series(["a", "b", None, "a", "zzz"], dtype=object),
        "grade": pd.Categorical(["low", "mid", "high", "mid", "low"],
                                categories=["low", "mid", "high"], ordered=True),
        "phone": [True, False, True, False, True],
        "kids": [0, 1, 2, 3, 1],
    })
    from skct.constraints import FeatureSchema

    class Fitted:  # what the explainer's constraints_ hold (raw domain of the numbers)
        schema_ = FeatureSchema.from_data(X.iloc[:4])  # it never saw "zzz"
        lower_ = np.array([np.nan, np.nan, 0.0, 0.0])
        upper_ = np.array([np.nan, np.nan, 1.0, 3.0])
        mutability_ = np.array(["both", "increase", "both", "both"])

    cf = X.copy()
    cf["job"] = pd.Series(["a", "c", None, "b", "zzz"], dtype=object)  # "c": no such level
    cf["grade"] = pd.Categorical(["mid", "low", "high", "high", "low"],
                                 categories=["low", "mid", "high"], ordered=True)
    cf["kids"] = [0, 1, 2, 4, 1]  # 4: above the observed range
    in_domain, actionable, reason, checked = recourse_checks(cf, X, Fitted, np.ones(5, bool))
    # missing == missing and an unseen category kept as given are in the domain
    np.testing.assert_array_equal(in_domain, [True, False, True, False, True])
    np.testing.assert_array_equal(actionable, [True, False, True, True, True])
    assert list(reason) == ["", "out of domain: job; not actionable: grade", "",
                            "out of domain: kids", ""]
    assert checked == {"grade": "increase"}
    assert X["job"].tolist() == ["a", "b", None, "a", "zzz"]  # nothing modified in place


# ---------------------------------------------------------------------------------------
# sparsity, cost and changes in the user's terms
# ---------------------------------------------------------------------------------------


def test_sparsity_next_to_the_share_with_recourse(compas_report, tmp_path):
    rows = compas_report.rows_
    s = compas_report.summary()
    cols = list(s.columns)
    assert cols.index("median_n_changed") == cols.index("share_recourse") + 1
    ok = rows["recourse"].to_numpy()
    assert s.loc[("all", "all"), "median_n_changed"] == np.median(rows["n_changed"][ok])
    assert s.loc[("all", "all"), "share_valid"] == pytest.approx(rows["valid"].mean())
    # n_changed is the explainer's count (a one-hot group counts once)
    changed = (compas_report.counterfactuals_.astype(object)
               != compas_report.factuals_.astype(object)).sum(axis=1)
    np.testing.assert_array_equal(rows["n_changed"], changed)
    page = compas_report.to_html(tmp_path / "a.html").read_text(encoding="utf-8")
    assert "median_n_changed" in page and "Why rows have no recourse" in page
    assert "median changed columns (rows with recourse)" in page
    assert "with recourse (valid, in the domain and actionable)" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_cost_in_the_users_units(compas, compas_report):
    _, _, rejected = compas
    rep = compas_report
    c = rep.explainer_.constraints_
    cf = rep.counterfactuals_
    expected = np.zeros(len(cf))
    for j, col in enumerate(rejected.columns):
        if c.schema_[j].numeric:
            expected += np.abs(cf[col].to_numpy(float) - rejected[col].to_numpy(float)) \
                / c.cost_scale_[j]
        else:  # a change of category costs 1
            expected += (cf[col].astype(object) != rejected[col].astype(object)).to_numpy()
    np.testing.assert_allclose(rep.rows_["cost"], expected)
    assert rep.params_["cost"] == "mad"


def test_change_strings_read_in_raw_units(german):
    rep = _audit(german, ActionabilityConstraints(mutability={"Age (years)": "none"}))
    changes = rep.changes_
    assert len(changes)
    for _, ch in changes.iterrows():  # every German credit column holds integers
        assert "." not in ch["change"], ch["change"]
        sign = "+" if ch["delta"] > 0 else "-"
        assert f"({sign}" in ch["change"]
    amount = changes[changes["feature"] == "Credit Amount"]
    for _, ch in amount.iterrows():
        assert ch["change"] == (f"{int(ch['old']):,} -> {int(ch['new']):,} "
                                f"({int(ch['delta']):+,})")
    assert format_number(4200.0) == "4,200" and format_number(-32.8) == "-32.8"


def test_unpickled_population_keeps_its_values_and_counts(compas, compas_report):
    pipe, X, rejected = compas
    loaded = pickle.loads(pickle.dumps(rejected))  # e.g. data read back from a pickle
    before = loaded.copy(deep=True).astype(object)
    rep = recourse_audit(pipe, loaded, target=1, reference=X, max_iter=50, random_state=0,
                         constraints=ActionabilityConstraints(mutability=COMPAS_IMMUTABLE))
    pd.testing.assert_frame_equal(loaded.astype(object), before)
    np.testing.assert_array_equal(rep.rows_["n_changed"], compas_report.rows_["n_changed"])
    pd.testing.assert_frame_equal(rep.rows_, compas_report.rows_)
