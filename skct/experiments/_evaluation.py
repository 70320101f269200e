"""Evaluation: counterfactuals of every model, experiment and generator, and their metrics.

One task explains, for one (experiment, model, lambda_energy), ``n_runs`` independent draws of
``n_factuals`` test rows per factual -> target pair in one batched search, and measures each
counterfactual with the public functions of :mod:`skct.metrics` (``cost`` and
``implausibility`` per row) and each run's IP* with :class:`skct.metrics.MMDReference`.

Where this loop differs from :func:`skct.evaluation.evaluate`: the paper's protocol draws the
factuals per run among the rows the *model* predicts as the factual class (so the explained
rows depend on the model), pools the implausibility reference per class from the test rows
(drawn with replacement, shared by all models), measures IP* per run and target class against
all test rows of that class with a reference kernel sum computed once per class, keeps one
value per counterfactual (validity, convergence, cost, IP, target probability, steps) so that
the reductions can aggregate per run over valid counterfactuals, and seeds every draw from the
task's identity rather than from the order of work. ``evaluate`` returns batch means per
(model, generator) cell.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .._config import torch_threads
from .._utils import derive_seed
from ..explain import CounterfactualExplainer
from ..metrics import cost, implausibility
from ..search.generators import ECCoGenerator
from ._files import finite_float

__all__ = []

#: Columns of the per-counterfactual table and of the per-(run, target) IP* table.
ROW_COLUMNS = ("experiment", "model", "lambda_energy", "factual", "target", "run", "row",
               "valid", "converged", "cost", "implausibility", "target_proba", "n_iter")
CELL_COLUMNS = ("experiment", "model", "lambda_energy", "target", "run", "n", "n_valid", "mmd")


def factual_target_pairs(n_classes, max_pairs, random_state):
    """Every ordered (factual, target) pair of classes, or ``max_pairs`` of them (seeded)."""
    pairs = [(a, b) for a in range(n_classes) for b in range(n_classes) if a != b]
    if max_pairs is not None and len(pairs) > max_pairs:
        rng = np.random.default_rng(derive_seed(random_state, "pairs"))
        keep = np.sort(rng.choice(len(pairs), size=int(max_pairs), replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def reference_pools(X_test, y_test, n_classes, n_reference, random_state):
    """Implausibility pools: ``n_reference`` test rows of each class drawn with replacement
    (ground-truth labels; seeded, shared by all models and experiments)."""
    pools = {}
    for c in range(n_classes):
        rows = np.flatnonzero(y_test == c)
        if rows.size == 0:
            continue
        rng = np.random.default_rng(derive_seed(random_state, "reference", c))
        pools[c] = X_test[np.sort(rng.choice(rows, size=n_reference, replace=True))]
    return pools


def draw_factuals(predicted, factual, n, seed):
    """``n`` test rows predicted as ``factual``: a seeded permutation of all test rows filtered
    by the model's predictions, so that models which agree get the same rows; drawn with
    replacement only when fewer than ``n`` exist."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(predicted))
    candidates = perm[predicted[perm] == factual]
    if candidates.size >= n or candidates.size == 0:
        return candidates[:n]
    return rng.choice(candidates, size=n, replace=True)


def evaluate_task(experiment, model_name, clf, lambda_energy, data_arrays, pairs, cfg):
    """Counterfactuals of one (experiment, model, lambda_energy): per-row and per-run values."""
    with torch_threads():
        return _evaluate_task_inner(experiment, model_name, clf, lambda_energy, *data_arrays,
                                    pairs=pairs, cfg=cfg)


def _evaluate_task_inner(experiment, model_name, clf, lambda_energy, X_train, X_test,
                         ip_pools, mmd_refs, constraints, *, pairs, cfg):
    start = time.perf_counter()
    tau = cfg["decision_threshold"][experiment]
    generator = ECCoGenerator(step_size=cfg["step_size"], lambda_cost=cfg["lambda_cost"],
                              lambda_energy=float(lambda_energy),
                              one_hot=cfg.get("one_hot", "accumulate"))
    explainer = CounterfactualExplainer(
        clf, generator=generator, constraints=constraints, decision_threshold=tau,
        max_iter=cfg["max_iter"], prefit=True, cost="l1", sparsify_changes=False,
        random_state=derive_seed(cfg["random_state"], "explainer", model_name, experiment,
                                 lambda_energy)).fit(X_train)
    predicted = clf.predict_proba(X_test).argmax(axis=1)
    rows, fac, tgt, run_idx = _draw_runs(predicted, pairs, cfg)
    if rows.size:
        res = explainer.explain(X_test[rows], target=clf.classes_[tgt])
        Z_cf, Z_f = res.counterfactuals_model, res.factuals_model
        # valid: the model predicts the target (CounterfactualExplanations.jl's validity, the
        # paper's filter); converged: p(target | x') >= tau, where the search stops
        valid = clf.predict_proba(Z_cf).argmax(axis=1) == tgt
        converged = np.asarray(res.converged, dtype=bool)
        c = cost(Z_cf, Z_f, per_row=True)
        classes = sorted(ip_pools)
        X_ref = np.concatenate([ip_pools[k] for k in classes])
        y_ref = np.concatenate([np.full(len(ip_pools[k]), k) for k in classes])
        ip = implausibility(Z_cf, tgt, X_ref, y_ref, n_neighbors=cfg["n_reference"],
                            per_row=True)
        proba, n_iter = np.asarray(res.target_proba), np.asarray(res.n_iter)
    else:
        Z_cf = np.zeros((0, X_test.shape[1]))
        valid = converged = np.zeros(0, dtype=bool)
        c = ip = proba = n_iter = np.zeros(0)
    per_row = pd.DataFrame({"factual": fac, "target": tgt, "run": run_idx, "row": rows,
                            "valid": valid, "converged": converged, "cost": c,
                            "implausibility": ip, "target_proba": proba,
                            "n_iter": n_iter.astype(np.int64)})
    per_cell = _mmd_cells(Z_cf, tgt, run_idx, valid, mmd_refs, pairs, cfg["n_runs"])
    for df in (per_row, per_cell):
        df.insert(0, "lambda_energy", float(lambda_energy))
        df.insert(0, "model", model_name)
        df.insert(0, "experiment", experiment)
    return per_row, per_cell, time.perf_counter() - start


def _draw_runs(predicted, pairs, cfg):
    """Test rows explained, with their factual class, target class and run [n] each.

    Independent runs; the seed of a (pair, run) does not depend on the model, experiment or
    generator, so every generator and experiment of a model explains the same rows.
    """
    blocks = []
    for f, t in pairs:
        for run in range(cfg["n_runs"]):
            rows = draw_factuals(predicted, f, cfg["n_factuals"],
                                 derive_seed(cfg["random_state"], "factuals", f, t, run))
            blocks.append((f, t, run, rows))
    rows = np.concatenate([b[3] for b in blocks]).astype(np.int64)
    fac = np.concatenate([np.full(b[3].size, b[0]) for b in blocks]).astype(np.int64)
    tgt = np.concatenate([np.full(b[3].size, b[1]) for b in blocks]).astype(np.int64)
    run_idx = np.concatenate([np.full(b[3].size, b[2]) for b in blocks]).astype(np.int64)
    return rows, fac, tgt, run_idx


def _mmd_cells(Z_cf, tgt, run_idx, valid, mmd_refs, pairs, n_runs):
    """IP* per run and target class: the valid counterfactuals of every pair with that target
    against all test rows of the class (NaN with fewer than 2 valid counterfactuals)."""
    cells = []
    for t in sorted({t for _, t in pairs}):
        for run in range(n_runs):
            sel = (tgt == t) & (run_idx == run)
            ok = sel & valid
            value = np.nan
            if ok.sum() >= 2 and t in mmd_refs:
                value = mmd_refs[t](Z_cf[ok])
            cells.append((t, run, int(sel.sum()), int(ok.sum()), value))
    return pd.DataFrame(cells, columns=["target", "run", "n", "n_valid", "mmd"])


def cell_metrics(per_row, per_cell):
    """Tidy per-run metrics: experiment, model, generator, target, run, metric, value.

    Validity, strict validity, implausibility and cost are means over the run's counterfactuals
    toward the target (IP and cost over valid ones only); mmd is the run's IP* for the target.
    """
    keys = ["experiment", "model", "lambda_energy", "target", "run"]
    g = per_row.groupby(keys, sort=False)
    validity = g["valid"].mean().rename("validity")
    strict = g["converged"].mean().rename("strict_validity")
    gv = per_row[per_row["valid"]].groupby(keys, sort=False)
    means = gv[["implausibility", "cost"]].mean()
    wide = pd.concat([validity, strict, means], axis=1).reset_index()
    wide = wide.merge(per_cell[keys + ["mmd"]], on=keys, how="outer")
    tidy = wide.melt(id_vars=keys, value_vars=["validity", "strict_validity",
                                               "implausibility", "cost", "mmd"],
                     var_name="metric", value_name="value")
    names = tidy.pop("lambda_energy").map(lambda v: f"ecco(lambda_energy={v:g})")
    tidy.insert(2, "generator", names)
    return tidy.sort_values(["experiment", "model", "generator", "target", "run", "metric"],
                            kind="stable").reset_index(drop=True)


def counterfactual_summary(per_row, per_cell, model, experiments):
    """Per experiment that evaluates ``model``: validity, strict validity, mean steps, mean IP
    and cost over valid counterfactuals, mean IP*, and the counts."""
    rows = per_row[per_row["model"] == model]
    cells = per_cell[per_cell["model"] == model]
    summary = {}
    for experiment, spec in experiments.items():
        if model not in ("baseline", spec["ct_model"]):
            continue
        r = rows[rows["experiment"] == experiment]
        v = r[r["valid"]]
        c = cells[cells["experiment"] == experiment]
        summary[experiment] = {
            "validity": finite_float(r["valid"].mean()) if len(r) else None,
            "strict_validity": finite_float(r["converged"].mean()) if len(r) else None,
            "mean_steps": finite_float(r["n_iter"].mean()) if len(r) else None,
            "implausibility": finite_float(v["implausibility"].mean()) if len(v) else None,
            "cost": finite_float(v["cost"].mean()) if len(v) else None,
            "mmd": finite_float(c["mmd"].mean()) if c["mmd"].notna().any() else None,
            "n_counterfactuals": int(len(r)),
            "n_valid": int(len(v)),
            "n_unique_factuals": int(r.groupby(["factual", "target"])["row"].nunique()
                                     .sum()) if len(r) else 0,
        }
    return summary
