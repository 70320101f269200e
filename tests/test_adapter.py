"""ModelAdapter and the fitted preprocessing column by column (ModelEncoding)."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler,
                                   OneHotEncoder, OrdinalEncoder, PolynomialFeatures,
                                   PowerTransformer, RobustScaler, StandardScaler)

from skct import CounterfactualTrainedClassifier
from skct.explain import ModelAdapter, to_logits_module
from skct.explain._encoding import encoding_of


@pytest.fixture
def raw():
    rng = np.random.RandomState(0)
    n = 40
    return pd.DataFrame({
        "amount": rng.gamma(2.0, 100.0, n),
        "count": rng.randint(0, 6, n),
        "rate": rng.uniform(-3, 3, n),
        "job": rng.choice(["a", "b", "c", "d"], n).astype(object),
        "sex": rng.choice(["F", "M"], n).astype(object),
        "grade": rng.choice(["low", "mid", "high"], n).astype(object),
    })


def _affine_roundtrip(enc, Z, X, cols):
    for k in np.flatnonzero(enc.role == "affine"):
        j = enc.feature_id[k]
        np.testing.assert_allclose(Z[:, k] * enc.scale[k] + enc.offset[k],
                                   X.iloc[:, j].to_numpy(float), rtol=1e-10, atol=1e-9)
        assert X.columns[j] in cols


@pytest.mark.parametrize("scalers", [
    [StandardScaler()], [MinMaxScaler()], [RobustScaler()], [MaxAbsScaler()],
    [StandardScaler(), MinMaxScaler(feature_range=(-1, 1))],
    [FunctionTransformer(), RobustScaler(with_centering=False)],
    [StandardScaler(with_mean=False)], [MinMaxScaler(clip=True)],
])
def test_affine_steps_compose(raw, scalers):
    num = ["amount", "count", "rate"]
    pre = make_pipeline(ColumnTransformer([("num", make_pipeline(*scalers), num)])).fit(raw)
    enc = encoding_of(pre, raw)
    Z = pre.transform(raw)
    assert enc.role.tolist() == ["affine"] * 3 and enc.feature_id.tolist() == [0, 1, 2]
    _affine_roundtrip(enc, Z, raw, num)
    assert enc.n_features_in == 6 and enc.groups == []


def test_onehot_variants(raw):
    ct = ColumnTransformer([
        ("plain", OneHotEncoder(sparse_output=False), ["job"]),
        ("first", OneHotEncoder(drop="first", sparse_output=False), ["grade"]),
        ("binary", OneHotEncoder(drop="if_binary", sparse_output=False), ["sex"]),
    ])
    pre = make_pipeline(ct).fit(raw)
    enc = encoding_of(pre, raw, names=pre.get_feature_names_out())
    assert enc.feature_id.tolist() == [3, 3, 3, 3, 5, 5, 4]
    assert enc.role.tolist() == ["onehot"] * 6 + ["code"]
    assert [g.tolist() for g in enc.groups] == [[0, 1, 2, 3], [4, 5]]
    assert enc.group_has_dropped == [False, True]
    assert enc.n_codes[6] == 2 and enc.scale[6] == 1.0 and enc.offset[6] == 0.0
    assert enc.names[0] == "plain__job_a"
    assert enc.group_of(3) == 0 and enc.group_of(0) is None
    np.testing.assert_array_equal(enc.columns_of(5), [4, 5])


def test_onehot_with_infrequent_levels(raw):
    X = raw.copy()
    X.loc[:2, "job"] = "rare"
    pre = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(
        min_frequency=4, sparse_output=False), ["job"])])).fit(X)
    enc = encoding_of(pre, X)
    assert len(enc.groups[0]) == pre.transform(X).shape[1]


def test_ordinal_encoder_then_scaler_is_a_code(raw):
    pre = make_pipeline(ColumnTransformer([("ord", make_pipeline(
        OrdinalEncoder(categories=[["low", "mid", "high"]]), StandardScaler()), ["grade"])]))
    pre.fit(raw)
    enc = encoding_of(pre, raw)
    Z = pre.transform(raw)
    assert enc.role.tolist() == ["code"] and enc.n_codes.tolist() == [3]
    codes = raw["grade"].map({"low": 0, "mid": 1, "high": 2}).to_numpy(float)
    np.testing.assert_allclose(Z[:, 0] * enc.scale[0] + enc.offset[0], codes, atol=1e-12)


def test_steps_that_cannot_be_mapped(raw):
    num = ["amount", "count", "rate"]
    pre = make_pipeline(ColumnTransformer([
        ("pow", PowerTransformer(), ["amount"]),
        ("pca", PCA(n_components=2), ["count", "rate"]),
        ("cat", OneHotEncoder(sparse_output=False), ["sex"]),
    ]), StandardScaler()).fit(raw)
    enc = encoding_of(pre, raw)
    assert enc.role.tolist() == ["other"] * 5  # the final scaler breaks the one-hot group
    assert enc.feature_id[0] == 0  # column by column: the user column is kept
    assert (enc.feature_id[1:3] >= 6).all() and enc.feature_id[1] != enc.feature_id[2]
    assert enc.groups == []
    assert "PowerTransformer" in enc.where[0] and "PCA" in enc.where[1]
    assert num  # the numeric columns all went through steps skct cannot map


def test_remainder_passthrough_and_dropped_columns(raw):
    ct = ColumnTransformer([("num", StandardScaler(), ["amount"]),
                            ("gone", "drop", ["job"])], remainder="passthrough")
    X = raw[["amount", "count", "rate", "job"]]
    pre = make_pipeline(ct).fit(X)
    enc = encoding_of(pre, X)
    assert enc.feature_id.tolist() == [0, 1, 2]
    _affine_roundtrip(enc, pre.transform(X), X, ["amount", "count", "rate"])


def test_no_preprocessing_is_the_identity():
    enc = encoding_of(None, np.zeros((3, 4)))
    assert enc.feature_id.tolist() == [0, 1, 2, 3] and set(enc.role) == {"affine"}


def _pipe(raw, ct):
    X = raw[["amount", "count", "job"]]
    y = (X["amount"] > X["amount"].median()).astype(int).to_numpy()
    pipe = make_pipeline(ct, CounterfactualTrainedClassifier(
        lambda_div=0, lambda_adv=0, lambda_reg=0, max_epochs=2, random_state=0)).fit(X, y)
    return pipe, X


def test_model_adapter_spaces_and_inverse(raw):
    ct = ColumnTransformer([("num", StandardScaler(), ["amount", "count"]),
                            ("cat", OneHotEncoder(sparse_output=False), ["job"])])
    pipe, X = _pipe(raw, ct)
    adapter = ModelAdapter(pipe)
    Z = adapter.transform(X)
    assert Z.dtype == np.float64 and Z.shape == (len(X), 6)
    back = adapter.inverse_transform(Z, X)
    assert list(back.columns) == list(X.columns) and (back.index == X.index).all()
    np.testing.assert_allclose(back["amount"].to_numpy(float), X["amount"])
    assert (back["job"] == X["job"]).all()
    arr = adapter.inverse_transform(Z, X.to_numpy())
    assert isinstance(arr, np.ndarray) and arr.shape == X.shape
    assert adapter.encoding(X).names.tolist()[:2] == ["num__amount", "num__count"]
    proba = adapter.predict_proba_model(Z)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert adapter.classes_.tolist() == [0, 1]


def test_model_adapter_refuses_what_it_cannot_invert(raw):
    ct = ColumnTransformer([("num", StandardScaler(), ["amount", "count"]),
                            ("cat", OneHotEncoder(sparse_output=False), ["job"])])
    pipe, X = _pipe(raw, ct)
    pipe.steps.insert(1, ("poly", PolynomialFeatures().fit(ct.transform(X))))
    with pytest.raises(TypeError, match=r"'poly' \(PolynomialFeatures\) has no "
                                        "inverse_transform"):
        ModelAdapter(pipe)
    with pytest.raises(TypeError, match="torch-backed"):
        to_logits_module(object())
    module = torch.nn.Linear(2, 2)
    assert to_logits_module(module) is module


def test_model_adapter_without_a_torch_module(raw):
    from sklearn.linear_model import LogisticRegression

    from skct.search import ProbaLogits

    ct = ColumnTransformer([("num", StandardScaler(), ["amount", "count"]),
                            ("cat", OneHotEncoder(sparse_output=False), ["job"])])
    y = (raw["amount"] > raw["amount"].median()).astype(int)
    pipe = make_pipeline(ct, LogisticRegression()).fit(raw, y)
    with pytest.raises(TypeError, match="generator='gradient_free'"):
        ModelAdapter(pipe)
    adapter = ModelAdapter(pipe, gradients=False)
    assert isinstance(adapter.module, ProbaLogits) and not adapter.differentiable
    assert adapter.dtype == torch.float64
    Z = adapter.transform(raw)
    np.testing.assert_allclose(adapter.predict_proba_model(Z), pipe.predict_proba(raw),
                               rtol=1e-12, atol=1e-12)
