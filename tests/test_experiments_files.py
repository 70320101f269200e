"""The experiment results folder: plain formats, verified reuse, no symbolic link followed."""

import hashlib
import io
import json
import pickle
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import FunctionTransformer

from skct import io as skct_io
from skct.experiments import run_experiment
from skct.experiments._checkpoints import PART_FORMAT, read_part, write_part
from skct.experiments._files import ResultsFolder, frame_from_json, frame_to_json
from skct.experiments._stages import Computed, Stage, Unusable, run_stage
from skct.experiments._training import load_model

SMALL = dict(max_epochs=2, n_runs=2, n_factuals=4, lambda_energies=[5.0], verbose=0,
             plots=False, evaluation={"n_bootstrap": 50, "n_attack": 50, "n_sensitivity": 20,
                                      "pgd_steps": 3})
DATASET = "linearly_separable"


class _Planted:
    """A pickle that writes a file when loaded (what a planted checkpoint could do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    return out, res


@pytest.fixture
def results(finished, tmp_path):
    """A private copy of a finished results folder (links copied as links)."""
    out = tmp_path / "results"
    shutil.copytree(finished[0], out, symlinks=True)
    return out, finished[1]


def _numbers(res):
    return json.dumps({k: res[k] for k in ("reductions", "validity_difference")},
                      sort_keys=True)


# -- formats -----------------------------------------------------------------------------


def test_frames_round_trip_exactly():
    df = pd.DataFrame({"experiment": ["single", "mutability"], "run": np.array([0, 1]),
                       "valid": [True, False],
                       "cost": np.array([0.1, np.nan], dtype=np.float32),
                       "ip": np.array([1 / 3, 2e-300])})
    back = frame_from_json(json.loads(json.dumps(frame_to_json(df))))
    pd.testing.assert_frame_equal(back, df)
    assert back["cost"].dtype == np.float32 and back["valid"].dtype == bool


@pytest.mark.parametrize("table", [
    {"columns": ["a"], "dtypes": ["category"], "data": [[1]]},
    {"columns": ["a"], "dtypes": ["str"], "data": [[1]]},
    {"columns": ["a", "b"], "dtypes": ["int64", "int64"], "data": [[1], [1, 2]]},
    {"columns": ["a"], "dtypes": ["int64"], "data": [[{"__reduce__": 1}]]},
    ["not", "a", "table"],
])
def test_malformed_tables_are_rejected(table):
    with pytest.raises(ValueError):
        frame_from_json(table)


def test_stage_reuses_only_verified_files(tmp_path):
    folder = ResultsFolder(tmp_path / "r")
    stage = Stage("demo", "demo.json", {"x": 1})
    calls = []

    def compute():
        calls.append(1)
        return Computed({"n": len(calls)}, files={"data/blob.bin": b"payload"})

    first = run_stage(folder, stage, compute)
    again = run_stage(folder, stage, compute)
    assert not first.skipped and again.skipped and again.files == {"data/blob.bin": b"payload"}
    (tmp_path / "r" / "data" / "blob.bin").write_bytes(b"tampered")
    third = run_stage(folder, stage, compute)  # digest mismatch: recomputed, file rewritten
    assert not third.skipped and third.value == {"n": 2}
    assert (tmp_path / "r" / "data" / "blob.bin").read_bytes() == b"payload"
    other = run_stage(folder, Stage("demo", "demo.json", {"x": 2}), compute)
    assert not other.skipped  # other inputs, other fingerprint


def test_stage_recomputes_when_restore_finds_its_files_unusable(tmp_path):
    folder = ResultsFolder(tmp_path / "r")
    stage = Stage("demo", "demo.json", {"x": 1})
    run_stage(folder, stage, lambda: Computed({"n": 1}, files={"old.bin": b"old"}))

    def restore(value, files):
        if "new.bin" not in files:
            raise Unusable("its record lists no new.bin")
        return files["new.bin"]

    logged = []
    res = run_stage(folder, stage, lambda: Computed({"n": 2}, files={"new.bin": b"new"}),
                    restore=restore, log=logged.append)
    assert not res.skipped and res.rejected == "its record lists no new.bin"
    assert logged == ["demo: found demo.json but its record lists no new.bin; recomputing"]
    again = run_stage(folder, stage, None, restore=restore, log=logged.append)
    assert again.skipped and again.obj == b"new" and again.rejected is None and len(logged) == 1


def test_history_summary_of_an_interrupted_fit():
    from types import SimpleNamespace

    from skct.experiments._training import history_summary

    assert history_summary(SimpleNamespace(history_=[])) == {"epochs": 0}
    rows = [{"epoch": 1, "train_loss": 0.5, "train_ce": 0.4, "cf_valid": 0.5},
            {"epoch": 2, "train_ce": 0.3}]  # Ctrl-C in epoch 2: its row has no train_loss
    assert history_summary(SimpleNamespace(history_=rows)) == {
        "epochs": 1, "train_loss_last": 0.5, "train_ce_last": 0.4, "cf_valid_first": 0.5,
        "cf_valid_last": 0.5}


def test_writes_replace_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = ResultsFolder(tmp_path / "r")
    (tmp_path / "r" / "out.json").symlink_to(victim)
    folder.write_json("out.json", {"a": 1})
    assert victim.read_text() == "precious"
    assert not (tmp_path / "r" / "out.json").is_symlink()
    assert json.loads((tmp_path / "r" / "out.json").read_text()) == {"a": 1}
    # a link planted at a file we read counts as missing
    (tmp_path / "r" / "in.json").symlink_to(victim)
    assert folder.read_bytes("in.json") is None
    # a linked directory inside the folder is refused, for writing and reading alike
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "r" / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        folder.write_bytes("sub/x.bin", b"x")
    with pytest.raises(ValueError, match="symbolic link"):
        folder.read_bytes("sub/x.bin")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    with pytest.raises(ValueError, match="inside the results folder"):
        folder.write_bytes("../escape.txt", b"x")
    (tmp_path / "link").symlink_to(tmp_path / "r", target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        ResultsFolder(tmp_path / "link")


def test_checkpoints_round_trip_and_reject_tampering(tmp_path):
    folder = ResultsFolder(tmp_path)
    rows = pd.DataFrame({c: [] for c in ("experiment", "model", "lambda_energy", "factual",
                                         "target", "run", "row", "valid", "converged", "cost",
                                         "implausibility", "target_proba", "n_iter")})
    cells = pd.DataFrame({c: [] for c in ("experiment", "model", "lambda_energy", "target",
                                          "run", "n", "n_valid", "mmd")})
    write_part(folder, "fp", "task", (rows, cells, 1.5))
    logged = []
    back = read_part(folder, "fp", "task", logged.append)
    assert back[2] == 1.5 and list(back[0].columns) == list(rows.columns)
    assert read_part(folder, "other-fp", "task", logged.append) is None
    path = tmp_path / "evaluation" / "tasks" / "task.json"
    record = json.loads(path.read_text())
    record["fingerprint"] = "forged"
    path.write_text(json.dumps(record))
    assert read_part(folder, "fp", "task", logged.append) is None
    assert "written for other settings" in logged[-1]
    path.write_bytes(pickle.dumps({"format": PART_FORMAT}))
    assert read_part(folder, "fp", "task", logged.append) is None
    assert "not a readable JSON file" in logged[-1]


# -- the runner ----------------------------------------------------------------------------


def test_stale_checkpoints_are_removed_without_following_links(results, tmp_path):
    out, first = results
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    (victim / "keep2.txt").write_text("precious")
    evaluation = out / DATASET / "evaluation"
    (evaluation / "parts-linked").symlink_to(victim, target_is_directory=True)
    (evaluation / "parts-old").mkdir()
    (evaluation / "parts-old" / "link.json").symlink_to(victim / "keep2.txt")
    (evaluation / "meta.json").unlink()  # the evaluation runs again (same settings)
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert "evaluate" not in res["skipped"]
    assert (victim / "keep.txt").read_text() == "precious"
    assert (victim / "keep2.txt").read_text() == "precious"
    assert not any(p.name.startswith("parts-") for p in evaluation.iterdir())
    assert _numbers(res) == _numbers(first)


def test_results_are_not_written_through_links(results, tmp_path):
    out, first = results
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    root = out / DATASET
    (root / "results.json.tmp").symlink_to(victim)
    (root / "robustness.json").unlink()
    (root / "robustness.json").symlink_to(victim)
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert victim.read_text() == "precious"
    assert "robustness" not in res["skipped"]  # a linked record is not reused
    for name in ("results.json", "robustness.json"):
        assert (root / name).is_file() and not (root / name).is_symlink()
    assert _numbers(res) == _numbers(first)


def test_planted_checkpoints_never_run(results, tmp_path):
    out, first = results
    marker = tmp_path / "marker.txt"
    planted = tmp_path / "planted.joblib"
    joblib.dump(_Planted(marker), planted)
    joblib.load(planted)  # the file does run code when unpickled ...
    assert marker.exists()
    marker.unlink()
    evaluation = out / DATASET / "evaluation"
    fp = json.loads((evaluation / "meta.json").read_text())["fingerprint"]
    (evaluation / "meta.json").unlink()
    parts = evaluation / "tasks"
    parts.mkdir(exist_ok=True)
    shutil.copy(planted, parts / "single_baseline_5.joblib")  # the old checkpoint format
    shutil.copy(planted, parts / "single_ct_single_5.json")
    (parts / "mutability_baseline_5.json").write_text(json.dumps(
        {"format": PART_FORMAT, "fingerprint": fp, "key": "mutability_baseline_5",
         "time_s": 0.0, "per_row": {"columns": ["x"], "dtypes": ["category"], "data": [[1]]},
         "per_cell": {}}))
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert not marker.exists()  # ... but never here: rejected and recomputed
    assert _numbers(res) == _numbers(first)


def _pickle_bytes(marker):
    buffer = io.BytesIO()
    joblib.dump(_Planted(marker), buffer)
    return buffer.getvalue()


def _rerun_loud(out, capsys):
    capsys.readouterr()
    res = run_experiment(DATASET, out_dir=out, **{**SMALL, "verbose": 1})
    return res, capsys.readouterr().out


def test_changed_model_file_is_retrained_not_loaded(results, tmp_path):
    out, first = results
    marker = tmp_path / "marker.txt"
    model = out / DATASET / "models" / "baseline.skct"
    model.write_bytes(_pickle_bytes(marker))
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert not marker.exists()
    assert "train_baseline" not in res["skipped"] and "train_ct_single" in res["skipped"]
    assert skct_io.load(model).__class__.__name__ == "CounterfactualTrainedClassifier"
    assert _numbers(res) == _numbers(first)


def test_planted_model_pickle_never_runs(finished, results, tmp_path, capsys):
    # regression: a record naming models/baseline.pkl with its digest made the runner
    # joblib.load the pickle on resume (which ran the planted code)
    out, first = results
    marker = tmp_path / "marker.txt"
    planted = _pickle_bytes(marker)
    joblib.load(io.BytesIO(planted))  # the payload does run when unpickled ...
    assert marker.exists()
    marker.unlink()
    models = out / DATASET / "models"
    record = json.loads((models / "baseline.json").read_text())
    record["files"] = {"models/baseline.pkl": hashlib.sha256(planted).hexdigest()}
    (models / "baseline.json").write_text(json.dumps(record))  # the former layout
    (models / "baseline.pkl").write_bytes(planted)
    (models / "baseline.skct").unlink()
    (models / "ct_single.pkl").write_bytes(planted)  # a stray pickle next to a valid model
    res, printed = _rerun_loud(out, capsys)
    assert not marker.exists()  # ... but never here: the model is retrained
    assert "train_baseline" not in res["skipped"] and "train_ct_single" in res["skipped"]
    assert "evaluate" in res["skipped"]  # same settings, same fingerprints: results reused
    assert "removed models/baseline.pkl" in printed and "without loading it" in printed
    assert "removed models/ct_single.pkl" in printed
    assert not list(models.glob("*.pkl"))
    clf = skct_io.load(models / "baseline.skct")
    assert clf.__class__.__name__ == "CounterfactualTrainedClassifier"
    assert _numbers(res) == _numbers(first)
    # the evaluation was reused: the retrained model is the one it was computed with
    original = skct_io.load(finished[0] / DATASET / "models" / "baseline.skct")
    X = np.random.RandomState(0).randn(20, 2)
    np.testing.assert_array_equal(clf.predict_proba(X), original.predict_proba(X))


def test_a_record_without_the_model_file_is_unusable():
    with pytest.raises(Unusable, match="lists no models/baseline.skct"):
        load_model("baseline", {"models/baseline.pkl": b"not loaded"})
    with pytest.raises(Unusable, match="was refused"):
        load_model("baseline", {"models/baseline.skct": b"not a zip"})


def test_refused_model_file_is_retrained(results, capsys):
    # a file whose digest was forged along with it, holding a class skct.io does not trust
    out, first = results
    models = out / DATASET / "models"
    buffer = io.BytesIO()
    skct_io.save(FunctionTransformer(), buffer)
    (models / "baseline.skct").write_bytes(buffer.getvalue())
    record = json.loads((models / "baseline.json").read_text())
    record["files"] = {"models/baseline.skct": hashlib.sha256(buffer.getvalue()).hexdigest()}
    (models / "baseline.json").write_text(json.dumps(record))
    res, printed = _rerun_loud(out, capsys)
    assert "train_baseline" not in res["skipped"]
    assert "models/baseline.skct was refused" in printed and "FunctionTransformer" in printed
    assert skct_io.load(models / "baseline.skct").__class__.__name__ == \
        "CounterfactualTrainedClassifier"
    assert _numbers(res) == _numbers(first)


def test_changed_evaluation_table_is_recomputed(results):
    out, first = results
    rows = out / DATASET / "evaluation" / "counterfactuals.csv.gz"
    df = pd.read_csv(rows)
    df["cost"] = 0.0
    df.to_csv(rows, index=False)
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert "evaluate" not in res["skipped"]
    assert _numbers(res) == _numbers(first)
