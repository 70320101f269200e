"""skct.metrics registry and compute_metrics: one dispatcher, per-row values, references."""

import pickle

import numpy as np
import pytest
import torch

from skct._utils import derive_seed
from skct.evaluation import COUNTERFACTUAL_SCORERS, EVALUATION_METRICS
from skct.metrics import (DEFAULT_METRICS, METRIC_SPECS, METRICS, MMDReference, MetricSpec,
                          ReferenceData, compute_metrics, cost, get_metric_spec,
                          implausibility, metric_names, mmd, validity)


def linear():
    """p(1 | x) = sigmoid(2 x0): class 1 for x0 > 0."""
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    return layer


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2)) * 0.3 - [2.0, 0.0]
    X_cf = X + [3.0, 0.0]  # the rows cross x0 = 0
    X_cf[:3, 0] = -1.0  # three stay on the factual side: invalid
    t = np.ones(12, dtype=np.int64)
    X_ref = np.r_[rng.normal(size=(30, 2)) + [2.0, 0.0], rng.normal(size=(30, 2)) - [2.0, 0.0]]
    y_ref = np.r_[np.ones(30), np.zeros(30)].astype(np.int64)
    return X_cf, X, t, ReferenceData(X_ref, y_ref)


def test_one_registry_behind_every_public_table():
    assert set(METRICS) == set(METRIC_SPECS) == set(EVALUATION_METRICS)
    for name, spec in METRIC_SPECS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert METRICS[name] is spec.function
        assert EVALUATION_METRICS[name] is spec.greater_is_better
    assert set(COUNTERFACTUAL_SCORERS) == {f"cf_{m}" for m in DEFAULT_METRICS}
    assert DEFAULT_METRICS == ("validity", "strict_validity", "cost", "redundancy",
                               "implausibility", "mmd")
    with pytest.raises(ValueError, match="metrics: unknown metric 'accuracy'"):
        get_metric_spec("accuracy")
    with pytest.raises(Exception):  # frozen
        METRIC_SPECS["cost"].greater_is_better = True


def test_valid_only_and_per_row(batch):
    X_cf, X, t, ref = batch
    model = linear()
    valid = validity(model, X_cf, t, per_row=True) > 0
    assert valid.sum() == 9
    out = compute_metrics(["validity", "cost", "implausibility"], X_cf, X, t, model=model,
                          reference=ref)
    assert out["validity"] == 0.75
    assert out["cost"] == cost(X_cf[valid], X[valid])
    assert out["implausibility"] == implausibility(X_cf[valid], t[valid], ref.X_ref, ref.y_ref)
    rows = compute_metrics(["validity", "cost"], X_cf, X, t, model=model, per_row=True)
    np.testing.assert_array_equal(rows["validity"], valid.astype(float))
    np.testing.assert_array_equal(rows["cost"][valid], cost(X_cf[valid], X[valid], per_row=True))
    assert np.isnan(rows["cost"][~valid]).all()
    every = compute_metrics(["cost"], X_cf, X, t, valid_only=False, per_row=True)
    np.testing.assert_array_equal(every["cost"], cost(X_cf, X, per_row=True))


def test_a_given_valid_mask_replaces_the_model(batch):
    X_cf, X, t, _ = batch
    mask = np.zeros(12, dtype=bool)
    mask[:2] = True
    out = compute_metrics(["validity", "cost"], X_cf, X, t, valid=mask)
    assert out["validity"] == pytest.approx(2 / 12)
    assert out["cost"] == cost(X_cf[:2], X[:2])
    none = compute_metrics(["cost", "mmd"], X_cf, X, t, valid=np.zeros(12, bool),
                           reference=batch[3])
    assert np.isnan(none["cost"]) and np.isnan(none["mmd"])


def test_seeds_from_an_int_or_a_dict(batch):
    X_cf, X, t, ref = batch
    small = ReferenceData(ref.X_ref, ref.y_ref, n_reference=5)  # subsampled: seeds matter
    a = compute_metrics(["implausibility"], X_cf, X, t, reference=small, valid_only=False,
                        random_state=3)
    expected = implausibility(X_cf, t, ref.X_ref, ref.y_ref, n_neighbors=5,
                              random_state=derive_seed(3, "implausibility"))
    assert a["implausibility"] == expected
    b = compute_metrics(["implausibility"], X_cf, X, t, reference=small, valid_only=False,
                        random_state={"implausibility": 11})
    assert b["implausibility"] == implausibility(X_cf, t, ref.X_ref, ref.y_ref, n_neighbors=5,
                                                 random_state=11)
    with pytest.raises(ValueError, match="random_state"):
        compute_metrics(["cost"], X_cf, X, t, valid_only=False, random_state=-1)


def test_mmd_per_target_class(batch):
    X_cf, X, t, ref = batch
    t = t.copy()
    t[6:] = 0
    out = compute_metrics(["mmd"], X_cf, None, t, reference=ref, valid_only=False)
    parts = [mmd(X_cf[t == c], ref.rows_of(c)) for c in (0, 1)]
    assert out["mmd"] == pytest.approx(np.average(parts, weights=[6, 6]))
    one = compute_metrics(["mmd"], X_cf[t == 1], None, t[t == 1], reference=ref,
                          valid_only=False, metric_params={"mmd": {"n_permutations": 9}},
                          random_state=0)
    assert list(one) == metric_names(["mmd"], {"mmd": {"n_permutations": 9}})
    assert one["mmd"] == parts[1] and 0 < one["mmd_p_value"] <= 1


def test_fixed_mmd_references(batch):
    X_cf, X, t, ref = batch
    refs = MMDReference.per_class(ref.X_ref, ref.y_ref, length_scale=1.0)
    fixed = ReferenceData(ref.X_ref, ref.y_ref, mmd=refs)
    out = compute_metrics(["mmd"], X_cf, None, t, reference=fixed, valid_only=False)
    assert out["mmd"] == refs[1](X_cf)
    assert out["mmd"] == pytest.approx(mmd(X_cf, ref.rows_of(1)), abs=1e-12)
    again = pickle.loads(pickle.dumps(refs[1]))
    assert again._Yt is None and again(X_cf) == refs[1](X_cf)
    missing = ReferenceData(ref.X_ref, ref.y_ref, mmd={0: refs[0]})
    assert np.isnan(compute_metrics(["mmd"], X_cf, None, t, reference=missing,
                                    valid_only=False)["mmd"])
    with pytest.raises(ValueError, match="fixed MMD references"):
        compute_metrics(["mmd"], X_cf, None, t, reference=fixed, valid_only=False,
                        metric_params={"mmd": {"length_scale": 2.0}})


def test_reference_subsample_is_seeded():
    X_ref = np.arange(40, dtype=float).reshape(20, 2)
    ref = ReferenceData(X_ref, np.zeros(20, dtype=int), n_reference=4)
    np.testing.assert_array_equal(ref.rows_of(0, 1), ref.rows_of(0, 1))
    assert ref.rows_of(0, 1).shape == (4, 2)
    assert ReferenceData(X_ref, np.zeros(20, dtype=int)).rows_of(0).shape == (20, 2)


@pytest.mark.parametrize("kwargs, match", [
    ({"metrics": []}, "metrics is empty"),
    ({"metrics": ["cost", "cost"]}, "duplicate"),
    ({"metrics": ["energy_differential"]}, "model is None"),
    ({"metrics": ["implausibility"], "model": linear()}, "reference is None"),
    ({"metrics": ["cost"], "metric_params": {"mmd": {}}}, "metric_params"),
    ({"metrics": ["cost"], "reference": "data"}, "ReferenceData"),
    ({"metrics": ["cost"]}, "valid_only=True needs the model"),
])
def test_errors_name_what_is_missing(batch, kwargs, match):
    X_cf, X, t, _ = batch
    metrics = kwargs.pop("metrics")
    with pytest.raises(ValueError, match=match):
        compute_metrics(metrics, X_cf, X, t, **kwargs)


def test_row_id_is_an_argument_of_compute_metrics():
    X_cf = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [5.0, 5.0]])
    X = np.zeros_like(X_cf)
    ids = np.array([0, 0, 0, 1])
    assert {n for n, s in METRIC_SPECS.items() if s.needs_row_id} == {"diversity", "coverage"}
    out = compute_metrics(["diversity", "coverage"], X_cf, X, row_id=ids)
    assert out == {"diversity": 2.0, "coverage": 2.0}
    # the former way, through metric_params, gives the same values
    old = compute_metrics(["diversity", "coverage"], X_cf, X,
                          metric_params={"diversity": {"row_id": ids},
                                         "coverage": {"row_id": ids}})
    assert old == out
    # other keywords still travel through metric_params, row_id with them
    w = compute_metrics(["diversity"], X_cf, row_id=ids,
                        metric_params={"diversity": {"weights": [1.0, 0.0]}})
    assert w["diversity"] == pytest.approx((1 + 2 + 1) / 3)
    # a metric without row_id ignores it; the valid-only rows keep their row ids
    model = linear()
    both = compute_metrics(["cost", "coverage"], X_cf, X, [1, 1, 1, 1], model=model,
                           row_id=ids)
    assert both["coverage"] == 2.0 and both["cost"] == cost(X_cf[[1, 2, 3]], X[[1, 2, 3]])
    with pytest.raises(ValueError, match=r"row_id is None but \['diversity'\] need"):
        compute_metrics(["diversity", "cost"], X_cf, X)
    with pytest.raises(ValueError, match="row_id is given both"):
        compute_metrics(["coverage"], X_cf, X, row_id=ids,
                        metric_params={"coverage": {"row_id": ids}})
    with pytest.raises(ValueError, match="row_id has 2 entries but X_cf has 4 rows"):
        compute_metrics(["coverage"], X_cf, X, row_id=[0, 1])


def test_row_id_follows_the_valid_only_rows(monkeypatch):
    """A metric computed on the valid rows only gets the row ids of those rows."""
    import dataclasses

    from skct.metrics import _compute, _registry

    seen = {}

    def fake(X_cf, *, row_id=None):
        seen["row_id"] = np.asarray(row_id)
        return float(len(row_id))

    spec = dataclasses.replace(METRIC_SPECS["diversity"], function=fake, valid_only=True)
    specs = dict(_registry.METRIC_SPECS, diversity=spec)
    monkeypatch.setattr(_compute, "METRIC_SPECS", specs)
    monkeypatch.setattr(_registry, "METRIC_SPECS", specs)
    X_cf = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]])
    out = compute_metrics(["diversity"], X_cf, valid=[True, False, True], row_id=[7, 8, 9])
    assert out == {"diversity": 2.0}
    np.testing.assert_array_equal(seen["row_id"], [7, 9])
