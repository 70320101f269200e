#!/usr/bin/env python
"""Per-epoch cost of counterfactual training (CT) against conventional training and its floor.

Trains :class:`skct.CounterfactualTrainedClassifier` twice on the same synthetic data with the
same seed: conventionally (``lambda_div = lambda_adv = lambda_reg = 0``, no counterfactuals) and
with CT at the defaults (ECCo generator, 1000 counterfactuals per epoch, T = 30, batch 128).
It prints, per epoch, the time ratio CT / conventional and the number of search row-steps the
search actually took (``cf_steps`` in the history), and compares the ratio with its floor:

    floor epoch = conventional epoch
                  + cf_steps * (seconds per row-step of a bare torch search loop at batch
                    n_counterfactuals, same module)
                  + n_batches * (seconds of one forward + backward of batch_size + 3K rows
                    - seconds of one forward + backward of batch_size rows)
    floor ratio = floor epoch / conventional epoch

i.e. the extra work CT cannot avoid: the search's forward/backward passes, and the 3K rows a CT
batch adds (x_adv, x+ and x' of its chunk of K counterfactuals), which ride along in the
batch's own forward and backward pass (skct folds them in: ``fold_rows=True``), so only their
marginal cost counts; no bookkeeping. ``ratio / floor ratio`` is the overhead on top of that
floor. At small sizes the marginal cost of 3K more rows in a pass is close to 0 (per-call
overhead, not FLOPs, sets the cost of a pass), so the floor is about the conventional epoch
plus the bare search; everything else a CT batch does (loss terms, logging) counts as
overhead. The ``rest us`` column gives that per-batch part: CT epoch minus search minus
conventional epoch, per batch.

Epoch times are measured by a callback (wall clock and process CPU time between consecutive
``on_epoch_end``), not taken from skorch's ``dur`` (both are in the JSON; CT runs its search
at the epoch's first training batch, so ``dur`` includes it and the two should agree). Each fit
is repeated ``--repeats`` times, alternating conventional and CT; per epoch the best (smallest)
time over the repeats is used.

Usage::

    python benchmarks/bench_training.py            # 5000 x 20, MLP (64, 64) (about a minute)
    python benchmarks/bench_training.py --paper    # the paper's synthetic setting
    python benchmarks/bench_training.py --quick    # smoke run

``--paper`` is the paper's synthetic setting: 3000 rows of ``make_moons`` (2 features), MLP
(32,), batch 30, 1000 counterfactuals, T = 30, ECCo, decision threshold 0.9 and
``lambda_reg = 0.25`` (the paper's moons settings). Expectations: CT / conventional at most
1.3 there, and the ratio to the floor at most 1.1 in every epoch. The fits run with skct's
configured ``fast_search`` (``--fast-search`` / ``--no-fast-search`` override it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import machine_info, set_threads  # noqa: E402

import skct  # noqa: E402
import skct.training._loss as _skct_loss  # noqa: E402
import skct.training._search as _skct_search  # noqa: E402
from skct import CounterfactualTrainedClassifier  # noqa: E402

TARGET_OVERHEAD = 1.1  # expectation: (CT / conventional) / floor ratio <= 1.1
TARGET_RATIO_PAPER = 1.3  # expectation at the paper's setting: CT / conventional <= 1.3


class EpochClock(Callback):
    """Records wall and CPU seconds of each whole epoch (search included) in the history."""

    def on_train_begin(self, net, **kwargs):
        self._mark = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, net, **kwargs):
        now = (time.perf_counter(), time.process_time())
        net.history.record("bench_wall", now[0] - self._mark[0])
        net.history.record("bench_cpu", now[1] - self._mark[1])
        self._mark = now


class SearchSpy:
    """Wraps the search the classifier calls, keeping each call's ``n_iter`` (per-row steps).

    Only observes: the wrapped search and its result are unchanged; the copy of ``n_iter`` it
    keeps (one small tensor per epoch) is the only added work.
    """

    def __init__(self):
        self.n_iter = []
        self._orig = None

    def __enter__(self):
        self._orig = _skct_search.search
        orig = self._orig

        def spy(*args, **kwargs):
            res = orig(*args, **kwargs)
            self.n_iter.append(res.n_iter.clone())
            return res

        _skct_search.search = spy
        return self

    def __exit__(self, *exc):
        _skct_search.search = self._orig


def make_data(n_samples, n_features, seed, paper=False):
    if paper:
        from skct.datasets import make_moons
        X, y = make_moons(n_samples, random_state=seed)
        return np.asarray(X, dtype=np.float32), np.asarray(y)
    X, y = make_classification(n_samples=n_samples, n_features=n_features, n_informative=10,
                               n_redundant=5, random_state=seed)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


def fit_once(X, y, ct, args):
    params = dict(hidden_layer_sizes=args.hidden, max_epochs=args.epochs,
                  batch_size=args.batch_size, n_counterfactuals=args.n_counterfactuals,
                  max_iter_cf=args.max_iter_cf, random_state=args.seed,
                  decision_threshold=args.decision_threshold, lambda_reg=args.lambda_reg,
                  callbacks=[EpochClock()])
    if not ct:
        params.update(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)
    clf = CounterfactualTrainedClassifier(**params)
    gc.collect()
    with SearchSpy() as spy:
        t0 = time.perf_counter()
        clf.fit(X, y)
        total = time.perf_counter() - t0
    h = clf.history_
    out = {
        "fit_wall_s": total,
        "wall": [float(v) for v in h[:, "bench_wall"]],
        "cpu": [float(v) for v in h[:, "bench_cpu"]],
        "dur": [float(v) for v in h[:, "dur"]],
        "train_loss": [float(v) for v in h[:, "train_loss"]],
        "accuracy": float(clf.score(X, y)),
    }
    if ct:
        out["cf_time"] = [float(e.get("cf_time", float("nan"))) for e in h]
        out["cf_steps"] = [int(e.get("cf_steps", 0)) for e in h]
        out["cf_valid"] = [float(e.get("cf_valid", float("nan"))) for e in h]
        # rows still searching before step t, per epoch: the search's real batch sizes
        out["active_per_step"] = [
            [int((n_iter > t).sum()) for t in range(args.max_iter_cf)] for n_iter in spy.n_iter
        ]
    return clf, out


def _best_of(fn, repeats):
    """(best wall s, best CPU s) of ``repeats`` calls after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def bare_schedule_time(module, X, active, args, repeats):
    """Best (wall, CPU) seconds of bare search steps on the search's real active-row counts.

    ``active[t]`` rows (a prefix of the rows, which are sorted by steps taken) go through one
    forward + backward w.r.t. the inputs and a gradient step at step t: the same forward and
    backward passes the search did, with none of its bookkeeping.
    """
    m = max(active) if active else 0
    if m == 0:
        return 0.0, 0.0
    rng = np.random.RandomState(args.seed + 1)
    x0 = torch.as_tensor(X[rng.choice(X.shape[0], m, replace=False)])
    target = torch.as_tensor(rng.randint(0, 2, size=m))
    module = module.eval()

    def run():
        x = x0.clone()
        for a in active:
            if a == 0:
                break
            xa = x[:a].detach().requires_grad_()
            loss = F.cross_entropy(module(xa), target[:a], reduction="sum") + \
                0.001 * (xa - x0[:a]).abs().sum()
            (g,) = torch.autograd.grad(loss, xa)
            with torch.no_grad():
                x[:a] -= 0.25 * g

    with torch.enable_grad():
        return _best_of(run, repeats)


def floor_costs(module, X, args, n_batches, repeats):
    """Seconds per search row-step (bare loop), and per epoch of the 3K extra rows a CT batch
    adds to its one forward + backward pass (``n_batches`` passes of ``batch_size + 3K`` rows
    minus ``n_batches`` passes of ``batch_size`` rows, at least 0)."""
    rng = np.random.RandomState(args.seed)
    m = min(args.n_counterfactuals, X.shape[0])
    x0 = torch.as_tensor(X[rng.choice(X.shape[0], m, replace=False)])
    module = module.eval()
    with torch.no_grad():
        target = 1 - module(x0).argmax(dim=1)
    T = args.max_iter_cf

    def bare_search():
        x = x0.clone().requires_grad_()
        for _ in range(T):
            loss = F.cross_entropy(module(x), target, reduction="sum") + \
                0.001 * (x - x0).abs().sum()
            (g,) = torch.autograd.grad(loss, x)
            x = (x - 0.25 * g).detach().requires_grad_()

    with torch.enable_grad():
        s_wall, s_cpu = _best_of(bare_search, repeats)

    # extra rows per batch: x_adv, x+, x' of a chunk of K = m / n_batches counterfactuals,
    # folded into the batch's forward + backward: the floor is the marginal cost of 3K rows
    k = max(1, -(-m // n_batches))
    b = args.batch_size
    rows = torch.as_tensor(X[rng.choice(X.shape[0], b + 3 * k, replace=True)])
    labels = torch.as_tensor(rng.randint(0, 2, size=b + 3 * k))
    module.train()

    weights = _skct_loss.component_weights(b, k, (0.5, args.lambda_reg, 0.25))

    def passes(n, ct=False):
        def run():
            for _ in range(n_batches):
                if ct:  # skct's CT loss on the same rows, as its folded step runs it
                    logits = module(rows)  # (not part of the floor)
                    loss, _, grad = _skct_loss.ct_terms(logits, labels[:, None], weights)
                    if grad is None:  # no native pass: the autograd node
                        loss.backward()
                    else:
                        logits.backward(grad)
                else:
                    F.cross_entropy(module(rows[:n]), labels[:n]).backward()
            module.zero_grad(set_to_none=True)
        return run

    variants = {"batch": passes(b), "folded": passes(b + 3 * k), "loss_node": passes(0, True)}
    walls, cpus = {v: [] for v in variants}, {v: [] for v in variants}
    with torch.enable_grad():
        for _ in range(4 * repeats):  # interleaved, best of each (each call is short)
            for v, fn in variants.items():
                w, c = _best_of(fn, 1)
                walls[v].append(w)
                cpus[v].append(c)
    module.eval()
    batch_wall, batch_cpu = min(walls["batch"]), min(cpus["batch"])
    folded_wall, folded_cpu = min(walls["folded"]), min(cpus["folded"])
    node_wall, node_cpu = min(walls["loss_node"]), min(cpus["loss_node"])
    return {
        "search_rows": m, "search_steps": T,
        "row_step_wall_s": s_wall / (m * T), "row_step_cpu_s": s_cpu / (m * T),
        "extra_rows_per_batch": 3 * k, "n_batches": n_batches,
        "batch_passes_wall_s": batch_wall, "batch_passes_cpu_s": batch_cpu,
        "folded_passes_wall_s": folded_wall, "folded_passes_cpu_s": folded_cpu,
        "extra_epoch_wall_s": max(0.0, folded_wall - batch_wall),
        "extra_epoch_cpu_s": max(0.0, folded_cpu - batch_cpu),
        # skct's CT loss (its native pass and the backward from the logits, as in the folded
        # step) in place of the cross-entropy
        "loss_node_passes_wall_s": node_wall, "loss_node_passes_cpu_s": node_cpu,
        "loss_node_epoch_wall_s": node_wall - folded_wall,
        "loss_node_epoch_cpu_s": node_cpu - folded_cpu,
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1000 rows, 3 epochs, 200 counterfactuals, 1 repeat")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output path (default: benchmarks/results/bench_training.json)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--n-samples", type=int, default=None, help="training rows (default 5000)")
    p.add_argument("--n-features", type=int, default=20)
    p.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 10)")
    p.add_argument("--repeats", type=int, default=None,
                   help="fits per variant, alternating (default 5)")
    p.add_argument("--hidden", type=str, default="64,64",
                   help="hidden layer sizes of the MLP (default 64,64)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n-counterfactuals", type=int, default=None,
                   help="counterfactuals per epoch (default 1000)")
    p.add_argument("--max-iter-cf", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decision-threshold", type=float, default=0.75)
    p.add_argument("--lambda-reg", type=float, default=0.1)
    p.add_argument("--paper", action="store_true",
                   help="the paper's synthetic setting (moons, 3000 x 2, MLP (32,), batch 30)")
    p.add_argument("--fast-search", action=argparse.BooleanOptionalAction, default=None,
                   help="fit under skct.config_context(fast_search=...) (default: skct's "
                   "configuration, fast_search=%s)" % skct.get_config().get("fast_search"))
    args = p.parse_args(argv)
    if args.paper:
        args.n_samples = args.n_samples or 3000
        args.n_features, args.hidden, args.batch_size = 2, "32", 30
        args.decision_threshold, args.lambda_reg = 0.9, 0.25
    args.hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    q = args.quick
    args.n_samples = args.n_samples or (1000 if q else 5000)
    args.epochs = args.epochs or (3 if q else 10)
    args.repeats = args.repeats or (1 if q else 5)
    args.n_counterfactuals = args.n_counterfactuals or (200 if q else 1000)
    return args


def run_fits(X, y, args):
    """``args.repeats`` conventional and CT fits, alternating; the last CT classifier."""
    runs = {"plain": [], "ct": []}
    clf_ct = None
    for _ in range(args.repeats):
        _, r = fit_once(X, y, False, args)
        runs["plain"].append(r)
        clf_ct, r = fit_once(X, y, True, args)
        runs["ct"].append(r)
    return runs, clf_ct


def _epoch_row(e, m, fl, plain, sched):
    """One epoch's times against the floors (``m``: the per-epoch measurements)."""
    row = {"epoch": e + 1, "cf_steps": m["steps"][e], "cf_valid": m["cf_valid"][e],
           "cf_time_s": m["cf_time"][e], "ct_dur_s": m["ct_dur"][e],
           "active_per_step": m["active"][e]}
    for i, k in enumerate(("wall", "cpu")):
        ct_s = m["best"]["ct"][k][e]
        search_floor = sched[e][i]
        search_strict = m["steps"][e] * fl[f"row_step_{k}_s"]
        floor_s = plain[k] + search_floor + fl[f"extra_epoch_{k}_s"]
        strict_s = plain[k] + search_strict + fl[f"extra_epoch_{k}_s"]
        row[k] = {"plain_s": plain[k], "plain_epoch_s": m["best"]["plain"][k][e], "ct_s": ct_s,
                  "ratio": ct_s / plain[k],
                  "search_floor_s": search_floor, "floor_s": floor_s,
                  "floor_ratio": floor_s / plain[k], "ratio_over_floor": ct_s / floor_s,
                  "search_strict_floor_s": search_strict, "strict_floor_s": strict_s,
                  "strict_floor_ratio": strict_s / plain[k],
                  "ratio_over_strict_floor": ct_s / strict_s}
    w, cf_time = row["wall"], m["cf_time"][e]
    row["search_share"] = cf_time / w["ct_s"]
    # where CT's time goes, each part against its own floor (wall clock)
    row["search_over_floor"] = (cf_time / w["search_floor_s"] if w["search_floor_s"]
                                else float("nan"))
    # the per-batch part of CT: CT epoch - search - conventional epoch, per batch
    row["rest_per_batch_s"] = (w["ct_s"] - cf_time - plain["wall"]) / fl["n_batches"]
    return row


def _totals(rows, plain, cf_time):
    tot = {}
    for k in ("wall", "cpu"):
        ct_tot = sum(r[k]["ct_s"] for r in rows)
        plain_tot = plain[k] * len(rows)
        floor_tot = sum(r[k]["floor_s"] for r in rows)
        strict_tot = sum(r[k]["strict_floor_s"] for r in rows)
        tot[k] = {"ct_s": ct_tot, "plain_s": plain_tot, "floor_s": floor_tot,
                  "strict_floor_s": strict_tot, "ratio": ct_tot / plain_tot,
                  "floor_ratio": floor_tot / plain_tot, "ratio_over_floor": ct_tot / floor_tot,
                  "strict_floor_ratio": strict_tot / plain_tot,
                  "ratio_over_strict_floor": ct_tot / strict_tot}
    tot["wall"]["search_share"] = sum(cf_time) / tot["wall"]["ct_s"]
    return tot


def measure(X, args, runs, clf_ct, n_batches):
    """Per-epoch rows, totals and worst epochs of the fits against their floors."""
    E = len(runs["ct"][0]["wall"])
    ct0 = runs["ct"][0]
    m = {"best": {v: {k: [min(r[k][e] for r in runs[v]) for e in range(E)]
                      for k in ("wall", "cpu")} for v in runs},
         "steps": ct0["cf_steps"], "cf_valid": ct0["cf_valid"],
         "cf_time": [min(r["cf_time"][e] for r in runs["ct"]) for e in range(E)],
         "ct_dur": [min(r["dur"][e] for r in runs["ct"]) for e in range(E)],
         "active": ct0["active_per_step"] + [[]] * (E - len(ct0["active_per_step"]))}
    module = clf_ct.logits_module_
    n_rep = max(3, args.repeats)
    fl = floor_costs(module, X, args, n_batches, n_rep)
    sched = [bare_schedule_time(module, X, m["active"][e], args, n_rep) for e in range(E)]
    # conventional epoch: median over epochs of the per-epoch best (it does not change)
    plain = {k: statistics.median(m["best"]["plain"][k]) for k in ("wall", "cpu")}
    rows = [_epoch_row(e, m, fl, plain, sched) for e in range(E)]
    return {"rows": rows, "totals": _totals(rows, plain, m["cf_time"]), "floor_costs": fl,
            "ct_dur": m["ct_dur"], "ct_wall": m["best"]["ct"]["wall"],
            "steps_stable": all(r["cf_steps"] == m["steps"] for r in runs["ct"]),
            "worst": {k: max(r[k]["ratio_over_floor"] for r in rows) for k in ("wall", "cpu")},
            "worst_strict": {k: max(r[k]["ratio_over_strict_floor"] for r in rows)
                             for k in ("wall", "cpu")}}


def print_report(X, args, info, res, n_batches):
    rows, tot, fl = res["rows"], res["totals"], res["floor_costs"]
    worst, worst_strict = res["worst"], res["worst_strict"]
    data = "make_moons (paper setting)" if args.paper else "make_classification"
    fast = ", fast_search=True" if args.fast_search else ""
    print(f"CT vs conventional training: {X.shape[0]} x {X.shape[1]} {data}{fast}, MLP "
          f"{args.hidden}, batch {args.batch_size}, {len(rows)} epochs, best of {args.repeats} "
          "fits")
    print(f"CT: ECCo, {args.n_counterfactuals} counterfactuals/epoch, T={args.max_iter_cf}; "
          f"torch {info['torch_version']}, {torch.get_num_threads()} thread(s), "
          f"{info['cpu_count']} CPUs, load {info['loadavg_at_start']}")
    print(f"floor parts: bare search replayed on each epoch's active-row counts; strict: "
          f"{fl['row_step_wall_s'] * 1e6:.2f} us per row-step (all {fl['search_rows']} rows "
          f"active); {fl['extra_rows_per_batch']} extra rows folded into each of {n_batches} "
          f"batch passes: {fl['extra_epoch_wall_s'] * 1e3:.1f} ms/epoch "
          f"({fl['folded_passes_wall_s'] * 1e3:.1f} - {fl['batch_passes_wall_s'] * 1e3:.1f} "
          "ms)\n")
    hdr = (f"{'epoch':>5} {'plain s':>8} {'CT s':>8} {'CT/plain':>9} {'cf_steps':>9} "
           f"{'valid':>6} {'floor':>6} {'ratio/floor':>11} {'strict':>7} {'r/strict':>8} "
           f"{'search%':>8} {'srch/fl':>8} {'rest us':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        w = r["wall"]
        print(f"{r['epoch']:>5} {w['plain_s']:8.4f} {w['ct_s']:8.4f} {w['ratio']:9.2f} "
              f"{r['cf_steps']:>9} {r['cf_valid']:6.2f} {w['floor_ratio']:6.2f} "
              f"{w['ratio_over_floor']:11.2f} {w['strict_floor_ratio']:7.2f} "
              f"{w['ratio_over_strict_floor']:8.2f} {100 * r['search_share']:7.1f}% "
              f"{r['search_over_floor']:8.2f} {1e6 * r['rest_per_batch_s']:8.0f}")
    print("-" * len(hdr))
    for k, label in (("wall", "wall clock"), ("cpu", "CPU time  ")):
        t = tot[k]
        print(f"all epochs, {label}: CT/plain {t['ratio']:.2f}, floor ratio "
              f"{t['floor_ratio']:.2f}, ratio/floor {t['ratio_over_floor']:.2f} "
              f"(strict floor {t['strict_floor_ratio']:.2f}, ratio/strict "
              f"{t['ratio_over_strict_floor']:.2f})")
    print(f"search share of CT time, all epochs: {100 * tot['wall']['search_share']:.1f}%")
    rest = statistics.median(r["rest_per_batch_s"] for r in rows)
    node = fl["loss_node_epoch_wall_s"] / n_batches
    extra = fl["extra_epoch_wall_s"] / n_batches
    print(f"per-batch part of CT (rest us, median {1e6 * rest:.0f} us): the extra rows in the "
          f"pass (floor) {1e6 * extra:.0f} us, skct's CT loss in place of the "
          f"cross-entropy {1e6 * node:.0f} us (both run bare on the same rows), the other "
          f"{1e6 * (rest - node - extra):.0f} us bookkeeping (skorch hooks, logging the "
          "components, slicing)")
    print(f"expectation ratio/floor <= {TARGET_OVERHEAD} in every epoch: "
          f"{'MET' if worst['wall'] <= TARGET_OVERHEAD else 'NOT MET'} (worst epoch "
          f"{worst['wall']:.2f} wall, {worst['cpu']:.2f} CPU; against the strict floor "
          f"{worst_strict['wall']:.2f} wall, {worst_strict['cpu']:.2f} CPU)")
    print(f"skorch's history 'dur' of the CT epochs: median "
          f"{statistics.median(res['ct_dur']):.4f} s; measured CT epoch median "
          f"{statistics.median(res['ct_wall']):.4f} s")
    print("plain s: median conventional epoch; floor / strict: floor ratios; search%: cf_time / "
          "CT epoch;\nsrch/fl: cf_time / replayed bare search; rest us: (CT epoch - cf_time - "
          "plain) per batch")
    if not res["steps_stable"]:
        print("note: cf_steps differed between repeats; the first repeat's are used")


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    name = "bench_training_paper.json" if args.paper else "bench_training.json"
    out_path = args.out or Path(__file__).resolve().parent / "results" / name
    started = time.perf_counter()
    info = machine_info()
    X, y = make_data(args.n_samples, args.n_features, args.seed, paper=args.paper)
    n_batches = -(-X.shape[0] // args.batch_size)
    if args.fast_search is None:
        args.fast_search = bool(skct.get_config().get("fast_search", False))
    with skct.config_context(fast_search=args.fast_search):
        runs, clf_ct = run_fits(X, y, args)
    res = measure(X, args, runs, clf_ct, n_batches)
    print_report(X, args, info, res, n_batches)
    ok = res["worst"]["wall"] <= TARGET_OVERHEAD
    if args.paper:
        ratio = res["totals"]["wall"]["ratio"]
        print(f"expectation CT/plain <= {TARGET_RATIO_PAPER} at the paper's setting: "
              f"{'MET' if ratio <= TARGET_RATIO_PAPER else 'NOT MET'} ({ratio:.2f})")
        ok = ok and ratio <= TARGET_RATIO_PAPER

    elapsed = time.perf_counter() - started
    info["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    payload = {
        "benchmark": "bench_training",
        "machine": info,
        "config": {
            "quick": args.quick, "paper": args.paper, "fast_search": args.fast_search,
            "decision_threshold": args.decision_threshold, "lambda_reg": args.lambda_reg,
            "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
            "hidden": list(args.hidden), "epochs": len(res["rows"]), "repeats": args.repeats,
            "batch_size": args.batch_size, "n_batches": n_batches,
            "n_counterfactuals": args.n_counterfactuals, "max_iter_cf": args.max_iter_cf,
            "generator": "ecco", "lambdas_ct": [0.5, 0.25, args.lambda_reg],
            "seed": args.seed,
            "data": ("skct.datasets.make_moons" if args.paper else
                     "sklearn make_classification, standardised, float32"),
        },
        "floor_costs": res["floor_costs"],
        "epochs": res["rows"],
        "totals": res["totals"],
        "summary": {"target_ratio_over_floor": TARGET_OVERHEAD, "worst_epoch": res["worst"],
                    "worst_epoch_strict": res["worst_strict"], "met": ok,
                    "cf_steps_stable": res["steps_stable"],
                    "accuracy_plain": runs["plain"][0]["accuracy"],
                    "accuracy_ct": runs["ct"][0]["accuracy"]},
        "runs": runs,
        "elapsed_s": elapsed,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {out_path}  ({elapsed:.0f} s)")
    return payload


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
