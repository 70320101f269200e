#!/usr/bin/env python
"""Soak test: many fits and explain calls in one process, every guarantee checked every time.

Each round draws a random mixed table (continuous, integer, binary and categorical columns),
random actionability constraints (immutable columns, increase/decrease-only columns, explicit
raw-unit bounds, sometimes ``max_changed``) and fits a Pipeline
(``ColumnTransformer(StandardScaler + OneHotEncoder)`` + a small
:class:`~skct.CounterfactualTrainedClassifier`), then explains random subsets of rows. After
every explain call it checks what users rely on:

- the rows passed in are not modified;
- immutable columns are bit-identical, increase-only columns never go down and
  decrease-only columns never go up (raw units);
- every returned value lies in the fitted raw domain, widened to the factual's own value;
- integer columns are integral, binary columns in {0, 1}, categories among the known levels,
  and every column keeps its dtype;
- ``valid`` equals ``predict(returned rows) == target``; ``n_changed <= max_changed``.

Between rounds it records the process's resident memory (RSS) and its open file handles: both
should stay flat. The default is 50 fits and 1,000 explain calls (about two minutes on one
core); ``--quick`` runs 5 fits and 20 calls. Prints a table, writes JSON (``--out``), and exits
with status 1 if any guarantee failed on any call.

Usage::

    python benchmarks/soak.py
    python benchmarks/soak.py --quick
    python benchmarks/soak.py --fits 100 --calls-per-fit 20 --out /tmp/soak.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skct
from skct import ActionabilityConstraints, CounterfactualExplainer, CounterfactualTrainedClassifier

HERE = Path(__file__).resolve().parent


def rss_mb():
    """Resident set size of this process in MiB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def open_files():
    """Number of open file descriptors of this process (Linux /proc; -1 elsewhere)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def random_table(rng, n_rows):
    """A mixed table with a label that depends on several columns."""
    n_cont, n_int = rng.integers(1, 4), rng.integers(1, 3)
    cols = {}
    for j in range(n_cont):
        cols[f"cont{j}"] = rng.normal(rng.uniform(-5, 5), rng.uniform(0.5, 3), n_rows)
    for j in range(n_int):
        cols[f"count{j}"] = rng.poisson(rng.uniform(1, 8), n_rows).astype(np.int64)
    cols["flag"] = rng.integers(0, 2, n_rows).astype(np.int64)
    levels = ["a", "b", "c", "d"][: rng.integers(2, 5)]
    cols["cat"] = pd.Categorical(rng.choice(levels, n_rows), categories=levels)
    X = pd.DataFrame(cols)
    score = sum((X[c] - X[c].mean()) / X[c].std() for c in X.columns if c != "cat")
    score = score + (X["cat"].cat.codes.to_numpy() - 1) * 0.5 + rng.normal(0, 0.5, n_rows)
    y = (score > np.median(score)).astype(int)
    return X, y


def random_constraints(rng, X):
    """Random mutability, raw-unit bounds and change limit for the table's columns."""
    numeric = [c for c in X.columns if c != "cat"]
    words = {}
    for c in list(X.columns):
        r = rng.uniform()
        if r < 0.2:
            words[c] = "none"
        elif r < 0.35 and c in numeric:
            words[c] = "increase"
        elif r < 0.5 and c in numeric:
            words[c] = "decrease"
    bounds = {}
    for c in numeric:
        if c.startswith("cont") and rng.uniform() < 0.3:
            lo, hi = np.quantile(X[c], [0.05, 0.95])
            bounds[c] = (float(lo), float(hi))
    max_changed = int(rng.integers(1, 4)) if rng.uniform() < 0.3 else None
    return ActionabilityConstraints(mutability=words, bounds=bounds or "default",
                                    max_changed=max_changed)


def make_pipeline(X, seed, ct):
    numeric = [c for c in X.columns if c != "cat"]
    pre = ColumnTransformer([("num", StandardScaler(), numeric),
                             ("cat", OneHotEncoder(), ["cat"])])
    lambdas = dict(lambda_div=0.5, lambda_adv=0.25, lambda_reg=0.1) if ct else \
        dict(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)
    clf = CounterfactualTrainedClassifier(max_epochs=8, lr=0.01, batch_size=64,
                                          n_counterfactuals=64, max_iter_cf=10,
                                          random_state=seed, **lambdas)
    return Pipeline([("pre", pre), ("clf", clf)])


def check_call(explainer, pipe, X_in, X_before, result, target):
    """Every guarantee for one explain call; returns a list of violations (strings)."""
    bad = []
    if not X_in.equals(X_before):
        bad.append("input modified")
    cf, c = result.counterfactuals, explainer.constraints_
    names = list(X_in.columns)
    for j, col in enumerate(names):
        a, b = X_in[col], cf[col]
        if a.dtype != b.dtype:
            bad.append(f"{col}: dtype {a.dtype} -> {b.dtype}")
        word, kind = c.mutability_[j], c.feature_kinds_[j]
        if word == "none" and not a.equals(b):
            bad.append(f"{col}: immutable column changed")
        if kind == "categorical":
            if not set(b.astype(object)) <= set(a.cat.categories):
                bad.append(f"{col}: unknown level")
            continue
        av, bv = a.to_numpy(float), b.to_numpy(float)
        if word == "increase" and (bv < av).any():
            bad.append(f"{col}: increase-only column went down")
        if word == "decrease" and (bv > av).any():
            bad.append(f"{col}: decrease-only column went up")
        lo, hi = np.minimum(c.lower_[j], av), np.maximum(c.upper_[j], av)
        if ((bv < lo) | (bv > hi)).any():
            bad.append(f"{col}: outside the domain")
        if kind in ("integer", "binary") and not np.array_equal(bv, np.round(bv)):
            bad.append(f"{col}: fractional value in an integer column")
        if kind == "binary" and not np.isin(bv, [0.0, 1.0]).all():
            bad.append(f"{col}: binary column outside {{0, 1}}")
    agrees = pipe.predict(cf) == target
    reached = result.target_proba >= explainer.decision_threshold
    if (result.valid != (agrees & reached)).any():
        bad.append("valid disagrees with the model on the returned rows")
    limit = c.max_changed
    if limit is not None and (result.n_changed > limit).any():
        bad.append(f"n_changed above max_changed={limit}")
    return bad


def run(n_fits, calls_per_fit, seed):
    rng = np.random.default_rng(seed)
    rows, violations, samples = [], [], []
    calls = 0
    start = time.perf_counter()
    for fit in range(n_fits):
        X, y = random_table(rng, int(rng.integers(200, 400)))
        constraints = random_constraints(rng, X)
        pipe = make_pipeline(X, seed + fit, ct=bool(fit % 5 == 0)).fit(X, y)
        generator = ["generic", "ecco"][fit % 2]
        explainer = CounterfactualExplainer(pipe, generator=generator, target=1,
                                            constraints=constraints, max_iter=40,
                                            random_state=fit).fit(X, y)
        rejected = X[pipe.predict(X) == 0]
        for _ in range(calls_per_fit):
            if len(rejected) == 0:
                break
            idx = rng.choice(len(rejected), size=min(len(rejected), int(rng.integers(1, 30))),
                             replace=False)
            X_in = rejected.iloc[np.sort(idx)]
            X_before = X_in.copy()
            result = explainer.explain(X_in)
            target = np.full(len(X_in), 1)
            for v in check_call(explainer, pipe, X_in, X_before, result, target):
                violations.append({"fit": fit, "call": calls, "violation": v})
            samples.append(float(result.valid.mean()))
            calls += 1
        del pipe, explainer
        gc.collect()
        rows.append({"fits": fit + 1, "calls": calls, "rss_mb": rss_mb(),
                     "open_files": open_files(), "violations": len(violations),
                     "elapsed_s": time.perf_counter() - start})
    return rows, violations, samples


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fits", type=int, default=50)
    p.add_argument("--calls-per-fit", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="5 fits, 4 calls each (seconds)")
    p.add_argument("--out", default=str(HERE / "results" / "soak.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.fits, args.calls_per_fit = 5, 4
    warnings.simplefilter("ignore")  # expected user warnings (invalid rows, bounds) are noise
    with skct.config_context(torch_threads=1):
        rows, violations, valid = run(args.fits, args.calls_per_fit, args.seed)
    step = max(1, len(rows) // 10)
    print(f"{'fits':>5} {'calls':>6} {'RSS MiB':>8} {'open files':>10} {'violations':>10} "
          f"{'elapsed s':>9}")
    for r in rows[step - 1::step]:
        print(f"{r['fits']:>5} {r['calls']:>6} {r['rss_mb']:>8.1f} {r['open_files']:>10} "
              f"{r['violations']:>10} {r['elapsed_s']:>9.1f}")
    warm = rows[min(len(rows) - 1, max(1, len(rows) // 5))]
    growth = rows[-1]["rss_mb"] - warm["rss_mb"]
    files = rows[-1]["open_files"] - warm["open_files"]
    print(f"\n{rows[-1]['calls']} explain calls, {len(rows)} fits; mean validity "
          f"{np.mean(valid) if valid else float('nan'):.2f}; RSS growth after warm-up "
          f"{growth:+.1f} MiB; open files {files:+d}; violations {len(violations)}")
    for v in violations[:20]:
        print(f"  fit {v['fit']} call {v['call']}: {v['violation']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "violations": violations,
                               "rss_growth_mb": growth, "open_files_growth": files,
                               "skct_version": skct.__version__}, indent=2))
    print(f"wrote {out}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
