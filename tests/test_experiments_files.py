"""The experiment results folder: plain formats, verified reuse, no symbolic link followed."""

import json
import pickle
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from skct.experiments import run_experiment
from skct.experiments._checkpoints import PART_FORMAT, read_part, write_part
from skct.experiments._files import ResultsFolder, frame_from_json, frame_to_json
from skct.experiments._stages import Computed, Stage, run_stage

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
    path = tmp_path / "evaluation" / "parts-fp" / "task.json"
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
    parts = evaluation / f"parts-{fp}"
    parts.mkdir()
    shutil.copy(planted, parts / "single_baseline_5.joblib")  # the old checkpoint format
    shutil.copy(planted, parts / "single_ct_single_5.json")
    (parts / "mutability_baseline_5.json").write_text(json.dumps(
        {"format": PART_FORMAT, "fingerprint": fp, "key": "mutability_baseline_5",
         "time_s": 0.0, "per_row": {"columns": ["x"], "dtypes": ["category"], "data": [[1]]},
         "per_cell": {}}))
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert not marker.exists()  # ... but never here: rejected and recomputed
    assert _numbers(res) == _numbers(first)


def test_changed_model_file_is_retrained_not_loaded(results, tmp_path):
    out, first = results
    marker = tmp_path / "marker.txt"
    model = out / DATASET / "models" / "baseline.pkl"
    joblib.dump(_Planted(marker), model)
    res = run_experiment(DATASET, out_dir=out, **SMALL)
    assert not marker.exists()
    assert "train_baseline" not in res["skipped"] and "train_ct_single" in res["skipped"]
    assert joblib.load(model).__class__.__name__ == "CounterfactualTrainedClassifier"
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
