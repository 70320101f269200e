"""ECCo: energy-constrained conformal counterfactuals (the energy-only variant)."""

from __future__ import annotations

import numbers


from ..._utils import Interval
from ._base import BaseGenerator, energy

__all__ = ["ECCoGenerator", "energy_decay"]


def energy_decay(t, max_iter):
    """Weight phi_t of the energy penalty at (0-based) step ``t`` of ``max_iter``.

    ``phi_t = a * (b + t + 1) ** -0.9`` with ``b = round(max_iter / 25)`` and ``a = b / 10``, as
    in the reference implementation. There ``b`` (and so the whole penalty) is 0 for
    ``max_iter < 13``; skct uses ``b = max(1, round(max_iter / 25))`` so that ECCo never silently
    turns into the Generic generator for short searches.
    """
    b = max(1, round(max_iter / 25))
    a = b / 10
    return a * (b + t + 1) ** -0.9


class ECCoGenerator(BaseGenerator):
    """ECCo generator: Generic objective plus a decaying energy penalty.

    Minimises ``CE(logits(x'), y+) + lambda_cost * sum_d w_d |x'_d - x_d|
    + lambda_energy * phi_t * (E(x', y+) + reg_strength * E(x', y+)**2)`` with the energy
    ``E(x, y) = -logit_y(x)`` and ``phi_t`` from :func:`energy_decay`. Low energy means the model
    finds x' typical of the target class, which pulls counterfactuals toward dense regions of
    that class (Altmeyer et al., 2024).

    Parameters
    ----------
    step_size : float, default=0.25
    lambda_cost : float, default=0.001
    lambda_energy : float, default=5.0
        Weight of the energy penalty (5.0 is the training-time default of the paper).
    reg_strength : float, default=1e-3
        Weight of the squared energy, which keeps energies bounded.
    one_hot : {"accumulate", "reharden"}, default="accumulate"
        One-hot groups between steps: soft changes accumulate, or the state is rehardened
        after every step (see :class:`~skct.search.generators.BaseGenerator`).

    Examples
    --------
    >>> from skct.search.generators import ECCoGenerator
    >>> ECCoGenerator(lambda_energy=1.0).lambda_energy
    1.0
    """

    _parameter_constraints = {
        **BaseGenerator._parameter_constraints,
        "lambda_energy": [Interval(numbers.Real, 0, None, closed="left")],
        "reg_strength": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, *, step_size=0.25, lambda_cost=0.001, lambda_energy=5.0,
                 reg_strength=1e-3, one_hot="accumulate"):
        super().__init__(step_size=step_size, lambda_cost=lambda_cost, one_hot=one_hot)
        self.lambda_energy = lambda_energy
        self.reg_strength = reg_strength

    def penalty(self, x_cf, x, target, logits, t, max_iter):
        e = energy(logits, target)  # [N]
        return self.lambda_energy * energy_decay(t, max_iter) * (e + self.reg_strength * e**2)
