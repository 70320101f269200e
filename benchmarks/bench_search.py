#!/usr/bin/env python
"""Throughput of skct's batched counterfactual search, against a bare torch loop.

For a 20 -> 64 -> 64 -> 2 ReLU MLP (fixed random init) and standard normal factuals, this
times one full T-step search (rows per second = N / seconds for the whole search) for each
generator at several batch sizes N:

- ``generic``: :class:`skct.search.generators.GenericGenerator`, unconstrained;
- ``generic_constrained``: the same with bounds on every feature, a quarter of the features
  "increase" and a quarter "none" (half the features restricted);
- ``ecco``: :class:`skct.search.generators.ECCoGenerator`;
- ``revise``: :class:`skct.search.generators.REVISEGenerator` (VAE fitted beforehand; fit time excluded);
- ``bare``: a hand-written torch loop doing the same T gradient steps with the same maths as
  ``generic`` (cross-entropy toward the target + 0.001 * L1 cost, step 0.25). It is the floor
  the engine's overhead (masks, constraints, convergence bookkeeping) is measured against.

Every search runs all T steps for every row: the decision threshold is 1.1, which no
probability reaches, and the script checks that ``SearchResult.total_steps == N * T``. It also
checks that ``generic`` and ``bare`` produce the same counterfactuals.

Each cell is the best of ``--repeats`` runs after one warm-up run; the runs of all methods at
one N are interleaved so that load from other processes hits them alike. Wall-clock (what the
table's rows/s use) and process CPU time are both recorded. A thread study repeats ``generic``
and ``bare`` at 10k rows with 1 and 2 torch intra-op threads.

Usage::

    python benchmarks/bench_search.py            # full run (a few minutes)
    python benchmarks/bench_search.py --quick    # smoke run (seconds)
    python benchmarks/bench_search.py --threads 2 --out /tmp/search.json
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import skct
from skct.constraints import TorchConstraints
from skct.search.generators import ECCoGenerator, GenericGenerator, REVISEGenerator
from skct.search import search

#: The decision threshold used for every skct search: no probability reaches it, so every row
#: takes exactly ``max_iter`` steps (p is at most 1.0 in floating point).
NEVER = 1.1

N_FEATURES = 20
HIDDEN = (64, 64)
N_CLASSES = 2
STEP_SIZE = 0.25
LAMBDA_COST = 0.001
METHODS = ("generic", "generic_constrained", "ecco", "revise", "bare")
TARGET_RATIO = 0.8  # expectation: generic >= 80% of bare's throughput at 10k rows
TARGET_N = 10_000


# ---------------------------------------------------------------------------------------------
# machine and environment
# ---------------------------------------------------------------------------------------------
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def set_threads(n):
    """Use ``n`` torch intra-op threads, in torch and (where it has the setting) in skct.

    skct may run its own work with its configured thread count (``skct.set_config``); setting
    both makes ``--threads`` and the thread study apply to skct's code as well as to the bare
    loop.
    """
    torch.set_num_threads(n)
    if hasattr(skct, "set_config"):
        skct.set_config(torch_threads=n)


def machine_info():
    """What the numbers depend on: versions, threads, CPUs and the load at the time."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "torch_version": torch.__version__,
        "skct_version": getattr(skct, "__version__", None),
        "git_commit": _git_commit(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "skct_config": skct.get_config() if hasattr(skct, "get_config") else None,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------
# model, data, generators
# ---------------------------------------------------------------------------------------------
def make_model(seed=0):
    """20 -> 64 -> 64 -> 2 ReLU MLP with a fixed random initialisation, in eval mode."""
    torch.manual_seed(seed)
    layers, width = [], N_FEATURES
    for h in HIDDEN:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, N_CLASSES))
    return nn.Sequential(*layers).eval()


def make_data(n, model, seed):
    """Standard normal factuals [n, D] and, as target, the class the model does not predict."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N_FEATURES, generator=gen)
    with torch.no_grad():
        target = 1 - model(x).argmax(dim=1)
    return x, target


def realistic_constraints(d=N_FEATURES):
    """Bounds [-3, 3] on every feature; a quarter 'increase', a quarter 'none', the rest 'both'.

    (Factuals outside the bounds are handled by the engine, which widens them per row.)
    """
    q = d // 4
    words = ["increase"] * q + ["none"] * q + ["both"] * (d - 2 * q)
    return TorchConstraints.from_arrays(np.full(d, -3.0), np.full(d, 3.0), words, [])


def bare_search(model, x0, target, max_iter):
    """The floor: T gradient steps of the Generic objective, written by hand."""
    x = x0.clone().requires_grad_()
    for _ in range(max_iter):
        loss = (F.cross_entropy(model(x), target, reduction="sum")
                + LAMBDA_COST * (x - x0).abs().sum())
        (g,) = torch.autograd.grad(loss, x)
        x = (x - STEP_SIZE * g).detach().requires_grad_()
    return x.detach()


def make_runners(model, max_iter, revise):
    """Callables ``f(x, target) -> (counterfactuals, total_steps or None)`` per method."""
    generic = GenericGenerator(step_size=STEP_SIZE, lambda_cost=LAMBDA_COST)
    ecco = ECCoGenerator(step_size=STEP_SIZE, lambda_cost=LAMBDA_COST)
    constrained = realistic_constraints()

    def skct_runner(gen, constraints=None):
        def run(x, target):
            res = search(model, x, target, gen, constraints, decision_threshold=NEVER,
                         max_iter=max_iter)
            return res.counterfactuals, res.total_steps
        return run

    def bare(x, target):
        return bare_search(model, x, target, max_iter), None

    return {
        "generic": skct_runner(generic),
        "generic_constrained": skct_runner(generic, constrained),
        "ecco": skct_runner(ecco),
        "revise": skct_runner(revise),
        "bare": bare,
    }


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def timed(fn, *args):
    """(wall seconds, process CPU seconds, return value) of one call."""
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn(*args)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return wall, cpu, out


def bench_size(runners, methods, model, n, max_iter, repeats, seed):
    """Best-of-``repeats`` timings of every method at N = n (runs interleaved, warm-up first)."""
    x, target = make_data(n, model, seed)
    cells = {m: {"wall_s": [], "cpu_s": [], "total_steps": None} for m in methods}
    for m in methods:  # warm-up (and the all-T-steps check)
        _, _, (_, steps) = timed(runners[m], x, target)
        if steps is not None and steps != n * max_iter:
            raise RuntimeError(f"{m} at N={n} took {steps} row-steps, expected {n * max_iter}: "
                               "the search converged early, the comparison would be unfair.")
        cells[m]["total_steps"] = n * max_iter if steps is None else steps
    for _ in range(repeats):
        for m in methods:
            wall, cpu, _ = timed(runners[m], x, target)
            cells[m]["wall_s"].append(wall)
            cells[m]["cpu_s"].append(cpu)
    for m, cell in cells.items():
        cell["best_wall_s"] = min(cell["wall_s"])
        cell["best_cpu_s"] = min(cell["cpu_s"])
        cell["rows_per_s"] = n / cell["best_wall_s"]
        cell["rows_per_cpu_s"] = n / cell["best_cpu_s"]
    return cells


def check_same_maths(runners, model, max_iter, seed, n=1000):
    """Max |generic - bare| over the counterfactuals of n rows (0 up to float rounding)."""
    x, target = make_data(n, model, seed)
    a, _ = runners["generic"](x, target)
    b, _ = runners["bare"](x, target)
    return float((a - b).abs().max())


def thread_study(runners, model, n, max_iter, repeats, seed, thread_counts):
    """generic and bare at N = n with each torch intra-op thread count."""
    before = torch.get_num_threads()
    out = {}
    try:
        for k in thread_counts:
            set_threads(k)
            cells = bench_size(runners, ("generic", "bare"), model, n, max_iter, repeats, seed)
            out[str(k)] = {
                m: {"best_wall_s": c["best_wall_s"], "best_cpu_s": c["best_cpu_s"],
                    "rows_per_s": c["rows_per_s"], "wall_s": c["wall_s"], "cpu_s": c["cpu_s"]}
                for m, c in cells.items()
            }
            out[str(k)]["ratio_generic_bare"] = (cells["generic"]["rows_per_s"]
                                                 / cells["bare"]["rows_per_s"])
            out[str(k)]["loadavg"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    finally:
        set_threads(before)
    return out


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small smoke run: N in {1k, 10k}, 1 repeat, short VAE fit, thread "
                        "study at 1k rows")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output path (default: benchmarks/results/bench_search.json)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads for the main table (default 1; see the thread "
                        "study in the output)")
    p.add_argument("--sizes", type=str, default=None,
                   help="comma-separated row counts (default 1000,10000,100000)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per cell (default 3)")
    p.add_argument("--max-iter", type=int, default=30, help="search steps T (default 30)")
    p.add_argument("--methods", type=str, default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--no-thread-study", action="store_true", help="skip the thread study")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [1000, 10_000] if args.quick else [1000, 10_000, 100_000])
    repeats = args.repeats or (1 if args.quick else 3)
    vae_epochs = 1 if args.quick else 5
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if "bare" not in methods:
        methods = methods + ("bare",)
    out_path = args.out or Path(__file__).resolve().parent / "results" / "bench_search.json"
    T = args.max_iter

    started = time.perf_counter()
    info = machine_info()
    model = make_model(args.seed)

    # REVISE: fit the VAE once, outside the timings
    x_fit, _ = make_data(2000 if args.quick else 10_000, model, args.seed + 1)
    t0 = time.perf_counter()
    revise = REVISEGenerator(step_size=0.1, lambda_cost=LAMBDA_COST, vae_epochs=vae_epochs,
                             random_state=args.seed).fit(x_fit.numpy())
    revise_fit_s = time.perf_counter() - t0
    runners = make_runners(model, T, revise)

    max_diff = check_same_maths(runners, model, T, args.seed)

    print(f"skct search throughput: {N_FEATURES}->{'->'.join(map(str, HIDDEN))}->{N_CLASSES} "
          f"MLP, T={T} steps for every row, best of {repeats} (after a warm-up)")
    print(f"torch {info['torch_version']}, {torch.get_num_threads()} intra-op thread(s), "
          f"{info['cpu_count']} CPUs, load {info['loadavg_at_start']}")
    print(f"generic vs bare counterfactuals, max |diff| = {max_diff:.3g}  "
          f"(REVISE VAE fit {revise_fit_s:.1f} s, excluded)\n")

    results = {}
    header = (f"{'N':>8}  {'method':<20} {'best s':>8} {'rows/s':>10} {'cpu s':>8} "
              f"{'rows/cpu-s':>11} {'vs bare':>8}")
    print(header)
    print("-" * len(header))
    for n in sizes:
        cells = bench_size(runners, methods, model, n, T, repeats, args.seed + 2)
        results[str(n)] = cells
        bare_rps = cells["bare"]["rows_per_s"]
        for m in methods:
            c = cells[m]
            c["vs_bare"] = c["rows_per_s"] / bare_rps
            c["vs_bare_cpu"] = c["rows_per_cpu_s"] / cells["bare"]["rows_per_cpu_s"]
            print(f"{n:>8}  {m:<20} {c['best_wall_s']:8.3f} {c['rows_per_s']:10.0f} "
                  f"{c['best_cpu_s']:8.3f} {c['rows_per_cpu_s']:11.0f} {c['vs_bare']:8.2f}")
        print()

    summary = {"ratio_generic_bare": {}, "ratio_generic_bare_cpu": {}}
    if "generic" in methods:
        print("generic / bare throughput (wall; CPU time in brackets):")
        for n in sizes:
            r = results[str(n)]["generic"]["vs_bare"]
            rc = results[str(n)]["generic"]["vs_bare_cpu"]
            summary["ratio_generic_bare"][str(n)] = r
            summary["ratio_generic_bare_cpu"][str(n)] = rc
            print(f"  N={n:>7}: {r:.2f}  ({rc:.2f})")
        if str(TARGET_N) in results:
            r = summary["ratio_generic_bare"][str(TARGET_N)]
            ok = r >= TARGET_RATIO
            summary["target"] = {"n_rows": TARGET_N, "min_ratio": TARGET_RATIO, "ratio": r,
                                 "met": ok}
            print(f"  expectation generic >= {TARGET_RATIO:.0%} of bare at N={TARGET_N}: "
                  f"{'MET' if ok else 'NOT MET'} ({r:.0%})")
    growth = {"wall": {}, "cpu": {}}
    for m in methods:
        for k, key in (("wall", "rows_per_s"), ("cpu", "rows_per_cpu_s")):
            rps = [results[str(n)][m][key] for n in sizes]
            growth[k][m] = bool(all(b >= a for a, b in zip(rps, rps[1:])))
    summary["throughput_grows_with_n"] = growth
    print("throughput grows with N (wall / CPU time): "
          + ", ".join(f"{m} {'yes' if growth['wall'][m] else 'no'}/"
                      f"{'yes' if growth['cpu'][m] else 'no'}" for m in methods))

    threads = None
    if not args.no_thread_study:
        n_t = sizes[0] if args.quick else min(TARGET_N, max(sizes))
        counts = sorted({1, 2, args.threads})
        threads = thread_study(runners, model, n_t, T, repeats, args.seed + 2, counts)
        print(f"\nthread study, N={n_t} (best of {repeats}):")
        print(f"  {'threads':>7} {'generic rows/s':>15} {'bare rows/s':>12} {'generic/bare':>13} "
              f"{'generic cpu s':>14}  load")
        for k in counts:
            t = threads[str(k)]
            print(f"  {k:>7} {t['generic']['rows_per_s']:15.0f} {t['bare']['rows_per_s']:12.0f} "
                  f"{t['ratio_generic_bare']:13.2f} {t['generic']['best_cpu_s']:14.3f}  "
                  f"{', '.join(f'{v:.2f}' for v in t['loadavg'] or [])}")
        one = threads["1"]["generic"]["rows_per_s"]
        for k in counts:
            if k != 1:
                print(f"  generic with {k} threads / with 1 thread: "
                      f"{threads[str(k)]['generic']['rows_per_s'] / one:.2f}x")

    elapsed = time.perf_counter() - started
    info["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    payload = {
        "benchmark": "bench_search",
        "machine": info,
        "config": {
            "quick": args.quick, "sizes": sizes, "repeats": repeats, "max_iter": T,
            "decision_threshold": NEVER, "n_features": N_FEATURES, "hidden": list(HIDDEN),
            "n_classes": N_CLASSES, "step_size": STEP_SIZE, "lambda_cost": LAMBDA_COST,
            "revise": {"vae_epochs": vae_epochs, "fit_rows": int(x_fit.shape[0]),
                       "fit_s": revise_fit_s, "step_size": revise.step_size},
            "constraints": "bounds [-3, 3]; features 0-4 increase, 5-9 none, 10-19 both",
            "methods": list(methods), "seed": args.seed, "timer": "best of repeats",
        },
        "checks": {"generic_vs_bare_max_abs_diff": max_diff, "all_rows_ran_all_steps": True},
        "results": results,
        "summary": summary,
        "thread_study": threads,
        "elapsed_s": elapsed,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {out_path}  ({elapsed:.0f} s)")
    return payload


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
