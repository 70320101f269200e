"""The paper's settings as data: data sets, models, experiments, evaluation budgets, results.

Everything the runner and the report read about the paper lives here as plain dictionaries
and tuples; :func:`paper_settings` and :func:`evaluation_config` turn them into the
settings of one run. The data set names themselves are defined in :mod:`._names` (which
imports nothing, for the command line) and re-exported here.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

from ._names import DATASET_NAMES, PAPER_LABELS, SYNTHETIC_DATASETS

__all__ = [
    "DATASET_NAMES",
    "EVALUATION_SETTINGS",
    "EXPERIMENTS",
    "MODELS",
    "MUTABILITY_SETTINGS",
    "PAPER_ACCURACY",
    "PAPER_AVERAGES",
    "PAPER_LABELS",
    "PAPER_RESULTS",
    "PAPER_SETTINGS",
    "PROTOCOL_ITEMS",
    "PROTOCOLS",
    "REFERENCE_BUDGETS",
    "REFERENCE_EVAL_THRESHOLDS",
    "REFERENCE_STEP_SIZE",
    "SHARED_SETTINGS",
    "SYNTHETIC_DATASETS",
    "paper_settings",
    "resolve_protocol",
]

#: Training settings shared by all data sets (paper): MLP with one hidden layer of 32 units,
#: Adam with learning rate 1e-3, 100 epochs, lambda_div 0.5, lambda_adv 0.25, epsilon 0.3,
#: T = 30 search steps, ECCo (step 0.25, lambda_cost 0.001, lambda_energy 5).
SHARED_SETTINGS = {
    "hidden_layer_sizes": (32,),
    "lambda_div": 0.5,
    "lambda_adv": 0.25,
    "epsilon": 0.3,
    "max_iter_cf": 30,
    "generator": {"step_size": 0.25, "lambda_cost": 0.001, "lambda_energy": 5.0},
    "max_epochs": 100,
    "lr": 1e-3,
}

#: Per data set: batch size, decision threshold tau during training, counterfactuals per epoch
#: and lambda_reg (paper).
PAPER_SETTINGS = {
    "linearly_separable": {"batch_size": 30, "decision_threshold": 0.5,
                           "n_counterfactuals": 1000, "lambda_reg": 0.01},
    "circles": {"batch_size": 30, "decision_threshold": 0.5, "n_counterfactuals": 1000,
                "lambda_reg": 0.5},
    "moons": {"batch_size": 30, "decision_threshold": 0.9, "n_counterfactuals": 1000,
              "lambda_reg": 0.25},
    "overlapping": {"batch_size": 30, "decision_threshold": 0.5, "n_counterfactuals": 1000,
                    "lambda_reg": 0.25},
    "adult": {"batch_size": 1000, "decision_threshold": 0.75, "n_counterfactuals": 5000,
              "lambda_reg": 0.25},
    "california_housing": {"batch_size": 1000, "decision_threshold": 0.5,
                           "n_counterfactuals": 5000, "lambda_reg": 0.25},
    "credit_default": {"batch_size": 1000, "decision_threshold": 0.5,
                       "n_counterfactuals": 5000, "lambda_reg": 0.25},
    "gmsc": {"batch_size": 1000, "decision_threshold": 0.5, "n_counterfactuals": 5000,
             "lambda_reg": 0.5},
    "mnist": {"batch_size": 1000, "decision_threshold": 0.5, "n_counterfactuals": 5000,
              "lambda_reg": 0.01},
}

#: Data settings: synthetic rows generated (80% train), MNIST training images used.
DATA_SETTINGS = {
    **{name: {"n_samples": 4500} for name in SYNTHETIC_DATASETS},
    "mnist": {"n_train": 10000},
}

#: The three models of an experiment. Each entry: ``description``, ``lambdas`` (where the
#: lambdas come from) and ``protect`` (whether the paper's immutable features are immutable
#: in the training searches and protected in the contrastive term). The baseline needs no
#: constraints: they only act on the counterfactuals generated during CT.
MODELS = {
    "baseline": {"label": "BL", "protect": False,
                 "description": "conventional training (lambda_div = lambda_adv = lambda_reg "
                                "= 0); the same model for both experiments"},
    "ct_single": {"label": "CT", "protect": False,
                  "description": "counterfactual training with the paper's per-data-set "
                                 "settings, no mutability constraints, no protection (the "
                                 "reference's `single` experiment)"},
    "ct_mutability": {"label": "CT-mut", "protect": True,
                      "description": "counterfactual training with the paper's immutable "
                                     "features immutable and protected (the reference's "
                                     "`mutability` experiment)"},
}

#: Lambdas of the ``ct_mutability`` model that differ from :data:`PAPER_SETTINGS` (the
#: reference's ``satml/mutability`` configurations: no adversarial and no energy
#: regularisation term on the synthetic sets; the real data sets keep the single setting's
#: lambdas, as the reference's configurations do).
MUTABILITY_SETTINGS = {name: {"lambda_adv": 0.0, "lambda_reg": 0.0}
                       for name in SYNTHETIC_DATASETS}

#: The two experiments of the paper's main table. ``ct_model``: the CT model compared with the
#: baseline; ``constrained``: whether the test-time searches keep the immutable features fixed;
#: ``columns``: the metrics of the main table that come from this experiment.
EXPERIMENTS = {
    "single": {"ct_model": "ct_single", "constrained": False,
               "columns": ("implausibility", "mmd")},
    "mutability": {"ct_model": "ct_mutability", "constrained": True, "columns": ("cost",)},
}

#: Test-time decision threshold tau per experiment (the reference's evaluation configurations:
#: 0.95 for ``single``, 0.5 for ``mutability``, on every data set).
REFERENCE_EVAL_THRESHOLDS = {"single": 0.95, "mutability": 0.5}

#: Effective step of the reference code's searches: its ``get_opt`` ignores the configured
#: learning rate (0.25), so Flux's default ``Descent`` step 0.1 is used. skct's training
#: searches keep the paper's configured 0.25 (:data:`SHARED_SETTINGS`); the evaluation follows
#: the reference code (``EVALUATION_SETTINGS["step_size"]``).
REFERENCE_STEP_SIZE = 0.1

#: The protocol items: how the paper's own code (CounterfactualTraining.jl at the commit of the
#: paper's table, with CounterfactualExplanations.jl and TaijaData.jl) runs an experiment, each
#: next to what skct does by default. ``protocol="reference"`` takes every ``"reference"``
#: choice, ``protocol="skct"`` every ``"skct"`` choice; a dict switches items one by one.
PROTOCOL_ITEMS = {
    "domain": {
        "reference": "domain of the training and validation rows at 2 std per model column "
                     "([min(mu - 2 sigma, min x), max(mu + 2 sigma, max x)]), a plain clamp in "
                     "the training and test-time searches (CounterfactualTraining.jl "
                     "src/utils.jl `infer_domain_constraints`, applied by CTExperiments "
                     "`apply_inferred_domain!`)",
        "skct": "per feature the wider of mean +- 3 std and the observed range of the training "
                "rows, widened per row to contain the factual",
    },
    "train_step": {
        "reference": "training-time search step 0.1 (the reference's `get_opt` builds Flux's "
                     "`Descent()` without the configured 0.25, so its default 0.1 applies)",
        "skct": "training-time search step 0.25 (the paper's configured step)",
    },
    "one_hot": {
        "reference": "one-hot columns are continuous in the training search; at test time "
                     "every step re-hardens each group by argmax, so a category switches only "
                     "when one step flips it",
        "skct": "one-hot groups kept one-hot in both searches, a soft state accumulating "
                "behind a straight-through hard value",
    },
    "data": {
        "reference": "the reference's data: blob centres drawn in (-10, 10)^2 by its seeded "
                     "RNG, MLJ's moons (y shift 0.3) and circles (inner circle class 0), "
                     "3000 / 600 / 900 training / validation / test rows of one shuffled "
                     "sample; tabular sets split 80/20 in file order with 1000 validation rows "
                     "held out, Adult keeping `?` as a level; MNIST a class-balanced sample of "
                     "11,000 training images (1000 for validation)",
        "skct": "skct's generators (centres (+-2, +-2), scikit-learn's moons and circles, "
                "3600 / 900 rows), tabular sets split 80/20 in file order without validation "
                "rows, Adult without rows holding `?`, the first 10,000 MNIST images",
    },
    "training": {
        "reference": "Glorot-uniform weights with zero biases (Flux's `Dense`), batches in row "
                     "order every epoch (Flux's `DataLoader` default)",
        "skct": "torch's default initialisation, batches shuffled every epoch",
    },
}

#: The two named protocols.
PROTOCOLS = {name: {item: name for item in PROTOCOL_ITEMS} for name in ("reference", "skct")}

#: The reference's evaluation budget per lambda_energy: (runs, individuals per run).
REFERENCE_BUDGETS = {
    **{name: (100, 250) for name in SYNTHETIC_DATASETS},
    **{name: (100, 100)
       for name in ("adult", "california_housing", "credit_default", "gmsc")},
    "mnist": (100, 25),
}

#: Test-time settings. ``decision_threshold="paper"`` takes :data:`REFERENCE_EVAL_THRESHOLDS`
#: per experiment (a number applies to both). ``T = 50`` and ``lambda_cost = 0`` are the
#: reference's evaluation settings; ``n_reference`` target-class test rows (drawn with
#: replacement) are the implausibility pool; the MMD compares with all test rows of the target
#: class with a Gaussian kernel of length scale ``mmd_length_scale``. ``n_runs`` runs of
#: ``n_factuals`` factuals per factual -> target pair; ``n_bootstrap = 0`` skips the
#: counterfactual-level bootstrap.
EVALUATION_SETTINGS = {
    "decision_threshold": "paper",
    "max_iter": 50,
    "lambda_energies": (0.1, 0.5, 1.0, 5.0, 10.0),
    "lambda_cost": 0.0,
    "step_size": REFERENCE_STEP_SIZE,
    "n_runs": 30,
    "n_factuals": 100,
    "max_pairs": None,
    "n_reference": 1000,
    "mmd_length_scale": 5.0,
    "epsilons": tuple(round(0.01 * k, 2) for k in range(11)),
    "n_attack": 1000,
    "pgd_steps": 40,
    "pgd_step_size": 0.01,
    "n_sensitivity": 500,
    "n_bootstrap": 1000,
    "confidence": 0.99,
}

#: The paper's average reductions (%) over its nine data sets.
PAPER_AVERAGES = {"implausibility": 15.6, "mmd": 25.3, "cost": 18.5}

#: Where the paper's per-data-set numbers come from.
PAPER_SOURCE = ("Altmeyer et al., counterfactual training; table `paper/tables/main.tex` of "
                "github.com/JuliaTrustworthyAI/CounterfactualTraining.jl (commit 29c7ef74, "
                "2026-01-14, whose averages are 15.64 / 25.29 / 18.49)")

#: The paper's reductions (%) per data set: (mean, the reference's ``se`` = 100 x standard
#: deviation of the per-run CT / BL ratio, whether the 99% percentile interval of the per-run
#: differences excludes 0). IP and IP* (MMD) from the *single* experiment, cost from the
#: *mutability* experiment (see :data:`EXPERIMENTS`).
PAPER_RESULTS = {
    "linearly_separable": {"implausibility": (26.26, 0.67, True), "mmd": (51.28, 2.01, True),
                           "cost": (16.41, 0.57, True)},
    "circles": {"implausibility": (58.88, 0.37, True), "mmd": (93.84, 6.7, True),
                "cost": (42.99, 0.85, True)},
    "moons": {"implausibility": (19.59, 0.73, True), "mmd": (8.0, 9.44, False),
              "cost": (5.16, 1.0, True)},
    "overlapping": {"implausibility": (-1.93, 1.12, False), "mmd": (-27.7, 14.59, False),
                    "cost": (40.86, 2.3, True)},
    "adult": {"implausibility": (0.19, 1.05, False), "mmd": (34.35, 5.61, True),
              "cost": (4.03, 4.03, False)},
    "california_housing": {"implausibility": (10.65, 1.47, True), "mmd": (63.06, 4.25, True),
                           "cost": (44.23, 1.43, True)},
    "credit_default": {"implausibility": (10.14, 1.59, True), "mmd": (50.35, 12.26, True),
                       "cost": (-18.17, 4.4, True)},
    "gmsc": {"implausibility": (10.65, 2.28, True), "mmd": (24.75, 4.84, True),
             "cost": (66.01, 1.41, True)},
    "mnist": {"implausibility": (6.36, 1.7, True), "mmd": (-70.31, 217.6, False),
              "cost": (-35.11, 6.96, True)},
}

#: The paper's test accuracy and robust accuracy (FGSM, epsilon = 0.03) of CT and the
#: baseline, from the July 2025 preprint's table (same repository, commit 0c3fad57; the final
#: table no longer lists them): (acc CT, acc BL, robust acc CT, robust acc BL).
PAPER_ACCURACY = {
    "adult": (0.85, 0.85, 0.83, 0.41),
    "california_housing": (0.79, 0.85, 0.76, 0.75),
    "circles": (1.0, 1.0, 0.99, 1.0),
    "credit_default": (0.71, 0.71, 0.70, 0.52),
    "gmsc": (0.61, 0.75, 0.58, 0.42),
    "linearly_separable": (1.0, 1.0, 1.0, 1.0),
    "mnist": (0.90, 0.92, 0.84, 0.78),
    "moons": (1.0, 1.0, 1.0, 1.0),
    "overlapping": (0.92, 0.91, 0.91, 0.91),
}

#: Classifier parameters that only matter for counterfactual training (overrides of these
#: apply to both CT models only; every other override applies to all three models).
CT_ONLY = {"lambda_div", "lambda_adv", "lambda_reg", "epsilon", "generator",
           "decision_threshold", "max_iter_cf", "n_counterfactuals", "burn_in",
           "protect_immutable"}

#: The models in training order, and the metrics of the reductions.
MODEL_NAMES = tuple(MODELS)
METRICS = ("implausibility", "mmd", "cost")

#: results.json keys of the reductions: the main table's, then the other combinations.
REDUCTION_KEYS = {
    "implausibility": ("single", "implausibility"),
    "mmd": ("single", "mmd"),
    "cost": ("mutability", "cost"),
    "implausibility_mutability": ("mutability", "implausibility"),
    "mmd_mutability": ("mutability", "mmd"),
    "cost_single": ("single", "cost"),
}


def paper_settings(dataset, experiment="single"):
    """Full training settings of a CT model for ``dataset`` (shared plus per-data-set).

    Parameters
    ----------
    dataset : str
        One of :data:`DATASET_NAMES`.
    experiment : {"single", "mutability"}, default="single"
        ``"mutability"`` applies :data:`MUTABILITY_SETTINGS` and protects the immutable
        features (``protect_immutable=True``); ``"single"`` trains without protection.

    Returns
    -------
    dict
        Keyword arguments of :class:`~skct.CounterfactualTrainedClassifier` (``generator`` as a
        dict of :class:`~skct.search.generators.ECCoGenerator` parameters).

    Examples
    --------
    >>> from skct.experiments import paper_settings
    >>> s = paper_settings("moons")
    >>> s["decision_threshold"], s["batch_size"], s["lambda_reg"], s["max_epochs"]
    (0.9, 30, 0.25, 100)
    >>> m = paper_settings("moons", "mutability")
    >>> m["lambda_adv"], m["lambda_reg"], m["protect_immutable"]
    (0.0, 0.0, True)
    """
    check_dataset(dataset)
    if experiment not in EXPERIMENTS:
        raise ValueError(f"Unknown experiment {experiment!r}; choose from {list(EXPERIMENTS)}.")
    out = copy.deepcopy(SHARED_SETTINGS)
    out.update(PAPER_SETTINGS[dataset])
    if experiment == "mutability":
        out.update(MUTABILITY_SETTINGS.get(dataset, {}))
        out["protect_immutable"] = True
    else:
        out["protect_immutable"] = False
    return out


def check_dataset(dataset):
    """Raise a ``ValueError`` naming the known data sets unless ``dataset`` is one of them."""
    if not isinstance(dataset, str) or dataset not in PAPER_SETTINGS:
        raise ValueError(f"Unknown data set {dataset!r}; choose from {list(DATASET_NAMES)}.")


def resolve_thresholds(value):
    """Test-time tau per experiment from ``"paper"``/None, a number or a dict."""
    if value is None or (isinstance(value, str) and value == "paper"):
        return dict(REFERENCE_EVAL_THRESHOLDS)
    if isinstance(value, dict):
        unknown = set(value) - set(EXPERIMENTS)
        if unknown:
            raise ValueError(f"decision_threshold: unknown experiment(s) {sorted(unknown)}; "
                             f"known: {list(EXPERIMENTS)}.")
        out = dict(REFERENCE_EVAL_THRESHOLDS)
        out.update(value)
    else:
        out = {e: value for e in EXPERIMENTS}
    for e, tau in out.items():
        if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0 < tau < 1:
            raise ValueError("decision_threshold must be a number in (0, 1), 'paper' or a dict "
                             f"{{experiment: number}}, got {tau!r} for {e!r}.")
        out[e] = float(tau)
    return out


def evaluation_config(dataset, n_runs, n_factuals, lambda_energies, max_pairs, random_state,
                      extra):
    """Checked test-time settings of one run: :data:`EVALUATION_SETTINGS` with the run's
    budget (``None`` keeps the default) and ``extra`` overrides; tau resolved per experiment."""
    cfg = {k: v for k, v in EVALUATION_SETTINGS.items()}
    for key, value in (("n_runs", n_runs), ("n_factuals", n_factuals),
                       ("lambda_energies", lambda_energies), ("max_pairs", max_pairs)):
        if value is not None:
            cfg[key] = value
    unknown = set(extra) - set(EVALUATION_SETTINGS)
    if unknown:
        raise ValueError(f"Unknown evaluation setting(s) {sorted(unknown)}; known: "
                         f"{sorted(EVALUATION_SETTINGS)}.")
    cfg.update(extra)
    cfg["decision_threshold"] = resolve_thresholds(cfg["decision_threshold"])
    cfg["lambda_energies"] = tuple(float(v) for v in cfg["lambda_energies"])
    cfg["epsilons"] = tuple(float(v) for v in cfg["epsilons"])
    for key in ("n_runs", "n_factuals", "n_reference", "n_attack", "n_sensitivity",
                "n_bootstrap", "max_iter", "pgd_steps"):
        v = cfg[key]
        low = 0 if key == "n_bootstrap" else 1
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {v!r}.")
        cfg[key] = int(v)
    for key in ("step_size", "mmd_length_scale"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
            raise ValueError(f"{key} must be a number > 0, got {v!r}.")
        cfg[key] = float(v)
    if not cfg["lambda_energies"]:
        raise ValueError("lambda_energies is empty.")
    cfg["random_state"] = int(random_state)
    return cfg


def resolve_protocol(protocol):
    """Each protocol item's choice, ``{item: "reference" | "skct"}``.

    Parameters
    ----------
    protocol : {"reference", "skct"} or dict
        A named protocol, or ``{item: choice}`` overriding the reference protocol item by item
        (the items are the keys of :data:`PROTOCOL_ITEMS`).

    Returns
    -------
    dict

    Examples
    --------
    >>> from skct.experiments import resolve_protocol
    >>> resolve_protocol("reference")["one_hot"]
    'reference'
    >>> p = resolve_protocol({"train_step": "skct"})
    >>> p["train_step"], p["domain"]
    ('skct', 'reference')
    """
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)} or a dict "
                             f"{{item: choice}}, got {protocol!r}.")
        return dict(PROTOCOLS[protocol])
    if not isinstance(protocol, dict):
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)} or a dict "
                         f"{{item: choice}}, got {protocol!r}.")
    unknown = set(protocol) - set(PROTOCOL_ITEMS)
    if unknown:
        raise ValueError(f"protocol: unknown item(s) {sorted(unknown)}; known: "
                         f"{list(PROTOCOL_ITEMS)}.")
    out = dict(PROTOCOLS["reference"])
    for item, choice in protocol.items():
        if choice not in ("reference", "skct"):
            raise ValueError(f"protocol[{item!r}] must be 'reference' or 'skct', got "
                             f"{choice!r}.")
        out[item] = choice
    return out
