"""skct and DiCE side by side: one Adult model and one set of rows, then k = 5 diverse
counterfactuals on German credit.

Part 1, Adult. The model: a scikit-learn Pipeline (StandardScaler + OneHotEncoder, then
HistGradientBoostingClassifier, random_state=0) trained ONCE in skct's environment on 3,000
Adult rows, pickled, and loaded by DiCE's environment, in which scikit-learn, numpy and pandas
are pinned to the versions of skct's environment. "Same model" is checked, not assumed: DiCE's
side recomputes ``predict_proba`` of the explained rows and the run stops unless it equals
skct's side's values bit for bit (``model_check`` in the JSON).

DiCE (``dice-ml`` from PyPI, methods "random" and "genetic") runs in its own virtual
environment, ``benchmarks/.peers-venv``, which this script creates on first use. Both sides
explain the same rejected rows (predicted <=50K) toward >50K at the model's decision
(p >= 0.5) under the same constraints: age, sex, race and native-country immutable, and
education-num may only increase (DiCE: ``features_to_vary`` and, per row, a
``permitted_range`` of education-num starting at the row's value). DiCE genetic (about 3-12 s
a row here) runs on a seeded subset of the rows (``--genetic-rows``); the other methods'
numbers on that subset are added (``*@genetic_rows``, no timing). Every metric is computed
here, by one function, on the returned rows (DiCE's: the ones it shows, after its post-hoc
sparsity): counterfactuals per second (rows over the time of the calls that produce them;
set-up and model training excluded; skct: the median of ``--repeats`` seeded calls of
``explain`` on all the rows after a warm-up, which must all return the same rows; DiCE: the
sum over its one-row calls), the same per CPU second of the process, validity (the model
predicts >50K), immutable and direction violations, median changed columns and mean cost in
MAD units (numeric columns over skct's ``cost_scale_``, a changed category counts 1), both
over valid rows. The JSON keeps the load average before skct and after each DiCE method.
DiCE's processes run with the OpenMP/BLAS threads skct's search uses (``torch_threads``,
default 1; an ``OMP_NUM_THREADS`` set by the caller wins).

Part 2, German credit, K = 5 counterfactuals per row. A plain MLP (MinMaxScaler +
``CounterfactualTrainedClassifier`` without the CT terms) on the paper's training split; the
first rejected test rows (predicted bad) toward good, age immutable, p >= 0.5. skct:
``CounterfactualExplainer(generator="generic", n_per_row=5, diversity=...)`` for each
strategy, and the same with ``generator="gradient_free"`` (``skct_gf_*``).
DiCE: its gradient method (PyTorch backend: the network traced with TorchScript,
``func="ohe-min-max"``, DPP diversity ``dpp_style:inverse_dist`` with its default
``diversity_weight=1.0``; torch is imported from skct's environment, same Python) and its
random method, ``total_CFs=5``. Same model: DiCE's encoding of the rows through the traced
network must give skct's ``predict_proba`` to 1e-5. Metrics (skct.metrics for diversity):
validity (valid entries over 5 per row), rows with a valid one, mean pairwise distance between
a row's valid counterfactuals in MAD units (``diversity``, rows with two or more), distinct
changed-feature sets per row (``coverage``, 0 for a row without a valid one), mean cost of
the valid ones (distance to the factual in MAD units), time.

Part 1b (skct only, ``--adult-k``, default 3): the Adult rows and model of part 1 with
``n_per_row=k`` for each ``diversity`` (gradient-free search): validity, distinct changed-feature
sets and distinct counterfactuals per row, mean pairwise distance and cost of the valid ones
(model space, MAD units), seconds of one explain call.

    python benchmarks/bench_peers.py            # 500 Adult rows (genetic: 100), 20 German
    python benchmarks/bench_peers.py --quick    # 20 Adult rows, 3 German
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers-venv"
IMMUTABLE = ["age", "sex", "race", "native-country"]
INCREASE = "education-num"
THRESHOLD = 0.5
METHODS = ("random", "genetic")
#: German credit, k diverse counterfactuals per row.
K = 5
GERMAN_IMMUTABLE = ["Age (years)"]
GERMAN_METHODS = ("dpp", "random")
DIVERSITIES = ("starts", "pairwise", "subsets", "disjoint")


# ---------------------------------------------------------------- DiCE's side (its own venv)
def _shown(example):
    """The counterfactuals DiCE shows (and serialises): after its post-hoc sparsity when it
    ran one, else the raw ones."""
    sparse = example.final_cfs_df_sparse
    return example.final_cfs_df if sparse is None else sparse


def _worker(work, method):
    """Run DiCE on the saved Adult rows with the saved model; write its rows and timings."""
    import dice_ml

    with open(work / "model.pkl", "rb") as fh:
        pipe = pickle.load(fh)
    train = pd.read_pickle(work / "train.pkl")
    rows = pd.read_pickle(work / f"rows_{method}.pkl")
    expected = np.load(work / f"proba_{method}.npy")
    got = pipe.predict_proba(rows)
    diff = float(np.abs(got - expected).max())
    if diff != 0.0:
        raise SystemExit(f"model mismatch between environments: max |dp| = {diff}")
    numeric = [c for c in rows.columns if pd.api.types.is_numeric_dtype(rows[c])]
    data = dice_ml.Data(dataframe=train, continuous_features=numeric, outcome_name="income")
    dice = dice_ml.Dice(data, dice_ml.Model(model=pipe, backend="sklearn"), method=method)
    vary = [c for c in rows.columns if c not in IMMUTABLE]
    top = float(train[INCREASE].max())
    out, seconds, cpu = [], 0.0, 0.0
    for i in range(len(rows)):
        q = rows.iloc[[i]]
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            res = dice.generate_counterfactuals(
                q, total_CFs=1, desired_class=1, features_to_vary=vary,
                permitted_range={INCREASE: [float(q[INCREASE].iloc[0]), top]},
                stopping_threshold=THRESHOLD, verbose=False)
            cf = _shown(res.cf_examples_list[0])
        except Exception as exc:  # DiCE raises when it finds nothing for some rows
            cf, err = None, repr(exc)
        else:
            err = None
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if cf is None or len(cf) == 0:
            out.append(q.assign(_found=False, _error=err))
        else:
            out.append(cf.drop(columns="income").iloc[[0]].assign(_found=True, _error=None))
    frame = pd.concat(out, ignore_index=True)
    frame.to_pickle(work / f"dice_{method}.pkl")
    (work / f"dice_{method}.json").write_text(json.dumps(
        {"seconds": seconds, "cpu_seconds": cpu, "model_check_max_abs_diff": diff}))


class _TorchProba:
    """DiCE's sklearn interface to the German credit network: min-max scaling (the
    Pipeline's, from the training frame) then the traced network's p(good)."""

    def __init__(self, net, train, columns):
        self.net, self.columns = net, columns
        self.low = train[columns].min().to_numpy(float)
        self.span = train[columns].max().to_numpy(float) - self.low

    def predict_proba(self, X):
        import torch

        z = (pd.DataFrame(X)[self.columns].to_numpy(float) - self.low) / self.span
        with torch.no_grad():
            p1 = self.net(torch.as_tensor(z, dtype=torch.float32)).numpy().astype(float)
        return np.hstack([1.0 - p1, p1])


def _german_worker(work, method):
    """DiCE with total_CFs=K on the saved German credit rows: its gradient method (PyTorch,
    DPP diversity) or random sampling, both on the traced network; rows and timings."""
    sys.path.append(os.environ["SKCT_PEERS_TORCH"])  # skct's torch, same Python
    import dice_ml
    import torch

    net = torch.jit.load(str(work / "german_net.pt")).eval()
    train = pd.read_pickle(work / "german_train.pkl")
    rows = pd.read_pickle(work / "german_rows.pkl")
    cols = list(rows.columns)
    data = dice_ml.Data(dataframe=train, continuous_features=cols, outcome_name="target")
    enc = data.get_ohe_min_max_normalized_data(rows)
    if list(enc.columns) != cols:
        raise SystemExit(f"DiCE encodes the columns as {list(enc.columns)}")
    with torch.no_grad():
        got = net(torch.as_tensor(enc.to_numpy(np.float32, copy=True))).numpy()[:, 0]
    diff = float(np.abs(got - np.load(work / "german_p1.npy")).max())
    if diff > 1e-5:
        raise SystemExit(f"model mismatch between environments: max |dp| = {diff}")
    if method == "dpp":
        # func: DiCE encodes the rows (min-max here, as the network's input) before the net
        model = dice_ml.Model(model=net, backend="PYT", func="ohe-min-max")
        how = "gradient"
    else:
        model = dice_ml.Model(model=_TorchProba(net, train, cols), backend="sklearn")
        how = "random"
    dice = dice_ml.Dice(data, model, method=how)
    vary = [c for c in cols if c not in GERMAN_IMMUTABLE]
    out, errors, seconds, search = [], [], 0.0, 0.0
    for i in range(len(rows)):
        t0 = time.perf_counter()
        try:
            res = dice.generate_counterfactuals(
                rows.iloc[[i]], total_CFs=K, desired_class=1, features_to_vary=vary,
                stopping_threshold=THRESHOLD, verbose=False)
            cf = _shown(res.cf_examples_list[0])
            search += getattr(dice, "elapsed", 0.0)  # the gradient loop's own timer
        except Exception as exc:  # DiCE raises when it finds nothing for some rows
            cf = None
            errors.append(f"row {i}: {exc!r}"[:300])
        seconds += time.perf_counter() - t0
        if cf is not None and len(cf):
            out.append(cf[cols].iloc[:K].astype(float).assign(_row=i))
    frame = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols + ["_row"])
    frame.to_pickle(work / f"german_{method}.pkl")
    (work / f"german_{method}.json").write_text(json.dumps(
        {"seconds": seconds, "model_check_max_abs_diff": diff, "errors": errors,
         "search_seconds": search if method == "dpp" else None}))


# ---------------------------------------------------------------- skct's side
def _ensure_venv(log):
    """Create DiCE's environment once: dice-ml, with scikit-learn/numpy/pandas pinned."""
    py = VENV / "bin" / "python"
    if py.exists():
        ok = subprocess.run([str(py), "-c", "import dice_ml"], capture_output=True)
        if ok.returncode == 0:
            return py
    import sklearn

    log(f"creating {VENV} (dice-ml) ...")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pins = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}",
            f"pandas=={pd.__version__}"]
    subprocess.run([str(py), "-m", "pip", "install", "-q", "dice-ml", *pins], check=True)
    return py


def _model_and_rows(n_rows, data_home):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from skct.datasets import load_adult

    bunch = load_adult(data_home=data_home)
    idx = np.random.RandomState(0).permutation(len(bunch.data))[:3000]
    X, y = bunch.data.iloc[idx].reset_index(drop=True), bunch.target.iloc[idx]
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    pre = ColumnTransformer([
        ("num", StandardScaler(), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)])
    pipe = make_pipeline(pre, HistGradientBoostingClassifier(max_iter=50, random_state=0))
    pipe.fit(X, y.to_numpy())
    rest = bunch.data.drop(index=bunch.data.index[idx])  # rows the model was not fitted on
    rows = rest[pipe.predict(rest) == 0].iloc[:n_rows].reset_index(drop=True)
    train = X.assign(income=y.to_numpy())
    return pipe, X, train, rows


def _run_skct(pipe, X, rows, repeats):
    """skct's explain call on ``rows``, timed ``repeats`` times after a warm-up: (frame, median
    wall seconds, median CPU seconds, every wall time, cost scale). The calls are seeded: the
    run stops unless every one returns the same counterfactuals."""
    from skct import ActionabilityConstraints, CounterfactualExplainer

    constraints = ActionabilityConstraints(mutability={
        **{c: "none" for c in IMMUTABLE}, INCREASE: "increase"})
    ex = CounterfactualExplainer(pipe, generator="gradient_free", target=1,
                                 constraints=constraints, decision_threshold=THRESHOLD,
                                 random_state=0).fit(X)
    ex.explain(rows.iloc[:5])  # warm-up (first calls load kernels)
    walls, cpus, first = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = ex.explain(rows)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if first is None:
            first = res.counterfactuals
        elif not first.equals(res.counterfactuals):
            raise SystemExit("skct's seeded explain calls returned different rows")
    cf = first.assign(_found=True, _error=None)
    return (cf, float(np.median(walls)), float(np.median(cpus)), walls,
            np.asarray(ex.constraints_.cost_scale_, dtype=float))


def _german_model_and_rows(n_rows, data_home, work):
    """A small network (MinMaxScaler + CounterfactualTrainedClassifier with no CT terms, i.e.
    a plain MLP) on the paper's German credit training split, its first ``n_rows`` rejected
    test rows, and the network traced for DiCE's side (input: the min-max scaled columns,
    output: p(good) [n, 1])."""
    import torch
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    from skct import CounterfactualTrainedClassifier
    from skct.datasets import load_german_credit, train_test_split_paper

    bunch = load_german_credit(data_home=data_home)
    X, X_test, y, _ = train_test_split_paper(bunch.data.astype(float), bunch.target)
    clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
                                          max_epochs=100, random_state=0)
    pipe = make_pipeline(MinMaxScaler(), clf).fit(X, np.asarray(y))
    rows = X_test[pipe.predict(X_test) == 0].iloc[:n_rows].reset_index(drop=True)

    class PositiveProba(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, z):  # [n, d] -> [n, 1], or [d] -> [1] (DiCE's gradient method)
            return torch.narrow(torch.softmax(self.logits(z), dim=-1), -1, 1, 1)

    net = PositiveProba(clf.logits_module_).eval()
    with torch.no_grad():
        traced = torch.jit.trace(net, torch.zeros(1, X.shape[1]))
        one = traced(torch.zeros(X.shape[1]))  # the traced graph takes single rows too
        if one.shape != (1,):
            raise RuntimeError(f"traced network returns {tuple(one.shape)} for one row")
    traced.save(str(work / "german_net.pt"))
    X.assign(target=np.asarray(y)).to_pickle(work / "german_train.pkl")
    rows.to_pickle(work / "german_rows.pkl")
    np.save(work / "german_p1.npy", pipe.predict_proba(rows)[:, 1].astype(np.float32))
    return pipe, X, rows


def _run_skct_k(pipe, X, rows, diversity, generator="generic"):
    """skct's search (gradient by default), K counterfactuals per row: (frame with _row,
    seconds, explainer)."""
    from skct import ActionabilityConstraints, CounterfactualExplainer

    constraints = ActionabilityConstraints(mutability={c: "none" for c in GERMAN_IMMUTABLE})
    ex = CounterfactualExplainer(pipe, generator=generator, target=1, constraints=constraints,
                                 decision_threshold=THRESHOLD, n_per_row=K, diversity=diversity,
                                 random_state=0).fit(X)
    ex.explain(rows.iloc[:2])  # warm-up
    t0 = time.perf_counter()
    res = ex.explain(rows)
    seconds = time.perf_counter() - t0
    cf = pd.DataFrame(res.counterfactuals, columns=rows.columns).astype(float)
    return cf.assign(_row=np.asarray(res.row_id)), seconds, ex


def k_metrics(pipe, rows, cf, scale, seconds):
    """K-counterfactual numbers for one method's entries ``cf`` (a ``_row`` column: the
    factual's position); diversity and coverage from skct.metrics, over valid entries."""
    from skct.metrics import coverage, diversity

    cols = list(rows.columns)
    row_id = cf["_row"].to_numpy(int)
    cand = cf[cols].to_numpy(float)  # [M, d]
    fact = rows.to_numpy(float)[row_id]  # [M, d]
    valid = pipe.predict_proba(pd.DataFrame(cand, columns=cols))[:, 1] >= THRESHOLD
    age = [cols.index(c) for c in GERMAN_IMMUTABLE]
    moved = np.abs(cand[:, age] - fact[:, age]).max(axis=1) > 1e-9
    n_valid = np.bincount(row_id[valid], minlength=len(rows))  # [N]
    cost = (np.abs(cand - fact) / scale).sum(axis=1)  # [M]: distance to the factual, MAD units
    # factuals with fewer than two valid entries have no pairwise distance (left out)
    div = diversity(cand, row_id=row_id, weights=1.0 / scale, valid=valid) if len(cf) else None
    sets = np.zeros(len(rows))  # [N]: distinct change sets of each factual (0: no valid one)
    if len(cf):
        sets[row_id] = coverage(cand, fact, row_id=row_id, valid=valid, tol=1e-6, per_row=True)
    return {
        "rows": int(len(rows)), "seconds": round(seconds, 3),
        "rows_per_s": round(len(rows) / seconds, 2) if seconds > 0 else None,
        "returned_per_row": round(len(cf) / len(rows), 2),
        "validity": round(float(valid.sum()) / (K * len(rows)), 4),
        "rows_with_valid": round(float((n_valid > 0).mean()), 4),
        "valid_per_row": round(float(n_valid.mean()), 2),
        "immutable_violations": int(moved.sum()),
        "mean_pairwise_distance_mad": (round(float(div), 3)
                                       if div is not None and np.isfinite(div) else None),
        "distinct_change_sets": round(float(sets.mean()), 3),
        "mean_cost_mad": round(float(cost[valid].mean()), 3) if valid.any() else None,
    }


def metrics(pipe, rows, cf, scale, seconds, cpu_seconds=None):
    """The table's numbers for one method's rows ``cf`` (same order as ``rows``)."""
    found = cf["_found"].to_numpy(bool)
    cols = list(rows.columns)
    cand = cf[cols].copy()
    for c in cols:
        cand[c] = cand[c].astype(rows[c].dtype)
    valid = found & (pipe.predict_proba(cand)[:, 1] >= THRESHOLD)
    same = np.column_stack([(cand[c].to_numpy() == rows[c].to_numpy()) |
                            (pd.isna(cand[c]).to_numpy() & pd.isna(rows[c]).to_numpy())
                            for c in cols])  # [N, F]
    immutable = ~same[:, [cols.index(c) for c in IMMUTABLE]].all(axis=1)
    down = cand[INCREASE].to_numpy(float) < rows[INCREASE].to_numpy(float)
    cost = np.zeros(len(rows))
    for j, c in enumerate(cols):
        if pd.api.types.is_numeric_dtype(rows[c]):
            cost += np.abs(cand[c].to_numpy(float) - rows[c].to_numpy(float)) / scale[j]
        else:
            cost += ~same[:, j]
    n_changed = (~same).sum(axis=1)
    timed = seconds is not None and seconds > 0
    return {
        "rows": int(len(rows)), "seconds": round(seconds, 3) if timed else None,
        "cf_per_s": round(len(rows) / seconds, 2) if timed else None,
        "cf_per_cpu_s": round(len(rows) / cpu_seconds, 2) if timed and cpu_seconds else None,
        "found": round(float(found.mean()), 4), "validity": round(float(valid.mean()), 4),
        "immutable_violations": int((immutable & found).sum()),
        "direction_violations": int((down & found).sum()),
        "median_changed": float(np.median(n_changed[valid])) if valid.any() else None,
        "mean_cost_mad": round(float(cost[valid].mean()), 4) if valid.any() else None,
    }


def _print_table(table, keys, width=14):
    cells = [max(len(k) + 2, 10) for k in keys]
    print(f"{'method':<{width}}" + "".join(f"{k:>{c}}" for k, c in zip(keys, cells)))
    for name, row in table.items():
        print(f"{name:<{width}}" + "".join(f"{str(row.get(k)):>{c}}"
                                           for k, c in zip(keys, cells)))


ADULT_KEYS = ["cf_per_s", "cf_per_cpu_s", "validity", "immutable_violations",
              "direction_violations", "median_changed", "mean_cost_mad", "seconds"]
ADULT_K_KEYS = ["validity", "distinct_change_sets", "distinct_counterfactuals",
                "mean_pairwise_distance_mad", "mean_cost_mad", "seconds"]
GERMAN_KEYS = ["rows_per_s", "validity", "rows_with_valid", "valid_per_row",
               "immutable_violations", "mean_pairwise_distance_mad", "distinct_change_sets",
               "mean_cost_mad", "seconds"]


def _dice(py, work, task, method, env=None):
    """Run one DiCE task in its environment (progress bars off); its json record.

    Its OpenMP and BLAS pools get as many threads as skct's search uses (skct's
    ``torch_threads``, default 1), unless the caller's environment sets them: on shared cores
    a second OpenMP thread waiting for a busy one slows every predict_proba call.
    """
    from skct import get_config

    flag = "--methods" if task == "adult" else "--german-methods"
    env = {**(env or os.environ), "TQDM_DISABLE": "1"}
    threads = get_config()["torch_threads"]
    if threads > 0:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, str(threads))
    subprocess.run([str(py), __file__, "--worker", str(work), "--task", task, flag, method],
                   check=True, env=env)
    prefix = "dice" if task == "adult" else "german"
    return json.loads((work / f"{prefix}_{method}.json").read_text())


def _adult(args, py, work, data_home, log):
    """Part 1: one counterfactual per row on Adult (DiCE genetic on a seeded subset)."""
    n_rows = args.rows or (20 if args.quick else 500)
    pipe, X, train, rows = _model_and_rows(n_rows, data_home)
    with open(work / "model.pkl", "wb") as fh:
        pickle.dump(pipe, fh)
    train.to_pickle(work / "train.pkl")
    load = [round(v, 2) for v in os.getloadavg()]
    cf, seconds, cpu, walls, scale = _run_skct(pipe, X, rows, args.repeats)
    table = {"skct": metrics(pipe, rows, cf, scale, seconds, cpu)}
    info = {"rows": n_rows, "threshold": THRESHOLD, "immutable": IMMUTABLE,
            "increase_only": [INCREASE], "load_average_1_5_15": {"before_skct": load},
            "skct_timing": f"median of {args.repeats} seeded explain calls after a warm-up",
            "skct_wall_seconds": [round(w, 4) for w in walls]}
    subsets = {}
    for method in args.methods:
        sub = np.arange(len(rows))
        if method == "genetic" and 0 < args.genetic_rows < len(rows):
            sub = np.sort(np.random.RandomState(0).choice(len(rows), args.genetic_rows,
                                                          replace=False))
            subsets[method] = sub
            info["genetic_subset"] = (f"{len(sub)} of the {len(rows)} rows, "
                                      "np.random.RandomState(0).choice, sorted")
        part = rows.iloc[sub].reset_index(drop=True)
        part.to_pickle(work / f"rows_{method}.pkl")
        np.save(work / f"proba_{method}.npy", pipe.predict_proba(part))
        log(f"DiCE {method} on {len(part)} Adult rows ...")
        meta = _dice(py, work, "adult", method)
        info["model_check_max_abs_diff"] = meta["model_check_max_abs_diff"]
        dice_cf = pd.read_pickle(work / f"dice_{method}.pkl")
        table[f"dice_{method}"] = metrics(pipe, part, dice_cf, scale, meta["seconds"],
                                          meta.get("cpu_seconds"))
        info["load_average_1_5_15"][f"after_dice_{method}"] = [
            round(v, 2) for v in os.getloadavg()]
    for method, sub in subsets.items():  # the other methods on the same subset (no timing)
        part = rows.iloc[sub].reset_index(drop=True)
        table[f"skct@{method}_rows"] = metrics(pipe, part, cf.iloc[sub].reset_index(drop=True),
                                               scale, None)
        if "random" in args.methods:
            rnd = pd.read_pickle(work / "dice_random.pkl").iloc[sub].reset_index(drop=True)
            table[f"dice_random@{method}_rows"] = metrics(pipe, part, rnd, scale, None)
    for name, row in table.items():
        if name.startswith("dice") and row["cf_per_s"]:
            row["skct_speedup"] = round(table["skct"]["cf_per_s"] / row["cf_per_s"], 1)
            if row["cf_per_cpu_s"]:
                row["skct_speedup_cpu"] = round(
                    table["skct"]["cf_per_cpu_s"] / row["cf_per_cpu_s"], 1)
    options = _adult_options(pipe, X, rows, args.adult_k) if args.adult_k > 0 else None
    return {"setting": info, "results": table, "options": options}


def _adult_options(pipe, X, rows, k):
    """Part 1b: k options per Adult row from the gradient-free search, per ``diversity``."""
    from skct import ActionabilityConstraints, CounterfactualExplainer
    from skct.metrics import coverage, diversity

    table = {}
    for div in DIVERSITIES:
        ex = CounterfactualExplainer(
            pipe, generator="gradient_free", target=1, decision_threshold=THRESHOLD,
            constraints=ActionabilityConstraints(mutability={
                **{c: "none" for c in IMMUTABLE}, INCREASE: "increase"}),
            n_per_row=k, diversity=div, random_state=0).fit(X)
        t0 = time.perf_counter()
        res = ex.explain(rows)
        seconds = time.perf_counter() - t0
        w = np.asarray(ex.constraints_.cost_weight_model_, dtype=float)
        z, f, rid, ok = res.counterfactuals_model, res.factuals_model, res.row_id, res.valid
        distinct = {(r, tuple(np.round(v, 6))) for r, v, good in zip(rid, z, ok) if good}
        table[f"skct_gf_{div}"] = {
            "validity": round(float(ok.mean()), 4),
            "distinct_change_sets": round(float(coverage(
                z, f, row_id=rid, feature_id=ex.constraints_.feature_id_model_, valid=ok,
                tol=1e-6)), 3),
            "distinct_counterfactuals": round(len(distinct) / len(rows), 3),
            "mean_pairwise_distance_mad": round(float(diversity(
                z, row_id=rid, weights=w, valid=ok)), 3),
            "mean_cost_mad": round(float((np.abs(z - f) * w).sum(1)[ok].mean()), 3),
            "seconds": round(seconds, 3)}
    return {"setting": {"rows": int(len(rows)), "k": k, "generator": "gradient_free"},
            "results": table}


def _german(args, py, work, data_home, log):
    """Part 2: K diverse counterfactuals per row on German credit, skct vs DiCE."""
    import torch

    pipe, X, rows = _german_model_and_rows(args.german_rows, data_home, work)
    table, scale = {}, None
    for generator, prefix in (("generic", "skct"), ("gradient_free", "skct_gf")):
        for div in DIVERSITIES:
            log(f"skct {generator} diversity={div!r} on {len(rows)} German credit rows ...")
            cf, seconds, ex = _run_skct_k(pipe, X, rows, div, generator)
            scale = np.asarray(ex.constraints_.cost_scale_, dtype=float)
            table[f"{prefix}_{div}"] = k_metrics(pipe, rows, cf, scale, seconds)
    info = {"rows": int(len(rows)), "k": K, "threshold": THRESHOLD,
            "immutable": GERMAN_IMMUTABLE,
            "model": "MinMaxScaler + CounterfactualTrainedClassifier(lambda_div=0, "
                     "lambda_adv=0, lambda_reg=0, max_epochs=100, random_state=0), i.e. an "
                     "MLP (32,); DiCE gets it traced (TorchScript)",
            "skct": "generator='generic' (skct_*) and 'gradient_free' (skct_gf_*), "
                    "n_per_row=5, cost='mad', sparsify_changes=True",
            "dice": {"dpp": "method='gradient' (PyTorch backend), dpp_style:inverse_dist, "
                            "diversity_weight=1.0 (its defaults)",
                     "random": "method='random' on the same network"}}
    env = {**os.environ, "SKCT_PEERS_TORCH": str(Path(torch.__file__).parents[1])}
    for method in args.german_methods:
        log(f"DiCE {method} (total_CFs={K}) on {len(rows)} German credit rows ...")
        meta = _dice(py, work, "german", method, env=env)
        info["model_check_max_abs_diff"] = meta["model_check_max_abs_diff"]
        dice_cf = pd.read_pickle(work / f"german_{method}.pkl")
        table[f"dice_{method}"] = k_metrics(pipe, rows, dice_cf, scale, meta["seconds"])
        table[f"dice_{method}"]["dice_errors"] = meta["errors"]
        if meta["search_seconds"] is not None:  # the rest: its post-hoc sparsity step
            table[f"dice_{method}"]["dice_search_seconds"] = round(meta["search_seconds"], 3)
    return {"setting": info, "results": table}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 Adult and 3 German rows")
    ap.add_argument("--rows", type=int, default=None, help="Adult rows (default 500)")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS,
                    help="DiCE methods on Adult")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed skct explain calls on the Adult rows (the median counts)")
    ap.add_argument("--genetic-rows", type=int, default=100,
                    help="DiCE genetic on a seeded subset of this many Adult rows (0: all)")
    ap.add_argument("--adult-k", type=int, default=3,
                    help="options per Adult row of part 1b (0 skips it)")
    ap.add_argument("--german-rows", type=int, default=None,
                    help="German credit rows (default 20; 0 skips the part)")
    ap.add_argument("--german-methods", nargs="*", default=list(GERMAN_METHODS),
                    choices=GERMAN_METHODS, help="DiCE methods on German credit")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_peers.json")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--task", choices=("adult", "german"), default="adult",
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        run = _worker if args.task == "adult" else _german_worker
        return run(args.worker, args.methods[0] if args.task == "adult"
                   else args.german_methods[0])
    if args.german_rows is None:
        args.german_rows = 3 if args.quick else 20
    data_home = os.environ.get("SKCT_DATA_HOME", str(HERE.parents[1] / "shared" / "data"))
    log = print
    py = _ensure_venv(log) if args.methods or args.german_methods else None
    work = args.out.parent / "peers_work"
    work.mkdir(parents=True, exist_ok=True)
    out = {"adult": _adult(args, py, work, data_home, log)}
    _print_table(out["adult"]["results"], ADULT_KEYS, width=26)
    if args.adult_k > 0:
        out["adult_options"] = out["adult"].pop("options")
        print(f"\nAdult, k = {args.adult_k} options per row (gradient_free):")
        _print_table(out["adult_options"]["results"], ADULT_K_KEYS)
    if args.german_rows > 0:
        out["german_k5"] = _german(args, py, work, data_home, log)
        print(f"\nGerman credit, k = {K} counterfactuals per row:")
        _print_table(out["german_k5"]["results"], GERMAN_KEYS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
