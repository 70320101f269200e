"""Reproduce the counterfactual training paper: one resumable experiment per data set.

The protocol follows the paper's reference code (CounterfactualTraining.jl, experiments
``paper/experiments/evaluations/satml/{single,mutability}``, evaluated with
CounterfactualExplanations.jl). :func:`run_experiment` does, for one data set:

1. **data**: under ``protocol="reference"`` (the default; :data:`PROTOCOL_ITEMS` lists each
   item with skct's own alternative) the reference's data: synthetic sets drawn as TaijaData
   draws them (3000 training, ~600 validation and 900 test rows of one shuffled sample), the
   real tables split 80/20 in file order with 1000 validation rows held out of the training
   part and standardised / one-hot encoded on it (Adult keeps ``?`` as a level), MNIST a
   class-balanced sample of 11,000 training images (1000 for validation) and the official test
   set, pixels in [-1, 1]; the search domain is the train + validation rows' range at 2 std,
   a plain clamp. ``protocol="skct"`` keeps skct's own generators and splits (see
   :func:`load_experiment_data`). Everything later happens in this preprocessed "model space".
2. **train** three models with identical seeds, architecture, optimiser, epochs and batch
   size (:data:`MODELS`): the conventional baseline (``lambda_div = lambda_adv = lambda_reg =
   0``), the counterfactually trained model of the reference's *single* experiment
   (``ct_single``: the paper's settings, :data:`PAPER_SETTINGS`, no mutability constraints, no
   protection) and the one of its *mutability* experiment (``ct_mutability``: the paper's
   immutable features protected during training -- the first feature of the synthetic sets,
   the age variable of the tabular sets, the top and bottom 5 pixel rows of MNIST -- and the
   lambdas of :data:`MUTABILITY_SETTINGS`).
3. **evaluate** two experiments (:data:`EXPERIMENTS`): *single* compares the baseline with
   ``ct_single``, searches without constraints, ``tau = 0.95``; *mutability* compares the
   baseline with ``ct_mutability``, searches with the immutable features fixed, ``tau = 0.5``
   (:data:`REFERENCE_EVAL_THRESHOLDS`). Each uses the ECCo generator at each test-time energy
   penalty ``lambda_energy`` (default ``0.1, 0.5, 1, 5, 10``), ``T = 50`` steps, for factuals
   of every class toward every other class. Per run and factual -> target pair,
   ``n_factuals`` test rows that the model predicts as the factual class are drawn (runs are
   independent draws; within a run without replacement while enough rows exist). A search
   stops for a row once ``p(target | x') >= tau`` or after T steps. Per counterfactual:
   validity (the model predicts the target class: CounterfactualExplanations.jl's validity, on
   which the paper filters), cost (L1 distance to the factual) and implausibility (IP: mean L1
   distance to 1000 rows of the target class drawn with replacement from the *test* set); per
   run and pair: IP* (unbiased MMD^2 between the valid counterfactuals and the test rows of
   the target class, Gaussian kernel with length scale 5, clamped at 0).
4. **robustness**: clean accuracy, FGSM and PGD accuracy over ``epsilons`` and the
   integrated-gradients sensitivity to the protected features (:mod:`skct.metrics`), on the
   test set, for the three models.
5. **reductions**, as the reference's ``aggregate_ce_evaluation``
   (:func:`reference_reduction`): per (run, lambda_energy, model) the mean over valid
   counterfactuals, then the mean over lambda_energy per (run, model), the ratio CT / BL per
   run, reduction ``(1 - mean ratio) * 100``, uncertainty ``100 * std(ratio)`` across runs,
   significance when the 99% percentile interval of the per-run differences BL - CT excludes
   0. The earlier counterfactual-level bootstrap (:func:`bootstrap_reduction`) is kept as a
   second opinion.
6. **plots**: robustness curves, and counterfactuals on the decision surface (2D sets) or a
   grid of image counterfactuals (MNIST).

Every stage writes its artefacts under ``out_dir/<dataset>/`` with a record of its
fingerprint and the digests of its files, and is skipped when the record matches the settings
and the files are unchanged (a changed setting recomputes that stage and the ones after it;
``force=True`` recomputes everything). The evaluation also checkpoints each (experiment,
model, generator) task as plain JSON, and the fitted models are :func:`skct.io.save` files
(``models/<name>.skct``), read back with :func:`skct.io.load`: nothing in the folder is
unpickled. No symbolic link inside the results folder is followed when writing or deleting.
The collected numbers are written to ``results.json`` and ``metrics.csv``, and
:func:`write_results_markdown` turns the results of several data sets into a results page
(by default ``results.md`` inside the results folder).

**Training seeds and the two tables.** ``benchmarks/reproduce.py`` runs every data set with
five training seeds (one data seed), under the reference protocol with the paper's lambdas
and with settings chosen on validation rows, and an ablation of the protocol items;
:func:`seed_table` summarises each table over seeds (a cell is significant only when the t
interval over seeds excludes 0) and :func:`write_reproduction` writes the page
(``docs/results.md``) and ``docs/results.json``
(``{"tables": {"reference": T, "recommended": T}, ...}``).

Why the evaluation is not :func:`skct.evaluation.evaluate`: the paper reports implausibility
and cost of *valid* counterfactuals only, draws the factuals per run among the rows each model
predicts as the factual class and aggregates per run; ``evaluate`` returns batch means over all
counterfactuals of a (model, generator) cell.

Modules: ``_names`` (the data set names, importing nothing), ``_settings`` (the paper's
settings as data), ``_data`` (loading and preprocessing), ``_training``, ``_evaluation``
(counterfactuals and their metrics), ``_robustness``, ``_statistics`` (reductions), ``_plots``,
``_stages`` (the resumable-stage helper), ``_files`` (the results folder), ``_checkpoints``
(evaluation checkpoints), ``_runner`` (:func:`run_experiment`), ``_report`` (one results
folder's page, prose in ``templates/results.md``), ``_seeds`` (tables over training seeds),
``_reproduction`` (the reproduction page and JSON, prose in ``templates/reproduction.md``) and
``_templates`` (the pages' prose). Only ``_names`` is imported with the package; every
other public name is imported on first use (PEP 562), so the command line's help and
``skct datasets`` do not load torch, scikit-learn or the runner.
"""

from __future__ import annotations

import importlib

from ._names import (  # noqa: F401
    DATASET_NAMES,
    DATASET_TITLES,
    PAPER_LABELS,
    SYNTHETIC_DATASETS,
)

#: Public name -> the private module that defines it (imported on first use).
_LAZY = {
    **dict.fromkeys(("EVALUATION_SETTINGS", "EXPERIMENTS", "MODELS", "MUTABILITY_SETTINGS",
                     "PAPER_ACCURACY", "PAPER_AVERAGES", "PAPER_RESULTS", "PAPER_SETTINGS",
                     "REFERENCE_BUDGETS", "REFERENCE_EVAL_THRESHOLDS", "REFERENCE_STEP_SIZE",
                     "SHARED_SETTINGS", "paper_settings", "PROTOCOL_ITEMS", "PROTOCOLS",
                     "resolve_protocol"), "_settings"),
    "load_experiment_data": "_data",
    **dict.fromkeys(("seed_interval", "seed_table", "table_averages", "table_checks"),
                    "_seeds"),
    "bootstrap_reduction": "_statistics",
    "reference_reduction": "_statistics",
    "run_experiment": "_runner",
    "load_results": "_report",
    "load_seed_runs": "_reproduction",
    "write_reproduction": "_reproduction",
    "write_results_markdown": "_report",
}

__all__ = sorted(["DATASET_NAMES", "DATASET_TITLES", "PAPER_LABELS", "SYNTHETIC_DATASETS",
                  *_LAZY])


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
