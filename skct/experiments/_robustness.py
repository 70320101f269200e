"""Robustness and sensitivity of a trained model on the test rows (FGSM, PGD, IG)."""

from __future__ import annotations

import numpy as np

from .._utils import derive_seed
from ..metrics import adversarial_accuracy, protected_feature_sensitivity
from ._data import attack_bounds

__all__ = []


def robustness(clf, data, cfg):
    """Clean accuracy, FGSM and PGD accuracy over ``cfg["epsilons"]`` (attacks kept inside the
    data's domain, :func:`~skct.experiments._data.attack_bounds`) and the integrated-gradients
    sensitivity to the protected features, on seeded samples of the test rows."""
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
    accuracy = float((clf.predict_proba(data.X_test).argmax(axis=1) == data.y_test).mean())
    return {
        "accuracy": accuracy,
        "n_attack": int(len(idx)),
        "fgsm": {"epsilon": fgsm["epsilon"].tolist(), "accuracy": fgsm["accuracy"].tolist()},
        "pgd": {"epsilon": pgd["epsilon"].tolist(), "accuracy": pgd["accuracy"].tolist()},
        "ig_sensitivity": float(sens),
        "n_sensitivity": int(n_s),
    }
