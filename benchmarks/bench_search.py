#!/usr/bin/env python
"""Throughput of skct's batched counterfactual search, against a bare torch loop.

For a 20 -> 64 -> 64 -> 2 ReLU MLP (fixed random init) and standard normal factuals, this
times one full T-step search (rows per second = N / seconds for the whole search) for each
method at several batch sizes N:

- ``generic``: :func:`skct.search.search` with :class:`~skct.search.generators.GenericGenerator`,
  unconstrained: what a user gets by default;
- ``generic_constrained``: the same with bounds on every feature, a quarter of the features
  "increase" and a quarter "none" (half the features restricted);
- ``ecco``: the same with :class:`~skct.search.generators.ECCoGenerator`;
- ``revise``: :class:`~skct.search.generators.REVISEGenerator` (VAE fitted beforehand; fit time
  excluded);
- ``engine``: ``search`` with the fast path turned off (``SKCT_COMPILED_SEARCH=0``): the eager
  autograd engine;
- ``steps``: ``search`` on the fast path's per-step chain (``SKCT_COMPILED_SEARCH=steps``: one
  Python step per iteration, torch's matrix products, native loops between them), the default
  before the whole search went native;
- ``fast``, ``fast_constrained``, ``fast_ecco``: the fast path
  (:func:`skct.search._compiled.compiled_search`: analytic input gradients, no autograd; for
  this ReLU MLP the whole search in one native call), for the settings of ``generic``,
  ``generic_constrained`` and ``ecco``;
- ``compiled``, ``compiled_ecco``: the per-step chain compiled by ``torch.compile`` (opt-in:
  ``SKCT_COMPILED_SEARCH=compile``), informational; the compilation is timed separately
  (``compile s``: the first search minus the best one);
- ``bare``: a hand-written torch loop doing the same T gradient steps with the same maths as
  ``generic`` (cross-entropy toward the target + 0.001 * L1 cost, step 0.25). It is the floor
  the engine's overhead (masks, constraints, convergence bookkeeping) is measured against;
- ``custom_bare``, ``custom``, ``custom_fast``: the bare loop, ``search`` and the fast path on a
  module that is not a chain of layers (the same MLP with a residual connection), which the fast
  path runs with autograd through the model only; their ``vs bare`` is against
  ``custom_bare``.

Every search runs all T steps for every row: the decision threshold is 1.1, which no
probability reaches, and the script checks that ``SearchResult.total_steps == N * T``. It also
checks that ``generic``, ``fast`` and ``compiled`` produce the same counterfactuals as ``bare``.

**FLOP limit.** The ``limit`` column is each method's share of the machine's limit: the model's
FLOPs per row-step (forward plus input gradient: 4 * sum of in * out over the linear layers,
22 kFLOP here) times N * T, divided by the search's seconds and by the peak of a large fp32
matrix product (2048 x 2048, best of several) measured by the script on the configured
threads. The extra forward pass a search makes to test its last iterate is not counted.

Each cell is the best of ``--repeats`` runs after one warm-up run; the runs of all methods at
one N are interleaved so that load from other processes hits them alike. Wall-clock (what the
table's rows/s use) and process CPU time are both recorded. A thread study repeats ``generic``
and ``bare`` at 10k rows with 1 and 2 torch intra-op threads.

Usage::

    python benchmarks/bench_search.py            # full run (a few minutes)
    python benchmarks/bench_search.py --quick    # smoke run (seconds)
    python benchmarks/bench_search.py --threads 2 --out /tmp/search.json
    python benchmarks/bench_search.py --pin-cpu 1 --cold-compile
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
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import skct
import skct.search._compiled as fastpath
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
METHODS = ("generic", "generic_constrained", "ecco", "revise", "engine", "steps", "fast",
           "fast_constrained", "fast_ecco", "compiled", "compiled_ecco", "bare", "custom_bare",
           "custom", "custom_fast")
#: The bare loop each method's ``vs bare`` is measured against.
BARE_OF = {"custom": "custom_bare", "custom_fast": "custom_bare", "custom_bare": "custom_bare"}
TARGET_N = 10_000
TARGET_RATIO = 2.0  # expectation: the default (generic) search >= 2x the bare loop at 10k rows
TARGET_SHARE = 0.75  # ... which is >= 75% of the machine's FLOP limit
FLOOR_RATIO = 0.95  # never below 0.95x the bare loop: at 1k rows, and for a custom module
ECCO_SLACK = 0.10  # ECCo within 10% of Generic
CT_EPOCHS = 100  # compile time should be amortised within one CT fit of this many epochs
CT_ROWS = 1000  # counterfactuals per CT epoch (the classifier's default n_counterfactuals)


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


def matmul_peak(n=2048, repeats=8):
    """GFLOP/s of the best of ``repeats`` fp32 ``n x n`` matrix products (current threads)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def model_flops(model):
    """FLOPs of one row-step: forward plus input gradient, 4 * in * out per linear layer."""
    return sum(4 * m.in_features * m.out_features for m in model.modules()
               if isinstance(m, nn.Linear))


# ---------------------------------------------------------------------------------------------
# model, data, generators
# ---------------------------------------------------------------------------------------------
class ResidualMLP(nn.Module):
    """The same layers as :func:`make_model` with a skip connection: not a chain of layers."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.l1 = nn.Linear(N_FEATURES, HIDDEN[0])
        self.l2 = nn.Linear(HIDDEN[0], HIDDEN[1])
        self.l3 = nn.Linear(HIDDEN[1], N_CLASSES)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        return self.l3(torch.relu(self.l2(h)) + h)


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


def _with_mode(mode, fn):
    """Run ``fn`` with ``SKCT_COMPILED_SEARCH=mode`` (None: as set in the environment)."""
    if mode is None:
        return fn()
    old = os.environ.get("SKCT_COMPILED_SEARCH")
    os.environ["SKCT_COMPILED_SEARCH"] = mode
    try:
        return fn()
    finally:
        if old is None:
            del os.environ["SKCT_COMPILED_SEARCH"]
        else:
            os.environ["SKCT_COMPILED_SEARCH"] = old


def make_runners(model, max_iter, revise, custom):
    """Callables ``f(x, target) -> (counterfactuals, total_steps or None)`` per method."""
    generic = GenericGenerator(step_size=STEP_SIZE, lambda_cost=LAMBDA_COST)
    ecco = ECCoGenerator(step_size=STEP_SIZE, lambda_cost=LAMBDA_COST)
    constrained = realistic_constraints()

    def runner(gen, constraints=None, fn=search, mode=None, net=model):
        def run(x, target):
            res = _with_mode(mode, lambda: fn(net, x, target, gen, constraints,
                                              decision_threshold=NEVER, max_iter=max_iter))
            return res.counterfactuals, res.total_steps
        return run

    def bare(net):
        return lambda x, target: (bare_search(net, x, target, max_iter), None)

    fast = fastpath.compiled_search
    return {
        "generic": runner(generic),
        "generic_constrained": runner(generic, constrained),
        "ecco": runner(ecco),
        "revise": runner(revise),
        "engine": runner(generic, mode="0"),
        "steps": runner(generic, mode="steps"),
        "fast": runner(generic, fn=fast, mode="eager"),
        "fast_constrained": runner(generic, constrained, fn=fast, mode="eager"),
        "fast_ecco": runner(ecco, fn=fast, mode="eager"),
        "compiled": runner(generic, fn=fast, mode="compile"),
        "compiled_ecco": runner(ecco, fn=fast, mode="compile"),
        "bare": bare(model),
        "custom_bare": bare(custom),
        "custom": runner(generic, net=custom),
        "custom_fast": runner(generic, fn=fast, mode="eager", net=custom),
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
        warm, _, (_, steps) = timed(runners[m], x, target)
        cells[m]["warmup_wall_s"] = warm
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


def check_same_maths(runners, methods, model, seed, n=1000):
    """Max |method - bare| over the counterfactuals of n rows (0 up to float rounding)."""
    x, target = make_data(n, model, seed)
    b, _ = runners["bare"](x, target)
    out = {}
    for m in ("generic", "fast", "compiled"):
        if m in methods:
            a, _ = runners[m](x, target)
            out[m] = float((a - b).abs().max())
    for m in ("custom", "custom_fast"):
        if m in methods:
            a, _ = runners[m](x, target)
            out[m] = float((a - runners["custom_bare"](x, target)[0]).abs().max())
    return out


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
    p.add_argument("--pin-cpu", type=int, default=None,
                   help="run on this CPU only (os.sched_setaffinity): less noise from the "
                        "scheduler moving the process between cores")
    p.add_argument("--cold-compile", action="store_true",
                   help="compile into a fresh torch inductor cache (the compile time of a "
                        "first use on this machine) instead of the user's cache")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _setup(args):
    """Threads, CPU pinning and the compile cache; returns (sizes, repeats, methods)."""
    set_threads(args.threads)
    if args.pin_cpu is not None:
        os.sched_setaffinity(0, {args.pin_cpu})
    if args.cold_compile:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="skct-bench-inductor-")
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [1000, 10_000] if args.quick else [1000, 10_000, 100_000])
    repeats = args.repeats or (1 if args.quick else 3)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    for m in list(methods):
        if BARE_OF.get(m, "bare") not in methods:
            methods = methods + (BARE_OF.get(m, "bare"),)
    return sizes, repeats, methods


def _print_table(results, sizes, methods, flops, peak, max_iter):
    """The main table; adds vs_bare, flop_share and compile_s to every cell."""
    header = (f"{'N':>8}  {'method':<20} {'best s':>8} {'rows/s':>10} {'cpu s':>8} "
              f"{'rows/cpu-s':>11} {'vs bare':>8} {'limit':>6} {'compile s':>10}")
    print(header)
    print("-" * len(header))
    for i, n in enumerate(sizes):
        cells = results[str(n)]
        for m in methods:
            c, bare = cells[m], cells[BARE_OF.get(m, "bare")]
            c["vs_bare"] = c["rows_per_s"] / bare["rows_per_s"]
            c["vs_bare_cpu"] = c["rows_per_cpu_s"] / bare["rows_per_cpu_s"]
            c["flop_share"] = n * max_iter * flops / c["best_wall_s"] / (peak * 1e9)
            c["compile_s"] = (max(0.0, c["warmup_wall_s"] - c["best_wall_s"])
                              if m.startswith("compiled") and i == 0 else None)
            comp = "" if c["compile_s"] is None else f"{c['compile_s']:.1f}"
            print(f"{n:>8}  {m:<20} {c['best_wall_s']:8.3f} {c['rows_per_s']:10.0f} "
                  f"{c['best_cpu_s']:8.3f} {c['rows_per_cpu_s']:11.0f} {c['vs_bare']:8.2f} "
                  f"{c['flop_share']:6.0%} {comp:>10}")
        print()


def _expectation(summary, name, value, target, at_least=True):
    met = value >= target if at_least else value <= target
    entry = {"value": value, "target": target, "met": bool(met)}
    summary.setdefault("expectations", {})[name] = entry
    print(f"  {name}: {value:.2f} ({'>=' if at_least else '<='} {target}): "
          f"{'MET' if met else 'NOT MET'}")


def _summary(results, sizes, methods):
    """Ratios and expectations; printed and returned for the JSON."""
    summary = {"ratio_generic_bare": {}, "ratio_generic_bare_cpu": {}}
    print("generic / bare throughput (wall; CPU time in brackets):")
    for n in sizes:
        cell = results[str(n)].get("generic")
        if cell:
            summary["ratio_generic_bare"][str(n)] = cell["vs_bare"]
            summary["ratio_generic_bare_cpu"][str(n)] = cell["vs_bare_cpu"]
            print(f"  N={n:>7}: {cell['vs_bare']:.2f}  ({cell['vs_bare_cpu']:.2f})")
    print("expectations:")
    at = results.get(str(TARGET_N), {})
    for m in ("generic", "fast"):
        if m in at:
            _expectation(summary, f"{m} / bare at N={TARGET_N}", at[m]["vs_bare"], TARGET_RATIO)
            _expectation(summary, f"{m} share of the FLOP limit at N={TARGET_N}",
                         at[m]["flop_share"], TARGET_SHARE)
    for n in sizes:
        for m in ("generic", "fast", "custom", "custom_fast"):
            if m in results[str(n)] and (m.startswith("custom") or n == 1000):
                _expectation(summary, f"{m} / its bare loop at N={n}",
                             results[str(n)][m]["vs_bare"], FLOOR_RATIO)
    for fast, eco in (("generic", "ecco"), ("fast", "fast_ecco")):
        if fast in at and eco in at:
            _expectation(summary, f"{eco} time / {fast} time at N={TARGET_N}",
                         at[eco]["best_wall_s"] / at[fast]["best_wall_s"], 1 + ECCO_SLACK,
                         at_least=False)
    summary["native_build"] = _native_amortisation(results)
    summary["compile"] = _amortisation(results, sizes)
    for m in ("compiled", "compiled_ecco", "steps"):
        if m in at:
            print(f"  (informational) {m} at N={TARGET_N}: {at[m]['vs_bare']:.2f}x bare, "
                  f"{at[m]['flop_share']:.0%} of the FLOP limit")
    growth = {"wall": {}, "cpu": {}}
    for m in methods:
        for k, key in (("wall", "rows_per_s"), ("cpu", "rows_per_cpu_s")):
            rps = [results[str(n)][m][key] for n in sizes]
            growth[k][m] = bool(all(b >= a for a, b in zip(rps, rps[1:])))
    summary["throughput_grows_with_n"] = growth
    return summary


def native_build_seconds():
    """Seconds to build the native search from its source into a fresh cache (a first use of
    skct on a machine); None without a C compiler."""
    from skct._utils._native import NativeLibrary
    from skct.search import _native_search

    old = os.environ.get("SKCT_CACHE_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKCT_CACHE_DIR"] = tmp
        try:
            lib = NativeLibrary("bench_cold_build", lambda: _native_search.SOURCE,
                                _native_search.declare)
            t0 = time.perf_counter()
            built = lib.get() is not None
            seconds = time.perf_counter() - t0
        finally:
            if old is None:
                del os.environ["SKCT_CACHE_DIR"]
            else:
                os.environ["SKCT_CACHE_DIR"] = old
    return seconds if built else None


def _native_amortisation(results):
    """The native search's one-off build against what it saves per CT epoch (CT_ROWS rows)."""
    seconds = native_build_seconds()
    ct = results.get(str(CT_ROWS), {})
    out = {"build_s": seconds}
    if seconds is None:
        print("  native search: no C compiler, the chain step runs instead")
        return out
    if "generic" in ct and "engine" in ct:
        saved = ct["engine"]["best_wall_s"] - ct["generic"]["best_wall_s"]
        epochs = seconds / saved if saved > 0 else float("inf")
        out.update(saved_per_ct_epoch_s=saved, epochs_to_amortise=epochs,
                   met=bool(epochs <= CT_EPOCHS))
        print(f"  native search: built in {seconds:.2f} s once per machine (then loaded from "
              f"the cache); saves {saved * 1e3:.1f} ms per search of {CT_ROWS} rows vs the "
              f"engine: amortised after {epochs:.0f} epochs "
              f"({'MET' if epochs <= CT_EPOCHS else 'NOT MET'} within {CT_EPOCHS})")
    else:
        print(f"  native search: built in {seconds:.2f} s once per machine")
    return out


def _amortisation(results, sizes):
    """Compile time against what the compiled step saves per CT epoch (CT_ROWS rows)."""
    first, ct = results[str(sizes[0])], results.get(str(CT_ROWS), {})
    out = {}
    for comp, eager in (("compiled", "fast"), ("compiled_ecco", "fast_ecco")):
        if comp not in first or comp not in ct or eager not in ct:
            continue
        saved = ct[eager]["best_wall_s"] - ct[comp]["best_wall_s"]
        compile_s = first[comp]["compile_s"]
        epochs = compile_s / saved if saved > 0 else float("inf")
        out[comp] = {"compile_s": compile_s, "saved_per_ct_epoch_s": saved,
                     "epochs_to_amortise": epochs, "ct_epochs": CT_EPOCHS,
                     "met": bool(epochs <= CT_EPOCHS)}
        print(f"  {comp}: compile {compile_s:.1f} s; saves {saved * 1e3:.1f} ms per search of "
              f"{CT_ROWS} rows vs {eager}: amortised after "
              f"{'never' if saved <= 0 else f'{epochs:.0f} epochs'} "
              f"(informational: the opt-in tier; {CT_EPOCHS} epochs)")
    return out


def main(argv=None):
    args = parse_args(argv)
    sizes, repeats, methods = _setup(args)
    out_path = args.out or Path(__file__).resolve().parent / "results" / "bench_search.json"
    T = args.max_iter

    started = time.perf_counter()
    info = machine_info()
    model, custom = make_model(args.seed), ResidualMLP(args.seed).eval()
    peak = matmul_peak()
    flops = model_flops(model)

    # REVISE: fit the VAE once, outside the timings
    x_fit, _ = make_data(2000 if args.quick else 10_000, model, args.seed + 1)
    vae_epochs = 1 if args.quick else 5
    t0 = time.perf_counter()
    revise = REVISEGenerator(step_size=0.1, lambda_cost=LAMBDA_COST, vae_epochs=vae_epochs,
                             random_state=args.seed).fit(x_fit.numpy())
    revise_fit_s = time.perf_counter() - t0
    runners = make_runners(model, T, revise, custom)
    fastpath.clear_cache()  # compile in this process (the inductor disk cache may be warm)

    # the first call of the compiled methods (their compilation) is their warm-up at sizes[0]
    print(f"skct search throughput: {N_FEATURES}->{'->'.join(map(str, HIDDEN))}->{N_CLASSES} "
          f"MLP, T={T} steps for every row, best of {repeats} (after a warm-up)")
    print(f"torch {info['torch_version']}, {torch.get_num_threads()} intra-op thread(s), "
          f"{info['cpu_count']} CPUs, load {info['loadavg_at_start']}")
    print(f"FLOP limit: {flops} FLOP per row-step; fp32 matmul peak {peak:.1f} GFLOP/s "
          f"(2048 x 2048) at start")

    results = {}
    for n in sizes:
        results[str(n)] = bench_size(runners, methods, model, n, T, repeats, args.seed + 2)
    peaks = [peak, matmul_peak()]  # again after the timings: the best of both is the limit
    peak = max(peaks)
    print(f"matmul peak again after the timings: {peaks[1]:.1f} GFLOP/s; limit uses "
          f"{peak:.1f}")
    max_diff = check_same_maths(runners, methods, model, args.seed)
    print("max |counterfactual - bare loop's|: "
          + ", ".join(f"{m} {v:.2g}" for m, v in max_diff.items())
          + f"  (REVISE VAE fit {revise_fit_s:.1f} s, excluded)\n")
    _print_table(results, sizes, methods, flops, peak, T)
    summary = _summary(results, sizes, methods)
    summary["first_compiled_search_s"] = {
        f"{key[1]}, trivial constraints={key[2]}, epsilon={eps}": seconds
        for (key, eps), seconds in fastpath.compile_times().items()}

    threads = None
    if not args.no_thread_study:
        threads = _thread_table(runners, model, sizes, T, repeats, args)

    elapsed = time.perf_counter() - started
    info["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info["pinned_cpu"] = args.pin_cpu
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
            "custom_module": "ResidualMLP: the same layers with h1 added to relu(l2(h1))",
            "methods": list(methods), "seed": args.seed, "timer": "best of repeats",
            "cold_compile": args.cold_compile,
        },
        "flop_limit": {"flops_per_row_step": flops, "matmul_peak_gflops": peak,
                       "matmul_peak_start_end_gflops": peaks,
                       "matmul": "fp32 2048 x 2048, best of 8, at start and at end"},
        "checks": {"max_abs_diff_vs_bare": max_diff, "all_rows_ran_all_steps": True},
        "results": results,
        "summary": summary,
        "thread_study": threads,
        "elapsed_s": elapsed,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nwrote {out_path}  ({elapsed:.0f} s)")
    return payload


def _thread_table(runners, model, sizes, T, repeats, args):
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
    return threads


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
