"""Explanation at scale: chunk results written in place, one chunk at a time, bounded workers."""

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skct.explain._explainer as explainer_module
from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
from skct._utils import RowBlocks
from skct.evaluation import recourse_audit

CONVENTIONAL = dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)


def _frame(n=160, seed=0):
    rng = np.random.RandomState(seed)
    job = rng.choice(["clerk", "manager", "nurse"], n)
    frame = pd.DataFrame({
        "income": rng.gamma(4.0, 10.0, n).round(2),
        "children": rng.randint(0, 4, n).astype(np.int64),
        "owner": rng.rand(n) < 0.5,
        "job": job.astype(object),
    })
    score = (frame["income"] - 40) / 15 + 1.5 * (job == "manager") - (job == "clerk") \
        + 0.8 * frame["owner"] - 0.3 * frame["children"]
    return frame, (score + 0.3 * rng.randn(n) > 0).astype(int).to_numpy()


@pytest.fixture(scope="module")
def pipe():
    frame, y = _frame()
    ct = ColumnTransformer([("num", StandardScaler(), ["income", "children"]),
                            ("bin", "passthrough", ["owner"]),
                            ("cat", OneHotEncoder(sparse_output=False), ["job"])])
    model = make_pipeline(ct, CounterfactualTrainedClassifier(
        **CONVENTIONAL, max_epochs=30, lr=0.01, batch_size=32, random_state=0)).fit(frame, y)
    return model, frame, y


def _with_categories(frame, categories):
    """``frame`` with ``job`` as a Categorical of ``categories`` (missing where not among them)."""
    out = frame.copy()
    out["job"] = pd.Categorical(out["job"], categories=categories)
    return out


def _same(a, b):
    """The same results; floats up to torch's rounding of a batch's forward (its size)."""
    for name in ("valid", "converged", "n_iter", "target_index", "n_changed", "row_id", "rank",
                 "factuals_model"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("counterfactuals_model", "target_proba"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-5,
                                   err_msg=name)
    pd.testing.assert_frame_equal(a.counterfactuals, b.counterfactuals, check_exact=False,
                                  rtol=0, atol=1e-5)  # dtypes and categories exactly


# RowBlocks ---------------------------------------------------------------------------------

def _chunks(frame, sizes):
    out, start = [], 0
    for size in sizes:
        out.append(frame.iloc[start:start + size])
        start += size
    return out


def test_row_blocks_give_what_concat_gives_for_every_dtype():
    rng = np.random.RandomState(0)
    n = 23
    frame = pd.DataFrame({
        "f": rng.randn(n), "i": rng.randint(0, 9, n), "b": rng.rand(n) < 0.5,
        "o": np.array(["x", 1, None] * 8, dtype=object)[:n],
        "s": pd.array(rng.choice(["p", "q"], n), dtype="str"),
        "I": pd.array(np.where(rng.rand(n) < 0.3, None, rng.randint(0, 5, n)), dtype="Int64"),
        "B": pd.array(np.where(rng.rand(n) < 0.3, None, rng.rand(n) < 0.5), dtype="boolean"),
        "t": pd.date_range("2020-01-01", periods=n, freq="D"),
        "c": pd.Categorical(rng.choice(["u", "v", None], n), categories=["v", "u"],
                            ordered=True),
    }, index=pd.Index(rng.permutation(100)[:n], name="id"))
    frame.columns = ["f", "i", "b", "o", "s", "I", "B", "t", "c"]
    for sizes in ([n], [5, 5, 13], [1] * n, [10, 1, 12]):
        parts = _chunks(frame, sizes)
        blocks = RowBlocks(n)
        start = 0
        for part in parts:
            blocks.write(start, frame=part, array=part["f"].to_numpy()[:, None] * [1.0, 2.0])
            start += len(part)
        got = blocks.pop("frame", index=frame.index)
        pd.testing.assert_frame_equal(got, pd.concat(parts), check_exact=True)
        pd.testing.assert_frame_equal(got, frame, check_exact=True)
        np.testing.assert_array_equal(blocks.pop("array"), frame[["f"]].to_numpy() * [1.0, 2.0])
        assert not list(blocks.keys())


def test_row_blocks_join_new_categories_and_changed_dtypes_as_concat_would():
    a = pd.DataFrame({"c": pd.Categorical(["a", None], categories=["a", "b"]),
                      "n": np.array([1, 2]), "x": pd.Series([1, 2])})
    b = pd.DataFrame({"c": pd.Categorical(["d", "b"], categories=["d", "b", "a"]),
                      "n": np.array([0.5, 1.5]), "x": pd.Series(["u", "v"], dtype=object)})
    blocks = RowBlocks(4)
    blocks.write(0, cf=a, arr=np.array([1, 2]))
    blocks.write(2, cf=b, arr=np.array([0.5, 1.5]))
    out = blocks.pop("cf")
    assert list(out["c"].cat.categories) == ["a", "b", "d"]
    assert out["c"].tolist()[0] == "a" and pd.isna(out["c"].tolist()[1])
    assert out["c"].tolist()[2:] == ["d", "b"]
    # a column whose dtype changes between chunks is joined as pandas joins it
    pd.testing.assert_series_equal(out["n"], pd.concat([a["n"], b["n"]], ignore_index=True))
    pd.testing.assert_series_equal(out["x"], pd.concat([a["x"], b["x"]], ignore_index=True))
    arr = blocks.pop("arr")
    assert arr.dtype == np.float64 and arr.tolist() == [1.0, 2.0, 0.5, 1.5]
    # a chunk of missing values only, without categories
    blocks = RowBlocks(3)
    blocks.write(0, c=pd.DataFrame({"c": pd.Categorical([None, None], categories=[])}))
    blocks.write(2, c=pd.DataFrame({"c": pd.Categorical(["z"])}))
    out = blocks.pop("c")["c"]
    assert list(out.cat.categories) == ["z"] and out.isna().tolist() == [True, True, False]


def test_row_blocks_keep_duplicate_column_names_and_a_repeated_index():
    part = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    blocks = RowBlocks(4)
    blocks.write(0, cf=part)
    blocks.write(2, cf=part)
    out = blocks.pop("cf", index=pd.Index([7, 7, 8, 8]))
    assert list(out.columns) == ["a", "a"] and list(out.index) == [7, 7, 8, 8]
    assert out.to_numpy().tolist() == [[1, 2], [3, 4], [1, 2], [3, 4]]


# the explainer -----------------------------------------------------------------------------

def _recording(monkeypatch, ex):
    """Rows seen by the search, the sparsification and the explainer's preprocessing."""
    seen = {"search": [], "sparsify": [], "transform": [], "proba": []}
    search, sparsify = explainer_module.search, explainer_module.sparsify
    transform, proba = ex.adapter_.transform, ex.adapter_.predict_proba_model

    def rec(key, fn, rows):
        def wrapper(*args, **kwargs):
            seen[key].append(rows(args))
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(explainer_module, "search", rec("search", search, lambda a: len(a[1])))
    monkeypatch.setattr(explainer_module, "sparsify",
                        rec("sparsify", sparsify, lambda a: len(a[1])))
    monkeypatch.setattr(ex.adapter_, "transform", rec("transform", transform,
                                                      lambda a: len(a[0])))
    monkeypatch.setattr(ex.adapter_, "predict_proba_model",
                        rec("proba", proba, lambda a: len(a[0])))
    return seen


@pytest.mark.parametrize("k", [1, 3])
def test_chunked_explain_holds_one_chunk_of_search_tensors(pipe, monkeypatch, k):
    model, frame, y = pipe
    ex = CounterfactualExplainer(model, target="opposite", max_iter=30, random_state=0,
                                 n_per_row=k, diversity="starts").fit(frame, y)
    one = ex.explain(frame)
    chunked = clone(ex).set_params(batch_size=16).fit(frame, y)
    seen = _recording(monkeypatch, chunked)
    res = chunked.explain(frame)
    assert seen["search"] and seen["sparsify"] and seen["transform"] and seen["proba"]
    for key, rows in seen.items():
        assert max(rows) <= 16 * k, (key, rows)
    if k == 1:  # the random starts of k > 1 are drawn per chunk
        _same(one, res)
    assert len(res.valid) == len(frame) * k


def test_gradient_free_explain_holds_one_chunk(pipe, monkeypatch):
    model, frame, y = pipe
    ex = CounterfactualExplainer(model, generator="gradient_free", target="opposite",
                                 random_state=0, batch_size=20).fit(frame, y)
    calls = []
    search = explainer_module.gradient_free_search

    def recorded(model_, x, *args, **kwargs):
        calls.append(len(x))
        return search(model_, x, *args, **kwargs)

    monkeypatch.setattr(explainer_module, "gradient_free_search", recorded)
    res = ex.explain(frame)
    assert calls and max(calls) <= 20 and len(res.valid) == len(frame)


def test_chunked_explain_of_numpy_rows_with_several_per_row_is_in_row_order(pipe):
    X = np.random.RandomState(0).randn(50, 3).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=10, random_state=0)
    clf.fit(X, y)
    ex = CounterfactualExplainer(clf, target="opposite", n_per_row=2, random_state=0,
                                 batch_size=7, max_iter=20).fit(X, y)
    res = ex.explain(X)
    assert isinstance(res.counterfactuals, np.ndarray) and res.counterfactuals.shape == (100, 3)
    assert res.counterfactuals.dtype == np.float32
    np.testing.assert_array_equal(res.row_id, np.repeat(np.arange(50), 2))
    np.testing.assert_array_equal(res.rank, np.tile([0, 1], 50))
    # the returned rows are the ones checked: their model-space image is the search's
    np.testing.assert_array_equal(res.counterfactuals.astype(np.float64),
                                  res.counterfactuals_model)


def test_categories_found_in_later_chunks_come_out_as_in_one_batch(pipe):
    model, frame, y = pipe
    # "manager" is a level the encoder knows but the rows' categorical does not: the search adds
    # it to a chunk's categories only where it picks it
    rows = _with_categories(frame[frame["job"] != "manager"], ["clerk", "nurse"])
    ref = _with_categories(frame, ["clerk", "manager", "nurse"])
    ex = CounterfactualExplainer(model, target=1, max_iter=40, random_state=0).fit(ref, y)
    one = ex.explain(rows)
    picked = one.counterfactuals["job"].astype(object).eq("manager").to_numpy()
    assert 0 < picked.sum() < len(rows)
    assert list(one.counterfactuals["job"].cat.categories) == ["clerk", "nurse", "manager"]
    for batch_size in (5, 33):
        _same(one, clone(ex).set_params(batch_size=batch_size).fit(ref, y).explain(rows))


# the audit ---------------------------------------------------------------------------------

def _audit(model, rows, reference, **kw):
    return recourse_audit(model, rows, target=1, reference=reference, max_iter=40,
                          random_state=0, **kw)


def test_audit_report_the_same_for_any_batch_size_with_new_categories(pipe):
    model, frame, y = pipe
    rows = _with_categories(frame[frame["job"] != "manager"], ["clerk", "nurse"])
    ref = _with_categories(frame, ["clerk", "manager", "nurse"])
    one = _audit(model, rows, ref, batch_size=len(rows))
    assert one.counterfactuals_["job"].astype(object).eq("manager").any()
    assert isinstance(one.counterfactuals_["job"].dtype, pd.CategoricalDtype)
    for batch_size in (4, 29):
        rep = _audit(model, rows, ref, batch_size=batch_size)
        for name in ("counterfactuals_", "rows_"):  # float rounding as in _same
            pd.testing.assert_frame_equal(getattr(rep, name), getattr(one, name),
                                          check_exact=False, rtol=0, atol=1e-5)
        np.testing.assert_allclose(rep.counterfactuals_model_, one.counterfactuals_model_,
                                   rtol=0, atol=1e-5)


def test_audit_through_parallel_batches_gives_the_serial_report(pipe):
    model, frame, y = pipe
    serial = _audit(model, frame, frame, batch_size=9, n_options=2)
    with joblib.parallel_backend("threading", n_jobs=2):
        par = _audit(model, frame, frame, batch_size=9, n_options=2)
    pd.testing.assert_frame_equal(par.rows_, serial.rows_)
    pd.testing.assert_frame_equal(par.options_, serial.options_)
    np.testing.assert_array_equal(par.factuals_model_, serial.factuals_model_)


def test_audit_client_predicts_in_chunks_in_process(pipe, monkeypatch):
    model, frame, y = pipe
    seen = []
    predict = type(model).predict

    def recorded(self, X, **kwargs):  # rows, and the joblib backend scikit-learn would use
        backend, _ = joblib.parallel.get_active_backend()
        seen.append((len(X), type(backend).__name__))
        return predict(self, X, **kwargs)

    monkeypatch.setattr(type(model), "predict", recorded)
    with joblib.parallel_backend("threading", n_jobs=2):
        _audit(model, frame, frame.iloc[:40], batch_size=25)
    assert seen and max(n for n, _ in seen) <= 40
    client = [b for n, b in seen]
    assert set(client) == {"SequentialBackend"}, client


def test_audit_on_a_dask_worker_holds_one_chunk_at_a_time(pipe, monkeypatch):
    distributed = pytest.importorskip("distributed")
    model, frame, y = pipe
    held = []
    explain = CounterfactualExplainer.explain

    def recorded(self, X, target=None):  # what the worker holds while it explains a chunk
        held.append(len(distributed.get_worker().data))
        return explain(self, X, target=target)

    monkeypatch.setattr(CounterfactualExplainer, "explain", recorded)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_backend("dask"):
        rep = _audit(model, frame, frame, batch_size=5)
    assert len(held) == 32 and rep.rows_.shape[0] == len(frame)
    # results not yet collected, not the chunks done so far (nor their preprocessing tasks)
    assert max(held) <= 4, held


@pytest.mark.parametrize("cost", ["mad", "l2", "callable"])
def test_audit_checks_rows_in_batches_as_all_at_once(pipe, cost):
    from skct.evaluation._audit import _assess

    model, frame, y = pipe
    rep = _audit(model, frame, frame, batch_size=len(frame))
    calls = []

    def custom(Z_cf, Z):
        calls.append(len(Z))
        return np.abs(Z_cf - Z).sum(axis=1)

    cost = custom if cost == "callable" else cost
    entries = {"valid": rep.rows_["valid"].to_numpy(), "Z_cf": rep.counterfactuals_model_,
               "Z": rep.factuals_model_}
    args = (rep.counterfactuals_, rep.factuals_, rep.explainer_.constraints_, entries, cost,
            0.0, None)
    whole, parts = _assess(*args, len(frame)), _assess(*args, 7)
    np.testing.assert_array_equal(parts[0], whole[0])
    pd.testing.assert_frame_equal(parts[1], whole[1])
    for a, b in zip(parts[2], whole[2]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert parts[3] == whole[3]
    if cost is custom:  # a custom cost gets every row at once
        assert calls == [len(frame), len(frame)]
    else:  # the row table reads the reasons
        assert (whole[2][3] != "").any() or whole[2][0].all()
