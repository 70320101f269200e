"""Results over training seeds: one table per protocol, its averages and the checks.

A *table* maps each data set (by the paper's abbreviation) to its metrics. Every metric
holds the reduction's mean over the training seeds with a t interval over the seeds, the
paper's value and whether the paper marks it significant; a cell counts as significant only
when the interval over seeds excludes 0. :func:`seed_table` builds a table from the saved
``results.json`` of every seed; :func:`table_averages` and :func:`table_checks` summarise it.
"""

from __future__ import annotations

import math

import numpy as np

from ._names import PAPER_LABELS
from ._settings import PAPER_AVERAGES, PAPER_RESULTS

__all__ = ["seed_interval", "seed_table", "table_averages", "table_checks"]

#: results.json reduction key -> the table's metric name.
TABLE_METRICS = {"implausibility": "ip", "mmd": "ip_star", "cost": "cost"}

#: The model and experiment that each metric compares with the baseline.
METRIC_MODEL = {"ip": ("ct_single", "single"), "ip_star": ("ct_single", "single"),
                "cost": ("ct_mutability", "mutability")}


def seed_interval(values, confidence=0.95):
    """Mean and t interval of the mean over seeds: ``(mean, low, high, n)``.

    Values that are None or not finite are dropped; with one value the interval is that
    value, with none everything is NaN.

    Examples
    --------
    >>> from skct.experiments import seed_interval
    >>> m, lo, hi, n = seed_interval([10.0, 12.0, 14.0])
    >>> m, round(lo, 2), round(hi, 2), n
    (12.0, 7.03, 16.97, 3)
    """
    from scipy import stats

    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean, 1
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return mean, mean - half, mean + half, int(v.size)


def _finite_or_none(x):
    return float(x) if x is not None and np.isfinite(x) else None


def _metric_cell(dataset, key, runs, confidence):
    """One (data set, metric) cell of a table from the seeds' results."""
    estimates = [((r.get("reductions") or {}).get(key) or {}).get("estimate") for r in runs]
    mean, low, high, n = seed_interval(estimates, confidence)
    paper = PAPER_RESULTS.get(dataset, {}).get(key)
    significant = n > 1 and (low > 0 or high < 0)
    model, experiment = METRIC_MODEL[TABLE_METRICS[key]]
    per_seed_validity = {m: [(r["models"][m]["counterfactuals"].get(experiment) or {})
                             .get("validity") for r in runs] for m in ("baseline", model)}
    validity = {m: finite_mean(v) for m, v in per_seed_validity.items()}
    cell = {
        "estimate": _finite_or_none(mean), "low": _finite_or_none(low),
        "high": _finite_or_none(high), "n_seeds": int(n),
        "paper": None if paper is None else float(paper[0]),
        "paper_se": None if paper is None else float(paper[1]),
        "paper_significant": bool(paper[2]) if paper is not None else False,
        "significant": bool(significant),
        "per_seed": [_finite_or_none(e) for e in estimates],
        "validity_baseline": validity["baseline"], "validity_ct": validity[model],
        "validity_ct_per_seed": [_finite_or_none(v) for v in per_seed_validity[model]],
    }
    cell["sign_matches_paper"] = (None if paper is None or cell["estimate"] is None
                                  else bool(np.sign(cell["estimate"]) == np.sign(paper[0])))
    return cell


def finite_mean(values):
    """Mean of the values that are not None and finite; None when there is none."""
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def seed_table(runs, *, confidence=0.95):
    """The table of one protocol from the saved results of every seed.

    Parameters
    ----------
    runs : dict
        ``{dataset: [results of seed 0, results of seed 1, ...]}`` (the content of each
        seed's ``results.json``).
    confidence : float, default=0.95
        Confidence of the t interval over seeds.

    Returns
    -------
    dict
        ``{label: {"ip": cell, "ip_star": cell, "cost": cell, "accuracy": {...},
        "name": dataset}}`` where ``label`` is the paper's abbreviation and each cell holds
        ``estimate``, ``low``, ``high`` (% reduction, positive: CT better), ``n_seeds``,
        ``paper``, ``paper_se``, ``paper_significant``, ``significant`` (the interval over
        seeds excludes 0), ``sign_matches_paper``, ``per_seed`` and the mean validity of the
        baseline and of the CT model in that column's experiment.
    """
    table = {}
    for dataset, results in runs.items():
        if not results:
            continue
        row = {"name": dataset}
        for key, metric in TABLE_METRICS.items():
            row[metric] = _metric_cell(dataset, key, results, confidence)
        row["accuracy"] = {m: finite_mean([r["models"][m]["accuracy"] for r in results])
                           for m in results[0]["models"]}
        table[PAPER_LABELS.get(dataset, dataset)] = row
    return table


def table_averages(table):
    """Mean over data sets of each metric's estimate, with the paper's average.

    Examples
    --------
    >>> from skct.experiments import table_averages
    >>> t = {"LS": {"ip": {"estimate": 10.0}, "ip_star": {"estimate": 20.0},
    ...             "cost": {"estimate": None}}}
    >>> table_averages(t)["ip"]
    {'estimate': 10.0, 'n_datasets': 1, 'paper': 15.6}
    """
    paper = {"ip": PAPER_AVERAGES["implausibility"], "ip_star": PAPER_AVERAGES["mmd"],
             "cost": PAPER_AVERAGES["cost"]}
    out = {}
    for metric in TABLE_METRICS.values():
        v = [row[metric]["estimate"] for row in table.values()
             if row[metric]["estimate"] is not None]
        out[metric] = {"estimate": float(np.mean(v)) if v else None, "n_datasets": len(v),
                       "paper": paper[metric]}
    return out


def table_checks(table, *, validity_margin=0.05, accuracy_margin=0.01):
    """Which cells agree with the paper, and the validity and accuracy of each CT model.

    Returns
    -------
    dict
        ``sign_mismatches``: ``[(label, metric)]`` of the cells the paper marks significant
        whose mean over seeds has the other sign; ``paper_significant``: how many such cells;
        ``validity_ok`` / ``accuracy_ok``: per label and CT model, whether its test-time
        validity is at least the baseline's minus ``validity_margin`` and its accuracy within
        ``accuracy_margin`` of the baseline's.
    """
    mismatches, n_sig, validity_ok, accuracy_ok = [], 0, {}, {}
    for label, row in table.items():
        for metric in TABLE_METRICS.values():
            cell = row[metric]
            if cell["paper_significant"]:
                n_sig += 1
                if cell["sign_matches_paper"] is False:
                    mismatches.append((label, metric))
        for metric, (model, _) in (("ip", METRIC_MODEL["ip"]), ("cost", METRIC_MODEL["cost"])):
            c = row[metric]
            if c["validity_ct"] is not None and c["validity_baseline"] is not None:
                validity_ok.setdefault(label, {})[model] = bool(
                    c["validity_ct"] >= c["validity_baseline"] - validity_margin)
            acc, base = row["accuracy"].get(model), row["accuracy"].get("baseline")
            if acc is not None and base is not None:
                accuracy_ok.setdefault(label, {})[model] = bool(acc >= base - accuracy_margin)
    return {"sign_mismatches": mismatches, "paper_significant": n_sig,
            "validity_ok": validity_ok, "accuracy_ok": accuracy_ok,
            "validity_margin": validity_margin, "accuracy_margin": accuracy_margin}
