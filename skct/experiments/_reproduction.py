"""The reproduction page and ``results.json``: both tables over seeds, the selection, the
ablation and the time, from the folders written by ``benchmarks/reproduce.py``.

Layout read (``out_dir``): ``reference/seed<k>/<dataset>/results.json`` and
``recommended/seed<k>/<dataset>/results.json`` (the two tables),
``ablation/<item>/<dataset>/results.json`` (seed 0 with one protocol item switched) and
``reproduction.json`` (the selection, the time of each part, the command). Prose lives in
``templates/reproduction.md``; every number comes from the saved files.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from ._names import DATASET_NAMES, DATASET_TITLES, PAPER_LABELS
from ._progress import fmt_time
from ._report import write_results_markdown
from ._seeds import TABLE_METRICS, finite_mean, seed_table, table_averages, table_checks
from ._settings import PAPER_RESULTS, PROTOCOL_ITEMS
from ._templates import say

__all__ = ["load_seed_runs", "write_reproduction"]

TABLES = ("reference", "recommended")
CONFIDENCE = 0.95


def _say(section, /, **values):
    return say("reproduction.md", section, **values)


def _read(path):
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return res if isinstance(res, dict) and "reductions" in res else None


def _seed_dirs(folder):
    """``[(seed, path)]`` of the ``folder/seed<k>`` directories, by seed."""
    return sorted((int(m.group(1)), p) for p in Path(folder).glob("seed*")
                  if (m := re.fullmatch(r"seed(\d+)", p.name)) and p.is_dir())


def _results_by_seed(table_dir):
    """``{seed: {dataset: results}}`` under ``table_dir/seed<k>/<dataset>/results.json``."""
    out = {}
    for seed, path in _seed_dirs(table_dir):
        found = {d: r for d in DATASET_NAMES if (r := _read(path / d / "results.json"))}
        if found:
            out[seed] = found
    return out


def _by_dataset(by_seed):
    """``{dataset: [results of each seed, in seed order]}`` from ``{seed: {dataset: ...}}``."""
    return {d: runs for d in DATASET_NAMES
            if (runs := [found[d] for found in by_seed.values() if d in found])}


def load_seed_runs(table_dir):
    """``{dataset: [results of each seed, in seed order]}`` under ``table_dir/seed<k>/``.

    Examples
    --------
    >>> from skct.experiments import load_seed_runs
    >>> load_seed_runs("no/such/folder")
    {}
    """
    return _by_dataset(_results_by_seed(table_dir))


# -- cells -----------------------------------------------------------------------------------


def _ours(cell):
    if cell["estimate"] is None:
        return "n/a"
    star = "*" if cell["significant"] else ""
    if cell["n_seeds"] > 1:
        return f"{cell['estimate']:+.1f} [{cell['low']:+.1f}, {cell['high']:+.1f}]{star}"
    return f"{cell['estimate']:+.1f} (1 seed)"


def _paper(cell):
    if cell["paper"] is None:
        return "n/a"
    star = "*" if cell["paper_significant"] else ""
    return f"{cell['paper']:+.2f} ± {cell['paper_se']:.2f}{star}"


def _sign(cell):
    if not cell["paper_significant"] or cell["sign_matches_paper"] is None:
        return ""
    return "yes" if cell["sign_matches_paper"] else "**no**"


def _num(x, fmt="{:.3f}"):
    return "n/a" if x is None else fmt.format(x)


def _table_lines(name, table, selection):
    description = (_say("reference_description") if name == "reference" else
                   _say("recommended_description", choice=_choice_text(selection)))
    lines = [_say("table_head", heading=_HEADINGS[name], description=description)]
    for label, row in table.items():
        acc = row["accuracy"]
        lines.append(_say(
            "table_row", name=DATASET_TITLES.get(row["name"], row["name"]), label=label,
            ip=_ours(row["ip"]), ip_paper=_paper(row["ip"]), ip_sign=_sign(row["ip"]),
            mmd=_ours(row["ip_star"]), mmd_paper=_paper(row["ip_star"]),
            mmd_sign=_sign(row["ip_star"]), cost=_ours(row["cost"]),
            cost_paper=_paper(row["cost"]), cost_sign=_sign(row["cost"]),
            accuracy=" / ".join(_num(acc.get(m))
                                for m in ("baseline", "ct_single", "ct_mutability")),
            validity=f"{_num(row['cost']['validity_baseline'], '{:.2f}')} / "
                     f"{_num(row['cost']['validity_ct'], '{:.2f}')}"))
    avg = table_averages(table)
    lines.append(_say("table_average", n=len(table),
                      **{k: _num(avg[m]["estimate"], "{:+.1f}") for k, m in
                         (("ip", "ip"), ("mmd", "ip_star"), ("cost", "cost"))},
                      **{f"{k}_paper": f"{avg[m]['paper']:+.1f}" for k, m in
                         (("ip", "ip"), ("mmd", "ip_star"), ("cost", "cost"))}))
    lines.append("")
    lines.extend(_check_lines(table, selection))
    return lines


def _check_lines(table, selection=None):
    checks = table_checks(table)
    n_sig = checks["paper_significant"]
    mism = checks["sign_mismatches"]
    text = (_say("no_mismatch") if not mism else
            _say("mismatches", cells=", ".join(f"{lab} {_METRIC_NAMES[m]}" for lab, m in mism)))
    val = [ok for per in checks["validity_ok"].values() for ok in per.values()]
    acc = [ok for per in checks["accuracy_ok"].values() for ok in per.values()]
    bad = [f"{lab} {m} ({'validity' if kind == 'v' else 'accuracy'})"
           for kind, src in (("v", checks["validity_ok"]), ("a", checks["accuracy_ok"]))
           for lab, per in src.items() for m, ok in per.items() if not ok]
    why = _why_lines(table, mism, selection)
    return [_say("signs", n_sig=n_sig, n_match=n_sig - len(mism), mismatch_text=text), *why,
            "",
            _say("checks", validity_margin=f"{100 * checks['validity_margin']:g}",
                 n_validity=sum(val), n_validity_total=len(val),
                 accuracy_margin=f"{100 * checks['accuracy_margin']:g}",
                 n_accuracy=sum(acc), n_accuracy_total=len(acc),
                 failures=(" Not met: " + ", ".join(bad) + ".") if bad else ""), ""]


def _why_lines(table, mismatches, selection=None):
    """One line per sign mismatch: the per-seed estimates and what they show (and, for a cost
    cell, the validation runs of the selection with energy regularisation)."""
    if not mismatches:
        return []
    lines = [_say("why_head")]
    for label, metric in mismatches:
        cell = table[label][metric]
        seeds = [v for v in cell["per_seed"] if v is not None]
        same = sum(np.sign(v) == np.sign(cell["paper"]) for v in seeds)
        if cell["significant"]:
            reasons = [_say("why_significant")]
        elif same == 0:
            reasons = [_say("why_all_other", n=len(seeds))]
        else:
            reasons = [_say("why_not_significant")]
        val = [v for v in cell.get("validity_ct_per_seed") or [] if v is not None]
        if val and max(val) - min(val) > 0.2:
            reasons.append(_say("why_validity", low=f"{min(val):.2f}", high=f"{max(val):.2f}",
                                baseline=_num(cell["validity_baseline"], "{:.2f}")))
        reasons.extend(_extra_reasons(table[label], metric, selection))
        lines.append(_say("why_row", label=label, metric=_METRIC_NAMES[metric],
                          estimate=_ours(cell), n=len(seeds),
                          per_seed=", ".join(f"{v:+.1f}" for v in seeds),
                          n_paper_sign=int(same), paper=_paper(cell), reasons=" ".join(reasons)))
    return lines


def _extra_reasons(row, metric, selection):
    """Evidence beyond the seeds: a degraded CT-mut model, the selection's validation runs."""
    out = []
    if metric != "cost":
        return out
    acc, base = row["accuracy"].get("ct_mutability"), row["accuracy"].get("baseline")
    if acc is not None and base is not None and acc < base - 0.01:
        out.append(_say("why_accuracy", ct=f"{acc:.3f}", baseline=f"{base:.3f}"))
    cands = ((selection or {}).get("candidates") or {}).get(row["name"], {}).get("candidates")
    paper = row["cost"]["paper"]
    reg = [c for c in cands or [] if c["lambda_reg"] > 0 and c["cost_reduction"] is not None
           and np.isfinite(c["cost_reduction"])]
    if reg and paper is not None:
        same = all(np.sign(c["cost_reduction"]) == np.sign(paper) for c in reg)
        values = ", ".join(f"{c['cost_reduction']:+.1f} at lambda_reg {c['lambda_reg']:g}"
                           for c in reg)
        out.append(_say("why_selection", values=values,
                        sign="the paper's" if same else "mixed"))
    return out


_METRIC_NAMES = {"ip": "IP", "ip_star": "IP*", "cost": "cost"}
_HEADINGS = {"reference": "As the paper ran it (reference protocol, the paper's lambdas)",
             "recommended": "Recommended settings (reference protocol, chosen on validation "
                            "rows)"}


# -- selection, ablation, time ---------------------------------------------------------------


def _selection_lines(selection):
    if not selection:
        return []
    searched = set(selection["candidates"])
    rest = [d for d in DATASET_NAMES if d not in searched]
    not_searched = "" if not rest else _say(
        "not_searched", names=", ".join(PAPER_LABELS.get(d, d) for d in rest),
        why=selection.get("not_searched_reason", "outside the searched data sets"))
    lines = [_say("selection_head", seeds=", ".join(str(s) for s in selection["seeds"]),
                  not_searched=not_searched)]
    for d, rep in selection["candidates"].items():
        chosen = (rep.get("chosen") or {}).get("lambda_reg")
        for row in rep["candidates"]:
            lines.append(_say(
                "selection_row", name=DATASET_TITLES.get(d, d),
                label=PAPER_LABELS.get(d, d), lam=f"{row['lambda_reg']:g}",
                chosen=" (chosen)" if chosen == row["lambda_reg"] else "",
                red=_num(row["cost_reduction"], "{:+.1f}"),
                validity=f"{row['validity_baseline']:.2f} / {row['validity_ct']:.2f}",
                accuracy=f"{row['accuracy_baseline']:.3f} / {row['accuracy_ct']:.3f}",
                ok="yes" if row["qualifies"] else "no"))
    return lines


def ablation(out_dir, reference=None):
    """Per protocol item: the three averages' change when the item follows skct's choice.

    Read from ``out_dir/ablation/<item>/seed<k>/<dataset>/results.json`` against seed ``k``
    of the reference table (``reference``: its results as ``{seed: {dataset: results}}``,
    read from ``out_dir/reference`` when None); data sets without a run of the item (skipped
    because the item cannot change them) take the reference run's values. The change is the
    mean over the seeds of (average with the item switched - reference average).
    """
    out_dir = Path(out_dir)
    if reference is None:
        reference = _results_by_seed(out_dir / "reference")

    def averages(results):
        return {m: finite_mean([r["reductions"][k]["estimate"] for r in results.values()])
                for k, m in TABLE_METRICS.items()}

    rows, seeds_used = {}, set()
    for item in PROTOCOL_ITEMS:
        changes, run_sets = [], set()
        for seed, seed_dir in _seed_dirs(out_dir / "ablation" / item):
            ref = reference.get(seed, {})
            runs = {d: r for d in ref if (r := _read(seed_dir / d / "results.json"))}
            if not runs:
                continue
            avg, ref_avg = averages({**ref, **runs}), averages(ref)
            changes.append({m: _diff(avg[m], ref_avg[m]) for m in avg})
            run_sets.update(runs)
            seeds_used.add(seed)
        if changes:
            rows[item] = {"change": {m: finite_mean([c[m] for c in changes])
                                     for m in changes[0]},
                          "per_seed": changes, "n_seeds": len(changes),
                          "datasets_run": sorted(run_sets)}
    if not rows:
        return None
    seeds = sorted(seeds_used)
    ref_avgs = [averages(reference[s]) for s in seeds]
    return {"seeds": seeds, "items": rows,
            "reference_averages": {m: finite_mean([a[m] for a in ref_avgs])
                                   for m in ref_avgs[0]}}


def _diff(a, b):
    return None if a is None or b is None else a - b


def _ablation_lines(abl):
    if not abl or not abl["items"]:
        return []
    ref = abl["reference_averages"]
    seeds = ", ".join(str(x) for x in abl["seeds"])
    lines = [_say("ablation_head", seeds=seeds),
             _say("ablation_base", seeds=seeds, ip=_num(ref["ip"], "{:+.1f}"),
                  mmd=_num(ref["ip_star"], "{:+.1f}"), cost=_num(ref["cost"], "{:+.1f}"),
                  n="all")]
    for item, row in abl["items"].items():
        ch = row["change"]
        lines.append(_say("ablation_row", item=item, ip=_num(ch["ip"], "{:+.1f}"),
                          mmd=_num(ch["ip_star"], "{:+.1f}"), cost=_num(ch["cost"], "{:+.1f}"),
                          n=", ".join(PAPER_LABELS.get(d, d) for d in row["datasets_run"])))
    return lines


def _time_lines(record):
    parts = record.get("parts") or {}
    if not parts:
        return []
    total = sum(p["wall_clock_s"] for p in parts.values())
    tables = sum(parts[p]["wall_clock_s"] for p in ("selection", "reference", "recommended")
                 if p in parts)
    text = (f"Both tables, selection included, took **{fmt_time(tables)}**; with the ablation "
            f"**{fmt_time(total)}** in all, on {record['machine']['cpu_count']} CPU cores "
            f"({record['machine']['n_jobs']} worker processes with one torch thread each; "
            f"torch {record['machine']['torch']}).")
    lines = [_say("time_head", wall_text=text)]
    for name, p in parts.items():
        lines.append(_say("time_row", part=name, runs=p["runs"], calls=p.get("calls", 1),
                          wall=fmt_time(p["wall_clock_s"])))
    return lines


# -- the page --------------------------------------------------------------------------------


def write_reproduction(out_dir, *, page=None, json_path=None):
    """Write the reproduction page and its JSON from the folders of ``reproduce.py``.

    Parameters
    ----------
    out_dir : str or path-like
        The reproduction's output folder (see the module docstring for its layout).
    page : str, path-like or None
        Markdown file to write; None: ``out_dir/results.md``.
    json_path : str, path-like or None
        JSON file to write; None: ``out_dir/results.json``. Shaped
        ``{"tables": {"reference": T, "recommended": T}, "averages": ..., "checks": ...,
        "selection": ..., "ablation": ..., "time": ...}`` where ``T[label][metric]`` (label:
        the paper's abbreviation; metric: ``ip``, ``ip_star``, ``cost``) is a cell of
        :func:`~skct.experiments.seed_table`.

    Returns
    -------
    dict
        The JSON content.
    """
    out_dir = Path(out_dir)
    try:
        record = json.loads((out_dir / "reproduction.json").read_text())
    except (OSError, ValueError):
        record = {}
    by_seed = {t: _results_by_seed(out_dir / t) for t in TABLES}
    tables = {t: seed_table(runs, confidence=CONFIDENCE) for t in TABLES
              if (runs := _by_dataset(by_seed[t]))}
    if not tables:
        raise FileNotFoundError(f"No reference/seed*/<dataset>/results.json under '{out_dir}'.")
    selection = record.get("selection")
    abl = ablation(out_dir, reference=by_seed["reference"])
    content = {
        "tables": tables,
        "averages": {t: table_averages(T) for t, T in tables.items()},
        "checks": {t: table_checks(T) for t, T in tables.items()},
        "confidence": CONFIDENCE,
        "selection": selection, "ablation": abl,
        "time": {"parts": {k: v["wall_clock_s"] for k, v in (record.get("parts") or {}).items()},
                 "machine": record.get("machine")},
        "protocol": PROTOCOL_ITEMS, "paper": {k: list(v) for k, v in PAPER_RESULTS.items()},
    }
    text = "\n".join(_page_lines(out_dir, record, tables, selection, abl)) + "\n"
    page = Path(page) if page is not None else out_dir / "results.md"
    json_path = Path(json_path) if json_path is not None else out_dir / "results.json"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    json_path.write_text(json.dumps(content, indent=1, default=_jsonable) + "\n")
    return content


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(type(x))


def _choice_text(selection):
    if not selection:
        return "no selection was run; the settings are the reference's."
    chosen = selection.get("chosen") or {}
    if not chosen:
        return "no candidate qualified, so the settings are the reference's."
    parts = [f"CT-mut lambda_reg = {c['lambda_reg']:g} on {PAPER_LABELS.get(d, d)}"
             for d, c in chosen.items()]
    return "; ".join(parts) + " (every other setting as in the reference table; see below)."


def _commands(record):
    """The calls that made the results, e.g. ```python benchmarks/reproduce.py```."""
    cmds = record.get("commands") or [record.get("command", "python benchmarks/reproduce.py")]
    text = ", then ".join(f"`{c}`" for c in cmds)
    return text if len(cmds) == 1 else f"in {len(cmds)} calls: {text}; a part run again adds " \
        "its time"


def _page_lines(out_dir, record, tables, selection, abl):
    first = next(iter(tables.values()))
    n_seeds = max(c["ip"]["n_seeds"] for c in first.values())
    budgets = record.get("budgets") or {}
    n_runs = sorted({b.get("n_runs") for b in budgets.values()} - {None}) or ["?"]
    parts = record.get("parts") or {}
    wall = sum(p["wall_clock_s"] for k, p in parts.items() if k != "ablation")
    lines = [_say("intro", source=out_dir.name, n_seeds=n_seeds,
                  wall=fmt_time(wall) if parts else "n/a",
                  cpu_count=(record.get("machine") or {}).get("cpu_count", "?"),
                  commands=_commands(record),
                  confidence=f"{CONFIDENCE:.0%}", n_runs="/".join(map(str, n_runs))),
             _say("protocol_head")]
    for item, choice in PROTOCOL_ITEMS.items():
        lines.append(_say("protocol_row", item=item, reference=choice["reference"],
                          skct=choice["skct"]))
    lines.append(_say("protocol_tail", data_seed=record.get("data_seed", 0)))
    for name, table in tables.items():
        lines.extend(_table_lines(name, table, selection))
    lines.extend(_selection_lines(selection))
    lines.extend(_ablation_lines(abl))
    lines.extend(_time_lines(record))
    lines.extend(_details(out_dir))
    return lines


def _details(out_dir):
    seed_dirs = _seed_dirs(out_dir / "reference")
    if not seed_dirs:
        return []
    seed, seed_dir = seed_dirs[0]
    with tempfile.TemporaryDirectory() as tmp:
        text = write_results_markdown(seed_dir, path=Path(tmp) / "details.md",
                                      title=f"Seed {seed} of the reference table")
    text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.MULTILINE)
    return [_say("details_head", seed=seed), text]
