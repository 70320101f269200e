"""skct's gradient-free search and DiCE side by side on one Adult model and one set of rows.

The model: a scikit-learn Pipeline (StandardScaler + OneHotEncoder, then
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
``permitted_range`` of education-num starting at the row's value). Every metric is computed
here, by one function, on the returned rows: counterfactuals per second (rows over the time
of the calls that produce them; set-up and model training excluded), validity (the model
predicts >50K), immutable and direction violations, median changed columns and mean cost in
MAD units (numeric columns over skct's ``cost_scale_``, a changed category counts 1), both
over valid rows.

    python benchmarks/bench_peers.py            # 500 rows (DiCE genetic takes long)
    python benchmarks/bench_peers.py --quick    # 20 rows
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


# ---------------------------------------------------------------- DiCE's side (its own venv)
def _worker(work, method):
    """Run DiCE on the saved rows with the saved model; write its rows and timings."""
    import dice_ml

    with open(work / "model.pkl", "rb") as fh:
        pipe = pickle.load(fh)
    train = pd.read_pickle(work / "train.pkl")
    rows = pd.read_pickle(work / "rows.pkl")
    expected = np.load(work / "proba.npy")
    got = pipe.predict_proba(rows)
    diff = float(np.abs(got - expected).max())
    if diff != 0.0:
        raise SystemExit(f"model mismatch between environments: max |dp| = {diff}")
    numeric = [c for c in rows.columns if pd.api.types.is_numeric_dtype(rows[c])]
    data = dice_ml.Data(dataframe=train, continuous_features=numeric, outcome_name="income")
    dice = dice_ml.Dice(data, dice_ml.Model(model=pipe, backend="sklearn"), method=method)
    vary = [c for c in rows.columns if c not in IMMUTABLE]
    top = float(train[INCREASE].max())
    out, seconds = [], 0.0
    for i in range(len(rows)):
        q = rows.iloc[[i]]
        t0 = time.perf_counter()
        try:
            res = dice.generate_counterfactuals(
                q, total_CFs=1, desired_class=1, features_to_vary=vary,
                permitted_range={INCREASE: [float(q[INCREASE].iloc[0]), top]},
                stopping_threshold=THRESHOLD, verbose=False)
            cf = res.cf_examples_list[0].final_cfs_df
        except Exception as exc:  # DiCE raises when it finds nothing for some rows
            cf, err = None, repr(exc)
        else:
            err = None
        seconds += time.perf_counter() - t0
        if cf is None or len(cf) == 0:
            out.append(q.assign(_found=False, _error=err))
        else:
            out.append(cf.drop(columns="income").iloc[[0]].assign(_found=True, _error=None))
    frame = pd.concat(out, ignore_index=True)
    frame.to_pickle(work / f"dice_{method}.pkl")
    (work / f"dice_{method}.json").write_text(json.dumps(
        {"seconds": seconds, "model_check_max_abs_diff": diff}))


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


def _run_skct(pipe, X, rows):
    from skct import ActionabilityConstraints, CounterfactualExplainer

    constraints = ActionabilityConstraints(mutability={
        **{c: "none" for c in IMMUTABLE}, INCREASE: "increase"})
    ex = CounterfactualExplainer(pipe, generator="gradient_free", target=1,
                                 constraints=constraints, decision_threshold=THRESHOLD,
                                 random_state=0).fit(X)
    ex.explain(rows.iloc[:5])  # warm-up (first calls load kernels)
    t0 = time.perf_counter()
    res = ex.explain(rows)
    seconds = time.perf_counter() - t0
    cf = res.counterfactuals.assign(_found=True, _error=None)
    return cf, seconds, np.asarray(ex.constraints_.cost_scale_, dtype=float)


def metrics(pipe, rows, cf, scale, seconds):
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
    return {
        "rows": int(len(rows)), "seconds": round(seconds, 3),
        "cf_per_s": round(len(rows) / seconds, 2) if seconds > 0 else None,
        "found": round(float(found.mean()), 4), "validity": round(float(valid.mean()), 4),
        "immutable_violations": int((immutable & found).sum()),
        "direction_violations": int((down & found).sum()),
        "median_changed": float(np.median(n_changed[valid])) if valid.any() else None,
        "mean_cost_mad": round(float(cost[valid].mean()), 4) if valid.any() else None,
    }


def _print_table(table):
    keys = ["cf_per_s", "validity", "immutable_violations", "direction_violations",
            "median_changed", "mean_cost_mad", "seconds"]
    print(f"{'method':<14}" + "".join(f"{k:>22}" for k in keys))
    for name, row in table.items():
        print(f"{name:<14}" + "".join(f"{str(row.get(k)):>22}" for k in keys))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 rows instead of 500")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_peers.json")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return _worker(args.worker, args.methods[0])
    n_rows = args.rows or (20 if args.quick else 500)
    data_home = os.environ.get("SKCT_DATA_HOME", str(HERE.parents[1] / "shared" / "data"))
    log = print
    py = _ensure_venv(log) if args.methods else None
    pipe, X, train, rows = _model_and_rows(n_rows, data_home)
    work = args.out.parent / "peers_work"
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "model.pkl", "wb") as fh:
        pickle.dump(pipe, fh)
    train.to_pickle(work / "train.pkl")
    rows.to_pickle(work / "rows.pkl")
    np.save(work / "proba.npy", pipe.predict_proba(rows))
    cf, seconds, scale = _run_skct(pipe, X, rows)
    table = {"skct": metrics(pipe, rows, cf, scale, seconds)}
    info = {"rows": n_rows, "threshold": THRESHOLD, "immutable": IMMUTABLE,
            "increase_only": [INCREASE]}
    for method in args.methods:
        log(f"DiCE {method} on {n_rows} rows ...")
        subprocess.run([str(py), __file__, "--worker", str(work), "--methods", method],
                       check=True)
        meta = json.loads((work / f"dice_{method}.json").read_text())
        info["model_check_max_abs_diff"] = meta["model_check_max_abs_diff"]
        dice_cf = pd.read_pickle(work / f"dice_{method}.pkl")
        table[f"dice_{method}"] = metrics(pipe, rows, dice_cf, scale, meta["seconds"])
    for name, row in table.items():
        if name != "skct" and row["cf_per_s"]:
            row["skct_speedup"] = round(table["skct"]["cf_per_s"] / row["cf_per_s"], 1)
    _print_table(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"setting": info, "results": table}, indent=2))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
