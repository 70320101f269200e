#!/usr/bin/env python
"""Time and peak memory of :meth:`skct.CounterfactualExplainer.explain` at 10k, 100k and 1M rows.

The table is synthetic and in the shape of Adult (``--mode pipeline``, the default): four
integer columns (age, education years, hours per week, capital gain), one binary column and
seven categorical ones (workclass, marital status, occupation, relationship, race, sex, native
country), fed through a Pipeline (``ColumnTransformer``: ``StandardScaler`` on the numbers,
``OneHotEncoder`` on the categories, 49 model columns) into a
:class:`skct.CounterfactualTrainedClassifier` (MLP 32-32, conventionally trained on 5,000 rows).
The explainer searches toward the opposite class with the generic generator (``max_iter``
steps at most), with age only increasing and race, sex and native country immutable, and
sparsifies the changes; every row of the table is explained. ``--mode model`` explains
numeric rows given directly in the model's input space (20 columns, no preprocessing) instead,
which isolates the search from the Pipeline's pandas work.

Each size runs in a fresh subprocess: it loads the fitted model, generates the rows, notes its
RSS (freed heap returned to the system first) and resets its peak to it, runs ``explain`` with
``batch_size`` rows per chunk and reports the wall time, the throughput, the peak RSS (the
kernel's ``VmHWM``; ``getrusage`` would carry the parent's peak over ``fork`` and ``exec``),
the RSS before ``explain`` (the interpreter, torch, the model and the input rows) and the size
of the returned result (counterfactuals, factuals and model-space arrays, which grow with N by
construction). ``peak - before - result`` is the working memory of the chunked explanation:
it should stay flat in N beyond one chunk.

Usage::

    python benchmarks/bench_scale.py                 # 10k, 100k, 1M rows (minutes)
    python benchmarks/bench_scale.py --quick         # 2k and 10k rows, seconds
    python benchmarks/bench_scale.py --sizes 10000,100000 --batch-size 4096
    python benchmarks/bench_scale.py --dask 2 --sizes 1000000   # audit on a LocalCluster

``--dask N`` runs :func:`skct.recourse_audit` (target 1, groups sex and race, reference 5,000
rows) on a ``LocalCluster`` of N single-thread worker processes inside
``joblib.parallel_backend("dask")`` instead, and reports the wall time, the driver's peak RSS
and each worker's (bounded by ``--batch-size``, the audit's chunk), each worker's RSS sampled
every second (``Client.run``; the series goes into the JSON) and the most task data a worker
held at once (keys and MB, as Dask counts them).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CATEGORIES = {
    "workclass": ["private", "self-emp", "local-gov", "state-gov", "federal-gov", "unpaid",
                  "never-worked"],
    "marital": ["married", "never-married", "divorced", "separated", "widowed"],
    "occupation": ["craft", "prof", "exec", "adm", "sales", "service", "machine", "transport",
                   "handlers", "farming", "tech", "protective"],
    "relationship": ["husband", "wife", "own-child", "unmarried", "not-in-family", "other"],
    "race": ["white", "black", "asian", "amer-indian", "other"],
    "sex": ["female", "male"],
    "native_country": ["us", "mexico", "philippines", "germany", "canada", "india", "other"],
}
NUMERIC = ["age", "education_num", "hours_per_week", "capital_gain"]
N_MODEL_FEATURES = 20


def make_table(n, seed):
    """An Adult-like frame of ``n`` rows and its labels (vectorised, deterministic in seed)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {
        "age": rng.integers(17, 91, n),
        "education_num": rng.integers(1, 17, n),
        "hours_per_week": rng.integers(1, 100, n),
        "capital_gain": np.where(rng.random(n) < 0.9, 0, rng.integers(0, 20000, n)),
        "owns_house": rng.random(n) < 0.4,
    }
    codes = {}
    for name, levels in CATEGORIES.items():
        codes[name] = rng.integers(0, len(levels), n)
        cols[name] = np.asarray(levels, dtype=object)[codes[name]]
    frame = pd.DataFrame(cols)
    score = (0.04 * (cols["age"] - 40) + 0.3 * (cols["education_num"] - 10)
             + 0.03 * (cols["hours_per_week"] - 40) + cols["capital_gain"] / 5000
             + 0.5 * cols["owns_house"] + 0.8 * (codes["marital"] == 0)
             + 0.6 * np.isin(codes["occupation"], [1, 2]) - 0.4 * (codes["workclass"] == 5))
    y = (score + rng.normal(0, 0.8, n) > 0.3).astype(np.int64)
    return frame, y


def make_numeric(n, seed):
    """Numeric rows already in the model's input space, and their labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_MODEL_FEATURES)).astype(np.float32)
    w = np.linspace(1.0, -0.5, N_MODEL_FEATURES)
    y = (X @ w + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    return X, y


def make_data(mode, n, seed):
    return make_table(n, seed) if mode == "pipeline" else make_numeric(n, seed)


def fit_explainer(mode, max_iter, seed):
    """The fitted explainer (batch_size set later), fitted on 5,000 reference rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from skct import ActionabilityConstraints, CounterfactualExplainer
    from skct import CounterfactualTrainedClassifier

    X, y = make_data(mode, 5000, seed)
    clf = CounterfactualTrainedClassifier(
        lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0, hidden_layer_sizes=(32, 32),
        max_epochs=15, batch_size=128, lr=0.01, random_state=seed)
    if mode == "pipeline":
        ct = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                ("bin", "passthrough", ["owns_house"]),
                                ("cat", OneHotEncoder(sparse_output=False), list(CATEGORIES))])
        model = make_pipeline(ct, clf).fit(X, y)
        constraints = ActionabilityConstraints(mutability={
            "age": "increase", "race": "none", "sex": "none", "native_country": "none"})
    else:
        model = clf.fit(X, y)
        constraints = ActionabilityConstraints(mutability={0: "none", 1: "increase"})
    return CounterfactualExplainer(model, target="opposite", constraints=constraints,
                                   max_iter=max_iter, random_state=seed).fit(X, y)


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb():
    """This process's own peak RSS: the kernel's high-water mark ``VmHWM`` (MB).

    ``getrusage``'s ``ru_maxrss`` is no use here: Linux carries it over ``fork`` and ``exec``,
    so a fresh subprocess (a size's child, a Dask worker) starts with its parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _settled_rss_mb():
    """RSS once freed heap memory went back to the system (glibc ``malloc_trim``), with the
    peak reset to it (``/proc/self/clear_refs``), so that the peak is the measured call's.

    Without the trim, the RSS before ``explain`` counts the freed temporaries of making the
    rows, memory the explanation then reuses without raising the RSS: ``working`` would come
    out too small, even negative.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    return _rss_mb()


def _worker_memory(dask_worker):
    """One Dask worker's RSS, peak RSS and the task results and data it holds (MB)."""
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return {"rss_mb": rss, "peak_rss_mb": _peak_rss_mb(), "keys": len(dask_worker.data),
            "held_mb": dask_worker.state.nbytes / 2**20}


class _WorkerSampler(threading.Thread):
    """Samples every worker's :func:`_worker_memory` every ``interval`` seconds."""

    def __init__(self, client, interval=1.0):
        super().__init__(daemon=True)
        self.client, self.interval, self.samples = client, interval, []
        self._stop_event = threading.Event()

    def run(self):
        t0 = time.perf_counter()
        while not self._stop_event.is_set():
            try:
                at = time.perf_counter() - t0
                by_worker = self.client.run(_worker_memory)
                self.samples.append((at, [by_worker[w] for w in sorted(by_worker)], _rss_mb()))
            except Exception:  # a worker busy past the timeout: skip this sample
                pass
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()

    def summary(self):
        """Per worker (in address order): max RSS, max keys and MB held; the series of
        ``[seconds, worker RSS..., client RSS]`` (MB)."""
        n = len(self.samples[0][1]) if self.samples else 0
        return {
            "worker_max_sampled_rss_mb": [max(s[w]["rss_mb"] for _, s, _ in self.samples)
                                          for w in range(n)],
            "worker_max_keys": [max(s[w]["keys"] for _, s, _ in self.samples) for w in range(n)],
            "worker_max_held_mb": [max(s[w]["held_mb"] for _, s, _ in self.samples)
                                   for w in range(n)],
            "worker_rss_series": [[round(at, 1)] + [round(s[w]["rss_mb"]) for w in range(n)]
                                  + [round(client)] for at, s, client in self.samples],
        }


def _nbytes(obj):
    if obj is None:
        return 0
    if hasattr(obj, "memory_usage"):
        return int(obj.memory_usage(deep=False, index=True).sum())  # shared strings once
    return int(np.asarray(obj).nbytes)


def child(args):
    """One size, in this (fresh) process: prints one JSON line."""
    import torch

    import skct

    torch.set_num_threads(args.threads)
    with open(args.model, "rb") as f:
        explainer = pickle.load(f)
    explainer.set_params(batch_size=args.batch_size)
    X, _ = make_data(args.mode, args.n, args.seed + 1)
    before = _settled_rss_mb()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with skct.config_context(torch_threads=args.threads):
        res = explainer.explain(X)
    wall = time.perf_counter() - t0
    peak = _peak_rss_mb()
    result_mb = sum(_nbytes(getattr(res, k)) for k in (
        "counterfactuals", "factuals", "counterfactuals_model", "factuals_model", "targets",
        "valid", "converged", "n_iter", "target_proba", "target_index", "n_changed")) / 2**20
    print(json.dumps({
        "n_rows": args.n, "batch_size": args.batch_size, "wall_s": wall,
        "rows_per_s": args.n / wall, "peak_rss_mb": peak, "rss_before_mb": before,
        "result_mb": result_mb, "working_mb": peak - before - result_mb,
        "valid_share": float(res.valid.mean()), "mean_n_iter": float(res.n_iter.mean()),
        "loadavg_1min_before": load, "loadavg_1min_after": os.getloadavg()[0]}))


def child_audit(args):
    """A recourse audit of ``args.n`` rows on a Dask LocalCluster: prints one JSON line."""
    import joblib
    from dask.distributed import Client, LocalCluster

    from skct import recourse_audit

    with open(args.model, "rb") as f:
        explainer = pickle.load(f)
    X_ref, y_ref = make_data(args.mode, 5000, args.seed)
    X, _ = make_data(args.mode, args.n, args.seed + 1)
    groups = ["sex", "race"] if args.mode == "pipeline" else None
    before = _settled_rss_mb()
    with LocalCluster(n_workers=args.dask, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        start = client.run(_worker_memory)
        sampler = _WorkerSampler(client)
        sampler.start()
        t0 = time.perf_counter()
        with joblib.parallel_backend("dask"):
            report = recourse_audit(explainer.estimator_, X, target=1,
                                    constraints=explainer.constraints, groups=groups,
                                    max_iter=args.max_iter, reference=(X_ref, y_ref),
                                    batch_size=args.batch_size, random_state=args.seed)
        wall = time.perf_counter() - t0
        sampler.stop()
        workers = client.run(_worker_memory)
    peak = _peak_rss_mb()
    valid = report.rows_["valid"].to_numpy() if "valid" in report.rows_ else None
    print(json.dumps({
        "n_rows": args.n, "batch_size": args.batch_size, "dask_workers": args.dask,
        "wall_s": wall, "rows_per_s": args.n / wall, "driver_peak_rss_mb": peak,
        "driver_rss_before_mb": before,
        "worker_rss_at_start_mb": [start[w]["rss_mb"] for w in sorted(start)],
        "worker_peak_rss_mb": [workers[w]["peak_rss_mb"] for w in sorted(workers)],
        **sampler.summary(),
        "valid_share": None if valid is None else float(valid.mean()),
        "loadavg_1min_after": os.getloadavg()[0]}))


def machine_info(args):
    import torch

    import skct

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "python": platform.python_version(), "torch": torch.__version__,
            "skct": getattr(skct, "__version__", None), "cpu_count": os.cpu_count(),
            "torch_threads": args.threads, "git_commit": commit or None,
            "loadavg_at_start": list(os.getloadavg())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2k and 10k rows (seconds)")
    p.add_argument("--sizes", default=None, help="comma-separated row counts")
    p.add_argument("--batch-size", type=int, default=8192, help="rows per explain chunk")
    p.add_argument("--mode", choices=["pipeline", "model"], default="pipeline")
    p.add_argument("--max-iter", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/)")
    p.add_argument("--dask", type=int, default=0, metavar="N_WORKERS",
                   help="instead: a recourse audit on a Dask LocalCluster of N workers")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_audit(args) if args.dask else child(args)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [2000, 10000] if args.quick else [10_000, 100_000, 1_000_000])
    if args.quick:
        args.batch_size = min(args.batch_size, 2048)
    info = machine_info(args)
    print(f"skct bench_scale: mode={args.mode}, batch_size={args.batch_size}, "
          f"max_iter={args.max_iter}, torch threads {args.threads}, {info['cpu_count']} CPUs, "
          f"load {info['loadavg_at_start']}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "explainer.pkl")
        with open(model, "wb") as f:
            pickle.dump(fit_explainer(args.mode, args.max_iter, args.seed), f)
        for n in sizes:
            cmd = [sys.executable, __file__, "--child", "--model", model, "--n", str(n),
                   "--mode", args.mode, "--batch-size", str(args.batch_size),
                   "--threads", str(args.threads), "--seed", str(args.seed),
                   "--dask", str(args.dask), "--max-iter", str(args.max_iter)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                sys.stderr.write(out.stderr)
                raise SystemExit(f"size {n} failed (exit {out.returncode})")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            if args.dask:
                print(f"{n:>9,} rows  audit on {args.dask} Dask workers  {r['wall_s']:8.1f} s  "
                      f"{r['rows_per_s']:8.0f} rows/s  driver peak {r['driver_peak_rss_mb']:7.0f}"
                      f" MB  worker peaks {[round(m) for m in r['worker_peak_rss_mb']]} MB "
                      f"(at start {[round(m) for m in r['worker_rss_at_start_mb']]}, held at "
                      f"most {[round(m, 1) for m in r['worker_max_held_mb']]} MB in "
                      f"{r['worker_max_keys']} keys)  valid {r['valid_share']}", flush=True)
                continue
            print(f"{n:>9,} rows  {r['wall_s']:8.1f} s  {r['rows_per_s']:8.0f} rows/s  "
                  f"peak {r['peak_rss_mb']:7.0f} MB  before {r['rss_before_mb']:6.0f} MB  "
                  f"result {r['result_mb']:6.0f} MB  working {r['working_mb']:6.0f} MB  "
                  f"valid {r['valid_share']:.2f}  n_iter {r['mean_n_iter']:.1f}  "
                  f"load {r['loadavg_1min_before']:.1f}", flush=True)
    info["loadavg_at_end"] = list(os.getloadavg())
    path = Path(args.out) if args.out else Path(__file__).parent / "results" / (
        f"bench_scale{'_dask' if args.dask else ''}{'_quick' if args.quick else ''}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": info, "settings": {
        "mode": args.mode, "batch_size": args.batch_size, "max_iter": args.max_iter,
        "sizes": sizes, "dask_workers": args.dask}, "results": rows}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
