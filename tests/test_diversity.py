"""Several diverse counterfactuals per row: n_per_row, DiverseGenerator, diversity metrics."""

import numpy as np
import pandas as pd
import pytest
import torch

from skct import ActionabilityConstraints, CounterfactualExplainer
from skct.metrics import METRIC_SPECS, compute_metrics, coverage, diversity
from skct.search import DiverseGenerator, search
from skct.constraints import TorchConstraints
from skct.search.generators import GenericGenerator, GradientFreeGenerator, REVISEGenerator

from test_actionability_props import _column, _pipeline, check_row_properties

KINDS = ["continuous", "integer", "binary", "onehot", "ordinal", "continuous"]
MUTABILITY = {"continuous0": "both", "integer1": "increase", "binary2": "both",
              "onehot3": "both", "ordinal4": "increase", "continuous5": "none"}


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.RandomState(3)
    frame = pd.DataFrame({f"{k}{i}": _column(k, rng) for i, k in enumerate(KINDS)})
    pipe, y = _pipeline(KINDS, frame, 3)
    rejected = frame[pipe.predict(frame) == 0].iloc[:20]
    return frame, y, pipe, rejected


def _explainer(pipe, frame, y, **kw):
    params = dict(target=1, decision_threshold=0.6, random_state=0,
                  constraints=ActionabilityConstraints(mutability=MUTABILITY))
    params.update(kw)
    return CounterfactualExplainer(pipe, **params).fit(frame, y)


def test_one_per_row_is_unchanged(mixed):
    frame, y, pipe, rows = mixed
    base = _explainer(pipe, frame, y).explain(rows)
    for div in ("starts", "subsets"):  # diversity plays no part with one per row
        res = _explainer(pipe, frame, y, n_per_row=1, diversity=div).explain(rows)
        pd.testing.assert_frame_equal(res.counterfactuals, base.counterfactuals)
        for field in ("valid", "converged", "n_iter", "target_proba", "counterfactuals_model",
                      "factuals_model", "target_index", "n_changed"):
            np.testing.assert_array_equal(getattr(res, field), getattr(base, field))
    np.testing.assert_array_equal(base.row_id, np.arange(len(rows)))
    np.testing.assert_array_equal(base.rank, np.zeros(len(rows)))


@pytest.mark.parametrize("div", ["starts", "pairwise", "subsets", "disjoint"])
def test_k_options_per_row_are_each_actionable(mixed, div):
    frame, y, pipe, rows = mixed
    k, n = 3, len(rows)
    ex = _explainer(pipe, frame, y, n_per_row=k, diversity=div)
    res = ex.explain(rows)
    assert len(res.counterfactuals) == n * k and len(res.valid) == n * k
    np.testing.assert_array_equal(res.row_id, np.repeat(np.arange(n), k))
    np.testing.assert_array_equal(res.rank, np.tile(np.arange(k), n))
    assert res.counterfactuals.index.equals(rows.index.repeat(k))
    # every entry holds every constraint (immutables, directions, domain, kinds)
    check_row_properties(res, frame, ex.constraints_, MUTABILITY, {}, None)
    # the returned rows are checked again: valid means the model gives the target
    proba = pipe.predict_proba(res.counterfactuals)[:, 1]
    np.testing.assert_array_equal(res.valid, proba >= 0.6)
    # ranks: valid first, then cheapest first (MAD cost in the user's units)
    cost = (np.abs(res.counterfactuals_model - res.factuals_model)
            * ex.constraints_.cost_weight_model_).sum(axis=1).reshape(n, k)
    valid = res.valid.reshape(n, k)
    assert (np.diff(valid.astype(int), axis=1) <= 0).all()
    both = valid[:, 1:] == valid[:, :-1]
    assert (np.diff(cost, axis=1)[both] >= -1e-9).all()


def test_copies_change_different_feature_sets(mixed):
    frame, y, pipe, rows = mixed
    ex = _explainer(pipe, frame, y, n_per_row=3, diversity="subsets")
    res = ex.explain(rows)
    fid = ex.constraints_.feature_id_model_
    sets = coverage(res.counterfactuals_model, res.factuals_model, row_id=res.row_id,
                    feature_id=fid, valid=res.valid, per_row=True)
    assert sets.max() > 1
    # the default (pairwise) copies differ too, if not always in their sets on this table
    res = _explainer(pipe, frame, y, n_per_row=3).explain(rows)
    assert diversity(res.counterfactuals_model, row_id=res.row_id, valid=res.valid) > 0


def test_disjoint_copies_share_out_the_features(mixed):
    frame, y, pipe, rows = mixed
    k = 3
    ex = _explainer(pipe, frame, y, n_per_row=k, diversity="disjoint")
    res = ex.explain(rows)
    fid = np.asarray(ex.constraints_.feature_id_model_)
    moved = np.abs(res.counterfactuals_model - res.factuals_model) > 1e-6  # [N k, D]
    sets = [frozenset(fid[m]) for m in moved]
    for r in range(len(rows)):
        entries = sets[r * k:(r + 1) * k]
        # all copies but one (copy 0, free to change everything) change disjoint sets
        assert any(all(not (a & b) for i, a in enumerate(entries) for j, b in
                       enumerate(entries) if i < j and e not in (i, j)) for e in range(k))
    # the property is not vacuous: rows with two or more copies that changed something
    assert sum(sum(bool(x) for x in sets[r * k:(r + 1) * k]) >= 2 for r in range(len(rows))) > 0
    # and it finds more distinct change sets than "starts" on the same rows
    starts = _explainer(pipe, frame, y, n_per_row=k, diversity="starts").explain(rows)
    n_sets = {name: coverage(r.counterfactuals_model, r.factuals_model, row_id=r.row_id,
                             feature_id=fid, valid=r.valid) for name, r in
              (("disjoint", res), ("starts", starts))}
    assert n_sets["disjoint"] >= n_sets["starts"]


def test_transform_keeps_one_row_per_factual(mixed):
    frame, y, pipe, rows = mixed
    ex = _explainer(pipe, frame, y, n_per_row=3, invalid="keep")
    out = ex.transform(rows)
    res = ex.explain(rows)
    assert out.shape == rows.shape and out.index.equals(rows.index)
    pd.testing.assert_frame_equal(out, res.counterfactuals[res.rank == 0])


def test_chunks_and_path_with_k_copies(mixed):
    frame, y, pipe, rows = mixed
    res = _explainer(pipe, frame, y, n_per_row=2, batch_size=7,
                     return_path=True).explain(rows)
    n = len(rows)
    np.testing.assert_array_equal(res.row_id, np.repeat(np.arange(n), 2))
    assert res.path.shape[1] == 2 * n
    # each entry's path ends at its own search's result (ordering by rank moves the path too)
    last = res.path[-1]
    searched = res.n_iter > 0
    assert np.isfinite(last).all() and searched.any()


def test_diverse_generator_starts_and_subsets():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        model.bias.zero_()
    x = torch.full((3, 2), -1.0).repeat_interleave(2, dim=0)  # [6, 2]
    t = torch.ones(6, dtype=torch.long)
    res = search(model, x, t, DiverseGenerator(GenericGenerator(), 2, "subsets"), max_iter=100)
    changed = (res.counterfactuals != x)  # [6, 2]
    assert changed[0::2].all()  # copy 0 may change everything
    assert (changed[1::2].sum(dim=1) == 1).all()  # the others one of the two features
    assert res.converged.all()
    plain = search(model, x[::2], t[::2], GenericGenerator(), max_iter=100)
    starts = search(model, x, t, DiverseGenerator(GenericGenerator(), 2, "starts"),
                    max_iter=100)
    torch.testing.assert_close(starts.counterfactuals[0::2], plain.counterfactuals)


def test_diverse_generator_errors():
    with pytest.raises(ValueError, match="diversity must be one of"):
        DiverseGenerator(GenericGenerator(), 2, "dpp")
    with pytest.raises(ValueError, match="latent space"):
        DiverseGenerator(REVISEGenerator(), 2, "subsets")
    gen = DiverseGenerator(GenericGenerator(), 2)
    with pytest.raises(ValueError, match="whole groups"):
        gen.init_state(torch.zeros(3, 2))


def test_explainer_rejects_subsets_in_a_latent_space(mixed):
    frame, y, pipe, _ = mixed
    with pytest.raises(ValueError, match="input-space generator"):
        _explainer(pipe, frame, y, n_per_row=2, diversity="subsets", generator="revise")


def test_metrics_registered_and_need_row_id():
    assert {"diversity", "coverage"} <= set(METRIC_SPECS)
    X_cf = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [5.0, 5.0]])
    X = np.zeros_like(X_cf)
    ids = [0, 0, 0, 1]
    out = compute_metrics(["diversity", "coverage"], X_cf, X,
                          metric_params={"diversity": {"row_id": ids},
                                         "coverage": {"row_id": ids}})
    assert out == {"diversity": 2.0, "coverage": 2.0}
    with pytest.raises(ValueError, match="row_id is required"):
        diversity(X_cf)
    with pytest.raises(ValueError, match="row_id has 2 entries"):
        coverage(X_cf, X, row_id=[0, 1])


def test_metrics_weights_valid_and_per_row():
    X_cf = np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 0.0, 0.0]])
    X = np.zeros((3, 3))
    # columns 1 and 2 form one feature
    np.testing.assert_array_equal(
        coverage(X_cf, X, row_id=[0, 0, 1], feature_id=[0, 1, 1], per_row=True), [1, 1, 1])
    np.testing.assert_array_equal(coverage(X_cf, X, row_id=[0, 0, 1], per_row=True),
                                  [2, 2, 1])
    assert diversity(X_cf, row_id=[0, 0, 1], weights=[1.0, 0.5, 1.0]) == 1.0
    assert np.isnan(diversity(X_cf, row_id=[0, 0, 1], valid=[True, False, True]))
    assert coverage(X_cf, X, row_id=[0, 0, 1], valid=[False, False, True]) == 0.5


@pytest.mark.parametrize("div", ["starts", "subsets", "disjoint"])
def test_frozen_mask_is_the_one_the_search_uses(div):
    c = TorchConstraints.from_arrays([0.0] * 5, [1.0] * 5, ["both"] * 4 + ["none"], [[2, 3]])
    x = torch.rand(12, 5, generator=torch.Generator().manual_seed(0))
    gen = DiverseGenerator(GenericGenerator(), 3, div, random_state=7).bind(c)
    gen.init_state(x)
    mask = gen.frozen_mask(12)
    if div == "starts":
        assert mask is None and gen._frozen is None
        return
    assert torch.equal(mask, gen._frozen)
    assert not mask[0::3].any() and mask[1::3].any()  # copy 0 may change everything
    assert torch.equal(mask[:, 2], mask[:, 3])  # a one-hot group is frozen whole
    with pytest.raises(ValueError, match="whole groups"):
        gen.frozen_mask(10)


def _distinct(res, k):
    """Mean distinct valid counterfactuals per factual."""
    z = np.round(res.counterfactuals_model, 6)
    return np.mean([len({tuple(z[i]) for i in range(r * k, r * k + k) if res.valid[i]})
                    for r in range(len(z) // k)])


@pytest.mark.parametrize("div", ["starts", "pairwise", "subsets", "disjoint"])
def test_gradient_free_copies_differ_and_hold_every_constraint(mixed, div):
    frame, y, pipe, rows = mixed
    k = 3
    gf = GradientFreeGenerator(n_neighbors=20, n_candidates=16)
    ex = _explainer(pipe, frame, y, generator=gf, n_per_row=k, diversity=div)
    res = ex.explain(rows)
    check_row_properties(res, frame, ex.constraints_, MUTABILITY, {}, None)
    fid = np.asarray(ex.constraints_.feature_id_model_)
    moved = np.abs(res.counterfactuals_model - res.factuals_model) > 1e-6  # [N k, D]
    sets = [frozenset(fid[m]) if v else None for m, v in zip(moved, res.valid)]
    # distinct valid options per row (up to 3; some copies cannot reach the target)
    assert _distinct(res, k) > (1.5 if div in ("starts", "pairwise") else 1.2)
    if div == "disjoint":  # every copy but the one free to change everything: disjoint sets
        for r in range(len(rows)):
            entries = [s for s in sets[r * k:(r + 1) * k] if s is not None]
            assert any(all(not (a & b) for i, a in enumerate(entries) for j, b in
                           enumerate(entries) if i < j and e not in (i, j))
                       for e in range(len(entries))) or len(entries) < 2
