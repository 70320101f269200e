"""The runner: one resumable experiment per data set (data, training, evaluation, robustness,
reductions, plots), each stage through :func:`~skct.experiments._stages.run_stage`."""

from __future__ import annotations

import copy
import numbers
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._config import get_config, torch_threads
from .._utils.parallel import Parallel, delayed
from .._version import __version__
from ..metrics import MMDReference
from ._checkpoints import TASKS_DIR, read_part, remove_stale_parts, write_part
from ._data import constraints_for, load_experiment_data
from ._evaluation import (
    cell_metrics,
    counterfactual_summary,
    evaluate_task,
    factual_target_pairs,
    reference_pools,
)
from ._files import (
    ResultsFolder,
    fingerprint,
    finite_float,
    frame_from_csv_bytes,
    frame_to_csv_bytes,
    sha256,
)
from ._plots import make_plots
from ._progress import Log, fmt_time
from ._robustness import robustness
from ._settings import (
    DATA_SETTINGS,
    EVALUATION_SETTINGS,
    EXPERIMENTS,
    MODEL_NAMES,
    MODELS,
    PAPER_ACCURACY,
    PAPER_AVERAGES,
    PAPER_RESULTS,
    PAPER_SOURCE,
    REDUCTION_KEYS,
    check_dataset,
    evaluation_config,
    resolve_protocol,
)
from ._stages import Computed, Stage, run_stage
from ._statistics import all_reductions
from ._training import (
    describe_training,
    fit_model,
    legacy_model_file,
    load_model,
    model_file,
    model_params,
)

__all__ = ["run_experiment"]

#: Files of the evaluation stage.
ROWS_FILE, CELLS_FILE = "evaluation/counterfactuals.csv.gz", "evaluation/runs.csv.gz"
#: Settings each stage depends on (besides the fingerprints of the stages it reads).
EVALUATION_KEYS = ("decision_threshold", "max_iter", "lambda_energies", "lambda_cost",
                   "step_size", "n_runs", "n_factuals", "max_pairs", "n_reference",
                   "mmd_length_scale", "random_state", "protocol", "one_hot", "rows")
ROBUSTNESS_KEYS = ("epsilons", "n_attack", "pgd_steps", "pgd_step_size", "n_sensitivity",
                   "random_state", "rows")


@dataclass
class _Run:
    """What every stage of one call needs, and what the stages report back."""

    dataset: str
    folder: ResultsFolder
    cfg: dict
    params: dict
    log: Log
    force: bool
    verbose: int
    n_jobs: int
    random_state: int
    protocol: dict = field(default_factory=dict)
    data: object = None
    timings: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    def stage(self, stage, compute, restore=None):
        """:func:`run_stage`, recording the stage's time and whether it was skipped."""
        res = run_stage(self.folder, stage, compute, force=self.force, restore=restore,
                        log=self.log)
        self.timings[stage.name] = res.time_s
        if res.skipped:
            self.skipped.append(stage.name)
            self.log(f"{stage.name}: skipped (found {self.dataset}/{stage.record})")
        return res


def run_experiment(dataset, *, out_dir, data_home=None, max_epochs=None, n_factuals=None,
                   n_runs=None, lambda_energies=None, max_pairs=None, n_jobs=1,
                   random_state=0, force=False, plots=True, verbose=1, evaluation=None,
                   protocol="reference", data_seed=None, model_overrides=None,
                   evaluate_on="test", **overrides):
    """Train the baseline and the two CT models on one data set, evaluate, reduce, save.

    See :mod:`skct.experiments` for the stages and :data:`EXPERIMENTS` for which model each
    column of the paper's table uses. Every stage is skipped when its record exists with the
    same settings and its files are unchanged (resumable); a changed setting recomputes that
    stage and the ones after it.

    Parameters
    ----------
    dataset : str
        One of :data:`DATASET_NAMES`.
    out_dir : str or path-like
        Results go to ``out_dir/<dataset>/``: ``results.json``, ``metrics.csv``,
        ``models/{baseline,ct_single,ct_mutability}.skct`` (the fitted classifiers, stored
        with :func:`skct.io.save` and read back with :func:`skct.io.load`, which executes no
        code from the file; a pickle left by an earlier version is deleted, never loaded),
        ``evaluation/counterfactuals.csv.gz`` (one row per counterfactual),
        ``evaluation/runs.csv.gz`` (IP* per run and target), ``robustness.json``,
        ``reductions.json`` and ``plots/*.png``; each stage's record (``models/<name>.json``,
        ``evaluation/meta.json``, ``robustness.json``, ``reductions.json``,
        ``plots/meta.json``) holds its fingerprint and the SHA-256 of its files, checked before
        a file is reused. Files are replaced atomically and no symbolic link inside
        ``out_dir/<dataset>`` is followed.
    data_home : str, path-like or None, default=None
        Directory of the real data files.
    max_epochs : int or None, default=None
        Overrides the paper's 100 epochs (all models).
    n_factuals : int or None, default=None
        Factuals per run and factual -> target pair (default 100).
    n_runs : int or None, default=None
        Runs (independent draws of factuals) per pair and generator (default 30).
    lambda_energies : sequence of float or None, default=None
        Test-time ECCo energy penalties (default ``0.1, 0.5, 1, 5, 10``).
    max_pairs : int or None, default=None
        Evaluate at most this many (seeded) factual -> target pairs (useful for MNIST's 90).
    n_jobs : int, default=1
        joblib workers for the evaluation (one task per experiment, model and generator);
        they run with the caller's :func:`skct.config_context`.
    random_state : int, default=0
        Seeds all models (the same seed) and the evaluation, and the data unless
        ``data_seed`` is given.
    force : bool, default=False
        Recompute every stage.
    plots : bool, default=True
        Draw the PNG plots (needs matplotlib).
    verbose : int, default=1
        0 silent, 1 one line per stage and training progress, 2 more detail.
    evaluation : dict or None, default=None
        Further test-time settings overriding :data:`EVALUATION_SETTINGS`, e.g.
        ``{"decision_threshold": 0.9}`` (both experiments; ``"paper"``, the default, takes
        :data:`REFERENCE_EVAL_THRESHOLDS`, a dict sets it per experiment), ``{"step_size":
        0.1}`` (the reference code's effective step, :data:`REFERENCE_STEP_SIZE`) or
        ``{"n_bootstrap": 0}`` (skip the counterfactual-level bootstrap).
    protocol : {"reference", "skct"} or dict, default="reference"
        How the experiment is run: the paper's own code's choices (``"reference"``), skct's
        (``"skct"``) or a dict switching items of :data:`PROTOCOL_ITEMS` one by one (the
        others as in the reference), e.g. ``{"one_hot": "skct"}``.
    data_seed : int or None, default=None
        Seed of the data (generation, splits, samples); None: ``random_state``. Training
        seeds of one data set share a ``data_seed``.
    model_overrides : dict or None, default=None
        ``{model name: {parameter: value}}`` applied to single models after every other
        setting, e.g. ``{"ct_mutability": {"lambda_reg": 0.1}}``.
    evaluate_on : {"test", "validation"}, default="test"
        Rows explained, attacked and measured: the test rows, or the validation rows held
        out of training (the reference protocol's data only) to choose settings without
        looking at the test rows.
    **overrides
        Parameters of :class:`~skct.CounterfactualTrainedClassifier` overriding the paper's
        settings (``lambda_*``, ``decision_threshold``, ``n_counterfactuals``, ``generator``
        ... change both CT models; e.g. ``batch_size`` or ``lr`` change all three).

    Returns
    -------
    dict
        The content of ``results.json`` (see :func:`write_results_markdown`), plus
        ``"skipped"``: the stages taken from earlier runs.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, also when it interrupts a training (whose classifier would return the model
        trained so far): that model is not stored, the stages already finished are kept and
        the same call resumes from them.

    Examples
    --------
    >>> from skct.experiments import run_experiment
    >>> res = run_experiment("linearly_separable", out_dir="results", max_epochs=2,
    ...                      n_runs=2, n_factuals=5, lambda_energies=[5.0],
    ...                      verbose=0)  # doctest: +SKIP
    >>> sorted(res["reductions"])  # doctest: +SKIP
    ['cost', 'cost_single', 'implausibility', 'implausibility_mutability', 'mmd', ...]
    """
    check_dataset(dataset)
    _check_seed("random_state", random_state)
    if data_seed is not None:
        _check_seed("data_seed", data_seed)
    if evaluate_on not in ("test", "validation"):
        raise ValueError(f"evaluate_on must be 'test' or 'validation', got {evaluate_on!r}.")
    t_call = time.perf_counter()
    proto = resolve_protocol(protocol)
    cfg = evaluation_config(dataset, n_runs, n_factuals, lambda_energies, max_pairs,
                            random_state, dict(evaluation or {}))
    cfg["protocol"] = proto
    cfg["one_hot"] = "reharden" if proto["one_hot"] == "reference" else "accumulate"
    run = _Run(dataset=dataset, folder=ResultsFolder(Path(out_dir) / dataset), cfg=cfg,
               params=model_params(dataset, max_epochs, overrides, proto, model_overrides),
               log=Log(dataset, verbose), force=force, verbose=verbose, n_jobs=n_jobs,
               random_state=int(random_state), protocol=proto)
    run.data = _load_data(run, data_home,
                          int(random_state if data_seed is None else data_seed), evaluate_on)
    # the rows explained and attacked (test or validation): part of those stages' inputs
    cfg["rows"] = _arrays_digest(run.data.X_test, run.data.y_test)
    models, training = _train_models(run)
    train_fp = {m: training[m].fingerprint for m in MODEL_NAMES}
    evaluated = _evaluate(run, models, train_fp)
    per_row, per_cell = evaluated.obj
    per_row["valid"] = per_row["valid"].astype(bool)
    per_row["converged"] = per_row["converged"].astype(bool)
    run.folder.write_bytes("metrics.csv",
                           cell_metrics(per_row, per_cell).to_csv(index=False).encode())
    rob = _robustness(run, models, train_fp)
    reds = run.stage(
        Stage("reductions", "reductions.json",
              {"evaluation": evaluated.fingerprint, "n_bootstrap": cfg["n_bootstrap"],
               "confidence": cfg["confidence"], "random_state": run.random_state}),
        lambda: Computed(all_reductions(per_row, per_cell, cfg)))
    if not reds.skipped:
        run.log(f"reductions: done in {fmt_time(reds.time_s)}")
    made_plots = _plots(run, models, rob, train_fp) if plots else {}
    results = _results(run, training, rob.value, reds.value, made_plots, per_row, per_cell,
                       evaluated.value["pairs"], t_call)
    run.folder.write_json("results.json", results)
    _log_done(run, results)
    return run.folder.read_json("results.json") | {"skipped": run.skipped}


def _load_data(run, data_home, data_seed, evaluate_on):
    start = time.perf_counter()
    data_cfg = DATA_SETTINGS.get(run.dataset, {}) if run.protocol["data"] == "skct" else {}
    data = load_experiment_data(run.dataset, data_home=data_home, random_state=data_seed,
                                n_samples=data_cfg.get("n_samples"),
                                n_train=data_cfg.get("n_train"), data=run.protocol["data"],
                                domain=run.protocol["domain"])
    if evaluate_on == "validation":
        if len(data.X_val) == 0:
            raise ValueError("evaluate_on='validation' needs validation rows: the reference "
                             "protocol's data (protocol item 'data') holds them out.")
        data = _on_validation(data)
    data.info.update(data_seed=data_seed, evaluate_on=evaluate_on)
    run.timings["load_data"] = time.perf_counter() - start
    run.log(f"data: {data.info['n_train']} train / {data.info['n_test']} test rows, "
            f"{data.info['n_features']} features, {data.info['n_classes']} classes, "
            f"protected: {', '.join(map(str, data.immutable_names))}")
    return data


def _check_seed(name, seed):
    if not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be an int >= 0, got {seed!r}.")


def _on_validation(data):
    """A copy of ``data`` whose test rows are its validation rows."""
    out = copy.copy(data)
    out.X_test, out.y_test = data.X_val, data.y_val
    out.info = dict(data.info, n_test=int(len(data.X_val)))
    return out


def _constraints(run, protect, training):
    """Search constraints of the training (``training=True``) or test-time searches.

    Under the reference protocol's ``one_hot`` item the training search treats one-hot
    columns as continuous; its ``domain`` item clamps to the bounds without widening them to
    the factual.
    """
    categorical = not (training and run.protocol["one_hot"] == "reference")
    return constraints_for(run.data, protect=protect, categorical=categorical,
                           widen_bounds=run.protocol["domain"] == "skct")


def _search_inputs(run, name):
    """What else a model's training depends on: the protocol's training item for every
    model; the search items and the domain for the CT models (the baseline runs no search,
    so that it is shared by protocols that differ only in the search)."""
    if name == "baseline":
        return {"protocol": {"training": run.protocol["training"]}}
    return {"protocol": run.protocol, "bounds": _bounds_digest(run.data)}


def _bounds_digest(data):
    """Digest of the data's domain bounds (explicit bounds change the searches)."""
    if isinstance(data.bounds, dict):
        return sha256(repr(sorted(data.bounds.items())).encode())[:16]
    return str(data.bounds)


def _arrays_digest(*arrays):
    """Digest of the bytes of ``arrays``, e.g. the training rows (a changed data file
    retrains) or the rows explained at test time."""
    return sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays))[:16]


def _train_models(run):
    """Train (or reuse) the three models: ``({name: classifier}, {name: StageResult})``."""
    digest = _arrays_digest(run.data.X_train, run.data.y_train)
    models, training = {}, {}
    for name in MODEL_NAMES:
        p = run.params[name]
        stage = Stage(f"train_{name}", f"models/{name}.json",
                      {"dataset": run.dataset, "data": digest, "params": p,
                       "random_state": run.random_state, "categorical": run.data.categorical,
                       "immutable": run.data.immutable, "protect": MODELS[name]["protect"],
                       **_search_inputs(run, name)})

        _remove_legacy_model(run, name)

        def compute(name=name, p=p):
            run.log(describe_training(name, p))
            cons = _constraints(run, MODELS[name]["protect"], training=True)
            return fit_model(name, p, run.data, run.random_state, run.verbose, run.log,
                             constraints=cons)

        res = run.stage(stage, compute, restore=lambda value, files, name=name:
                        load_model(name, files))
        if not res.skipped:
            run.log(f"train {name}: done in {fmt_time(res.time_s)}")
        models[name], training[name] = res.obj, res
    return models, training


def _remove_legacy_model(run, name):
    """Delete a pickled model of an earlier version (``models/<name>.pkl``) without loading it."""
    legacy = legacy_model_file(name)
    if run.folder.exists(legacy):
        run.folder.remove(legacy)
        run.log(f"train {name}: removed {legacy}, a pickle from an earlier skct version, "
                f"without loading it (loading a pickle runs code from the file); models are "
                f"now stored as {model_file(name)}")


def _evaluate(run, models, train_fp):
    """The evaluation stage: per-counterfactual rows and per-run IP* of every task."""
    stage = Stage("evaluate", "evaluation/meta.json",
                  {"train": train_fp, **{k: run.cfg[k] for k in EVALUATION_KEYS}})
    res = run.stage(stage, lambda: _evaluate_tasks(run, models, train_fp),
                    restore=lambda value, files: (frame_from_csv_bytes(files[ROWS_FILE]),
                                                  frame_from_csv_bytes(files[CELLS_FILE])))
    if not res.skipped:
        run.log(f"evaluate: done in {fmt_time(res.time_s)}")
    return res


def _task_fingerprint(run, key, model_fp):
    """A task's own fingerprint: its name, its model's training and the test-time settings."""
    return fingerprint({"task": key, "train": model_fp,
                        **{k: run.cfg[k] for k in EVALUATION_KEYS}})


def _evaluate_tasks(run, models, train_fp):
    """Every (experiment, model, lambda_energy) task, resuming from checkpoints."""
    data, cfg = run.data, run.cfg
    pairs = factual_target_pairs(len(data.classes), cfg["max_pairs"], run.random_state)
    ip_pools = reference_pools(data.X_test, data.y_test, len(data.classes), cfg["n_reference"],
                               run.random_state)
    mmd_refs = MMDReference.per_class(data.X_test, data.y_test,
                                      length_scale=cfg["mmd_length_scale"])
    keys = {}
    for experiment, spec in EXPERIMENTS.items():
        for m in ("baseline", spec["ct_model"]):
            for lam in cfg["lambda_energies"]:
                key = f"{experiment}_{m}_{lam:g}"
                keys[key] = (experiment, m, lam, _task_fingerprint(run, key, train_fp[m]))
    remove_stale_parts(run.folder, keys)
    run.folder.mkdir(TASKS_DIR)
    tasks, results, cons = [], {}, {}
    for key, (experiment, m, lam, task_fp) in keys.items():
        found = None if run.force else read_part(run.folder, task_fp, key, run.log)
        if found is not None:
            results[key] = found
            continue
        if experiment not in cons:
            cons[experiment] = _constraints(run, EXPERIMENTS[experiment]["constrained"],
                                            training=False)
        tasks.append((key, experiment, m, lam, cons[experiment]))
    n_tasks = 2 * len(EXPERIMENTS) * len(cfg["lambda_energies"])
    _log_tasks(run, n_tasks, len(tasks), len(pairs))
    calls = [delayed(evaluate_task)(experiment, m, models[m], lam,
                                    (data.X_train, data.X_test, ip_pools, mmd_refs, cons),
                                    pairs, cfg)
             for (_, experiment, m, lam, cons) in tasks]
    done = n_tasks - len(tasks)
    if calls:
        parallel = Parallel(n_jobs=run.n_jobs, return_as="generator", batch_size=1)
        for (key, *_), result in zip(tasks, parallel(calls)):
            write_part(run.folder, keys[key][3], key, result)
            results[key] = result
            done += 1
            run.log(f"evaluate: {done}/{n_tasks} tasks ({key}, {result[2]:.1f}s)")
    per_row = pd.concat([results[k][0] for k in sorted(results)], ignore_index=True)
    per_cell = pd.concat([results[k][1] for k in sorted(results)], ignore_index=True)
    return Computed({"pairs": pairs}, obj=(per_row, per_cell),
                    files={ROWS_FILE: frame_to_csv_bytes(per_row),
                           CELLS_FILE: frame_to_csv_bytes(per_cell)})


def _log_tasks(run, n_tasks, n_left, n_pairs):
    cfg = run.cfg
    taus = ", ".join(f"{e} {t:g}" for e, t in cfg["decision_threshold"].items())
    run.log(f"evaluate: {n_tasks} tasks (2 experiments x 2 models x "
            f"{len(cfg['lambda_energies'])} generators), {n_pairs} pairs x {cfg['n_runs']} "
            f"runs x {cfg['n_factuals']} factuals each; tau {taus}, T={cfg['max_iter']}, "
            f"step {cfg['step_size']:g}"
            + (f"; {n_tasks - n_left} tasks found on disk" if n_left < n_tasks else ""))


def _robustness(run, models, train_fp):
    """The robustness stage: accuracy, FGSM/PGD curves and IG sensitivity of every model."""
    def compute():
        run.log(f"robustness: FGSM/PGD over {len(run.cfg['epsilons'])} budgets, "
                "IG sensitivity")
        data = run.data
        if run.protocol["domain"] == "reference":
            # the reference attacks without a clamp when the domain is inferred or a vector
            # (CTExperiments src/evaluate.jl: `domain isa Vector ? nothing : domain`)
            data = copy.copy(run.data)
            data.bounds = "auto"
        with torch_threads():
            return Computed({m: robustness(models[m], data, run.cfg) for m in MODEL_NAMES})

    res = run.stage(Stage("robustness", "robustness.json",
                          {"train": train_fp, "domain": run.protocol["domain"],
                           **{k: run.cfg[k] for k in ROBUSTNESS_KEYS}}),
                    compute)
    if not res.skipped:
        run.log(f"robustness: done in {fmt_time(res.time_s)}")
    return res


def _plots(run, models, rob, train_fp):
    """The plots stage: {name: path in the results folder, or the error}."""
    def compute():
        made, files = make_plots(run.data, models, rob.value, run.cfg, run.log)
        run.log(f"plots: {', '.join(made)}")
        return Computed({"plots": made}, files=files)

    cfg = run.cfg
    res = run.stage(Stage("plots", "plots/meta.json",
                          {"train": train_fp, "robustness": rob.fingerprint,
                           "tau": cfg["decision_threshold"], "T": cfg["max_iter"],
                           "step": cfg["step_size"], "protocol": run.protocol}), compute)
    return res.value["plots"]


def _results(run, training, rob, red, made_plots, per_row, per_cell, pairs, t_call):
    """The content of ``results.json``."""
    model_out = {}
    for m in MODEL_NAMES:
        model_out[m] = {
            "training": {"fingerprint": training[m].fingerprint, "time_s": training[m].time_s,
                         **training[m].value},
            "accuracy": rob[m]["accuracy"],
            "fgsm": rob[m]["fgsm"],
            "pgd": rob[m]["pgd"],
            "ig_sensitivity": rob[m]["ig_sensitivity"],
            "ig_sensitivity_normalized": rob[m].get("ig_sensitivity_normalized"),
            "ig_sensitivity_normalized_interval":
                rob[m].get("ig_sensitivity_normalized_interval"),
            "counterfactuals": counterfactual_summary(per_row, per_cell, m, EXPERIMENTS),
        }
    stages = [f"train_{m}" for m in MODEL_NAMES] + ["evaluate", "robustness", "reductions",
                                                    "plots"]
    timings = {k: finite_float(v) for k, v in run.timings.items()}
    timings["total"] = finite_float(sum(run.timings.values()))
    timings["this_call"] = finite_float(time.perf_counter() - t_call)
    return {
        "dataset": run.dataset,
        "skct_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                    "torch": torch.__version__, "cpu_count": os.cpu_count(),
                    "torch_threads": get_config()["torch_threads"], "n_jobs": run.n_jobs},
        "data": run.data.info,
        "settings": {"protocol": run.protocol, "models": run.params,
                     "experiments": EXPERIMENTS,
                     "evaluation": {k: run.cfg[k] for k in EVALUATION_SETTINGS},
                     "random_state": run.random_state, "pairs": [list(p) for p in pairs]},
        "models": model_out,
        "reductions": {key: red[f"{metric}/{experiment}"]
                       for key, (experiment, metric) in REDUCTION_KEYS.items()},
        "validity_difference": {e: red[f"validity/{e}"] for e in EXPERIMENTS},
        "paper": {"results": PAPER_RESULTS.get(run.dataset),
                  "accuracy": PAPER_ACCURACY.get(run.dataset),
                  "averages": PAPER_AVERAGES, "source": PAPER_SOURCE},
        "timings": timings,
        "recomputed": [k for k in stages if k in run.timings and k not in run.skipped],
        "skipped": run.skipped,
        "plots": made_plots,
    }


def fmt_reduction(r, digits=1):
    """``+12.3% ± 1.4*`` (or ``n/a``) for a progress line."""
    if r is None or r.get("estimate") is None or not np.isfinite(r.get("estimate", np.nan)):
        return "n/a"
    se = r.get("se")
    se = "" if se is None or not np.isfinite(se) else f" ± {se:.{digits}f}"
    return f"{r['estimate']:+.{digits}f}%{se}{'*' if r.get('significant') else ''}"


def _log_done(run, results):
    red = results["reductions"]
    acc = " / ".join(f"{MODELS[m]['label']} {results['models'][m]['accuracy']:.3f}"
                     for m in MODEL_NAMES)
    run.log(f"done: IP {fmt_reduction(red['implausibility'])}, IP* "
            f"{fmt_reduction(red['mmd'])}, cost (mutability) {fmt_reduction(red['cost'])}; "
            f"accuracy {acc} ({fmt_time(results['timings']['this_call'])})")
