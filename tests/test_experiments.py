"""The experiment runner end to end on a small synthetic set: API, resuming, CLI, report."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skct import io as skct_io
from skct.cli import main
from skct.experiments import (
    DATASET_NAMES,
    EXPERIMENTS,
    PAPER_AVERAGES,
    PAPER_RESULTS,
    PAPER_SETTINGS,
    REFERENCE_EVAL_THRESHOLDS,
    bootstrap_reduction,
    load_experiment_data,
    paper_settings,
    reference_reduction,
    run_experiment,
    write_results_markdown,
)

REPO = Path(__file__).resolve().parents[1]

#: A tiny budget: 3 epochs, two generators, 3 runs of 6 factuals, few bootstrap resamples.
SMALL = dict(max_epochs=3, n_runs=3, n_factuals=6, lambda_energies=[1.0, 5.0], verbose=0,
             evaluation={"n_bootstrap": 200, "n_attack": 200, "n_sensitivity": 50,
                         "pgd_steps": 5})
SMALL_ARGS = ["--max-epochs", "3", "--n-runs", "2", "--n-factuals", "6", "--lambda-energy",
              "5", "--n-bootstrap", "200", "--no-plots"]
MODELS = ("baseline", "ct_single", "ct_mutability")


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
    # the reference's mutability experiment: no adversarial / ridge term on synthetic sets,
    # the single setting's lambdas on the real data sets; protection only there
    single, mut = paper_settings("moons"), paper_settings("moons", "mutability")
    assert (single["lambda_adv"], single["lambda_reg"], single["protect_immutable"]) == \
        (0.25, 0.25, False)
    assert (mut["lambda_adv"], mut["lambda_reg"], mut["protect_immutable"]) == (0.0, 0.0, True)
    assert mut["decision_threshold"] == 0.9 and mut["lambda_div"] == 0.5
    adult_mut = paper_settings("adult", "mutability")
    assert (adult_mut["lambda_adv"], adult_mut["lambda_reg"]) == (0.25, 0.25)
    assert adult_mut["protect_immutable"]
    with pytest.raises(ValueError, match="Unknown experiment"):
        paper_settings("moons", "nope")
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


def test_reference_reduction_formula():
    # per-run values (already averaged over lambda_energy): ratios 0.5, 0.75, 0.5, 0.75
    bl = [2.0, 2.0, 4.0, 4.0]
    ct = [1.0, 1.5, 2.0, 3.0]
    r = reference_reduction(bl, ct, confidence=0.99)
    assert r["estimate"] == pytest.approx((1 - 0.625) * 100)  # 37.5, not (3 - 1.875) / 3
    assert r["se"] == pytest.approx(100 * np.std([0.5, 0.75, 0.5, 0.75], ddof=1))
    assert r["ratio_mean"] == pytest.approx(0.625) and r["n_runs"] == 4
    # percentile intervals (numpy's default = Julia's type 7 quantile)
    assert r["ci_low"] == pytest.approx(np.quantile([50, 25, 50, 25], 0.005))
    assert r["ci_high"] == pytest.approx(np.quantile([50, 25, 50, 25], 0.995))
    assert r["diff_ci_low"] == pytest.approx(np.quantile([1.0, 0.5, 2.0, 1.0], 0.005))
    assert r["significant"]  # every run: CT below BL
    # a run where CT is worse: the interval of differences includes 0
    r2 = reference_reduction([2.0, 2.0, 4.0], [1.0, 2.5, 2.0])
    assert r2["estimate"] == pytest.approx((1 - np.mean([0.5, 1.25, 0.5])) * 100)
    assert not r2["significant"] and r2["diff_ci_low"] < 0 < r2["diff_ci_high"]
    # missing runs (no valid counterfactual) and a zero baseline are dropped
    r3 = reference_reduction([2.0, np.nan, 0.0, 4.0], [1.0, 1.0, 1.0, 3.0])
    assert r3["n_runs"] == 2 and r3["n_dropped"] == 2
    assert r3["estimate"] == pytest.approx((1 - np.mean([0.5, 0.75])) * 100)
    none = reference_reduction([np.nan], [1.0])
    assert np.isnan(none["estimate"]) and not none["significant"]
    with pytest.raises(ValueError, match="one value per run"):
        reference_reduction([1.0, 2.0], [1.0])


def test_per_run_values_average_lambdas_then_runs():
    import pandas as pd

    from skct.experiments._statistics import per_run_values as _per_run_values

    # run 0: lambda 1 -> mean of valid (1, 3) = 2; lambda 5 -> 4 (the invalid 100 is ignored)
    rows = pd.DataFrame({
        "experiment": "single", "model": "baseline",
        "lambda_energy": [1.0, 1.0, 5.0, 5.0, 1.0, 5.0],
        "run": [0, 0, 0, 0, 1, 1],
        "valid": [True, True, True, False, True, True],
        "cost": [1.0, 3.0, 4.0, 100.0, 6.0, 8.0],
    })
    cells = pd.DataFrame({"experiment": "single", "model": "baseline",
                          "lambda_energy": [1.0, 1.0, 5.0], "target": [0, 1, 0],
                          "run": [0, 0, 0], "mmd": [0.2, 0.4, 0.5]})
    v = _per_run_values(rows, cells, "single", "baseline", "cost", n_runs=3)
    assert v[0] == pytest.approx((2.0 + 4.0) / 2) and v[1] == pytest.approx(7.0)
    assert np.isnan(v[2])  # a run without values
    m = _per_run_values(rows, cells, "single", "baseline", "mmd", n_runs=1)
    assert m[0] == pytest.approx((0.3 + 0.5) / 2)  # mean over targets, then over lambdas


def test_cached_mmd_matches_metrics_mmd():
    # the runner measures IP* with the metric core's cached reference
    from skct.metrics import MMDReference, mmd

    def _MMDReference(Y, length_scale, block=2048):
        return MMDReference(Y, length_scale=length_scale, block=block)

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(30, 5)), rng.normal(0.5, 1.0, size=(200, 5))
    ref = _MMDReference(B, 2.0)
    assert ref(A) == pytest.approx(mmd(A, B, length_scale=2.0), abs=1e-10)
    assert ref(B[:40]) == pytest.approx(mmd(B[:40], B, length_scale=2.0), abs=1e-10)
    blocked = _MMDReference(B, 5.0, block=64)  # the reference term in blocks of rows
    assert blocked(A) == pytest.approx(mmd(A, B, length_scale=5.0), abs=1e-10)


def test_reference_pools_come_from_the_test_set():
    from skct.experiments._evaluation import draw_factuals as _draw_factuals
    from skct.experiments._evaluation import reference_pools as _reference_pools

    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    pools = _reference_pools(X, y, 2, 1000, random_state=0)
    assert pools[0].shape == (1000, 2) and pools[1].shape == (1000, 2)  # with replacement
    assert set(map(tuple, pools[0].tolist())) <= set(map(tuple, X[:3].tolist()))
    # factuals: the model's predicted class; the same rows for models that agree
    pred_a = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    pred_b = pred_a.copy()
    pred_b[9] = 0
    a = _draw_factuals(pred_a, 1, 4, seed=3)
    assert len(set(a)) == 4 and (pred_a[a] == 1).all()
    b = _draw_factuals(pred_b, 1, 4, seed=3)
    k = list(a).index(9) if 9 in a else 4
    assert (b[:k] == a[:k]).all()
    few = _draw_factuals(pred_a, 0, 5, seed=3)  # only 3 rows: drawn with replacement
    assert len(few) == 5 and set(few) <= {0, 1, 2}


def test_evaluation_threshold_choice():
    from skct.experiments._settings import evaluation_config as _eval_config

    # tau per column: IP / IP* (single) 0.95, cost (mutability) 0.5, on every data set
    assert REFERENCE_EVAL_THRESHOLDS == {"single": 0.95, "mutability": 0.5}
    assert EXPERIMENTS["single"]["columns"] == ("implausibility", "mmd")
    assert EXPERIMENTS["mutability"]["columns"] == ("cost",)
    for d in ("moons", "gmsc", "mnist"):
        cfg = _eval_config(d, None, None, None, None, 0, {})
        assert cfg["decision_threshold"] == {"single": 0.95, "mutability": 0.5}
    assert cfg["max_iter"] == 50 and cfg["step_size"] == 0.1  # reference code's step
    assert cfg["mmd_length_scale"] == 5.0 and cfg["n_reference"] == 1000
    assert cfg["lambda_energies"] == (0.1, 0.5, 1.0, 5.0, 10.0)
    cfg = _eval_config("gmsc", None, None, None, None, 0, {"decision_threshold": 0.8,
                                                           "step_size": 0.1})
    assert cfg["decision_threshold"] == {"single": 0.8, "mutability": 0.8}
    assert cfg["step_size"] == 0.1
    cfg = _eval_config("gmsc", None, None, None, None, 0,
                       {"decision_threshold": {"mutability": 0.75}})
    assert cfg["decision_threshold"] == {"single": 0.95, "mutability": 0.75}
    with pytest.raises(ValueError, match="decision_threshold"):
        _eval_config("gmsc", None, None, None, None, 0, {"decision_threshold": 1.5})
    with pytest.raises(ValueError, match="step_size"):
        _eval_config("gmsc", None, None, None, None, 0, {"step_size": 0})
    with pytest.raises(ValueError, match="Unknown evaluation setting"):
        _eval_config("gmsc", None, None, None, None, 0, {"nope": 1})
    with pytest.raises(ValueError, match="n_runs"):
        _eval_config("gmsc", 0, None, None, None, 0, {})
    with pytest.raises(ValueError, match="Unknown override"):
        run_experiment("moons", out_dir="unused", not_a_param=1)


def test_run_experiment_writes_results(first_run):
    out, res = first_run
    root = out / "linearly_separable"
    for name in ("results.json", "metrics.csv", "robustness.json", "reductions.json",
                 "models/baseline.skct", "models/ct_single.skct", "models/ct_mutability.skct",
                 "evaluation/counterfactuals.csv.gz", "evaluation/runs.csv.gz",
                 "plots/robustness.png", "plots/counterfactuals.png"):
        assert (root / name).exists(), name
    assert not list(root.rglob("*.pkl")) and not list(root.rglob("*.joblib"))  # no pickles
    saved = json.loads((root / "results.json").read_text())
    assert saved["dataset"] == "linearly_separable"
    for key in ("data", "settings", "models", "reductions", "validity_difference", "paper",
                "timings", "skipped"):
        assert key in saved, key
    assert saved["skipped"] == [] and res["skipped"] == []
    # two CT models: single (no constraints, no protection) and mutability (protected, the
    # reference's synthetic lambdas); one baseline
    models = saved["settings"]["models"]
    assert set(models) == set(MODELS) == set(saved["models"])
    assert models["ct_single"]["max_epochs"] == models["ct_mutability"]["max_epochs"] == 3
    assert models["baseline"]["lambda_div"] == 0.0
    assert models["ct_single"]["lambda_reg"] == 0.01  # the paper's LS setting
    assert models["ct_single"]["lambda_adv"] == 0.25
    assert models["ct_single"]["protect_immutable"] is False
    assert (models["ct_mutability"]["lambda_adv"], models["ct_mutability"]["lambda_reg"]) == \
        (0.0, 0.0)
    assert models["ct_mutability"]["protect_immutable"] is True
    assert saved["models"]["ct_single"]["training"]["protect"] is False
    assert saved["models"]["ct_mutability"]["training"]["protect"] is True
    ev = saved["settings"]["evaluation"]
    assert ev["decision_threshold"] == {"single": 0.95, "mutability": 0.5}
    # which model each column uses
    red = saved["reductions"]
    assert red["implausibility"]["ct_model"] == red["mmd"]["ct_model"] == "ct_single"
    assert red["cost"]["ct_model"] == "ct_mutability"
    assert red["cost_single"]["ct_model"] == "ct_single"
    assert red["implausibility_mutability"]["ct_model"] == "ct_mutability"
    import pandas as pd

    from skct.experiments._statistics import per_run_values as _per_run_values

    rows = pd.read_csv(root / "evaluation" / "counterfactuals.csv.gz")
    cells = pd.read_csv(root / "evaluation" / "runs.csv.gz")
    rows["valid"] = rows["valid"].astype(bool)
    # the cost column is recomputed from the mutability experiment's CT model ...
    bl = _per_run_values(rows, cells, "mutability", "baseline", "cost", 3)
    mut = _per_run_values(rows, cells, "mutability", "ct_mutability", "cost", 3)
    assert red["cost"]["estimate"] == pytest.approx(reference_reduction(bl, mut)["estimate"])
    assert red["cost"]["per_run"]["ct"] == pytest.approx(mut.tolist())
    # ... and IP from the single one
    ip_bl = _per_run_values(rows, cells, "single", "baseline", "implausibility", 3)
    ip_ct = _per_run_values(rows, cells, "single", "ct_single", "implausibility", 3)
    assert red["implausibility"]["estimate"] == pytest.approx(
        reference_reduction(ip_bl, ip_ct)["estimate"])
    for key in ("implausibility", "mmd", "cost", "implausibility_mutability",
                "mmd_mutability", "cost_single"):
        r = red[key]
        assert _finite(r["estimate"]) and _finite(r["se"]), key
        assert r["ci_low"] <= r["ci_high"] and r["diff_ci_low"] <= r["diff_ci_high"], key
        assert r["confidence"] == 0.99 and r["n_runs"] == 3
        assert r["significant"] == (r["diff_ci_low"] > 0 or r["diff_ci_high"] < 0)
        assert r["bootstrap"]["ci_low"] <= r["bootstrap"]["ci_high"]
    # each experiment evaluates the baseline and its own CT model, with its own constraints
    assert set(rows.loc[rows["experiment"] == "single", "model"]) == {"baseline", "ct_single"}
    assert set(rows.loc[rows["experiment"] == "mutability", "model"]) == \
        {"baseline", "ct_mutability"}
    assert set(saved["models"]["baseline"]["counterfactuals"]) == {"single", "mutability"}
    assert set(saved["models"]["ct_single"]["counterfactuals"]) == {"single"}
    assert set(saved["models"]["ct_mutability"]["counterfactuals"]) == {"mutability"}
    for m in MODELS:
        model = saved["models"][m]
        assert 0.0 <= model["accuracy"] <= 1.0
        assert model["fgsm"]["epsilon"][0] == 0.0
        assert model["fgsm"]["accuracy"][0] == pytest.approx(model["accuracy"], abs=0.05)
        assert len(model["pgd"]["accuracy"]) == len(model["fgsm"]["accuracy"]) == 11
        assert _finite(model["ig_sensitivity"])
        for cf in model["counterfactuals"].values():
            assert 0.0 <= cf["validity"] <= 1.0
            assert cf["n_counterfactuals"] == 2 * 2 * 3 * 6  # lambdas x pairs x runs x factuals
    for stage in ("train_baseline", "train_ct_single", "train_ct_mutability", "evaluate",
                  "robustness", "reductions", "total"):
        assert saved["timings"][stage] >= 0.0
    metrics = pd.read_csv(root / "metrics.csv")
    assert list(metrics.columns) == ["experiment", "model", "generator", "target", "run",
                                     "metric", "value"]
    assert set(metrics["metric"]) == {"validity", "strict_validity", "implausibility", "cost",
                                      "mmd"}
    # the search stops at the experiment's tau: 0.95 (single), 0.5 (mutability)
    for experiment, tau in (("single", 0.95), ("mutability", 0.5)):
        part = rows[rows["experiment"] == experiment]
        assert (part.loc[part["converged"], "target_proba"] >= tau).all()
        assert (part["valid"] | ~part["converged"]).all()  # binary: p >= tau -> predicted
    assert (rows.loc[(rows["experiment"] == "mutability") & rows["converged"], "target_proba"]
            < 0.95).any()
    # training constraints: x0 immutable (and protected) only for the mutability model
    mut_clf = skct_io.load(root / "models" / "ct_mutability.skct")
    single_clf = skct_io.load(root / "models" / "ct_single.skct")
    assert mut_clf.protect_immutable and list(mut_clf.constraints_.mutability_) == ["none",
                                                                                    "both"]
    assert not single_clf.protect_immutable
    assert "none" not in list(single_clf.constraints_.mutability_)


def test_run_experiment_resumes(first_run):
    out, _ = first_run
    models = out / "linearly_separable" / "models"
    before = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    res = run_experiment("linearly_separable", out_dir=out, **SMALL)
    assert {"train_baseline", "train_ct_single", "train_ct_mutability", "evaluate",
            "robustness", "reductions", "plots"} <= set(res["skipped"])
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == before
    # a changed evaluation setting recomputes the evaluation, not the training
    res2 = run_experiment("linearly_separable", out_dir=out,
                          **{**SMALL, "n_factuals": 4, "plots": False})
    assert {"train_baseline", "train_ct_single", "train_ct_mutability",
            "robustness"} <= set(res2["skipped"])
    assert "evaluate" not in res2["skipped"] and "reductions" not in res2["skipped"]
    cf = res2["models"]["ct_mutability"]["counterfactuals"]["mutability"]
    assert cf["n_counterfactuals"] == 2 * 2 * 3 * 4


def test_report(first_run, tmp_path):
    out, _ = first_run
    path = tmp_path / "docs" / "results.md"
    text = write_results_markdown(out, path)
    assert path.read_text() == text
    assert "| LS |" in text
    for value in PAPER_AVERAGES.values():
        assert f"+{value}" in text
    assert "+26.26 ± 0.67*" in text  # the paper's LS IP next to ours
    assert "Wall-clock" in text and "Reading the table" in text
    # the protocol is explained from the constants: models per column, tau, pools, formula
    assert "IP and IP*: experiment `single`, BL vs CT (`ct_single`)" in text
    assert "tau = 0.95" in text and "tau = 0.5" in text
    assert "Cost: experiment `mutability`, BL vs CT-mut (`ct_mutability`)" in text
    assert "drawn with replacement from the *test* set" in text
    assert "length scale 5" in text and "(1 - mean of q over runs) x 100" in text
    assert "effective step is 0.1" in text and "100 x 250" in text
    with pytest.raises(FileNotFoundError):
        write_results_markdown(tmp_path / "empty", tmp_path / "x.md")


def test_cli_experiment_and_report(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["experiment", "--dataset", "moons", "--out", str(out), "--quiet",
                 "--step-size", "0.1", "--tau", "0.9"] + SMALL_ARGS)
    assert code == 0
    saved = json.loads((out / "moons" / "results.json").read_text())
    assert saved["settings"]["models"]["ct_single"]["decision_threshold"] == 0.9
    assert saved["settings"]["evaluation"]["n_bootstrap"] == 200
    assert saved["settings"]["evaluation"]["step_size"] == 0.1
    assert saved["settings"]["evaluation"]["decision_threshold"] == {"single": 0.9,
                                                                     "mutability": 0.9}
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
    assert main(["experiment", "--dataset", "moons", "--out", str(tmp_path),
                 "--step-size", "0"]) == 2
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


def test_attack_bounds_are_the_data_bounds(first_run, monkeypatch):
    # regression: any dict of bounds used to become [-1, 1] (right for MNIST by coincidence)
    from skct.experiments import _robustness
    from skct.experiments._settings import evaluation_config

    out, _ = first_run
    clf = skct_io.load(out / "linearly_separable" / "models" / "baseline.skct")
    data = load_experiment_data("linearly_separable", n_samples=200)
    seen = []

    def spy(module, X, y, **kw):
        seen.append((kw["lower"], kw["upper"]))
        eps = np.asarray(kw["epsilons"])
        return {"epsilon": eps, "accuracy": np.ones_like(eps)}

    monkeypatch.setattr(_robustness, "adversarial_accuracy", spy)
    cfg = evaluation_config("linearly_separable", None, None, None, None, 0,
                            {"n_attack": 20, "n_sensitivity": 10})
    from sklearn.utils import Bunch

    bounded = Bunch(**{**data, "bounds": {0: (-5.0, 5.0), 1: (0.0, 3.0)}})
    _robustness.robustness(clf, bounded, cfg)
    for lower, upper in seen:  # FGSM and PGD
        assert lower.tolist() == [-5.0, 0.0] and upper.tolist() == [5.0, 3.0]
    seen.clear()
    _robustness.robustness(clf, data, cfg)  # "auto": unbounded
    assert seen == [(None, None), (None, None)]


def test_report_default_stays_in_the_results_folder(first_run, tmp_path, monkeypatch):
    # regression: `skct report` wrote ./docs/results.md and overwrote the tracked page
    out, _ = first_run
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text("tracked page")
    assert main(["report", "--results", str(out)]) == 0
    assert page.read_text() == "tracked page"
    assert "| LS |" in (out / "results.md").read_text()
    text = write_results_markdown(out)
    assert (out / "results.md").read_text() == text and page.read_text() == "tracked page"


def test_user_facing_text_speaks_of_the_project():
    from skct.cli import _parser

    help_text = _parser().experiment_parser.format_help()
    template = (REPO / "skct" / "experiments" / "templates" / "results.md").read_text()
    for text in (help_text, template):
        assert "issue" not in text.lower()
    assert "'reference' (default) follows the paper's own code" in " ".join(help_text.split())
