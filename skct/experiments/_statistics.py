"""Reductions and their uncertainty: the reference's per-run statistic and a bootstrap.

:func:`reference_reduction` is the paper's statistic (per-run CT / BL ratios);
:func:`bootstrap_reduction` a counterfactual-level second opinion. ``all_reductions`` applies
both to every metric of both experiments of a run.
"""

from __future__ import annotations

import numpy as np

from .._utils import derive_seed
from ._settings import EXPERIMENTS, METRICS

__all__ = ["bootstrap_reduction", "reference_reduction"]


def reference_reduction(baseline, ct, *, confidence=0.99):
    """Percentage reduction of a metric (baseline vs CT) computed from per-run values, as the
    paper's reference code does.

    ``baseline[r]`` and ``ct[r]`` are the values of run ``r`` (in the experiments: the mean
    over lambda_energy of the per-(run, lambda_energy) means over valid counterfactuals). With
    the per-run ratio ``q_r = ct[r] / baseline[r]``:

    - ``estimate = (1 - mean_r q_r) * 100`` (positive: CT lowers the metric);
    - ``se = 100 * std_r(q_r)`` (sample standard deviation across runs; the reference's
      ``se``, shown as ``±``);
    - ``ci_low``, ``ci_high``: percentile interval (``confidence``) of the per-run reductions
      ``(1 - q_r) * 100``;
    - ``diff_ci_low``, ``diff_ci_high``: percentile interval of the per-run differences
      ``baseline[r] - ct[r]``; ``significant`` when it excludes 0 (the reference's star).

    Runs where either value is missing or not finite, or the baseline value is 0, are dropped
    (``n_dropped``).

    Parameters
    ----------
    baseline, ct : array-like of shape (n_runs,)
        Per-run values of the baseline and of the CT model (same run order).
    confidence : float in (0, 1), default=0.99

    Returns
    -------
    dict
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``diff_ci_low``, ``diff_ci_high``,
        ``significant``, ``ratio_mean``, ``baseline_mean``, ``ct_mean``, ``n_runs``,
        ``n_dropped``, ``confidence``, ``method``; NaN numbers when no run is left.

    Examples
    --------
    >>> from skct.experiments import reference_reduction
    >>> r = reference_reduction([2.0, 2.0, 4.0, 4.0], [1.0, 1.5, 2.0, 3.0])
    >>> r["estimate"], round(r["se"], 2), r["significant"]
    (37.5, 14.43, True)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    bl = np.asarray(baseline, dtype=np.float64).ravel()
    cf = np.asarray(ct, dtype=np.float64).ravel()
    if bl.shape != cf.shape:
        raise ValueError(f"baseline and ct need one value per run each, got {bl.size} and "
                         f"{cf.size}.")
    keep = np.isfinite(bl) & np.isfinite(cf) & (bl != 0)
    bl, cf = bl[keep], cf[keep]
    out = {"confidence": confidence, "n_runs": int(bl.size), "n_dropped": int((~keep).sum()),
           "method": "reference: per-run ratio CT/BL, (1 - mean ratio) x 100 ± 100 x std; "
                     "significant when the percentile interval of per-run BL - CT excludes 0"}
    nan = float("nan")
    if bl.size == 0:
        out.update(estimate=nan, se=nan, ci_low=nan, ci_high=nan, diff_ci_low=nan,
                   diff_ci_high=nan, ratio_mean=nan, baseline_mean=nan, ct_mean=nan,
                   significant=False)
        return out
    ratio = cf / bl
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile((1.0 - ratio) * 100.0, [alpha, 1.0 - alpha])
    dlo, dhi = np.quantile(bl - cf, [alpha, 1.0 - alpha])
    out.update(estimate=float((1.0 - ratio.mean()) * 100.0),
               se=float(100.0 * ratio.std(ddof=1)) if ratio.size > 1 else nan,
               ci_low=float(lo), ci_high=float(hi), diff_ci_low=float(dlo),
               diff_ci_high=float(dhi), ratio_mean=float(ratio.mean()),
               baseline_mean=float(bl.mean()), ct_mean=float(cf.mean()),
               significant=bool(dlo > 0 or dhi < 0))
    return out


def per_run_values(per_row, per_cell, experiment, model, metric, n_runs):
    """Per run: mean over lambda_energy of the per-(run, lambda_energy) value of ``model``.

    IP and cost: mean over the run's valid counterfactuals (all pairs); IP*: mean over target
    classes of the run's MMD values.
    """
    if metric == "mmd":
        d = per_cell[(per_cell["experiment"] == experiment) & (per_cell["model"] == model)]
        by = d.groupby(["run", "lambda_energy"])["mmd"].mean()
    else:
        d = per_row[(per_row["experiment"] == experiment) & (per_row["model"] == model)
                    & per_row["valid"]]
        by = d.groupby(["run", "lambda_energy"])[metric].mean()
    if by.empty:
        return np.full(n_runs, np.nan)
    per_run = by.groupby(level="run").mean()
    return per_run.reindex(range(n_runs)).to_numpy(dtype=np.float64)


def bootstrap_reduction(baseline, ct, *, n_resamples=1000, confidence=0.99, random_state=0):
    """Percentage reduction of a mean (baseline vs CT) with a percentile bootstrap interval.

    ``baseline`` and ``ct`` map a stratum (e.g. one generator and factual -> target pair) to
    the values of that stratum (per counterfactual, or per batch for MMD). The estimate is
    ``R = (m_BL - m_CT) / m_BL * 100`` where ``m`` is the mean over the strata present in both
    of the stratum means (every stratum weighs the same). Each bootstrap resample draws, for
    each model and stratum independently, as many values as the stratum has, with replacement,
    and recomputes ``R``; the interval holds the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of the resampled ``R``. Positive values mean that CT
    lowers the metric.

    Parameters
    ----------
    baseline, ct : dict {stratum: array-like of float}
        Finite values per stratum (NaN values are dropped).
    n_resamples : int, default=1000
    confidence : float in (0, 1), default=0.99
    random_state : int, default=0

    Returns
    -------
    dict
        ``estimate``, ``ci_low``, ``ci_high`` (percent), ``baseline_mean``, ``ct_mean``,
        ``n_baseline``, ``n_ct`` (values used), ``n_strata``, ``significant`` (the interval
        excludes 0), ``confidence``, ``n_resamples``. NaN estimates when no stratum has values
        in both.

    Examples
    --------
    >>> from skct.experiments import bootstrap_reduction
    >>> r = bootstrap_reduction({"a": [2.0, 2.2, 1.8]}, {"a": [1.0, 1.1, 0.9]}, n_resamples=200)
    >>> round(r["estimate"], 1), r["ci_low"] <= r["estimate"] <= r["ci_high"]
    (50.0, True)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    bl = {k: np.asarray(v, dtype=np.float64) for k, v in baseline.items()}
    cf = {k: np.asarray(v, dtype=np.float64) for k, v in ct.items()}
    bl = {k: v[np.isfinite(v)] for k, v in bl.items()}
    cf = {k: v[np.isfinite(v)] for k, v in cf.items()}
    strata = sorted((k for k in bl if k in cf and bl[k].size and cf[k].size), key=repr)
    out = {"confidence": confidence, "n_resamples": int(n_resamples), "n_strata": len(strata),
           "n_baseline": int(sum(bl[k].size for k in strata)),
           "n_ct": int(sum(cf[k].size for k in strata))}
    if not strata:
        out.update(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, baseline_mean=np.nan,
                   ct_mean=np.nan, significant=False)
        return out

    def reduction(m_bl, m_ct):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (m_bl - m_ct) / m_bl * 100.0

    m_bl = np.mean([bl[k].mean() for k in strata])
    m_ct = np.mean([cf[k].mean() for k in strata])
    rng = np.random.default_rng(random_state)
    boot_bl = np.zeros(n_resamples)
    boot_ct = np.zeros(n_resamples)
    for k in strata:  # one vectorised draw per stratum and model
        for values, acc in ((bl[k], boot_bl), (cf[k], boot_ct)):
            idx = rng.integers(0, values.size, size=(n_resamples, values.size))
            acc += values[idx].mean(axis=1)
    boot = reduction(boot_bl / len(strata), boot_ct / len(strata))
    boot = boot[np.isfinite(boot)]
    alpha = (1.0 - confidence) / 2.0
    lo, hi = (np.quantile(boot, [alpha, 1.0 - alpha]) if boot.size else (np.nan, np.nan))
    est = reduction(m_bl, m_ct)
    out.update(estimate=float(est), ci_low=float(lo), ci_high=float(hi),
               baseline_mean=float(m_bl), ct_mean=float(m_ct),
               significant=bool(np.isfinite(lo) and (lo > 0 or hi < 0)))
    return out


def bootstrap_difference(baseline, ct, *, n_resamples, confidence, random_state):
    """CT minus baseline mean of 0/1 values (percentage points) with a percentile interval."""
    bl = np.asarray(baseline, dtype=np.float64)
    cf = np.asarray(ct, dtype=np.float64)
    if not bl.size or not cf.size:
        return {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "significant": False}
    rng = np.random.default_rng(random_state)
    b = bl[rng.integers(0, bl.size, size=(n_resamples, bl.size))].mean(axis=1)
    c = cf[rng.integers(0, cf.size, size=(n_resamples, cf.size))].mean(axis=1)
    diff = (c - b) * 100.0
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(diff, [alpha, 1.0 - alpha])
    return {"estimate": float((cf.mean() - bl.mean()) * 100.0), "ci_low": float(lo),
            "ci_high": float(hi), "significant": bool(lo > 0 or hi < 0)}


def _strata(df, column, keys):
    out = {}
    for key, part in df.groupby(keys, sort=True):
        out[tuple(float(k) if isinstance(k, float) else int(k) for k in key)] = \
            part[column].to_numpy(dtype=np.float64)
    return out


def all_reductions(per_row, per_cell, cfg):
    """Every metric of both experiments: the reference's per-run reduction (headline) plus the
    counterfactual-level bootstrap, per-run values, and the validity differences."""
    out = {}
    for experiment, spec in EXPERIMENTS.items():
        ct_model = spec["ct_model"]
        for metric in METRICS:
            out[f"{metric}/{experiment}"] = _reduction(per_row, per_cell, experiment, ct_model,
                                                       metric, cfg)
        all_rows = per_row[per_row["experiment"] == experiment]
        out[f"validity/{experiment}"] = bootstrap_difference(
            all_rows.loc[all_rows["model"] == "baseline", "valid"].to_numpy(float),
            all_rows.loc[all_rows["model"] == ct_model, "valid"].to_numpy(float),
            n_resamples=max(cfg["n_bootstrap"], 200), confidence=cfg["confidence"],
            random_state=derive_seed(cfg["random_state"], "bootstrap", "validity", experiment))
    return out


def _reduction(per_row, per_cell, experiment, ct_model, metric, cfg):
    """One metric of one experiment: the reference reduction, its per-run values and (when
    ``n_bootstrap > 0``) the bootstrap over strata of counterfactuals (of runs for IP*)."""
    conf = cfg["confidence"]
    values = {m: per_run_values(per_row, per_cell, experiment, m, metric, cfg["n_runs"])
              for m in ("baseline", ct_model)}
    red = reference_reduction(values["baseline"], values[ct_model], confidence=conf)
    red["per_run"] = {"baseline": values["baseline"].tolist(),
                      "ct": values[ct_model].tolist()}
    red["ct_model"] = ct_model
    if cfg["n_bootstrap"] > 0:
        if metric == "mmd":
            src = per_cell[per_cell["experiment"] == experiment]
            keys = ["lambda_energy", "target"]
        else:
            src = per_row[(per_row["experiment"] == experiment) & per_row["valid"]]
            keys = ["lambda_energy", "factual", "target"]
        parts = {m: _strata(src[src["model"] == m], metric, keys)
                 for m in ("baseline", ct_model)}
        b = bootstrap_reduction(
            parts["baseline"], parts[ct_model], n_resamples=cfg["n_bootstrap"],
            confidence=conf,
            random_state=derive_seed(cfg["random_state"], "bootstrap", metric, experiment))
        red["bootstrap"] = {k: b[k] for k in ("estimate", "ci_low", "ci_high", "significant",
                                              "n_resamples", "n_baseline", "n_ct", "n_strata")}
    return red
