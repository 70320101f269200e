"""CounterfactualExplainer: targets, prefit logic, Pipelines on real data, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.datasets import load_adult

CONVENTIONAL = dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)


def _data(n=200, n_classes=2, seed=0):
    rng = np.random.RandomState(seed)
    centers = np.array([[-2, -2], [2, 2], [2, -2]])[:n_classes]
    y = np.arange(n) % n_classes
    X = (centers[y] + 0.5 * rng.randn(n, 2)).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=30, lr=0.01, batch_size=32,
                                          random_state=0).fit(X, y)
    return clf, X, y


@pytest.fixture(scope="module")
def fitted3():
    X, y = _data(300, n_classes=3)
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=40, lr=0.01, batch_size=32,
                                          random_state=0).fit(X, y)
    return clf, X, y


def test_transform_same_shape_numpy_and_pandas(fitted):
    clf, X, y = fitted
    ex = CounterfactualExplainer(clf, target="opposite", random_state=0).fit(X, y)
    out = ex.transform(X[:10])
    assert isinstance(out, np.ndarray) and out.shape == (10, 2)
    frame = pd.DataFrame(X, columns=["a", "b"], index=np.arange(100, 100 + len(X)))
    ex = CounterfactualExplainer(clf, target="opposite", random_state=0).fit(frame, y)
    out = ex.transform(frame.iloc[:10])
    assert list(out.columns) == ["a", "b"] and (out.index == frame.index[:10]).all()
    assert list(ex.get_feature_names_out()) == ["a", "b"]
    ex.set_output(transform="pandas")
    assert isinstance(ex.transform(frame.iloc[:3]), pd.DataFrame)


def test_explain_result_fields_and_validity(fitted):
    clf, X, y = fitted
    ex = CounterfactualExplainer(clf, target="opposite", return_path=True, max_iter=50,
                                 random_state=0).fit(X, y)
    res = ex.explain(X[:20])
    assert res.valid.all()
    pred = clf.predict(res.counterfactuals)
    np.testing.assert_array_equal(pred, res.targets)
    np.testing.assert_array_equal(res.targets, 1 - clf.predict(X[:20]))
    assert (res.target_proba >= 0.75).all()
    assert res.path.shape == (51, 20, 2)
    np.testing.assert_allclose(res.path[0], X[:20], atol=1e-6)
    assert (res.n_iter <= 50).all() and (res.n_iter > 0).all()
    np.testing.assert_array_equal(res.factuals, X[:20])


def test_target_kinds(fitted3):
    clf, X, y = fitted3
    pred = clf.predict(X[:30])
    ex = CounterfactualExplainer(clf, random_state=0).fit(X, y)
    # None: a random class other than the predicted one, reproducible with random_state
    t1 = ex.explain(X[:30]).targets
    t2 = ex.explain(X[:30]).targets
    np.testing.assert_array_equal(t1, t2)
    assert (t1 != pred).all() and len(set(t1)) == 3
    # one label, an array of labels
    assert (ex.explain(X[:5], target=2).targets == 2).all()
    np.testing.assert_array_equal(ex.explain(X[:3], target=[0, 1, 2]).targets, [0, 1, 2])
    with pytest.raises(ValueError, match="opposite"):
        ex.explain(X[:3], target="opposite")
    with pytest.raises(ValueError, match="unknown class label 7"):
        ex.explain(X[:3], target=7)
    with pytest.raises(ValueError, match="one label or 3 labels"):
        ex.explain(X[:3], target=[0, 1])


def test_rows_already_of_target_class_are_unchanged(fitted):
    clf, X, y = fitted
    ex = CounterfactualExplainer(clf, target=1, random_state=0).fit(X, y)
    rows = X[clf.predict(X) == 1][:5]
    res = ex.explain(rows)
    assert res.valid.all() and (res.n_iter == 0).all()
    np.testing.assert_array_equal(res.counterfactuals, rows)


def test_unreachable_rows_are_marked_invalid_not_errors(fitted):
    clf, X, y = fitted
    frozen = ActionabilityConstraints(mutability={0: "none", 1: "none"})
    ex = CounterfactualExplainer(clf, target="opposite", constraints=frozen, max_iter=20,
                                 random_state=0).fit(X, y)
    res = ex.explain(X[:10])
    assert not res.valid.any()
    np.testing.assert_array_equal(res.counterfactuals, X[:10])


def test_prefit_logic(fitted):
    clf, X, y = fitted
    ex = CounterfactualExplainer(clf).fit(X, y)
    assert ex.estimator_ is clf  # fitted: used as is
    unfitted = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=2, random_state=0)
    ex = CounterfactualExplainer(unfitted).fit(X, y)
    assert ex.estimator_ is not unfitted and not hasattr(unfitted, "net_")
    with pytest.raises(NotFittedError, match="prefit=True"):
        CounterfactualExplainer(unfitted, prefit=True).fit(X, y)
    with pytest.raises(NotFittedError):
        CounterfactualExplainer(clf).transform(X)
    ex = CounterfactualExplainer(clf, prefit=False).fit(X, y)
    assert ex.estimator_ is not clf


def test_bad_input(fitted):
    clf, X, y = fitted
    ex = CounterfactualExplainer(clf, target="opposite").fit(X, y)
    bad = X[:3].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ex.explain(bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        ex.explain(bad)
    with pytest.raises(ValueError, match="3 features"):
        ex.explain(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        ex.explain(np.zeros((0, 2), np.float32))
    with pytest.raises(TypeError, match="torch-backed"):
        CounterfactualExplainer(LogisticRegression().fit(X, y)).fit(X, y)
    with pytest.raises(ValueError, match="generator"):
        CounterfactualExplainer(clf, generator="nope").fit(X, y)


def test_non_numeric_columns_without_encoder(fitted):
    clf, X, y = fitted
    frame = pd.DataFrame({"a": X[:, 0], "b": ["x"] * len(X)})
    with pytest.raises(ValueError, match="non-numeric"):
        CounterfactualExplainer(clf).fit(frame, y)


def test_inputs_never_modified(fitted):
    clf, X, y = fitted
    frame = pd.DataFrame(X, columns=["a", "b"])
    before = frame.copy()
    params = [p.detach().clone() for p in clf.logits_module_.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in clf.logits_module_.parameters()]
    ex = CounterfactualExplainer(clf, target="opposite", random_state=0).fit(frame, y)
    ex.explain(frame)
    pd.testing.assert_frame_equal(frame, before)
    for p, p0, g0 in zip(clf.logits_module_.parameters(), params, grads):
        assert torch.equal(p, p0)
        assert (p.grad is None and g0 is None) or torch.equal(p.grad, g0)


def test_skorch_nets_are_supported():
    from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

    X, y = _data()

    class Softmax(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, X):
            return torch.softmax(self.lin(X), dim=-1)

    class OneLogit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, X):
            return self.lin(X).squeeze(-1)

    nets = [NeuralNetClassifier(Softmax, max_epochs=20, lr=0.1, train_split=None, verbose=0),
            NeuralNetBinaryClassifier(OneLogit, max_epochs=20, lr=0.1, train_split=None,
                                      verbose=0)]
    for net in nets:
        yy = y.astype(np.int64) if isinstance(net, NeuralNetClassifier) else y.astype(np.float32)
        net.fit(X, yy)
        ex = CounterfactualExplainer(net, target="opposite", random_state=0).fit(X, yy)
        res = ex.explain(X[:10])
        assert res.valid.all()
        proba = net.predict_proba(res.counterfactuals.astype(np.float32))
        assert (proba[np.arange(10), res.target_index] >= 0.75 - 1e-4).all()


def test_pipeline_with_scalers_inverts_to_user_space():
    X, y = _data()
    X = X * np.array([100.0, 0.01], dtype=np.float32) + 50
    pipe = make_pipeline(StandardScaler(), MinMaxScaler(), CounterfactualTrainedClassifier(
        **CONVENTIONAL, max_epochs=30, lr=0.01, random_state=0)).fit(X, y)
    ex = CounterfactualExplainer(pipe, target="opposite", random_state=0).fit(X, y)
    res = ex.explain(X[:10])
    assert res.valid.all()
    np.testing.assert_array_equal(pipe.predict(res.counterfactuals), res.targets)


def test_adult_pipeline_with_raw_column_constraints(data_home):
    bunch = load_adult(data_home=data_home)
    X, y = bunch.data.iloc[:3000], bunch.target.iloc[:3000]
    pipe = make_pipeline(clone(bunch.preprocessor), CounterfactualTrainedClassifier(
        **CONVENTIONAL, max_epochs=3, random_state=0)).fit(X, y)
    constraints = ActionabilityConstraints(mutability={
        "age": "none", "sex": "none", "race": "none", "hours-per-week": "increase",
        "capital-loss": "decrease"})
    ex = CounterfactualExplainer(pipe, target=1, constraints=constraints, max_iter=300,
                                 random_state=0).fit(X, y)
    rejected = X[pipe.predict(X) == 0].iloc[:150]
    res = ex.explain(rejected)
    cf = res.counterfactuals
    assert cf.shape == rejected.shape and list(cf.columns) == list(rejected.columns)
    for col in ("age", "sex", "race"):
        assert (cf[col].to_numpy() == rejected[col].to_numpy()).all(), col
    assert (cf["hours-per-week"].to_numpy() >= rejected["hours-per-week"].to_numpy()).all()
    assert (cf["capital-loss"].to_numpy() <= rejected["capital-loss"].to_numpy()).all()
    # categoricals come back as valid categories of the encoder
    encoder = pipe[0].named_transformers_["cat"]
    for col, cats in zip(bunch.categorical_features, encoder.categories_):
        assert set(cf[col]) <= set(cats), col
    assert res.valid.mean() > 0.9
    # returned rows really are classified as the target (in the user's columns)
    np.testing.assert_array_equal(pipe.predict(cf[res.valid]), res.targets[res.valid])


# ---------------------------------------------------------------------------------------
# mixed tables through a ColumnTransformer: kinds, dtypes, dropped and unknown levels
# ---------------------------------------------------------------------------------------


def _mixed_frame(n=240, seed=0):
    rng = np.random.RandomState(seed)
    job = rng.choice(["clerk", "manager", "nurse"], n)
    sex = rng.choice(["F", "M"], n)
    frame = pd.DataFrame({
        "income": rng.gamma(4.0, 10.0, n).round(2),
        "children": rng.randint(0, 4, n).astype(np.int64),
        "owner": rng.rand(n) < 0.5,
        "job": job.astype(object),
        "sex": sex.astype(object),
    })
    score = (frame["income"] - 40) / 15 + 1.5 * (job == "manager") - 1.0 * (job == "clerk") \
        + 0.8 * frame["owner"] - 0.3 * frame["children"]
    y = (score + 0.3 * rng.randn(n) > 0).astype(int).to_numpy()
    return frame, y


def _mixed_pipe(frame, y, encoder=None, epochs=40):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    encoder = OneHotEncoder(sparse_output=False) if encoder is None else encoder
    ct = ColumnTransformer([("num", StandardScaler(), ["income", "children"]),
                            ("bin", "passthrough", ["owner"]),
                            ("cat", encoder, ["job", "sex"])])
    return make_pipeline(ct, CounterfactualTrainedClassifier(
        **CONVENTIONAL, max_epochs=epochs, lr=0.01, batch_size=32, random_state=0)).fit(frame, y)


def test_mixed_table_values_of_their_kind_and_dtype():
    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y)
    ex = CounterfactualExplainer(pipe, target=1, random_state=0).fit(frame, y)
    rejected = frame[pipe.predict(frame) == 0]
    cf = ex.explain(rejected).counterfactuals
    assert (cf.dtypes == frame.dtypes).all(), cf.dtypes
    assert set(cf["owner"]) <= {False, True}
    assert (cf["children"] >= 0).all() and (cf["children"] <= 3).all()
    assert set(cf["job"]) <= set(frame["job"])


def test_onehot_drop_first_unchanged_at_step_zero_and_dropped_level_reachable():
    from sklearn.preprocessing import OneHotEncoder

    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y, OneHotEncoder(drop="first", sparse_output=False))
    rejected = frame[pipe.predict(frame) == 0]
    ex0 = CounterfactualExplainer(pipe, target=1, max_iter=0, random_state=0).fit(frame, y)
    cf0 = ex0.explain(rejected).counterfactuals
    pd.testing.assert_frame_equal(cf0, rejected)  # no category changes before any search
    ex = CounterfactualExplainer(pipe, target=1, random_state=0).fit(frame, y)
    cf = ex.explain(rejected).counterfactuals
    # "clerk" is the dropped level of job and "F" the dropped level of sex: both reachable
    # and kept; factuals at the dropped level keep it where it is not changed
    assert set(cf["job"]) <= set(frame["job"])
    assert set(cf["sex"]) <= {"F", "M"}
    assert (cf["sex"] == "F").any()


def test_onehot_if_binary_column_stays_binary():
    from sklearn.preprocessing import OneHotEncoder

    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y, OneHotEncoder(drop="if_binary", sparse_output=False))
    rejected = frame[pipe.predict(frame) == 0]
    ex = CounterfactualExplainer(pipe, target=1, random_state=0).fit(frame, y)
    res = ex.explain(rejected)
    names = list(res.feature_names_model)
    j = names.index("cat__sex_M")
    assert set(np.unique(res.counterfactuals_model[:, j])) <= {0.0, 1.0}
    assert set(res.counterfactuals["sex"]) <= {"F", "M"}


def test_unknown_category_immutable_is_kept_and_never_valid_with_nan():
    from sklearn.preprocessing import OneHotEncoder

    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y, OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    rejected = frame[pipe.predict(frame) == 0].iloc[:20].copy()
    rejected["job"] = "zzz"
    ex = CounterfactualExplainer(pipe, target=1, constraints=ActionabilityConstraints(
        mutability={"job": "none"}), random_state=0).fit(frame, y)
    res = ex.explain(rejected)
    assert (res.counterfactuals["job"] == "zzz").all()
    assert not res.counterfactuals["job"].isna().any()
    np.testing.assert_array_equal(pipe.predict(res.counterfactuals) == 1, res.valid)
    # mutable: never replaced before any search step
    ex0 = CounterfactualExplainer(pipe, target=1, max_iter=0, random_state=0).fit(frame, y)
    assert (ex0.explain(rejected).counterfactuals["job"] == "zzz").all()


def test_bounds_that_exclude_an_immutable_factual_keep_the_value():
    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y)
    rejected = frame[pipe.predict(frame) == 0]
    constraints = ActionabilityConstraints(mutability={"children": "none"},
                                           bounds={"children": (5, 9)})
    with pytest.warns(UserWarning,
                      match=r"bounds: the immutable \('none'\) column\(s\) 'children'"):
        ex = CounterfactualExplainer(pipe, target=1, constraints=constraints,
                                     random_state=0).fit(frame, y)
    res = ex.explain(rejected)
    pd.testing.assert_series_equal(res.counterfactuals["children"], rejected["children"])


def test_transform_keeps_the_last_iterate_when_asked_and_n_changed_counts_columns():
    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y)
    rejected = frame[pipe.predict(frame) == 0]
    from skct.search.generators import GenericGenerator

    frozen = ActionabilityConstraints(mutability={"job": "none", "owner": "none"})
    ex = CounterfactualExplainer(pipe, target=1, max_iter=3, invalid="keep",
                                 constraints=frozen, generator=GenericGenerator(step_size=0.05),
                                 random_state=0).fit(frame, y)
    res = ex.explain(rejected)
    assert not res.valid.all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ex.transform(rejected)
    assert not out.isna().any(axis=None) and (out.dtypes == frame.dtypes).all()
    np.testing.assert_array_equal(res.n_changed,
                                  (res.counterfactuals != rejected).sum(axis=1).to_numpy())
    proba = pipe.predict_proba(res.counterfactuals)
    np.testing.assert_array_equal(res.target_proba, proba[:, 1])


def _assert_same_result(a, b):
    """Every field of two CounterfactualResults equal, bit for bit (NaN equal to NaN)."""
    import dataclasses

    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, pd.DataFrame):
            pd.testing.assert_frame_equal(va, vb, check_exact=True)
        elif va is None or vb is None:
            assert va is None and vb is None, f.name
        else:
            assert np.asarray(va).dtype == np.asarray(vb).dtype, f.name
            np.testing.assert_array_equal(va, vb, err_msg=f.name)


@pytest.mark.parametrize("params", [
    dict(target=None, return_path=True),
    dict(target=1, sparsify_changes=False, generator="ecco"),
])
def test_batch_size_gives_the_same_result_as_one_batch(params):
    frame, y = _mixed_frame()
    pipe = _mixed_pipe(frame, y)
    rows = frame.iloc[:61]
    one = CounterfactualExplainer(pipe, max_iter=40, random_state=3, **params).fit(frame, y)
    chunked = clone(one).set_params(batch_size=7).fit(frame, y)
    a, b = one.explain(rows), chunked.explain(rows)
    _assert_same_result(a, b)
    assert 0 < a.valid.sum() < len(rows) or a.valid.all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows without a counterfactual
        pd.testing.assert_frame_equal(one.transform(rows), chunked.transform(rows),
                                      check_exact=True)
    # a chunk larger than the data, and numpy input
    big = clone(one).set_params(batch_size=1000).fit(frame, y)
    _assert_same_result(a, big.explain(rows))


def test_batch_size_numpy_input_and_validation(fitted):
    clf, X, y = fitted
    ex = CounterfactualExplainer(clf, target="opposite", random_state=0).fit(X, y)
    a = ex.explain(X[:30])
    b = clone(ex).set_params(batch_size=4).fit(X, y).explain(X[:30])
    # torch's CPU forward of a single row (a matrix-vector product) may differ from the same
    # row's in a batch by one ulp; chunks of 4 leave rows searching alone, so floats may differ
    # in the last bit here (the chunked search itself is row by row)
    for name in ["targets", "valid", "converged", "n_iter", "target_index", "n_changed"]:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ["counterfactuals", "target_proba", "counterfactuals_model", "factuals_model"]:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-6,
                                   err_msg=name)
    with pytest.raises(ValueError, match="batch_size"):
        clone(ex).set_params(batch_size=0).fit(X, y)


def test_chunks_join_categories_in_order_of_appearance():
    from skct._utils import RowBlocks

    a = pd.DataFrame({"c": pd.Categorical(["a", "c"], categories=["a", "b", "c"])})
    b = pd.DataFrame({"c": pd.Categorical(["d", "a"], categories=["a", "b", "d"])}, index=[2, 3])
    blocks = RowBlocks(4)
    blocks.write(0, cf=a)
    blocks.write(2, cf=b)
    out = blocks.pop("cf", index=a.index.append(b.index))
    assert list(out["c"].cat.categories) == ["a", "b", "c", "d"]
    assert out["c"].tolist() == ["a", "c", "d", "a"] and list(out.index) == [0, 1, 2, 3]


@pytest.mark.parametrize("batch_size", [None, 4])
def test_result_arrays_are_the_users_to_modify(batch_size):
    # pandas' copy-on-write gave read-only views of its frames: a user's edit of the result
    # (or torch reading it) failed
    X, y = _data()
    clf = CounterfactualTrainedClassifier(**CONVENTIONAL, max_epochs=20, lr=0.01,
                                          random_state=0).fit(X, y)
    ex = CounterfactualExplainer(clf, target="opposite", batch_size=batch_size,
                                 random_state=0).fit(X, y)
    res = ex.explain(X[:10])
    arrays = {k: v for k, v in vars(res).items() if isinstance(v, np.ndarray)}
    assert "counterfactuals" in arrays
    assert all(v.flags.writeable for v in arrays.values()), \
        [k for k, v in arrays.items() if not v.flags.writeable]
    res.counterfactuals[0, 0] = 1.0
    assert ex.transform(X[:10]).flags.writeable
