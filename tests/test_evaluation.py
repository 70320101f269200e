"""evaluate(): the tidy grid, n_jobs independence, the Dask backend, input errors."""

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_blobs2d
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skct import CounterfactualTrainedClassifier, ECCoGenerator
from skct.evaluation import EVALUATION_METRICS, evaluate

METRICS = ("validity", "strict_validity", "cost", "redundancy", "implausibility", "mmd")
KW = dict(generators={"generic": "generic", "ecco": ECCoGenerator(lambda_energy=2.0)},
          n_runs=2, n_factuals=12, max_iter=25, metrics=METRICS, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_blobs2d(n=160, sep=1.0)


@pytest.fixture(scope="module")
def models(data):
    X, y = data
    ct = CounterfactualTrainedClassifier(max_epochs=4, n_counterfactuals=40, max_iter_cf=10,
                                         hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    base = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                           max_epochs=10, lr=1e-2, hidden_layer_sizes=(8,),
                                           random_state=0)
    return {"ct": ct, "base": make_pipeline(StandardScaler(), base).fit(X, y)}


@pytest.fixture(scope="module")
def serial(models, data):
    X, y = data
    return evaluate(models, X, y, n_jobs=1, **KW)


def test_tidy_frame(serial):
    df = serial
    assert df.columns.tolist() == ["model", "generator", "factual", "target", "run", "metric",
                                   "value"]
    # 2 models x 2 generators x 2 ordered pairs x 2 runs x 6 metrics
    assert len(df) == 2 * 2 * 2 * 2 * len(METRICS)
    assert set(df["model"]) == {"ct", "base"} and set(df["generator"]) == {"generic", "ecco"}
    assert set(zip(df["factual"], df["target"])) == {(0, 1), (1, 0)}
    assert set(df["run"]) == {0, 1} and set(df["metric"]) == set(METRICS)
    assert not df.duplicated(["model", "generator", "factual", "target", "run", "metric"]).any()
    # distances are over valid counterfactuals only: NaN exactly where a batch has none (MMD
    # needs two)
    keys = ["model", "generator", "factual", "target", "run"]
    n_valid = (df[df["metric"] == "validity"].set_index(keys)["value"] * KW["n_factuals"]).round()
    for metric, needed in (("validity", 0), ("strict_validity", 0), ("cost", 1),
                           ("implausibility", 1), ("mmd", 2)):
        values = df[df["metric"] == metric].set_index(keys)["value"]
        enough = n_valid.loc[values.index] >= needed
        assert np.isfinite(values[enough]).all() and values[~enough].isna().all(), metric
    assert enough.any()
    share = df[df["metric"].isin(["validity", "strict_validity", "redundancy"])]["value"]
    assert ((share.dropna() >= 0) & (share.dropna() <= 1)).all()
    assert (df[df["metric"].isin(["cost", "implausibility", "mmd"])]["value"].dropna() >= 0).all()
    # canonical order: models and generators as given, then pair, run, metric
    assert df["model"].iloc[0] == "ct" and df["generator"].iloc[0] == "generic"
    assert df["metric"].iloc[: len(METRICS)].tolist() == list(METRICS)


def test_same_factuals_for_every_generator_and_fresh_ones_per_run(models, data):
    X, y = data
    # max_iter=0: counterfactuals are the factuals, so implausibility only depends on them
    df = evaluate({"ct": models["ct"]}, X, y, valid_only=False,
                  **dict(KW, max_iter=0, metrics=("cost", "implausibility")))
    assert (df.loc[df["metric"] == "cost", "value"] == 0).all()
    imp = df[df["metric"] == "implausibility"].pivot_table(
        index=["factual", "run"], columns="generator", values="value")
    np.testing.assert_array_equal(imp["generic"], imp["ecco"])  # same rows for each generator
    assert imp.loc[(0, 0), "generic"] != imp.loc[(0, 1), "generic"]  # fresh rows per run


def test_n_jobs_1_equals_n_jobs_2(serial, models, data):
    X, y = data
    parallel = evaluate(models, X, y, n_jobs=2, **KW)
    pd.testing.assert_frame_equal(serial, parallel)


def test_dask_backend_equals_serial(serial, models, data):
    distributed = pytest.importorskip("distributed")
    X, y = data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as stream:
            on_dask = evaluate(models, X, y, **KW)
    assert len(stream.data) >= 2  # the chunks really ran on the cluster's workers
    pd.testing.assert_frame_equal(serial, on_dask)


def test_random_state_reproducible_and_seed_sensitive(models, data):
    X, y = data
    kw = dict(KW)
    kw.update(n_runs=1, metrics=("cost",))
    a = evaluate({"ct": models["ct"]}, X, y, **kw)
    b = evaluate({"ct": models["ct"]}, X, y, **kw)
    c = evaluate({"ct": models["ct"]}, X, y, **dict(kw, random_state=1))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["value"], c["value"])


def test_options_pairs_reference_progress_and_mmd_test(models, data, capsys):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b"])
    pipe = clone(models["base"]).fit(frame, y)
    df = evaluate({"base": pipe}, frame, y, generators="generic",
                  targets=[(0, 1)], n_runs=1, n_factuals=10, max_iter=10,
                  metrics=("mmd", "energy_differential"),
                  metric_params={"mmd": {"n_permutations": 20}},
                  reference=(frame.iloc[:100], y[:100]), random_state=0, verbose=1)
    assert df["metric"].tolist() == ["mmd", "mmd_p_value", "energy_differential"]
    assert 0 < df["value"].iloc[1] <= 1
    assert "[evaluate] 1/1 batches" in capsys.readouterr().err


def test_factual_class_never_predicted_gives_nan(models, data):
    X, y = data
    ct = models["ct"]
    X0 = X[ct.predict(X) == 0]  # only rows predicted as class 0
    with pytest.warns(RuntimeWarning, match="predicted as the factual class"):
        df = evaluate(ct, X0, reference=(X, y), n_runs=1, n_factuals=5, max_iter=5,
                      metrics=("validity",), random_state=0)
    assert df.set_index("factual")["value"].isna().to_dict() == {0: False, 1: True}


@pytest.mark.parametrize("kwargs, match", [
    ({"models": {}}, "models"),
    ({"models": [1, 2]}, "models"),
    ({"metrics": ("validity", "accuracy")}, "metrics"),
    ({"metrics": ()}, "metrics"),
    ({"generators": "nope"}, "generators"),
    ({"generators": ["generic", "generic"]}, "generators"),
    ({"generators": 3}, "generators"),
    ({"targets": [(0, 7)]}, "targets"),
    ({"targets": [(1, 1)]}, "targets"),
    ({"targets": "some"}, "targets"),
    ({"n_runs": 0}, "n_runs"),
    ({"n_factuals": 1}, "n_factuals"),
    ({"decision_threshold": 1.0}, "decision_threshold"),
    ({"metric_params": {"cost": {"ord": 2}}, "metrics": ("validity",)}, "metric_params"),
    ({"reference": (np.zeros((3, 2)), [0, 1])}, "reference"),
    ({"y": None}, "y"),
    ({"explainer_params": {"max_iter": 3}}, "explainer_params"),
    ({"explainer_params": {"no_such_parameter": 1}}, "explainer_params"),
])
def test_bad_inputs(models, data, kwargs, match):
    X, y = data
    args = {"models": {"ct": models["ct"]}, "y": y, **kwargs}
    with pytest.raises(ValueError, match=match):
        evaluate(args.pop("models"), X, args.pop("y"), **args)


def test_unfitted_model_rejected(data):
    X, y = data
    with pytest.raises(ValueError, match="models: 'm' .* not fitted"):
        evaluate({"m": CounterfactualTrainedClassifier()}, X, y)


def test_metric_table_covers_metrics_module():
    from skct.metrics import METRICS as ALL

    assert set(EVALUATION_METRICS) == set(ALL)


def test_each_model_shipped_in_about_n_jobs_chunks(models, data, monkeypatch):
    import skct.evaluation._grid as mod

    X, y = data
    seen = []
    real = mod.evaluate_chunk
    monkeypatch.setattr(mod, "evaluate_chunk",
                        lambda name, est, *a: seen.append((name, len(a[-2]))) or real(
                            name, est, *a))
    kw = dict(KW, metrics=("validity",))
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = evaluate(models, X, y, **kw)
    # 2 models x 2 chunks, each chunk with half of the model's 2 x 2 x 2 = 8 batches
    assert sorted(seen) == [("base", 4), ("base", 4), ("ct", 4), ("ct", 4)]
    pd.testing.assert_frame_equal(threaded, evaluate(models, X, y, n_jobs=1, **kw))


def test_valid_only_drops_failed_searches_from_distance_metrics():
    """Distances of failed searches say nothing about recourse: valid_only (default) drops them."""
    from skct import ActionabilityConstraints, CounterfactualTrainedClassifier, evaluate

    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(60, 2) - 2, rng.randn(60, 2) + 2].astype(np.float32)
    y = np.r_[np.zeros(60), np.ones(60)].astype(int)
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0, lr=0.01,
                                          max_epochs=20, random_state=0).fit(X, y)
    frozen = ActionabilityConstraints(mutability={0: "none", 1: "none"})  # nothing can move
    kw = dict(n_runs=1, n_factuals=10, metrics=("validity", "cost"), constraints=frozen,
              random_state=0)
    strict = evaluate({"m": clf}, X, y, **kw).set_index(["factual", "metric"])["value"]
    loose = evaluate({"m": clf}, X, y, valid_only=False, **kw).set_index(
        ["factual", "metric"])["value"]
    assert (strict.xs("validity", level="metric") == 0).all()
    assert strict.xs("cost", level="metric").isna().all()  # no valid counterfactual
    assert (loose.xs("cost", level="metric") == 0).all()  # unchanged rows cost 0


# -- threads, dtypes, failures, per-row values ------------------------------------------------
def _small(**kw):
    return dict(dict(n_runs=1, n_factuals=4, max_iter=3, metrics=("validity", "cost"),
                     random_state=0), **kw)


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("threads", [1, 2])
def test_torch_threads_reach_the_workers(models, data, n_jobs, threads):
    """evaluate(torch_threads=k) runs every forward pass of every cell with k torch threads."""
    import skct

    X, y = data
    module = models["ct"].logits_module_
    seen = []
    handle = module.register_forward_pre_hook(lambda m, a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        with joblib.parallel_backend("threading", n_jobs=n_jobs):
            evaluate({"ct": models["ct"]}, X, y, torch_threads=threads, **_small())
        assert seen and set(seen) == {threads}
        seen.clear()
        with skct.config_context(torch_threads=threads), \
                joblib.parallel_backend("threading", n_jobs=n_jobs):
            evaluate({"ct": models["ct"]}, X, y, **_small())  # None: the configured value
        assert seen and set(seen) == {threads}
    finally:
        handle.remove()
    assert torch.get_num_threads() == before


class _MLP64(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(),
                                       torch.nn.Linear(8, 2)).double()

    def forward(self, X):
        return self.net(X)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_float64_module(data):
    """A float64 torch module is evaluated in its own dtype (no 'mat1 and mat2' error)."""
    from skorch import NeuralNetClassifier

    X, y = data
    X = np.array(X, dtype=np.float64)
    torch.manual_seed(0)
    net = NeuralNetClassifier(_MLP64, criterion=torch.nn.CrossEntropyLoss, max_epochs=10,
                              lr=0.1, train_split=None, verbose=0).fit(X, y)
    df = evaluate({"m": net}, X, y, **_small(metrics=METRICS, max_iter=20))
    validity = df.loc[df["metric"] == "validity", "value"]
    assert validity.between(0, 1).all() and len(validity) == 2


def _failing(models):
    """A copy of the 'ct' model whose forward raises during the search (with gradients)."""
    import copy

    bad = copy.deepcopy(models["ct"])

    def boom(module, args):
        if torch.is_grad_enabled():
            raise RuntimeError("boom in forward")

    bad.logits_module_.register_forward_pre_hook(boom)
    return bad


def test_failing_cell_is_named(models, data):
    X, y = data
    message = r"model 'bad', generator 'generic', pair 0 -> 1, run 0 failed: RuntimeError: boom"
    with pytest.raises(RuntimeError, match=message):
        evaluate({"ct": models["ct"], "bad": _failing(models)}, X, y, **_small())


def test_on_error_record_keeps_finished_cells(models, data):
    X, y = data
    with pytest.warns(RuntimeWarning, match="2 of 4 cells failed"):
        df = evaluate({"ct": models["ct"], "bad": _failing(models)}, X, y, on_error="record",
                      **_small())
    good = df[df["model"] == "ct"].reset_index(drop=True)
    pd.testing.assert_frame_equal(good, evaluate({"ct": models["ct"]}, X, y, **_small()))
    assert df.loc[df["model"] == "bad", "value"].isna().all()
    failures = df.attrs["failures"]
    assert failures.columns.tolist() == ["model", "generator", "factual", "target", "run",
                                         "error"]
    assert failures["model"].tolist() == ["bad", "bad"]
    assert failures["error"].str.contains("boom in forward").all()
    with pytest.raises(ValueError, match="on_error"):
        evaluate({"ct": models["ct"]}, X, y, on_error="ignore", **_small())


def test_per_row_values_match_the_tidy_grid(serial, models, data):
    X, y = data
    rows = evaluate(models, X, y, n_jobs=1, per_row=True, **KW)
    assert len(rows) == 2 * 2 * 2 * 2 * KW["n_factuals"]
    assert rows.columns.tolist() == ["model", "generator", "factual", "target", "run", "row",
                                     "converged", "target_proba", "n_iter", *METRICS]
    keys = ["model", "generator", "factual", "target", "run"]
    tidy = serial.pivot_table(index=keys, columns="metric", values="value", sort=False,
                              dropna=False)
    cells = rows.groupby(keys, sort=False)
    np.testing.assert_allclose(cells["validity"].mean(), tidy["validity"].loc[
        list(cells.groups)])
    np.testing.assert_allclose(cells["cost"].mean(), tidy["cost"].loc[list(cells.groups)])
    assert (rows["cost"].isna() == (rows["validity"] == 0)).all()  # valid rows only
    np.testing.assert_array_equal(cells["mmd"].first(), tidy["mmd"].loc[list(cells.groups)])
    assert rows["row"].between(0, len(X) - 1).all()


def test_explainer_params_reach_every_explainer(models, data, monkeypatch):
    import skct.evaluation._cells as cells

    seen = []
    real = cells.CounterfactualExplainer

    def spy(*args, **kwargs):
        seen.append(kwargs["return_path"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cells, "CounterfactualExplainer", spy)
    X, y = data
    evaluate(models, X, y, explainer_params={"return_path": True}, **_small())
    assert seen == [True, True]  # one explainer per model and generator


def test_revise_cells_under_threads_match_n_jobs_1(models, data):
    # REVISE fits an autoencoder per model in each worker: with torch's global generator shared
    # by threads, concurrent fits could interfere (tests/test_revise.py reproduces that at the
    # generator level); the grid must not depend on the backend
    from skct import REVISEGenerator

    X, y = data
    kw = dict(KW, generators={"revise": REVISEGenerator(vae_epochs=3)}, n_runs=2)
    serial = evaluate(models, X, y, n_jobs=1, **kw)
    with joblib.parallel_backend("threading"):
        threaded = evaluate(models, X, y, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(serial, threaded)


class _BackendSpy(BaseEstimator, TransformerMixin):
    """Identity transformer that records joblib's active backend at every transform."""

    seen = []

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        _BackendSpy.seen.append(type(joblib.parallel.get_active_backend()[0]).__name__)
        return X

    def inverse_transform(self, X):
        return X


def test_model_joblib_work_runs_inside_the_task(models, data):
    # under a Dask (or any) backend, a Pipeline's own parallel steps must not go back to the
    # cluster from inside evaluate's tasks
    X, y = data
    base = models["base"]
    spied = make_pipeline(_BackendSpy(), *[step for _, step in base.steps])
    _BackendSpy.seen.clear()
    with joblib.parallel_backend("threading", n_jobs=2):
        evaluate({"spied": spied}, X, y, **KW)
    assert _BackendSpy.seen and set(_BackendSpy.seen) == {"SequentialBackend"}
