"""The results page: tables built from the saved ``results.json`` files, prose from a template.

The page's sentences live in ``templates/results.md`` (package data; sections marked
``@@ name``, filled with :class:`string.Template`); this module computes the numbers, the table
rows and which sentences apply. Every statement about a data set is derived from its saved
numbers or from the paper's (:data:`PAPER_RESULTS`), never written for a named data set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._files import ResultsFolder
from ._progress import fmt_time
from ._settings import (
    DATASET_NAMES,
    EXPERIMENTS,
    MODEL_NAMES,
    MODELS,
    MUTABILITY_SETTINGS,
    PAPER_ACCURACY,
    PAPER_AVERAGES,
    PAPER_LABELS,
    PAPER_RESULTS,
    PAPER_SOURCE,
    PROTOCOL_ITEMS,
    REDUCTION_KEYS,
    REFERENCE_BUDGETS,
    REFERENCE_EVAL_THRESHOLDS,
    REFERENCE_STEP_SIZE,
    SHARED_SETTINGS,
)
from ._templates import say

__all__ = ["load_results", "write_results_markdown"]

_COLUMN_NAMES = {"implausibility": "IP", "mmd": "IP*", "cost": "cost (mutability)"}


def _say(section, /, **values):
    """The template ``section`` of ``templates/results.md`` with ``values`` filled in."""
    return say("results.md", section, **values)


# -- reading the saved results ---------------------------------------------------------------


def load_results(results_dir):
    """Read every ``<results_dir>/<dataset>/results.json`` (paper order, then the others).

    Results of the earlier protocol (one CT model, no ``settings.experiments``) are skipped.

    Parameters
    ----------
    results_dir : str or path-like
        The ``out_dir`` of :func:`run_experiment`.

    Returns
    -------
    dict
        ``{dataset: results}``.
    """
    results_dir = Path(results_dir)
    found = {}
    for path in sorted(results_dir.glob("*/results.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(res, dict) and "dataset" in res and "experiments" in res.get(
                "settings", {}):
            found[res["dataset"]] = res
    order = [d for d in DATASET_NAMES if d in found] + \
        sorted(d for d in found if d not in DATASET_NAMES)
    return {d: found[d] for d in order}


# -- number formats --------------------------------------------------------------------------


def _finite(x):
    return x is not None and np.isfinite(x)


def _fmt_num(x, digits=1, sign=True):
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _cell(r, digits=1, interval=True):
    """``+12.3 ± 1.4* [+9.0, +15.1]``: reference estimate, ± 100 std of the ratio, star when
    the interval of per-run differences excludes 0, interval of per-run reductions."""
    if not r or not _finite(r.get("estimate")):
        return "n/a"
    star = "*" if r.get("significant") else ""
    se = f" ± {r['se']:.{digits}f}" if _finite(r.get("se")) else ""
    text = f"{r['estimate']:+.{digits}f}{se}{star}"
    if interval and _finite(r.get("ci_low")):
        text += f" [{r['ci_low']:+.{digits}f}, {r['ci_high']:+.{digits}f}]"
    return text


def _boot_cell(r, digits=1):
    b = (r or {}).get("bootstrap")
    if not b or not _finite(b.get("estimate")):
        return "n/a"
    star = "*" if b.get("significant") else ""
    return (f"{b['estimate']:+.{digits}f}{star} [{b['ci_low']:+.{digits}f}, "
            f"{b['ci_high']:+.{digits}f}]")


def _paper_cell(dataset, metric):
    p = PAPER_RESULTS.get(dataset, {}).get(metric)
    if p is None:
        return "n/a"
    mean, se, sig = p
    return f"{mean:+.2f} ± {se:.2f}{'*' if sig else ''}"


def _acc(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"


def _fgsm_at(model, eps=0.03):
    f = model["fgsm"]
    for e, a in zip(f["epsilon"], f["accuracy"]):
        if abs(e - eps) < 1e-9:
            return a
    return None


def _lab(d):
    return PAPER_LABELS.get(d, d)


def _cf(r, model, experiment, key):
    return r["models"][model]["counterfactuals"].get(experiment, {}).get(key)


def _same_or_list(values, fmt=str):
    """One value when all data sets agree, else ``value (label), ...``."""
    if len({json.dumps(v, sort_keys=True) for v in values.values()}) == 1:
        return fmt(next(iter(values.values())))
    return ", ".join(f"{fmt(v)} ({_lab(d)})" for d, v in values.items())


def _g(v):
    return "n/a" if v is None else f"{v:g}"


# -- the protocol ----------------------------------------------------------------------------


def _protocol(results, repro):
    """Protocol paragraphs from the settings of this package and the saved runs."""
    out = [_say("models", hidden=SHARED_SETTINGS["hidden_layer_sizes"][0],
                lr=f"{SHARED_SETTINGS['lr']:g}")]
    mut_note = ""
    if MUTABILITY_SETTINGS:
        spec = next(iter(MUTABILITY_SETTINGS.values()))
        mut_note = (", ".join(_lab(d) for d in MUTABILITY_SETTINGS) + ": "
                    + ", ".join(f"{k} = {v:g}" for k, v in spec.items()))
    for m, spec in MODELS.items():
        extra = (_say("mutability_lambdas", note=mut_note)
                 if m == "ct_mutability" and mut_note else "")
        out.append(_say("model", label=spec["label"], name=m,
                        description=spec["description"], extra=extra))
    out.append(_say("columns"))
    out.extend(_column_lines(results))
    out.append(_say("columns_end"))
    out.append(_search(results))
    for d, r in results.items():
        e = r["settings"]["evaluation"]
        pairs = len(r["settings"]["pairs"])
        rb = REFERENCE_BUDGETS.get(d)
        out.append(f"| {_lab(d)} | {e['n_runs']} | {pairs} x {e['n_factuals']} | "
                   f"{pairs * e['n_factuals']} | " + (f"{rb[0]} x {rb[1]}" if rb else "n/a")
                   + " |")
    out.append("")
    if repro.get("budget_note"):
        out.extend([repro["budget_note"], ""])
    first = next(iter(results.values()))
    conf = first["reductions"]["implausibility"].get("confidence", 0.99)
    out.append(_say("reduction", confidence=f"{conf:.0%}"))
    boot = first["reductions"]["implausibility"].get("bootstrap")
    if boot:
        out.append(_say("second_opinion", n_resamples=boot["n_resamples"]))
    out.append(_say("paper_columns", source=PAPER_SOURCE))
    return out


def _column_lines(results):
    """One line per experiment: the columns it gives, its models, constraints and tau."""
    taus = {d: r["settings"]["evaluation"]["decision_threshold"] for d, r in results.items()}
    names = {"implausibility": "IP", "mmd": "IP*", "cost": "Cost"}
    out = []
    for e, spec in EXPERIMENTS.items():
        ref = REFERENCE_EVAL_THRESHOLDS[e]
        tau_note = ("" if all(t[e] == ref for t in taus.values())
                    else _say("tau_override", reference=f"{ref:g}"))
        out.append(_say(
            "column", columns=" and ".join(names[c] for c in spec["columns"]), experiment=e,
            ct_label=MODELS[spec["ct_model"]]["label"], ct_model=spec["ct_model"],
            constraints=_say("constrained" if spec["constrained"] else "unconstrained"),
            tau=_same_or_list({d: t[e] for d, t in taus.items()}, lambda v: f"{v:g}"),
            tau_note=tau_note))
    return out


def _train_step(r):
    gen = r["settings"]["models"]["ct_single"].get("generator")
    return gen.get("step_size") if isinstance(gen, dict) else None


def _search(results):
    ev = next(iter(results.values()))["settings"]["evaluation"]
    steps = {d: r["settings"]["evaluation"]["step_size"] for d, r in results.items()}
    return _say(
        "search", step=_same_or_list(steps, _g), lambda_cost=f"{ev['lambda_cost']:g}",
        energies=", ".join(f"{v:g}" for v in ev["lambda_energies"]), max_iter=ev["max_iter"],
        reference_step=f"{REFERENCE_STEP_SIZE:g}",
        train_step=_same_or_list({d: _train_step(r) for d, r in results.items()}, _g),
        paper_train_step=f"{SHARED_SETTINGS['generator']['step_size']:g}",
        n_reference=ev["n_reference"], length_scale=f"{ev['mmd_length_scale']:g}")


# -- the tables ------------------------------------------------------------------------------


def _labels():
    ct, mut = EXPERIMENTS["single"]["ct_model"], EXPERIMENTS["mutability"]["ct_model"]
    return ct, mut, {m: MODELS[m]["label"] for m in MODEL_NAMES}


def _main_rows(results):
    """Rows of the main table and the averages of our estimates."""
    ct, mut, _ = _labels()
    rows, ours = [], {"implausibility": [], "mmd": [], "cost": []}
    for d, r in results.items():
        red = r["reductions"]
        for k in ours:
            if _finite(red[k].get("estimate")):
                ours[k].append(red[k]["estimate"])
        pa = PAPER_ACCURACY.get(d)
        acc_paper = f" ({pa[1]:.2f} / {pa[0]:.2f})" if pa else ""
        rob_paper = f" ({pa[3]:.2f} / {pa[2]:.2f})" if pa else ""
        M = r["models"]
        rows.append(
            f"| {_lab(d)} | {_cell(red['implausibility'])} | "
            f"{_paper_cell(d, 'implausibility')} | {_cell(red['mmd'])} | "
            f"{_paper_cell(d, 'mmd')} | {_cell(red['cost'])} | {_paper_cell(d, 'cost')} | "
            f"{_acc(_cf(r, 'baseline', 'single', 'validity'), 2)} / "
            f"{_acc(_cf(r, ct, 'single', 'validity'), 2)} | "
            f"{_acc(_cf(r, 'baseline', 'mutability', 'validity'), 2)} / "
            f"{_acc(_cf(r, mut, 'mutability', 'validity'), 2)} | "
            + " / ".join(_acc(M[m]["accuracy"]) for m in MODEL_NAMES) + f"{acc_paper} | "
            + " / ".join(_acc(_fgsm_at(M[m])) for m in MODEL_NAMES) + f"{rob_paper} |")

    def avg(k):
        n = len(ours[k])
        value = float(np.mean(ours[k])) if ours[k] else None
        return _fmt_num(value) + ("" if n == len(PAPER_RESULTS) else f" (n={n})")

    return rows, {k: avg(k) for k in ours}


def _second_rows(results):
    ct, mut, _ = _labels()
    rows = []
    for d, r in results.items():
        red = r["reductions"]
        runs = " / ".join(str(red[k].get("n_runs", "?"))
                          for k in ("implausibility", "mmd", "cost"))
        rows.append(
            f"| {_lab(d)} | {_cell(red['cost_single'])} | "
            f"{_cell(red['implausibility_mutability'])} | {_cell(red['mmd_mutability'])} | "
            f"{_boot_cell(red['implausibility'])} | {_boot_cell(red['mmd'])} | "
            f"{_boot_cell(red['cost'])} | "
            f"{_acc(_cf(r, 'baseline', 'single', 'strict_validity'), 2)} / "
            f"{_acc(_cf(r, ct, 'single', 'strict_validity'), 2)} | "
            f"{_acc(_cf(r, 'baseline', 'mutability', 'strict_validity'), 2)} / "
            f"{_acc(_cf(r, mut, 'mutability', 'strict_validity'), 2)} | {runs} |")
    return rows


def _ig_cell(model):
    """``0.123 (0.0456)``: the normalised IG sensitivity (the paper's rule) and the absolute."""
    return (f"{_fmt_num(model.get('ig_sensitivity_normalized'), 3, sign=False)} "
            f"({_fmt_num(model['ig_sensitivity'], 4, sign=False)})")


def _robustness_rows(results):
    ct, mut, _ = _labels()
    rows = []
    for d, r in results.items():
        M = r["models"]
        h = {m: M[m]["training"]["history"] for m in (ct, mut)}
        rows.append(
            f"| {_lab(d)} | " + " / ".join(_acc(M[m]["pgd"]["accuracy"][-1])
                                           for m in MODEL_NAMES)
            + " | " + " / ".join(_ig_cell(M[m]) for m in MODEL_NAMES)
            + f" | {_acc(h[ct].get('cf_valid_first'), 2)} / "
            f"{_acc(h[ct].get('cf_valid_last'), 2)} | {_acc(h[mut].get('cf_valid_first'), 2)} / "
            f"{_acc(h[mut].get('cf_valid_last'), 2)} |")
    return rows


def _time_lines(results, repro):
    first = next(iter(results.values()))
    machine = repro.get("machine") or first.get("machine", {})
    out = [_say("time", cpu_count=machine.get("cpu_count", "?"),
                platform=machine.get("platform", "?"), torch=machine.get("torch", "?"),
                n_jobs=machine.get("n_jobs", first["machine"].get("n_jobs", 1)))]
    total = 0.0
    for d, r in results.items():
        t = r["timings"]
        total += t.get("total") or 0.0
        out.append(f"| {_lab(d)} | "
                   + " | ".join(fmt_time(t.get(f"train_{m}") or 0) for m in MODEL_NAMES)
                   + f" | {fmt_time(t.get('evaluate') or 0)} | "
                   f"{fmt_time(t.get('robustness') or 0)} | "
                   f"{fmt_time((t.get('reductions') or 0) + (t.get('plots') or 0))} | "
                   f"{fmt_time(t.get('total') or 0)} |")
    out.append(_say("time_sum", total=fmt_time(total)))
    wall, resumed = repro.get("wall_clock_s"), repro.get("resumed_stages") or {}
    where = {"cpu_count": machine.get("cpu_count", "?"), "total": fmt_time(total),
             "started": repro.get("started", "?")}
    if wall is not None and not resumed:
        out.append(_say("wall_fresh", wall=fmt_time(wall), **where))
    elif wall is not None:
        out.append(_say("wall_resumed", wall=fmt_time(wall),
                        datasets=", ".join(_lab(d) for d in resumed), **where))
    else:
        out.append(_say("wall_stages", **where))
    return out


# -- reading the table -----------------------------------------------------------------------


def _reading(results):
    """Sentences generated from the numbers: significance, agreement with the paper, causes."""
    out = []
    for metric, label in _COLUMN_NAMES.items():
        found = {"lowers": [], "raises": [], "includes_zero": []}
        for d, r in results.items():
            red = r["reductions"][metric]
            if not _finite(red.get("estimate")):
                continue
            kind = ("includes_zero" if not red.get("significant") else
                    "lowers" if red["estimate"] > 0 else "raises")
            found[kind].append(_lab(d))
        parts = [_say(kind, datasets=", ".join(names)) for kind, names in found.items()
                 if names]
        out.append(_say("reading", label=label,
                        findings="; ".join(parts) if parts else _say("no_estimate")))
    out.append(_say("differences"))
    differences = _differences(results)
    out.extend(differences or [_say("no_difference")])
    steps = {r["settings"]["evaluation"]["step_size"] for r in results.values()}
    step_text = ("" if steps == {REFERENCE_STEP_SIZE} else _say(
        "step_difference", steps=", ".join(f"{s:g}" for s in sorted(steps)),
        reference=f"{REFERENCE_STEP_SIZE:g}") + " ")
    own = sorted({item for r in results.values()
                  for item, choice in (r["settings"].get("protocol") or
                                       dict.fromkeys(PROTOCOL_ITEMS, "skct")).items()
                  if choice == "skct"})
    protocol_text = (_say("protocol_own", items=", ".join(f"`{i}`" for i in own)) if own
                     else _say("protocol_reference"))
    out.append(_say("remaining", step_text=step_text, protocol_text=protocol_text))
    return out


def _differences(results):
    """One line per reduction whose sign or significance differs from the paper's."""
    out = []
    for d, r in results.items():
        paper = PAPER_RESULTS.get(d)
        if not paper:
            continue
        for metric, label in _COLUMN_NAMES.items():
            red = r["reductions"][metric]
            est = red.get("estimate")
            if not _finite(est):
                continue
            p_mean, _, p_sig = paper[metric]
            ours_sig = bool(red.get("significant"))
            if (ours_sig == p_sig) and (not p_sig or np.sign(est) == np.sign(p_mean)):
                continue
            out.append(_say(
                "difference", dataset=_lab(d), label=label, ours=f"{est:+.1f}",
                ours_significance=_say("significant" if ours_sig else "not_significant"),
                paper=f"{p_mean:+.1f}",
                paper_significance=_say("significant" if p_sig else "not_significant"),
                causes=_causes(d, r, metric)))
    return out


def _causes(dataset, r, metric):
    """Hints from the saved numbers (ours and the paper's) for a difference from the paper."""
    experiment = REDUCTION_KEYS[metric][0]
    ct_model = EXPERIMENTS[experiment]["ct_model"]
    ct, bl = r["models"][ct_model], r["models"]["baseline"]
    vb = _cf(r, "baseline", experiment, "validity") or 0.0
    vc = _cf(r, ct_model, experiment, "validity") or 0.0
    hints = []
    if min(vb, vc) < 0.5:
        hints.append(_say("hint_few_valid", baseline=f"{vb:.2f}", ct=f"{vc:.2f}"))
    elif abs(vb - vc) > 0.2:
        hints.append(_say("hint_validity_gap", baseline=f"{vb:.2f}", ct=f"{vc:.2f}"))
    steps = {m: _cf(r, m, experiment, "mean_steps") for m in ("baseline", ct_model)}
    quick = [f"{'BL' if m == 'baseline' else 'CT'} {v:.1f}" for m, v in steps.items()
             if v is not None and v < 3]
    if quick:
        hints.append(_say("hint_quick_stop", steps=", ".join(quick)))
    epochs = ct["training"]["params"].get("max_epochs")
    if epochs is not None and epochs < SHARED_SETTINGS["max_epochs"]:
        hints.append(_say("hint_epochs", epochs=epochs,
                          paper_epochs=SHARED_SETTINGS["max_epochs"]))
    red = r["reductions"][metric]
    if _finite(red.get("se")) and red["se"] > 20:
        hints.append(_say("hint_ratio_spread", se=f"{red['se']:.0f}", n_runs=red.get("n_runs")))
    h = ct["training"]["history"]
    if h.get("cf_valid_last") is not None and h["cf_valid_last"] < 0.5:
        hints.append(_say("hint_training_validity", share=f"{h['cf_valid_last']:.0%}"))
    acc_drop = bl["accuracy"] - ct["accuracy"]
    if acc_drop > 0.05:
        hints.append(_say("hint_accuracy", drop=f"{acc_drop:.2f}"))
    paper = PAPER_RESULTS.get(dataset, {}).get(metric)
    if metric == "cost" and paper is not None and paper[0] < 0:
        hints.append(_say("hint_paper_cost"))
    return _say("likely", hints="; ".join(hints)) if hints else _say("no_flag")


# -- the page --------------------------------------------------------------------------------


def write_results_markdown(results_dir, path=None, *, title=None):
    """Write the results page from the saved ``results.json`` files (no number typed by hand).

    Parameters
    ----------
    results_dir : str or path-like
        Directory holding ``<dataset>/results.json`` (the ``out_dir`` of
        :func:`run_experiment`) and, optionally, ``reproduction.json`` written by
        ``benchmarks/reproduce.py`` (total wall-clock time, command and the note on its
        budgets).
    path : str, path-like or None, default=None
        Markdown file to write (parent directories are created). None writes
        ``results.md`` inside ``results_dir``; anywhere else must be asked for explicitly.
    title : str or None, default=None
        First heading.

    Returns
    -------
    str
        The markdown text.
    """
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    if not results:
        raise FileNotFoundError(f"No <dataset>/results.json under '{results_dir}'; run "
                                "`skct experiment --dataset NAME --out DIR` first.")
    text = _page(results, results_dir, title)
    if path is None:
        ResultsFolder(results_dir).write_bytes("results.md", text.encode("utf-8"))
    else:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text


def _page(results, results_dir, title):
    try:
        repro = json.loads((results_dir / "reproduction.json").read_text())
    except (OSError, ValueError):
        repro = {}
    ct, mut, lab = _labels()
    labels = {"ct": lab[ct], "mut": lab[mut]}
    cmd = repro.get("command")
    lines = [_say("intro", title=title or "Reproducing the counterfactual training paper",
                  source=results_dir.name,
                  made_with=_say("made_with", command=cmd) if cmd else ".")]
    lines.extend(_protocol(results, repro))
    main_rows, averages = _main_rows(results)
    lines.append(_say("main_table", **labels))
    lines.extend(main_rows)
    lines.append(_say("main_table_end", ip=averages["implausibility"], mmd=averages["mmd"],
                      cost=averages["cost"], paper_ip=PAPER_AVERAGES["implausibility"],
                      paper_mmd=PAPER_AVERAGES["mmd"], paper_cost=PAPER_AVERAGES["cost"],
                      **labels))
    lines.extend(_second_rows(results))
    lines.append(_say("second_table_end", trio=" / ".join(lab[m] for m in MODEL_NAMES),
                      **labels))
    lines.extend(_robustness_rows(results))
    lines.append(_say("robustness_end"))
    lines.extend(_reading(results))
    lines.extend(_time_lines(results, repro))
    lines.append("")
    return "\n".join(lines)
