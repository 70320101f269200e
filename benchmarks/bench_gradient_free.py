#!/usr/bin/env python
"""Cost, validity and CPU time of skct's gradient-free search on all-numeric tables.

For HELOC and credit default (``skct.datasets``), a HistGradientBoostingClassifier
(``max_iter=100``) and a RandomForestClassifier (100 trees, ``min_samples_leaf=5``), each in a
Pipeline after the data set's preprocessor and trained on 3,000 seeded rows, this explains
``--rows`` rejected rows (predicted 0, not among the training rows) toward class 1 with
``CounterfactualExplainer(generator=GradientFreeGenerator(**params), target=1,
random_state=0)`` under the data set's immutable column and the integer grids the explainer
infers, for each setting of ``SETTINGS``:

- ``earlier``: the longer search the generator's defaults replaced (``n_neighbors=20,
  n_rings=8, n_candidates=64, n_generations=8``), without the refinement;
- ``no_refine``: the current defaults without the refinement (``n_bisect=0``);
- ``default``: ``GradientFreeGenerator()`` as it is.

Per setting: validity, mean cost of the valid rows in MAD units (``sum_d cost_weight_model_d
|z'_d - z_d|``, what the search minimises: numeric columns over the explainer's
``cost_scale_``, a changed category counts 1), the same over the rows every setting found
(``cost common``), the median number of changed columns of the valid rows, and the CPU
seconds of one ``explain`` call on all the rows (after a warm-up call on five rows; the median
of ``--repeats`` calls, which must return the same rows). The JSON (default
``benchmarks/results/bench_gradient_free.json``) keeps every number, the load average at the
start and end and the git commit.

Usage::

    python benchmarks/bench_gradient_free.py              # 300 rows per table (minutes)
    python benchmarks/bench_gradient_free.py --quick      # 20 rows, HELOC + HGB (seconds)
    python benchmarks/bench_gradient_free.py --out /tmp/gf.json --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "earlier": dict(n_neighbors=20, n_rings=8, n_candidates=64, n_generations=8, n_bisect=0,
                    n_shrink=0),
    "no_refine": dict(n_bisect=0, n_shrink=0),
    "default": dict(),
}
DATASETS = ("heloc", "credit_default")
MODELS = ("hgb", "rf")


def _model(name):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if name == "hgb":
        return HistGradientBoostingClassifier(max_iter=100, random_state=0)
    return RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=0)


def _table(dataset, model, n_rows, data_home):
    """(pipeline, training rows, rejected rows to explain, constraints)."""
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    from skct import ActionabilityConstraints
    from skct.datasets import DATASETS

    bunch = DATASETS[dataset](data_home=data_home)
    idx = np.random.RandomState(0).permutation(len(bunch.data))
    train, rest = idx[:3000], idx[3000:]
    X, y = bunch.data.iloc[train], bunch.target.iloc[train].to_numpy()
    pipe = make_pipeline(clone(bunch.preprocessor), _model(model)).fit(X, y)
    others = bunch.data.iloc[rest]
    rows = others[pipe.predict(others) == 0].iloc[:n_rows]
    constraints = ActionabilityConstraints(
        mutability={c: "none" for c in bunch.immutable_features})
    return pipe, X, rows, constraints


def _run(pipe, X, rows, constraints, params, repeats):
    from skct import CounterfactualExplainer
    from skct.search import GradientFreeGenerator

    ex = CounterfactualExplainer(pipe, generator=GradientFreeGenerator(**params), target=1,
                                 constraints=constraints, random_state=0).fit(X)
    ex.explain(rows.iloc[:5])  # warm-up
    cpus, first = [], None
    for _ in range(repeats):
        c0 = time.process_time()
        res = ex.explain(rows)
        cpus.append(time.process_time() - c0)
        if first is None:
            first = res
        elif not np.array_equal(first.counterfactuals_model, res.counterfactuals_model):
            raise SystemExit("seeded explain calls returned different rows")
    w = np.asarray(ex.constraints_.cost_weight_model_, dtype=float)
    cost = (np.abs(first.counterfactuals_model - first.factuals_model) * w).sum(axis=1)
    return first.valid.astype(bool), cost, first.n_changed, float(np.median(cpus))


def _cell(dataset, model, n_rows, repeats, data_home, log):
    pipe, X, rows, constraints = _table(dataset, model, n_rows, data_home)
    out = {}
    for name, params in SETTINGS.items():
        valid, cost, changed, cpu = _run(pipe, X, rows, constraints, params, repeats)
        out[name] = dict(valid=valid, cost=cost, changed=changed, cpu=cpu)
    common = np.logical_and.reduce([o["valid"] for o in out.values()])
    cells = []
    for name, o in out.items():
        v = o["valid"]
        cells.append(dict(
            dataset=dataset, model=model, setting=name, rows=int(len(rows)),
            params=SETTINGS[name], validity=float(v.mean()),
            mean_cost=float(o["cost"][v].mean()) if v.any() else None,
            mean_cost_common=float(o["cost"][common].mean()) if common.any() else None,
            median_changed=float(np.median(o["changed"][v])) if v.any() else None,
            cpu_s=o["cpu"]))
        log(_line(cells[-1]))
    return cells


HEADER = ("| data | model | setting | validity | mean cost (MAD) | cost common | median changed "
          "| CPU s |\n| --- | --- | --- | --- | --- | --- | --- | --- |")


def _line(c):
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    return (f"| {c['dataset']} | {c['model']} | {c['setting']} | {c['validity']:.3f} | "
            f"{f(c['mean_cost'], '.3f')} | {f(c['mean_cost_common'], '.3f')} | "
            f"{f(c['median_changed'], 'g')} | {c['cpu_s']:.2f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 rows, HELOC + HGB only")
    p.add_argument("--rows", type=int, default=300, help="rows per table (default 300)")
    p.add_argument("--repeats", type=int, default=1, help="timed explain calls (default 1)")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_gradient_free.json",
                   help="JSON path (default: results/bench_gradient_free.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.datasets, args.models = 20, "heloc", "hgb"
    data_home = os.environ.get("SKCT_DATA_HOME", str(HERE.parents[1] / "shared" / "data"))
    load_start = os.getloadavg()
    print(HEADER, flush=True)
    cells = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            cells += _cell(dataset, model, args.rows, args.repeats, data_home,
                           lambda s: print(s, flush=True))
    result = dict(load_average_start=load_start, load_average_end=os.getloadavg(),
                  commit=_commit(), rows=args.rows, repeats=args.repeats, cells=cells)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return result


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
