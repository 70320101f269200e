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
from skct.constraints import TorchConstraints
from skct.search import (DiverseGenerator, GradientFreeGenerator, ProbaLogits, feature_changes,
                         gradient_free_search, harden, project, sparsify)
from skct.search._projection import domain_reference
from skct.search.generators import GenericGenerator
from skct.search._gf_steps import CandidateSpace

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
        gen = GradientFreeGenerator(n_neighbors=20, n_rings=8, n_candidates=64,
                                    n_generations=8, patience=patience, n_bisect=0,
                                    n_shrink=0, random_state=0).fit(X, rf.predict(X))
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


class _ImmutableRule:
    """p(1) = 0.9 where (b > 0 and a > 0) or b > 5, else 0.1, for rows (a, b)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        X = np.asarray(X)
        p1 = np.where(((X[:, 1] > 0) & (X[:, 0] > 0)) | (X[:, 1] > 5), 0.9, 0.1)
        return np.column_stack([1 - p1, p1])


def test_wider_pass_finds_rows_whose_nearest_seeds_fail_once_projected():
    # the nearest rows of class 1 need a > 0, but a may not change: once projected (a put
    # back to the factual's -1) they and every point toward them are invalid; only farther
    # rows (b > 5) stay valid. Without the wider pass no valid point is found.
    rng = np.random.RandomState(0)
    near = np.column_stack([rng.uniform(0.5, 2, 30), rng.uniform(0.1, 1, 30)])
    far = np.column_stack([np.full(5, -1.0), rng.uniform(6, 7, 5)])
    neg = np.column_stack([rng.uniform(-2, 0, 30), rng.uniform(-2, 0, 30)])
    pool = np.r_[near, far, neg]
    model = ProbaLogits(_ImmutableRule())
    y = model.estimator.predict_proba(pool).argmax(1)
    x = torch.tensor([[-1.0, -1.0], [-1.5, -0.5]], dtype=torch.float64)
    t = torch.ones(2, dtype=torch.long)
    c = TorchConstraints.from_arrays([-np.inf] * 2, [np.inf] * 2, ["none", "both"], [],
                                     dtype=torch.float64)
    kw = dict(n_neighbors=8, random_state=0)
    narrow = GradientFreeGenerator(wide_neighbors=0, **kw).fit(pool, y)
    assert not gradient_free_search(model, x, t, narrow, c, decision_threshold=0.5)[2].any()
    gen = GradientFreeGenerator(**kw).fit(pool, y)
    x_cf, p, found = gradient_free_search(model, x, t, gen, c, decision_threshold=0.5)
    assert found.all() and (p >= 0.5).all()
    assert torch.equal(x_cf[:, 0], x[:, 0]) and (x_cf[:, 1] > 5).all()
    again = gradient_free_search(model, x, t, gen, c, decision_threshold=0.5)[0]
    assert torch.equal(x_cf, again)


def _grouped_constraints(exact_bounds, max_changed):
    """Columns: 0 continuous, 1 integer grid (increase), 2-4 one group, 5-6 a group with a
    dropped level, 7-8 an immutable group, 9 immutable continuous."""
    lower = [-1.0, 0.0] + [0.0] * 7 + [-np.inf]
    upper = [1.0, 10.0] + [1.0] * 7 + [np.inf]
    mut = ["both", "increase"] + ["both"] * 5 + ["none"] * 3
    return TorchConstraints.from_arrays(
        lower, upper, mut, [[2, 3, 4], [5, 6], [7, 8]], dtype=torch.float64,
        grid_scale=[0, 1] + [0] * 8, cost_weight=np.linspace(0.5, 2, 10),
        group_has_dropped=[False, True, False], max_changed=max_changed,
        exact_bounds=exact_bounds)


def _grouped_rows(n, rng):
    levels = np.eye(3)[rng.randint(0, 3, n)]
    dropped = np.r_[np.eye(2), np.zeros((1, 2))][rng.randint(0, 3, n)]
    imm = np.eye(2)[rng.randint(0, 2, n)]
    return np.column_stack([rng.uniform(-2, 2, n), rng.randint(0, 12, n), levels, dropped,
                            imm, rng.randn(n)])


@pytest.mark.parametrize("exact_bounds", [False, True])
@pytest.mark.parametrize("max_changed", [None, 2])
def test_candidate_space_projects_like_project(exact_bounds, max_changed):
    # candidates whose groups are whole copies of valid groups (what rings and children
    # build) get exactly what the full projection gives, constraints included
    c = _grouped_constraints(exact_bounds, max_changed)
    rng = np.random.RandomState(1)
    x = torch.tensor(_grouped_rows(6, rng))
    pool = torch.tensor(_grouped_rows(40, rng))
    space = CandidateSpace(c, pool)
    assert space.lean
    src = pool[torch.as_tensor(rng.randint(0, 40, (6, 9)))]  # [N, M, D] whole pool rows
    a = torch.as_tensor(rng.uniform(-0.5, 2.5, (6, 9, 1)))
    group = space.in_group
    cand = torch.where(group, src, x[:, None, :] + a * (src - x[:, None, :]))
    cand[:, :3] = torch.where(group, x[:, None, :], cand[:, :3])  # some keep x's groups
    ref = x[:, None, :].expand(6, 9, 10).reshape(-1, 10)
    expected = project(cand.reshape(-1, 10).clone(), ref, c).reshape(6, 9, 10)
    got = space.project(cand.clone(), x)
    assert torch.equal(got, expected)
    assert torch.equal(got[..., 7:], x[:, None, 7:].expand(6, 9, 3))  # immutables kept
    assert torch.equal(harden(got.reshape(-1, 10), ref, c), got.reshape(-1, 10))
    np.testing.assert_allclose(space.cost(got, x).numpy(), feature_changes(
        got.reshape(-1, 10), ref, c)[0].sum(1).reshape(6, 9).numpy())


def test_candidate_space_full_projection_when_group_bounds_cut_levels():
    # a bound that forbids a one-hot level needs the full projection (clip, then harden)
    c0 = _grouped_constraints(False, None)
    upper = c0.upper.clone()
    upper[3] = 0.0  # level 1 of the first group is out of the domain
    c = TorchConstraints.from_arrays(c0.lower.numpy(), upper.numpy(), ["both", "increase"] +
                                     ["both"] * 5 + ["none"] * 3, [[2, 3, 4], [5, 6], [7, 8]],
                                     dtype=torch.float64, grid_scale=[0, 1] + [0] * 8,
                                     group_has_dropped=[False, True, False])
    rng = np.random.RandomState(2)
    x, pool = torch.tensor(_grouped_rows(4, rng)), torch.tensor(_grouped_rows(30, rng))
    x[:, 2:5] = torch.tensor([1.0, 0.0, 0.0])
    space = CandidateSpace(c, pool)
    assert not space.lean
    cand = pool[torch.as_tensor(rng.randint(0, 30, (4, 5)))]
    got = space.project(cand.clone(), x)
    assert (got[..., 3] == 0).all()
    ref = x[:, None, :].expand(4, 5, 10).reshape(-1, 10)
    assert torch.equal(got.reshape(-1, 10), project(cand.reshape(-1, 10), ref, c))


def test_proba_logits_scores_in_pieces():
    X, y = _blobs(300)
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    x = torch.tensor(X)
    whole = ProbaLogits(rf)(x)
    pieces = ProbaLogits(rf, max_rows=7)(x)
    assert torch.equal(whole, pieces)
    np.testing.assert_allclose(torch.softmax(pieces, 1).numpy(), rf.predict_proba(X), atol=1e-300)
    assert ProbaLogits(rf)(x[:0]).shape == (0, 2)


class _ThreadsSeen:
    """predict_proba that records the OpenMP pools' thread counts during the call."""

    classes_ = np.array([0, 1])

    def __init__(self):
        self.seen = []

    def predict_proba(self, X):
        from threadpoolctl import threadpool_info

        self.seen.append({i["num_threads"] for i in threadpool_info()
                          if i["user_api"] == "openmp"})
        return np.full((len(X), 2), 0.5)


def test_proba_logits_limits_native_threads_to_torch_threads():
    from threadpoolctl import threadpool_info

    import skct

    est = _ThreadsSeen()
    x = torch.zeros(3, 2, dtype=torch.float64)
    with skct.config_context(torch_threads=1):
        ProbaLogits(est)(x)
    before = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
    with skct.config_context(torch_threads=0):  # 0: the pools as they are
        ProbaLogits(est)(x)
    assert est.seen[0] <= {1}
    assert est.seen[1] == before


def test_no_more_seeds_than_the_target_class_has_rows():
    X, y = _blobs(60)  # 30 rows of class 1 in the pool
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    x = torch.tensor(X[y == 0][:5])
    t = torch.ones(5, dtype=torch.long)
    gen = GradientFreeGenerator(n_neighbors=100, n_rings=2, n_candidates=16, n_generations=4,
                                patience=None, n_bisect=0, n_shrink=0,
                                random_state=0).fit(X, rf.predict(X))
    model = _CountingProba(rf)
    x_cf, p, found = gradient_free_search(model, x, t, gen, decision_threshold=0.7)
    assert found.all()
    n_pool = int((gen.pool_class_ == 1).sum())
    assert model.n_rows == 5 * (n_pool * 2 + 16 * 4)  # every ring point of each real seed


class _GroupedRule:
    """p(1) high where column 0 + column 1 / 4 + level 2 of the first group is large."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        X = np.asarray(X)
        z = 3 * (X[:, 0] + X[:, 1] / 4 + X[:, 4] - 1.5)
        p1 = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p1, p1])


def _grouped_problem(exact_bounds=False, max_changed=None, n=40, copies=1):
    """(constraints, pool, its classes, model, rejected factuals [n', D] each repeated
    ``copies`` times, target 1) of the grouped layout under :class:`_GroupedRule`."""
    c = _grouped_constraints(exact_bounds, max_changed)
    rng = np.random.RandomState(3)
    pool, x = _grouped_rows(200, rng), torch.tensor(_grouped_rows(n, rng))
    model = ProbaLogits(_GroupedRule())
    y = model.estimator.predict_proba(pool).argmax(1)
    x = x[model.estimator.predict_proba(x.numpy())[:, 1] < 0.5].repeat_interleave(copies, dim=0)
    return c, pool, y, model, x, torch.ones(x.shape[0], dtype=torch.long)


@pytest.mark.parametrize("exact_bounds", [False, True])
@pytest.mark.parametrize("max_changed", [None, 2])
def test_refinement_keeps_validity_lowers_cost_and_every_constraint(exact_bounds, max_changed):
    # the refinement comes last and draws nothing: the search before it is the same, so each
    # row's refined point is the unrefined one or a cheaper valid one, constraints holding
    c, pool, y, model, x, t = _grouped_problem(exact_bounds, max_changed)
    kw = dict(n_neighbors=30, wide_neighbors=0, random_state=0)
    out = {}
    for name, extra in {"off": dict(n_bisect=0, n_shrink=0), "on": {}}.items():
        gen = GradientFreeGenerator(**kw, **extra).fit(pool, y)
        out[name] = gradient_free_search(model, x, t, gen, c, decision_threshold=0.6)
    (x0, _, f0), (x1, p1, f1) = out["off"], out["on"]
    assert f0.sum() >= x.shape[0] // 2 and torch.equal(f1, f0)  # no valid row lost
    proba = model.estimator.predict_proba(x1.numpy())
    assert (proba[f1.numpy(), 1] >= 0.6).all()
    np.testing.assert_allclose(proba[:, 1], p1.numpy())
    ref = x
    cost0 = feature_changes(x0, ref, c)[0].sum(1)
    cost1 = feature_changes(x1, ref, c)[0].sum(1)
    assert (cost1[f1] <= cost0[f1] + 1e-12).all() and (cost1[f1] < cost0[f1]).any()
    assert torch.equal(project(x1.clone(), ref, c), x1)  # every constraint holds
    assert torch.equal(x1[:, 7:], x[:, 7:])  # immutable group and column
    assert (x1[:, 1] >= x[:, 1]).all() and torch.equal(x1[:, 1], x1[:, 1].round())
    low, high = torch.minimum(c.lower, x), torch.maximum(c.upper, x)
    assert ((x1 >= low) & (x1 <= high)).all()
    for cols in ([2, 3, 4], [5, 6]):
        assert ((x1[:, cols] == 0) | (x1[:, cols] == 1)).all() and (x1[:, cols].sum(1) <= 1).all()
    with pytest.raises(ValueError, match="n_bisect"):
        GradientFreeGenerator(n_bisect=-1).fit(pool, y)
    if max_changed is not None:
        changed = torch.stack([(x1[:, cols] != x[:, cols]).any(1) for cols in
                               ([0], [1], [2, 3, 4], [5, 6], [7, 8], [9])], 1)
        assert (changed.sum(1) <= max_changed).all()


@pytest.mark.parametrize("exact_bounds", [False, True])
@pytest.mark.parametrize("max_changed", [None, 2])
def test_frozen_features_stay_at_the_factual_for_their_row(exact_bounds, max_changed):
    # k = 3 copies of each factual with DiverseGenerator's "disjoint" masks: copies 1 and 2
    # change only their own features (a one-hot group frozen whole), constraints holding
    c, pool, y, model, x, t = _grouped_problem(exact_bounds, max_changed, copies=3)
    frozen = DiverseGenerator(GenericGenerator(), 3, "disjoint", random_state=0).frozen_mask(
        x.shape[0], c)
    assert not frozen[0::3].any() and frozen[1::3].any()
    gen = GradientFreeGenerator(n_neighbors=30, wide_neighbors=40, random_state=0).fit(pool, y)
    x1, _, found = gradient_free_search(model, x, t, gen, c, decision_threshold=0.6,
                                        frozen=frozen)
    ref = domain_reference(x, c)  # the factual (clamped into the domain with exact bounds)
    assert torch.equal(x1[frozen], ref[frozen])
    assert torch.equal(project(x1.clone(), x, c), x1)  # every constraint holds
    assert torch.equal(x1[:, 7:], x[:, 7:])
    feats = ([0], [1], [2, 3, 4], [5, 6], [7, 8], [9])
    changed = torch.stack([(x1[:, f] != ref[:, f]).any(1) for f in feats], 1)  # [N k, F]
    if max_changed is not None:
        assert (changed.sum(1) <= max_changed).all()
    both = changed[1::3] & changed[2::3] & found[1::3, None] & found[2::3, None]
    assert not both.any() and found[1::3].any() and found[2::3].any()  # disjoint, not vacuous
    assert found[0::3].float().mean() >= 0.5


def test_seed_share_sends_the_copies_of_a_factual_to_different_seeds():
    X, y = _blobs(200)
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    gen = GradientFreeGenerator(random_state=0).fit(X, rf.predict(X))
    k = 4
    x = torch.tensor(X[rf.predict(X) == 0][:15]).repeat_interleave(k, dim=0)  # [15 k, 3]
    t = torch.ones(x.shape[0], dtype=torch.long)
    plain = gradient_free_search(ProbaLogits(rf), x, t, gen)
    share = (torch.arange(x.shape[0]) % k, k)
    shared = gradient_free_search(ProbaLogits(rf), x, t, gen, seed_share=share)
    assert shared[2].all() and plain[2].all()

    def distinct(cf):  # mean distinct counterfactuals per factual
        return np.mean([len({tuple(r) for r in cf[i:i + k].numpy().round(6)})
                        for i in range(0, len(cf), k)])

    assert distinct(shared[0]) > distinct(plain[0])
    # no copies: offsets 0 with a stride of 1 and an all-False mask are the plain search
    none = gradient_free_search(ProbaLogits(rf), x, t, gen, seed_share=(
        torch.zeros(x.shape[0]), 1), frozen=torch.zeros(x.shape, dtype=torch.bool))
    for a, b in zip(none, plain):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="frozen must be a bool mask"):
        gradient_free_search(ProbaLogits(rf), x, t, gen, frozen=torch.zeros(x.shape))
    with pytest.raises(ValueError, match="seed_share"):
        gradient_free_search(ProbaLogits(rf), x, t, gen, seed_share=(share[0], 2))


def test_apart_searches_copies_that_repeat_copy_0s_features_again():
    k = 3
    c, pool, y, model, x, t = _grouped_problem(n=60, copies=k)
    gen = GradientFreeGenerator(n_neighbors=30, random_state=0).fit(pool, y)
    share = (torch.arange(x.shape[0]) % k, k)
    runs = {apart: gradient_free_search(model, x, t, gen, c, decision_threshold=0.6,
                                        seed_share=share, apart=apart)
            for apart in (False, True)}

    def same_as_copy0(cf):  # [N k] a copy but copy 0 changing the features copy 0 changes
        moved = feature_changes(cf, x, c)[1]
        return (moved == moved[torch.arange(len(cf)) // k * k]).all(1) & (share[0] > 0)

    def repeats(cf, found):  # valid copies changing the features of an earlier valid copy
        moved = feature_changes(cf, x, c)[1].reshape(-1, k, c.n_feature_ids)
        ok = found.reshape(-1, k)
        return sum(int(torch.stack([(moved[:, j] == moved[:, i]).all(1) & ok[:, i] & ok[:, j]
                                    for i in range(j)]).any(0).sum()) for j in range(1, k))

    (x0, _, f0), (x1, _, f1) = runs[False], runs[True]
    assert torch.equal(f1, f0) and torch.equal(x1[::k], x0[::k])  # copy 0 kept, none lost
    assert (same_as_copy0(x1) & f1).sum() < (same_as_copy0(x0) & f0).sum()
    assert repeats(x1, f1) < repeats(x0, f0)
    assert (model.estimator.predict_proba(x1[f1].numpy())[:, 1] >= 0.6).all()
    assert torch.equal(project(x1.clone(), x, c), x1)  # every constraint holds


def test_warns_when_the_reference_has_no_row_of_the_target_class():
    # an audit of rejected rows only, fitted on those rows: the search has no starting point
    # of the target class, and its counterfactuals come out costlier
    rng = np.random.RandomState(0)
    X = rng.randn(300, 3)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    rejected = X[lr.predict(X) == 0][:40]
    blind = CounterfactualExplainer(lr, generator="gradient_free", target=1,
                                    random_state=0).fit(rejected)
    with pytest.warns(UserWarning, match="include none of the target class"):
        res_blind = blind.explain(rejected)
    seeded = CounterfactualExplainer(lr, generator="gradient_free", target=1,
                                     random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = seeded.explain(rejected)
    assert res.valid.all()
    cost = np.abs(res.counterfactuals - rejected).sum(axis=1).mean()
    valid = res_blind.valid
    blind_cost = np.abs(res_blind.counterfactuals[valid] - rejected[valid]).sum(axis=1).mean()
    assert cost <= blind_cost
