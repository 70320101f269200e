"""Robustness and sensitivity of a trained model on the test rows (FGSM, PGD, IG)."""

from __future__ import annotations

import numpy as np

from .._utils import derive_seed
from ..metrics import adversarial_accuracy, protected_feature_sensitivity
from ._data import attack_bounds

__all__ = []

#: The normalised integrated-gradients sensitivity as the counterfactual training paper
#: computes it (``paper/experiments/run_integrated_gradients.jl`` with ``integrated_gradients``
#: of ``paper/experiments/CTExperiments/src/evaluate_counterfactuals.jl``, repository
#: github.com/JuliaTrustworthyAI/CounterfactualTraining.jl, and its appendix): 100 bootstrap
#: rounds of 2500 test rows drawn with replacement, baseline U(-1, 1), attributions of the
#: true label's logit averaged over each round's rows, normalised across features
#: (``|g| / range(g)`` for 2-D data, min-max otherwise), averaged over the protected
#: features; median and 2.5% / 97.5% quantiles over the rounds. The rows are drawn from a
#: seeded sample of at most ``IG_POOL_SIZE`` test rows (all of them in the paper's data
#: sets), whose attributions are computed once.
IG_ROUNDS, IG_ROUND_SIZE, IG_POOL_SIZE, IG_BASELINE = 100, 2500, 10_000, (-1.0, 1.0)


def robustness(clf, data, cfg):
    """Clean accuracy, FGSM and PGD accuracy over ``cfg["epsilons"]`` (attacks kept inside the
    data's domain, :func:`~skct.experiments._data.attack_bounds`) and the integrated-gradients
    sensitivity to the protected features, on seeded samples of the test rows.

    ``ig_sensitivity`` is the mean absolute attribution of the protected features (it grows
    with the scale of the logits); ``ig_sensitivity_normalized`` is the paper's scale-free
    figure (median over bootstrap rounds, with its 95% interval)."""
    module = clf.logits_module_
    n = len(data.X_test)
    rng = np.random.default_rng(derive_seed(cfg["random_state"], "attack"))
    idx = np.sort(rng.choice(n, size=min(cfg["n_attack"], n), replace=False))
    X, y = data.X_test[idx], data.y_test[idx]
    lower, upper = attack_bounds(data.bounds, data.X_test.shape[1])
    eps = list(cfg["epsilons"])
    fgsm = adversarial_accuracy(module, X, y, attack="fgsm", epsilons=eps, lower=lower,
                                upper=upper)
    pgd = adversarial_accuracy(module, X, y, attack="pgd", epsilons=eps, n_steps=cfg["pgd_steps"],
                               step_size=cfg["pgd_step_size"], lower=lower, upper=upper,
                               random_state=derive_seed(cfg["random_state"], "pgd"))
    n_s = min(cfg["n_sensitivity"], n)
    sidx = np.sort(rng.choice(n, size=n_s, replace=False))
    sens = protected_feature_sensitivity(module, data.X_test[sidx], features=data.immutable,
                                         random_state=derive_seed(cfg["random_state"], "ig"))
    normalized = _normalized_sensitivity(module, data, cfg)
    accuracy = float((clf.predict_proba(data.X_test).argmax(axis=1) == data.y_test).mean())
    return {
        "accuracy": accuracy,
        "n_attack": int(len(idx)),
        "fgsm": {"epsilon": fgsm["epsilon"].tolist(), "accuracy": fgsm["accuracy"].tolist()},
        "pgd": {"epsilon": pgd["epsilon"].tolist(), "accuracy": pgd["accuracy"].tolist()},
        "ig_sensitivity": float(sens),
        "n_sensitivity": int(n_s),
        **normalized,
    }


def _normalized_sensitivity(module, data, cfg):
    """The paper's normalised IG sensitivity (see :data:`IG_ROUNDS`): ``IG_ROUNDS`` rounds of
    ``IG_ROUND_SIZE`` rows drawn with replacement from the pool (also where it is smaller)."""
    n = len(data.X_test)
    rows = np.arange(n)
    if n > IG_POOL_SIZE:
        rng = np.random.default_rng(derive_seed(cfg["random_state"], "ig_rows"))
        rows = np.sort(rng.choice(n, size=IG_POOL_SIZE, replace=False))
    rounds = protected_feature_sensitivity(
        module, data.X_test[rows], features=data.immutable, target=data.y_test[rows],
        normalize="paper", baseline=IG_BASELINE, n_rounds=IG_ROUNDS, round_size=IG_ROUND_SIZE,
        random_state=derive_seed(cfg["random_state"], "ig_rounds"))  # [IG_ROUNDS]
    low, median, high = np.quantile(rounds, [0.025, 0.5, 0.975])
    return {
        "ig_sensitivity_normalized": float(median),
        "ig_sensitivity_normalized_interval": [float(low), float(high)],
        "ig_normalized_rounds": IG_ROUNDS,
        "ig_normalized_round_size": IG_ROUND_SIZE,
        "ig_normalized_pool": int(len(rows)),
    }
