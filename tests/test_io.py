"""skct.io: round trips of fitted objects, and files that must be refused without running code."""

import collections
import io
import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (FunctionTransformer, MinMaxScaler, OneHotEncoder,
                                   OrdinalEncoder, RobustScaler, StandardScaler)

from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
from skct.io import UnsafeFileError, UntrustedTypeError, get_untrusted_types, load, save

from conftest import make_blobs2d

SMALL = dict(max_epochs=4, n_counterfactuals=40, batch_size=32, random_state=0)


class MyNet(torch.nn.Module):
    """A user's own module: loaded only when trusted."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.lin = torch.nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.lin(X)


class Planted:
    """A pickle payload: unpickling it creates ``self.path`` (it must never exist)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def mixed_frame(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({"income": rng.randn(n) * 2 + 5, "age": rng.randint(18, 70, n).astype(float),
                      "city": rng.choice(["a", "b", "c"], n)})
    y = ((X["income"] > 5) ^ (X["city"] == "a")).astype(int).to_numpy()
    return X, y


def mixed_pipeline(**kw):
    pre = ColumnTransformer([("num", StandardScaler(), ["income", "age"]),
                             ("cat", OneHotEncoder(sparse_output=False), ["city"])], **kw)
    return Pipeline([("pre", pre), ("clf", CounterfactualTrainedClassifier(**SMALL))])


def roundtrip(obj, **load_kw):
    buf = io.BytesIO()
    save(obj, buf)
    return load(io.BytesIO(buf.getvalue()), **load_kw)


def assert_same_explanations(a, b):
    np.testing.assert_array_equal(a.valid, b.valid)
    np.testing.assert_array_equal(a.n_iter, b.n_iter)
    np.testing.assert_array_equal(a.target_index, b.target_index)
    np.testing.assert_array_equal(a.target_proba, b.target_proba)
    np.testing.assert_array_equal(a.counterfactuals_model, b.counterfactuals_model)
    if isinstance(a.counterfactuals, pd.DataFrame):
        pd.testing.assert_frame_equal(a.counterfactuals, b.counterfactuals)
    else:
        np.testing.assert_array_equal(a.counterfactuals, b.counterfactuals)


@pytest.fixture(scope="module")
def blobs_clf():
    X, y = make_blobs2d(120)
    return CounterfactualTrainedClassifier(**SMALL).fit(X, y), X, y


@pytest.fixture(scope="module")
def fitted_pipe():
    X, y = mixed_frame()
    return mixed_pipeline().fit(X, y), X, y


@pytest.fixture(scope="module")
def saved_file(tmp_path_factory, blobs_clf):
    path = tmp_path_factory.mktemp("io") / "clf.skct"
    save(blobs_clf[0], path)
    return path


# -- round trips --------------------------------------------------------------------------------
def test_classifier_roundtrip_identical(blobs_clf, tmp_path):
    clf, X, y = blobs_clf
    save(clf, tmp_path / "clf.skct")
    new = load(tmp_path / "clf.skct")
    assert type(new) is CounterfactualTrainedClassifier and new is not clf
    np.testing.assert_array_equal(new.predict(X), clf.predict(X))
    np.testing.assert_array_equal(new.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(new.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(new.classes_, clf.classes_)
    assert list(new.history_[:, "train_loss"]) == list(clf.history_[:, "train_loss"])
    assert new.get_params().keys() == clf.get_params().keys()
    # shared objects stay shared: the optimizer updates the module's own parameters
    params = {id(p) for p in new.net_.module_.parameters()}
    assert {id(p) for g in new.net_.optimizer_.param_groups for p in g["params"]} == params
    assert new.classes_ is new._label_encoder.classes_


def test_same_object_gives_same_bytes(blobs_clf):
    a, b = io.BytesIO(), io.BytesIO()
    save(blobs_clf[0], a)
    save(blobs_clf[0], b)
    assert a.getvalue() == b.getvalue()


def test_warm_start_continues_after_load(tmp_path):
    X, y = make_blobs2d(120)
    clf = CounterfactualTrainedClassifier(warm_start=True, **SMALL).fit(X, y)
    save(clf, tmp_path / "warm.skct")
    new = load(tmp_path / "warm.skct")
    clf.fit(X, y)
    new.fit(X, y)
    assert len(new.history_) == len(clf.history_) == 2 * SMALL["max_epochs"]
    np.testing.assert_array_equal(new.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(np.asarray(new.history_[:, "train_loss"]),
                                  np.asarray(clf.history_[:, "train_loss"]))


@pytest.mark.parametrize("generator", ["generic", "ecco", "revise"])
def test_explainer_roundtrip_same_counterfactuals(blobs_clf, generator):
    clf, X, y = blobs_clf
    explainer = CounterfactualExplainer(clf, generator=generator, max_iter=30,
                                        random_state=0).fit(X, y)
    new = roundtrip(explainer)
    assert new.estimator_ is new.estimator  # prefit: one estimator, shared
    assert_same_explanations(explainer.explain(X[:20]), new.explain(X[:20]))


def test_pipeline_roundtrip_identical(fitted_pipe):
    pipe, X, y = fitted_pipe
    new = roundtrip(pipe)
    assert isinstance(new, Pipeline) and isinstance(new[0], ColumnTransformer)
    np.testing.assert_array_equal(new.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(new.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(new[0].transform(X), pipe[0].transform(X))


def test_explainer_over_pipeline_roundtrip(fitted_pipe):
    pipe, X, y = fitted_pipe
    explainer = CounterfactualExplainer(pipe, random_state=0, max_iter=30).fit(X, y)
    new = roundtrip(explainer)
    assert_same_explanations(explainer.explain(X[:15]), new.explain(X[:15]))
    np.testing.assert_array_equal(new.estimator_.predict_proba(X), pipe.predict_proba(X))


def test_default_trusted_preprocessing_roundtrip():
    X, y = mixed_frame()
    pre = ColumnTransformer([("mm", MinMaxScaler(), ["income"]), ("rb", RobustScaler(), ["age"]),
                             ("ord", OrdinalEncoder(), ["city"])])
    fitted = pre.fit(X)
    np.testing.assert_array_equal(roundtrip(fitted).transform(X), fitted.transform(X))


def test_skorch_classifier_roundtrip(blobs):
    from skorch import NeuralNetClassifier

    X, y = blobs
    net = NeuralNetClassifier(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(-1)),
                              max_epochs=2, verbose=0).fit(X, y)
    np.testing.assert_array_equal(roundtrip(net).predict_proba(X), net.predict_proba(X))


def test_plain_values_roundtrip():
    shared = [1, 2]
    cyclic = []
    cyclic.append(cyclic)
    rs, gen, tgen = np.random.RandomState(3), np.random.default_rng(4), torch.Generator()
    tgen.manual_seed(5)
    value = {
        "floats": [float("nan"), float("inf"), -0.0, 1e-300], "shared": (shared, shared),
        (1, "a"): {3, 4}, "frozen": frozenset({"x"}), "od": collections.OrderedDict(b=1, a=2),
        "dd": collections.defaultdict(list, {1: [2]}), "slice": slice(1, None, 2),
        "bytes": b"\x00\xff", "complex": 1 + 2j, "cyclic": cyclic, "rs": rs,
        "gen": gen, "tgen": tgen,
        "scalars": [np.float32(0.1), np.int64(-3), np.bool_(True), np.str_("s")],
        "obj": np.array(["a", None, 3], dtype=object), "u": np.array(["ab", "c"]),
        "torch": [torch.float64, torch.device("cpu"), torch.Size([2, 3]), torch.arange(3.0)],
        "types": [np.float64, dict, torch.nn.Linear],
    }
    new = roundtrip(value)
    assert np.isnan(new["floats"][0]) and new["floats"][1:] == value["floats"][1:]
    assert new["shared"][0] is new["shared"][1] and new["cyclic"][0] is new["cyclic"]
    assert new[(1, "a")] == {3, 4} and new["frozen"] == frozenset({"x"})
    assert list(new["od"]) == ["b", "a"] and new["dd"]["new"] == []
    assert (new["slice"], new["bytes"], new["complex"]) == (slice(1, None, 2), b"\x00\xff", 1 + 2j)
    for a, b in zip(new["scalars"], value["scalars"]):
        assert type(a) is type(b) and a == b
    assert new["obj"].dtype == object and new["obj"].tolist() == ["a", None, 3]
    np.testing.assert_array_equal(new["u"], value["u"])
    assert new["torch"][:3] == value["torch"][:3]
    assert torch.equal(new["torch"][3], value["torch"][3])
    assert new["types"] == value["types"]
    assert new["rs"].rand() == rs.rand() and new["gen"].random() == gen.random()
    assert torch.equal(torch.rand(3, generator=new["tgen"]), torch.rand(3, generator=tgen))


# -- trust ---------------------------------------------------------------------------------------
def test_user_module_needs_trust(tmp_path):
    X, y = make_blobs2d(100)
    clf = CounterfactualTrainedClassifier(MyNet, module__n_features=2, module__n_classes=2,
                                          **SMALL).fit(X, y)
    save(clf, tmp_path / "mine.skct")
    with pytest.raises(UntrustedTypeError, match=r"MyNet.*trusted=\[MyNet\]") as info:
        load(tmp_path / "mine.skct")
    assert any(n.endswith(":MyNet") for n in info.value.names)
    names = get_untrusted_types(tmp_path / "mine.skct")
    assert names == [f"{MyNet.__module__}.MyNet"]
    for trusted in ([MyNet], names):
        new = load(tmp_path / "mine.skct", trusted=trusted)
        np.testing.assert_array_equal(new.predict_proba(X), clf.predict_proba(X))


def test_function_transformer_not_trusted_by_default():
    X, y = mixed_frame()
    pre = ColumnTransformer([("num", StandardScaler(), ["income"])],
                            remainder="passthrough").fit(X[["income", "age"]])
    buf = io.BytesIO()
    save(pre, buf)
    with pytest.raises(UntrustedTypeError, match="FunctionTransformer"):
        load(io.BytesIO(buf.getvalue()))
    new = load(io.BytesIO(buf.getvalue()), trusted=[FunctionTransformer])
    np.testing.assert_array_equal(new.transform(X[["income", "age"]]),
                                  pre.transform(X[["income", "age"]]))


def test_trusted_must_be_classes_or_names(saved_file):
    with pytest.raises(TypeError, match="trusted"):
        load(saved_file, trusted=[42])


def _log(x):
    return x


@pytest.mark.parametrize("func, what", [(lambda x: x, "a lambda"), (_log, "_log"),
                                        (np.log1p, "log1p")])
def test_save_refuses_code_naming_the_path(func, what, tmp_path):
    pipe = make_pipeline(FunctionTransformer(func), StandardScaler())
    with pytest.raises(TypeError, match=rf"obj\.steps\[0\]\[1\]\.func.*{what}.*never code"):
        save(pipe, tmp_path / "pipe.skct")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_save_refuses_non_data(tmp_path):
    class Local:
        pass

    with open(tmp_path / "f.txt", "w") as handle:
        with pytest.raises(TypeError, match=r"obj\['handle'\]"):
            save({"handle": handle}, io.BytesIO())
    with pytest.raises(TypeError, match="inside a function"):
        save([Local()], io.BytesIO())


# -- tampered files ------------------------------------------------------------------------------
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info.filename) for info in zf.infolist()}


def _write(members, path):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tamper(src, dst, *, root=None, replace=None, extra=None, fix_checksums=True, edit=None):
    """A copy of ``src`` with members replaced/added and the manifest edited."""
    import hashlib

    members = _members(src)
    manifest = json.loads(members.pop("manifest.json"))
    members.update(replace or {})
    if root is not None:
        manifest["root"] = root
    if edit is not None:
        edit(manifest)
    if fix_checksums:
        manifest["members"] = {k: hashlib.sha256(v).hexdigest() for k, v in members.items()
                               if k in ("arrays.npz", "tensors.pt")}
    out = {"manifest.json": json.dumps(manifest).encode(), **members, **(extra or {})}
    return _write(out, dst)


def test_checksum_mismatch(saved_file, tmp_path):
    data = bytearray(_members(saved_file)["tensors.pt"])
    data[-30] ^= 0xFF
    bad = _tamper(saved_file, tmp_path / "bad.skct", replace={"tensors.pt": bytes(data)},
                  fix_checksums=False)
    with pytest.raises(UnsafeFileError, match="Checksum mismatch for 'tensors.pt'"):
        load(bad)


def test_unknown_type_tag(saved_file, tmp_path):
    root = {"$": "pickle", "v": "gASVCAAAAAAAAACMBHRlc3SULg=="}
    with pytest.raises(UnsafeFileError, match="Unknown type tag 'pickle'"):
        load(_tamper(saved_file, tmp_path / "bad.skct", root=root))


def test_planted_payload_is_live(tmp_path):
    """The payload used below does run when unpickled, so its absence proves it did not run."""
    pickle.loads(pickle.dumps(Planted(tmp_path / "control"))).close()
    assert (tmp_path / "control").exists()


def test_planted_pickle_member_does_not_run(saved_file, tmp_path):
    marker = tmp_path / "pwned"
    bad = _tamper(saved_file, tmp_path / "bad.skct",
                  extra={"payload.pkl": pickle.dumps(Planted(marker))})
    with pytest.raises(UnsafeFileError, match="unexpected member 'payload.pkl'"):
        load(bad)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_planted_pickle_in_data_members_does_not_run(saved_file, tmp_path):
    marker = tmp_path / "pwned"
    tensors, arrays = io.BytesIO(), io.BytesIO()
    torch.save({"t0": Planted(marker)}, tensors)
    np.savez(arrays, a0=np.array([Planted(marker)], dtype=object))
    for name, blob, match in [("tensors.pt", tensors, "weights_only"),
                              ("arrays.npz", arrays, "allow_pickle=False")]:
        bad = _tamper(saved_file, tmp_path / f"bad-{name}", replace={name: blob.getvalue()})
        with pytest.raises(UnsafeFileError, match=match):
            load(bad)
        assert not marker.exists()
    marker_pickle = pickle.dumps(Planted(marker))  # checked first: the bytes do unpickle...
    with pytest.raises(UnsafeFileError, match="weights_only"):
        load(_tamper(saved_file, tmp_path / "raw.skct", replace={"tensors.pt": marker_pickle}))
    assert not marker.exists()


def test_skorch_unpickling_hook_is_never_called(saved_file, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Planted(marker))
    root = {"$": "object", "id": 0, "type": "skorch.net:NeuralNet", "state": [
        ["__cuda_dependent_attributes__", {"$": "bytes", "v": __import__("base64").b64encode(
            payload).decode()}], ["device", "cpu"]]}
    net = load(_tamper(saved_file, tmp_path / "bad.skct", root=root))
    assert isinstance(net.__dict__["__cuda_dependent_attributes__"], bytes)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/../../x", "..\\x"])
def test_path_traversal_member(saved_file, tmp_path, name):
    bad = _tamper(saved_file, tmp_path / "bad.skct", extra={name: b"x"})
    with pytest.raises(UnsafeFileError, match="path traversal"):
        load(bad)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("root, shown", [
    ({"$": "object", "id": 0, "type": "os:system", "state": []}, "os.system"),
    ({"$": "type", "name": "builtins:eval"}, "builtins.eval"),
    ({"$": "func", "name": "builtins:eval"}, "builtins.eval"),
    ({"$": "partial", "func": {"$": "func", "name": "builtins:exec"},
      "args": ["open('MARKER', 'w')"], "kw": []}, "builtins.exec"),
    ({"$": "defaultdict", "id": 0, "factory": {"$": "type", "name": "posix:system"}, "v": []},
     "posix.system"),
])
def test_manifest_naming_a_forbidden_callable(saved_file, tmp_path, root, shown):
    marker = tmp_path / "pwned"
    root = json.loads(json.dumps(root).replace("MARKER", str(marker)))
    with pytest.raises(UntrustedTypeError, match=shown.replace(".", r"\.")):
        load(_tamper(saved_file, tmp_path / "bad.skct", root=root))
    assert not marker.exists()


@pytest.mark.parametrize("root", [
    {"$": "object", "id": 0, "type": "skct.io._archive:os.system", "state": []},
    {"$": "type", "name": "skct.io._archive:os.system"},
    {"$": "object", "id": 0, "type": "torch.nn.modules.module:torch.Tensor", "state": []},
    {"$": "object", "id": 0, "type": "numpy:float64", "state": []},
])
def test_alias_inside_a_trusted_package_is_refused(saved_file, tmp_path, root):
    with pytest.raises(UnsafeFileError):
        load(_tamper(saved_file, tmp_path / "bad.skct", root=root))


@pytest.mark.parametrize("root, match", [
    ({"$": "ref", "id": 5}, "not defined before"),
    ({"$": "list", "id": 0, "v": [{"$": "list", "id": 0, "v": []}]}, "defined twice"),
    ({"$": "ndarray", "id": 0, "key": "nope"}, "not in arrays.npz"),
    ({"$": "list", "id": "0", "v": []}, "wrong type"),
    ([1, 2], "tagged node"),
])
def test_malformed_graph(saved_file, tmp_path, root, match):
    with pytest.raises(UnsafeFileError, match=match):
        load(_tamper(saved_file, tmp_path / "bad.skct", root=root))


def test_not_a_skct_file(tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps(Planted(tmp_path / "pwned")))
    with pytest.raises(UnsafeFileError, match="not a zip"):
        load(tmp_path / "x.pkl")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(UnsafeFileError, match="no manifest.json"):
        load(_write({"arrays.npz": b""}, tmp_path / "y.skct"))


def test_newer_format_and_other_versions(saved_file, tmp_path):
    def newer(m):
        m["format_version"] = 99

    with pytest.raises(UnsafeFileError, match="format version 99"):
        load(_tamper(saved_file, tmp_path / "new.skct", edit=newer))

    def older(m):
        m["versions"]["scikit-learn"] = "0.1"

    with pytest.warns(UserWarning, match="scikit-learn 0.1"):
        load(_tamper(saved_file, tmp_path / "old.skct", edit=older))
