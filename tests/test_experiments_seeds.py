"""Seeds, protocols and the reproduction page: skct.experiments._seeds, _reproduction and the
runner's protocol, task reuse and validation rows."""

import json
import shutil

import numpy as np
import pytest

from skct.experiments import (
    PROTOCOL_ITEMS,
    load_seed_runs,
    resolve_protocol,
    run_experiment,
    seed_interval,
    seed_table,
    table_averages,
    table_checks,
    write_reproduction,
)
from skct.experiments._training import model_params

SMALL = dict(max_epochs=2, n_runs=2, n_factuals=4, lambda_energies=[5.0], verbose=0,
             plots=False, evaluation={"n_bootstrap": 0, "n_attack": 40, "n_sensitivity": 10,
                                      "pgd_steps": 2})
DATASET = "moons"


# -- pure functions --------------------------------------------------------------------------


def test_seed_interval_is_a_t_interval():
    from scipy import stats

    v = [1.0, 4.0, 2.0, 8.0, 5.0]
    mean, low, high, n = seed_interval(v)
    half = stats.t.ppf(0.975, 4) * np.std(v, ddof=1) / np.sqrt(5)
    assert n == 5 and mean == pytest.approx(4.0)
    assert (low, high) == pytest.approx((4.0 - half, 4.0 + half))
    assert seed_interval([None, float("nan"), 3.0]) == (3.0, 3.0, 3.0, 1)
    assert seed_interval([])[3] == 0


def _fake_results(ip, mmd, cost, acc=0.9, validity=0.8):
    def cf():
        return {"single": {"validity": validity}, "mutability": {"validity": validity}}

    return {"reductions": {"implausibility": {"estimate": ip}, "mmd": {"estimate": mmd},
                           "cost": {"estimate": cost}},
            "models": {m: {"accuracy": acc, "counterfactuals": cf()}
                       for m in ("baseline", "ct_single", "ct_mutability")}}


def test_seed_table_marks_significance_across_seeds_and_signs():
    runs = {"linearly_separable": [_fake_results(10 + s, 5.0 * (-1) ** s, -3 - s)
                                   for s in range(5)]}
    table = seed_table(runs)
    row = table["LS"]
    assert row["name"] == "linearly_separable"
    assert row["ip"]["significant"] and row["ip"]["n_seeds"] == 5
    assert row["ip"]["low"] < row["ip"]["estimate"] < row["ip"]["high"]
    assert not row["ip_star"]["significant"]  # the sign flips with the seed
    assert row["cost"]["significant"] and row["cost"]["sign_matches_paper"] is False
    assert row["ip"]["paper"] == pytest.approx(26.26) and row["ip"]["paper_significant"]
    checks = table_checks(table)
    assert ("LS", "cost") in checks["sign_mismatches"]
    assert ("LS", "ip") not in checks["sign_mismatches"]
    assert table_averages(table)["ip"]["estimate"] == pytest.approx(12.0)


def test_table_checks_flag_validity_and_accuracy():
    bad = _fake_results(1, 1, 1)
    bad["models"]["ct_mutability"]["counterfactuals"]["mutability"]["validity"] = 0.5
    bad["models"]["ct_mutability"]["accuracy"] = 0.5
    checks = table_checks(seed_table({"moons": [bad]}))
    assert checks["validity_ok"]["Moon"]["ct_mutability"] is False
    assert checks["accuracy_ok"]["Moon"]["ct_mutability"] is False
    assert checks["accuracy_ok"]["Moon"]["ct_single"] is True


def test_resolve_protocol():
    assert resolve_protocol("skct") == {k: "skct" for k in PROTOCOL_ITEMS}
    assert resolve_protocol({"one_hot": "skct"})["data"] == "reference"
    with pytest.raises(ValueError, match="unknown item"):
        resolve_protocol({"colour": "skct"})
    with pytest.raises(ValueError, match="must be 'reference' or 'skct'"):
        resolve_protocol({"data": "mine"})
    with pytest.raises(ValueError, match="protocol must be one of"):
        resolve_protocol("paper")


def test_model_params_follow_the_protocol():
    ref = model_params("moons", None, {}, resolve_protocol("reference"))
    own = model_params("moons", None, {}, resolve_protocol("skct"))
    assert ref["ct_single"]["generator"]["step_size"] == 0.1
    assert own["ct_single"]["generator"]["step_size"] == 0.25
    assert ref["baseline"]["shuffle"] is False and ref["baseline"]["weight_init"] == "glorot"
    assert "shuffle" not in own["baseline"]
    over = model_params("moons", None, {}, resolve_protocol("reference"),
                        {"ct_mutability": {"lambda_reg": 0.1}})
    assert over["ct_mutability"]["lambda_reg"] == 0.1
    assert over["ct_single"]["lambda_reg"] == ref["ct_single"]["lambda_reg"]
    with pytest.raises(ValueError, match="unknown model"):
        model_params("moons", None, {}, None, {"ct": {}})
    with pytest.raises(ValueError, match="unknown parameter"):
        model_params("moons", None, {}, None, {"ct_mutability": {"colour": 1}})


# -- the runner ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    results = [run_experiment(DATASET, out_dir=out / "reference" / f"seed{s}", random_state=s,
                              data_seed=0, **SMALL) for s in (0, 1)]
    return out, results


def test_reference_protocol_is_recorded_and_seeds_share_the_data(two_seeds):
    out, (r0, r1) = two_seeds
    assert r0["settings"]["protocol"] == resolve_protocol("reference")
    # 3600 training + validation rows (a class-stratified 599 or 600 for validation), 900 test
    assert r0["data"]["n_train"] + r0["data"]["n_val"] == 3600
    assert r0["data"]["n_test"] == 900
    assert r0["data"]["data_seed"] == r1["data"]["data_seed"] == 0
    runs = load_seed_runs(out / "reference")
    assert list(runs) == [DATASET] and len(runs[DATASET]) == 2


def test_changed_ct_mut_reuses_the_other_models_and_their_tasks(two_seeds, tmp_path):
    out, (r0, _) = two_seeds
    src = out / "reference" / "seed0" / DATASET
    dst = tmp_path / "recommended" / DATASET
    for sub in ("models", "evaluation/tasks"):
        shutil.copytree(src / sub, dst / sub)
    res = run_experiment(DATASET, out_dir=tmp_path / "recommended", random_state=0,
                         data_seed=0, model_overrides={"ct_mutability": {"lambda_reg": 0.3}},
                         **SMALL)
    assert {"train_baseline", "train_ct_single"} <= set(res["skipped"])
    assert "train_ct_mutability" not in res["skipped"]
    assert res["settings"]["models"]["ct_mutability"]["lambda_reg"] == 0.3
    # the single experiment's tasks were reused: its reductions are the reference run's
    assert res["reductions"]["implausibility"] == r0["reductions"]["implausibility"]


def test_validation_rows_are_evaluated_when_asked(two_seeds, tmp_path):
    out, (r0, _) = two_seeds
    shutil.copytree(out / "reference" / "seed0" / DATASET, tmp_path / DATASET)
    res = run_experiment(DATASET, out_dir=tmp_path, random_state=0, data_seed=0,
                         evaluate_on="validation", **SMALL)
    # the models are the test run's; nothing measured on the test rows is reused
    assert {"train_baseline", "train_ct_single", "train_ct_mutability"} <= set(res["skipped"])
    assert "evaluate" not in res["skipped"] and "robustness" not in res["skipped"]
    assert res["reductions"]["implausibility"] != r0["reductions"]["implausibility"]
    assert res["data"]["n_test"] == res["data"]["n_val"]
    assert res["data"]["evaluate_on"] == "validation"
    with pytest.raises(ValueError, match="validation rows"):
        run_experiment(DATASET, out_dir=tmp_path / "own", protocol="skct",
                       evaluate_on="validation", **SMALL)
    with pytest.raises(ValueError, match="evaluate_on"):
        run_experiment(DATASET, out_dir=tmp_path, evaluate_on="train", **SMALL)


def test_write_reproduction_shapes_the_json(two_seeds, tmp_path):
    out, _ = two_seeds
    content = write_reproduction(out, page=tmp_path / "results.md",
                                 json_path=tmp_path / "results.json")
    saved = json.loads((tmp_path / "results.json").read_text())
    cell = saved["tables"]["reference"]["Moon"]["cost"]
    assert set(content["tables"]) == {"reference"}
    assert {"estimate", "low", "high", "n_seeds", "paper", "paper_significant"} <= set(cell)
    assert cell["n_seeds"] == 2 and cell["paper"] == pytest.approx(5.16)
    text = (tmp_path / "results.md").read_text()
    assert "Moons (Moon)" in text and "Seed 0 of the reference table" in text
    assert "issue" not in text.lower()


def test_ablation_is_the_mean_change_over_seeds(two_seeds, tmp_path):
    from skct.experiments._reproduction import ablation

    out, (r0, r1) = two_seeds
    work = tmp_path / "out"
    shutil.copytree(out / "reference", work / "reference")
    # stand-in for the item's run of seed 0: seed 1's results
    target = work / "ablation" / "train_step" / "seed0" / DATASET
    target.mkdir(parents=True)
    (target / "results.json").write_text(json.dumps(r1))
    abl = ablation(work)
    assert abl["seeds"] == [0] and list(abl["items"]) == ["train_step"]
    row = abl["items"]["train_step"]
    expected = r1["reductions"]["cost"]["estimate"] - r0["reductions"]["cost"]["estimate"]
    assert row["change"]["cost"] == pytest.approx(expected)
    assert row["datasets_run"] == [DATASET] and row["n_seeds"] == 1
    assert ablation(tmp_path / "nothing") is None
