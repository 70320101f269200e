"""The experiment runner end to end on a small synthetic set: API, resuming, CLI, report."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skct.cli import main
from skct.experiments import (
    DATASET_NAMES,
    PAPER_AVERAGES,
    PAPER_RESULTS,
    PAPER_SETTINGS,
    bootstrap_reduction,
    load_experiment_data,
    paper_settings,
    run_experiment,
    write_results_markdown,
)

REPO = Path(__file__).resolve().parents[1]

#: A tiny budget: 3 epochs, one generator, 2 runs of 6 factuals, few bootstrap resamples.
SMALL = dict(max_epochs=3, n_runs=2, n_factuals=6, lambda_energies=[5.0], verbose=0,
             evaluation={"n_bootstrap": 200, "n_attack": 200, "n_sensitivity": 50,
                         "pgd_steps": 5})
SMALL_ARGS = ["--max-epochs", "3", "--n-runs", "2", "--n-factuals", "6", "--lambda-energy",
              "5", "--n-bootstrap", "200", "--no-plots"]


def _finite(x):
    return x is not None and math.isfinite(x)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    res = run_experiment("linearly_separable", out_dir=out, **SMALL)
    return out, res


def test_settings_tables():
    assert set(PAPER_SETTINGS) == set(DATASET_NAMES) == set(PAPER_RESULTS)
    s = paper_settings("adult")
    assert (s["batch_size"], s["decision_threshold"], s["n_counterfactuals"],
            s["lambda_reg"]) == (1000, 0.75, 5000, 0.25)
    assert (s["lambda_div"], s["lambda_adv"], s["epsilon"], s["max_iter_cf"],
            s["max_epochs"], s["lr"], tuple(s["hidden_layer_sizes"])) == \
        (0.5, 0.25, 0.3, 30, 100, 1e-3, (32,))
    assert paper_settings("gmsc")["lambda_reg"] == 0.5
    assert paper_settings("moons")["decision_threshold"] == 0.9
    # the paper's per-data-set numbers average to its reported averages
    for metric, avg in PAPER_AVERAGES.items():
        mean = np.mean([PAPER_RESULTS[d][metric][0] for d in DATASET_NAMES])
        assert abs(mean - avg) < 0.05
    with pytest.raises(ValueError, match="Unknown data set"):
        paper_settings("nope")


def test_load_experiment_data_synthetic():
    d = load_experiment_data("circles", n_samples=200, random_state=1)
    assert d.X_train.shape == (160, 2) and d.X_test.shape == (40, 2)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.immutable == [0] and d.categorical == []


def test_bootstrap_reduction():
    rng = np.random.default_rng(0)
    bl = {"a": rng.normal(2.0, 0.1, 200), "b": rng.normal(4.0, 0.1, 200)}
    ct = {"a": rng.normal(1.0, 0.1, 200), "b": rng.normal(2.0, 0.1, 200), "c": [1.0]}
    r = bootstrap_reduction(bl, ct, n_resamples=300, confidence=0.99, random_state=0)
    assert r["n_strata"] == 2  # "c" is only in CT
    assert abs(r["estimate"] - 50.0) < 2.0
    assert r["ci_low"] <= r["estimate"] <= r["ci_high"] and r["significant"]
    same = bootstrap_reduction({"a": bl["a"]}, {"a": bl["a"]}, n_resamples=300)
    assert same["estimate"] == 0.0 and not same["significant"]
    empty = bootstrap_reduction({"a": []}, {"a": [1.0]})
    assert np.isnan(empty["estimate"]) and empty["n_strata"] == 0


def test_cached_mmd_matches_metrics_mmd():
    from skct.experiments import _MMDReference
    from skct.metrics import mmd

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(30, 5)), rng.normal(0.5, 1.0, size=(200, 5))
    ref = _MMDReference(B, 2.0)
    assert ref(A) == pytest.approx(mmd(A, B, length_scale=2.0), abs=1e-10)
    assert ref(B[:40]) == pytest.approx(mmd(B[:40], B, length_scale=2.0), abs=1e-10)


def test_evaluation_threshold_choice():
    from skct.experiments import REFERENCE_EVAL_THRESHOLDS, _eval_config

    cfg = _eval_config("gmsc", None, None, None, None, 0, {})
    assert cfg["decision_threshold"] == 0.95 and cfg["max_iter"] == 50
    assert cfg["lambda_energies"] == (0.1, 0.5, 1.0, 5.0, 10.0)
    cfg = _eval_config("gmsc", None, None, None, None, 0, {"decision_threshold": "paper"})
    assert cfg["decision_threshold"] == REFERENCE_EVAL_THRESHOLDS["gmsc"] == 0.5
    with pytest.raises(ValueError, match="Unknown evaluation setting"):
        _eval_config("gmsc", None, None, None, None, 0, {"nope": 1})
    with pytest.raises(ValueError, match="n_runs"):
        _eval_config("gmsc", 0, None, None, None, 0, {})
    with pytest.raises(ValueError, match="Unknown override"):
        run_experiment("moons", out_dir="unused", not_a_param=1)


def test_run_experiment_writes_results(first_run):
    out, res = first_run
    root = out / "linearly_separable"
    for name in ("results.json", "metrics.csv", "robustness.json", "bootstrap.json",
                 "models/baseline.pkl", "models/ct.pkl", "evaluation/counterfactuals.csv.gz",
                 "plots/robustness.png", "plots/counterfactuals.png"):
        assert (root / name).exists(), name
    saved = json.loads((root / "results.json").read_text())
    assert saved["dataset"] == "linearly_separable"
    for key in ("data", "settings", "models", "reductions", "validity_difference",
                "bootstrap", "paper", "timings", "skipped"):
        assert key in saved, key
    assert saved["skipped"] == [] and res["skipped"] == []
    assert saved["settings"]["ct"]["max_epochs"] == 3
    assert saved["settings"]["baseline"]["lambda_div"] == 0.0
    assert saved["settings"]["ct"]["lambda_reg"] == 0.01  # the paper's LS setting
    for key in ("implausibility", "mmd", "cost", "implausibility_constrained",
                "mmd_constrained", "cost_unconstrained"):
        r = saved["reductions"][key]
        assert _finite(r["estimate"]), key
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"], key
        assert r["confidence"] == 0.99
    for m in ("baseline", "ct"):
        model = saved["models"][m]
        assert 0.0 <= model["accuracy"] <= 1.0
        assert model["fgsm"]["epsilon"][0] == 0.0
        assert model["fgsm"]["accuracy"][0] == pytest.approx(model["accuracy"], abs=0.05)
        assert len(model["pgd"]["accuracy"]) == len(model["fgsm"]["accuracy"]) == 11
        assert _finite(model["ig_sensitivity"])
        for setting in ("unconstrained", "constrained"):
            cf = model["counterfactuals"][setting]
            assert 0.0 <= cf["validity"] <= 1.0
            assert cf["n_counterfactuals"] == 2 * 2 * 6  # pairs x runs x factuals
    for stage in ("train_baseline", "train_ct", "evaluate", "robustness", "bootstrap",
                  "total"):
        assert saved["timings"][stage] >= 0.0
    import pandas as pd

    metrics = pd.read_csv(root / "metrics.csv")
    assert list(metrics.columns) == ["model", "setting", "generator", "factual", "target",
                                     "run", "metric", "value"]
    assert set(metrics["metric"]) == {"validity", "strict_validity", "implausibility", "cost",
                                      "mmd"}
    rows = pd.read_csv(root / "evaluation" / "counterfactuals.csv.gz")
    # binary: p(target) >= tau = 0.95 implies that the model predicts the target
    assert (rows["valid"] | ~rows["converged"]).all()
    assert (rows.loc[rows["converged"], "target_proba"] >= 0.95).all()
    # immutable feature x0 never changes under the constraints: checked through the cost of
    # the constrained search being computed on the same factuals as the unconstrained one
    assert set(rows["setting"]) == {"unconstrained", "constrained"}


def test_run_experiment_resumes(first_run):
    out, _ = first_run
    models = out / "linearly_separable" / "models"
    before = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    res = run_experiment("linearly_separable", out_dir=out, **SMALL)
    assert {"train_baseline", "train_ct", "evaluate", "robustness", "bootstrap",
            "plots"} <= set(res["skipped"])
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == before
    # a changed evaluation setting recomputes the evaluation, not the training
    res2 = run_experiment("linearly_separable", out_dir=out,
                          **{**SMALL, "n_factuals": 4, "plots": False})
    assert {"train_baseline", "train_ct", "robustness"} <= set(res2["skipped"])
    assert "evaluate" not in res2["skipped"] and "bootstrap" not in res2["skipped"]
    assert res2["models"]["ct"]["counterfactuals"]["constrained"]["n_counterfactuals"] == 16


def test_report(first_run, tmp_path):
    out, _ = first_run
    path = tmp_path / "docs" / "results.md"
    text = write_results_markdown(out, path)
    assert path.read_text() == text
    assert "| LS |" in text
    for value in PAPER_AVERAGES.values():
        assert f"+{value}" in text
    assert "Wall-clock" in text and "Reading the table" in text
    with pytest.raises(FileNotFoundError):
        write_results_markdown(tmp_path / "empty", tmp_path / "x.md")


def test_cli_experiment_and_report(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["experiment", "--dataset", "moons", "--out", str(out), "--quiet"]
                + SMALL_ARGS)
    assert code == 0
    saved = json.loads((out / "moons" / "results.json").read_text())
    assert saved["settings"]["ct"]["decision_threshold"] == 0.9
    assert saved["settings"]["evaluation"]["n_bootstrap"] == 200
    md = tmp_path / "results.md"
    assert main(["report", "--results", str(out), "--out", str(md)]) == 0
    text = md.read_text()
    assert "Moon" in text and "+15.6" in text and "+25.3" in text and "+18.5" in text
    assert main(["datasets"]) == 0
    assert "credit_default" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert main(["experiment", "--dataset", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset" in err and "moons" in err
    assert main(["experiment", "--out", str(tmp_path)]) == 2  # no data set
    assert main(["experiment", "--dataset", "moons", "--out", str(tmp_path),
                 "--n-runs", "0"]) == 2
    assert main(["report", "--results", str(tmp_path / "none")]) == 1
    assert main([]) == 2
    # a missing data file: clear error, exit code 1
    code = main(["experiment", "--dataset", "gmsc", "--out", str(tmp_path), "--quiet",
                 "--data-home", str(tmp_path / "no-data")] + SMALL_ARGS)
    assert code == 1
    assert "gmsc" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    out = tmp_path / "res"
    env = dict(os.environ, SKCT_TORCH_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "skct", "experiment", "--dataset", "linearly_separable",
         "--out", str(out), "--report", str(tmp_path / "r.md")] + SMALL_ARGS,
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train ct" in proc.stdout and "done" in proc.stdout  # progress on screen
    assert (out / "linearly_separable" / "results.json").exists()
    assert "LS" in (tmp_path / "r.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "skct", "experiment", "--dataset", "nope",
                          "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=120)
    assert bad.returncode == 2 and "unknown dataset" in bad.stderr
