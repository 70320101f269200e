"""The small base class every counterfactual generator derives from."""

from __future__ import annotations

import numbers

import numpy as np
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from ..._utils import Interval, StrOptions
from ...losses import energy  # noqa: F401  (re-exported for generators)
from ...constraints import TorchConstraints
from .._projection import mask_step, project, reharden_groups, straight_through_harden

__all__ = ["BaseGenerator", "ONE_HOT_MODES"]

#: How a search treats one-hot groups between steps (see ``BaseGenerator``'s ``one_hot``).
ONE_HOT_MODES = ("accumulate", "reharden")


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
    one_hot : {"accumulate", "reharden"}, default="accumulate"
        How the search state of a one-hot group evolves between steps. ``"accumulate"``: the
        state stays soft and the steps add up behind the hard value the model sees
        (straight-through), so a level switches once the accumulated changes make it the
        largest. ``"reharden"``: after every step the state is replaced by its valid point
        (every mutable group at its argmax level, then the bounds), as
        CounterfactualExplanations.jl does, so soft changes never accumulate and a level
        switches only when a single step moves another level above the current one. Integer
        grids and ``max_changed`` act as with ``"accumulate"``. Without one-hot groups both
        are the same search. :class:`~skct.search.generators.REVISEGenerator` re-encodes the
        rehardened decoded point into its latent space.

    Notes
    -----
    Losses are per row and the engine sums them, so the step of a row does not depend on how
    many other rows are searched with it.
    """

    _parameter_constraints = {
        "step_size": [Interval(numbers.Real, 0, None, closed="neither")],
        "lambda_cost": [Interval(numbers.Real, 0, None, closed="left")],
        "one_hot": [StrOptions(set(ONE_HOT_MODES))],
    }

    #: True when the search runs in a latent space (``init_state``/``decode`` are not the
    #: identity).
    latent = False

    #: True when the generator must be calibrated on labelled data with the model under search
    #: (see :meth:`calibrate`) before searching.
    requires_calibration = False

    def __init__(self, *, step_size=0.25, lambda_cost=0.001, one_hot="accumulate"):
        self.step_size = step_size
        self.lambda_cost = lambda_cost
        self.one_hot = one_hot

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
        """One masked, projected gradient step on the state (detached).

        With ``one_hot="reharden"`` the stepped state is replaced by its valid point in the
        one-hot groups (``reharden_groups`` of ``skct.search._projection``).
        """
        step = mask_step(-self.step_size * grad, constraints)
        if self._rehardens():
            return reharden_groups(state.detach() + step, x, constraints)
        return project(state.detach() + step, x, constraints, hard=False)

    def _rehardens(self):
        """Whether ``one_hot`` asks for a rehardened state (a clear error for other values)."""
        mode = getattr(self, "one_hot", "accumulate")
        if mode == "accumulate":
            return False
        if mode == "reharden":
            return True
        raise ValueError(f"one_hot must be one of {list(ONE_HOT_MODES)}, got {mode!r}.")

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
