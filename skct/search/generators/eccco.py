"""ECCCo: energy-constrained conformal counterfactuals (with the set-size penalty)."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from ..._utils import eval_mode, Interval
from .ecco import ECCoGenerator

__all__ = ["ECCCoGenerator", "conformal_quantile", "smooth_set_size"]


def conformal_quantile(proba_true, alpha):
    """Split-conformal threshold q_hat from calibration scores.

    Nonconformity score ``s = 1 - p_y(x)`` of the true class on n calibration rows; ``q_hat``
    is the k-th smallest score with ``k = ceil((n + 1) * (1 - alpha))`` (``inf`` when k > n).
    The prediction set of x is ``{y : p_y(x) >= 1 - q_hat}``.
    """
    scores = np.sort(1.0 - np.asarray(proba_true, dtype=np.float64))
    k = math.ceil((scores.shape[0] + 1) * (1 - alpha))
    if k > scores.shape[0]:
        return float("inf")
    return float(scores[k - 1])


def smooth_set_size(proba, q_hat, temperature):
    """Smooth size of the conformal prediction set, per row: proba [N, C] -> [N].

    ``sum_y sigmoid((p_y(x) - (1 - q_hat)) / temperature)`` (Stutz et al., 2022).
    """
    return torch.sigmoid((proba - (1.0 - q_hat)) / temperature).sum(dim=1)


class ECCCoGenerator(ECCoGenerator):
    """ECCCo generator: ECCo plus a smooth conformal set-size penalty (Altmeyer et al., 2024).

    Minimises the ECCo objective plus ``lambda_setsize * max(0, Omega(x') - kappa)``, where
    ``Omega`` is the smooth size of the split-conformal prediction set of x' (see
    :func:`smooth_set_size`). Counterfactuals whose prediction set is a single class are ones
    the model is certain about, in the conformal sense. The threshold ``q_hat`` is calibrated
    on labelled data by :meth:`calibrate` (the explainer does this on ``fit``'s data; the
    classifier re-calibrates on the training data before each epoch's search).

    Parameters
    ----------
    step_size : float, default=0.25
    lambda_cost : float, default=0.001
    lambda_energy : float, default=5.0
    reg_strength : float, default=1e-3
    lambda_setsize : float, default=1.0
        Weight of the set-size penalty.
    alpha : float in (0, 1), default=0.05
        Conformal miscoverage level.
    temperature : float, default=0.1
        Temperature of the smooth set membership.
    kappa : float, default=1.0
        Set sizes up to ``kappa`` are not penalised.
    one_hot : {"accumulate", "reharden"}, default="accumulate"
        One-hot groups between steps: soft changes accumulate, or the state is rehardened
        after every step (see :class:`~skct.search.generators.BaseGenerator`).

    Attributes
    ----------
    quantile_ : float
        The calibrated ``q_hat``.

    Examples
    --------
    >>> import torch
    >>> from skct.search.generators import ECCCoGenerator
    >>> model = torch.nn.Linear(2, 2)
    >>> X = torch.randn(50, 2)
    >>> gen = ECCCoGenerator().calibrate(model, X, torch.randint(0, 2, (50,)))
    >>> 0.0 <= gen.quantile_ <= 1.0 or gen.quantile_ == float("inf")
    True
    """

    _parameter_constraints = {
        **ECCoGenerator._parameter_constraints,
        "lambda_setsize": [Interval(numbers.Real, 0, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="neither")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "kappa": [Interval(numbers.Real, 0, None, closed="left")],
    }

    requires_calibration = True

    def __init__(self, *, step_size=0.25, lambda_cost=0.001, lambda_energy=5.0,
                 reg_strength=1e-3, lambda_setsize=1.0, alpha=0.05, temperature=0.1,
                 kappa=1.0, one_hot="accumulate"):
        super().__init__(step_size=step_size, lambda_cost=lambda_cost,
                         lambda_energy=lambda_energy, reg_strength=reg_strength,
                         one_hot=one_hot)
        self.lambda_setsize = lambda_setsize
        self.alpha = alpha
        self.temperature = temperature
        self.kappa = kappa

    def calibrate(self, model, X, y):
        """Calibrate ``q_hat`` with the model's probabilities of the true classes.

        Parameters
        ----------
        model : torch.nn.Module or callable
            Returns logits.
        X : Tensor [N, D]
            Labelled calibration rows (model input space).
        y : Tensor [N] long
            Class indices.

        Returns
        -------
        self
        """
        self._validate_params()
        X = torch.as_tensor(X)
        y = torch.as_tensor(y).long().reshape(-1)
        if X.shape[0] != y.shape[0] or X.shape[0] < 1:
            raise ValueError("ECCCoGenerator.calibrate needs as many labels as rows (>= 1).")
        with torch.no_grad(), eval_mode(model):
            proba = torch.softmax(model(X), dim=1)
        p_true = proba.gather(1, y[:, None]).squeeze(1).cpu().numpy()
        self.quantile_ = conformal_quantile(p_true, self.alpha)
        return self

    def penalty(self, x_cf, x, target, logits, t, max_iter):
        if not hasattr(self, "quantile_"):
            raise RuntimeError("ECCCoGenerator is not calibrated: call calibrate(model, X, y) "
                               "(the explainer and the classifier do this for you).")
        out = super().penalty(x_cf, x, target, logits, t, max_iter)  # [N] energy term
        q_hat = min(self.quantile_, 1.0)
        size = smooth_set_size(torch.softmax(logits, dim=1), q_hat, self.temperature)  # [N]
        return out + self.lambda_setsize * torch.relu(size - self.kappa)
