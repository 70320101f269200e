"""The small base class every counterfactual generator derives from."""

from __future__ import annotations

import numbers

import numpy as np
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from ..._utils import Interval
from ...losses import energy  # noqa: F401  (re-exported for generators)
from ...constraints import TorchConstraints
from .._projection import mask_step, project, straight_through_harden

__all__ = ["BaseGenerator"]


class BaseGenerator(BaseEstimator):
    """Base class of gradient-based counterfactual generators.

    A generator defines a per-row objective and, optionally, a search space other than the
    input space. The search engine (:func:`skct.search.search`) runs plain gradient descent
    ``state <- state - step_size * grad`` on all active rows at once and calls the hooks below;
    subclasses usually override only :meth:`penalty`.

    The default objective is the cross-entropy of the logits toward the target class plus
    ``lambda_cost * sum_d w_d |x'_d - x_d|`` (Wachter et al. style, with the constraints'
    per-column cost weights ``w``, 1 unless set); :meth:`penalty` adds terms to it.

    Parameters
    ----------
    step_size : float
        Learning rate of the gradient step on the search state.
    lambda_cost : float
        Weight of the L1 distance between counterfactual and factual.

    Notes
    -----
    Losses are per row and the engine sums them, so the step of a row does not depend on how
    many other rows are searched with it.
    """

    _parameter_constraints = {
        "step_size": [Interval(numbers.Real, 0, None, closed="neither")],
        "lambda_cost": [Interval(numbers.Real, 0, None, closed="left")],
    }

    #: True when the search runs in a latent space (``init_state``/``decode`` are not the
    #: identity).
    latent = False

    #: True when the generator must be calibrated on labelled data with the model under search
    #: (see :meth:`calibrate`) before searching.
    requires_calibration = False

    def __init__(self, *, step_size=0.25, lambda_cost=0.001):
        self.step_size = step_size
        self.lambda_cost = lambda_cost

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn what the generator needs from reference data (model input space).

        The default generator needs nothing but the number of features (validated like any
        scikit-learn estimator's input); latent-space generators train their autoencoder.
        """
        self._validate_params()
        validate_data(self, X, dtype=[np.float32, np.float64])
        return self

    def calibrate(self, model, X, y):
        """Adapt to the model under search on labelled rows (no-op unless
        ``requires_calibration``). X [N, D] tensor, y [N] class indices."""
        return self

    def __sklearn_is_fitted__(self):
        return not self.latent or hasattr(self, "n_features_in_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # an input-space generator searches without being fitted (``fit`` only validates and
        # records the number of features); a latent-space one needs its autoencoder first
        tags.requires_fit = self.latent
        return tags

    # -- search-space hooks ----------------------------------------------------------------
    def init_state(self, x):
        """Initial search state for factuals x [N, D]."""
        return x.detach().clone()

    def to_input(self, state, x, constraints: TorchConstraints):
        """Differentiable counterfactual in input space from the state [N, S] -> [N, D].

        The forward value is always a valid point: one-hot groups are hard, mutability and bounds
        hold (relative to the factual x).
        """
        return straight_through_harden(state, x, constraints)

    def update(self, state, grad, x, constraints: TorchConstraints):
        """One masked, projected gradient step on the state (detached)."""
        step = mask_step(-self.step_size * grad, constraints)
        return project(state.detach() + step, x, constraints, hard=False)

    # -- objective -------------------------------------------------------------------------
    def loss(self, x_cf, x, target, logits, t, max_iter, cost_weight=None):
        """Per-row objective [N] at step t (0-based) of at most ``max_iter`` steps.

        ``cost_weight`` [D] weighs each column's absolute change in the cost term (None: all 1;
        the engine passes it only when the constraints carry weights other than 1).
        """
        # x_cf, x: [N, D]; target: [N] long; logits: [N, C]
        yloss = F.cross_entropy(logits, target, reduction="none")  # [N]
        change = (x_cf - x).abs()  # [N, D]
        if cost_weight is not None:
            change = change * cost_weight
        cost = change.sum(dim=1)  # [N]
        out = yloss + self.lambda_cost * cost
        extra = self.penalty(x_cf, x, target, logits, t, max_iter)
        return out if extra is None else out + extra

    def penalty(self, x_cf, x, target, logits, t, max_iter):
        """Extra per-row terms [N] added to the objective (None for none)."""
        return None
