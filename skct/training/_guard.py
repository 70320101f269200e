"""Training reliability: skip non-finite updates, stop when they persist, watch the energies."""

from __future__ import annotations

import math
import warnings

from skorch.callbacks import Callback

__all__ = ["TrainingGuard", "explain_nonfinite"]

#: Consecutive non-finite losses after which training stops.
MAX_NONFINITE = 10

#: Inputs with a larger absolute value are named as the likely cause of a non-finite loss.
LARGE_INPUT = 1e4

#: The energies run away when their root mean square exceeds this value, has grown this many
#: times since the first epoch with CT terms and is still growing.
RUNAWAY_ENERGY = 25.0
RUNAWAY_GROWTH = 10.0


def explain_nonfinite(ce_finite, input_scale):
    """The likely cause of a non-finite training loss, with what to do about it.

    The inputs are checked first: at a large scale every logit (and so every energy) is large.

    Examples
    --------
    >>> explain_nonfinite(True, 1e20).split(":")[0]
    'The inputs reach |x| = 1e+20'
    >>> "lambda_reg" in explain_nonfinite(True, 1.0)
    True
    """
    if input_scale > LARGE_INPUT:
        return (f"The inputs reach |x| = {input_scale:.3g}: standardise them first (e.g. a "
                "StandardScaler in a Pipeline); the network's logits, and with them the "
                "energies, grow with the scale of the inputs.")
    if not ce_finite:
        return "The cross-entropy itself is non-finite: lower lr."
    return ("The counterfactual training terms are non-finite (the energies grew without "
            "bound): raise lambda_reg (it keeps the energies bounded), lower lr or lambda_div.")


class TrainingGuard(Callback):
    """Keeps a counterfactual training fit from silently going wrong.

    - A non-finite training loss: the batch's gradients are dropped before the optimiser step
      (``on_grad_computed``), so the update is skipped (torch optimisers leave parameters
      without a gradient alone), with a ``RuntimeWarning`` naming the likely cause; after
      ``MAX_NONFINITE`` consecutive non-finite batches training stops with a
      ``FloatingPointError``.
    - Runaway energies: once per fit, a ``RuntimeWarning`` naming ``lambda_reg`` when the root
      mean square energy of an epoch's ``x+`` and counterfactuals exceeds ``RUNAWAY_ENERGY``,
      is ``RUNAWAY_GROWTH`` times that of the first epoch with CT terms and still grows.

    Examples
    --------
    >>> from skct.training import CounterfactualNet
    >>> dict(CounterfactualNet(None).get_default_callbacks())["training_guard"]
    <TrainingGuard()>
    """

    def __repr__(self):
        return "<TrainingGuard()>"

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        state = net.fit_state_
        if state is None or state.loss_finite:
            if state is not None:
                state.nonfinite = 0
            return
        for _, param in named_parameters:
            param.grad = None
        state.nonfinite += 1
        if state.nonfinite >= MAX_NONFINITE:
            raise FloatingPointError(
                f"The training loss was non-finite in {MAX_NONFINITE} consecutive batches. "
                f"{state.loss_cause}")
        warnings.warn(f"Non-finite training loss: this update was skipped. {state.loss_cause}",
                      RuntimeWarning, stacklevel=2)

    def on_epoch_end(self, net, **kwargs):
        state = net.fit_state_
        if state is None or not state.generate or state.energy_warned:
            return
        try:
            ridge = net.history[-1, "batches", :, "train_reg"]  # mean E(x+)^2 + E(x')^2
        except KeyError:
            return
        if not ridge:
            return
        energy = math.sqrt(max(sum(ridge) / len(ridge), 0.0) / 2.0)
        first, last = state.first_energy, state.last_energy
        state.last_energy = energy
        if first is None or not math.isfinite(first):
            state.first_energy = energy
            return
        if energy > RUNAWAY_ENERGY and energy > RUNAWAY_GROWTH * first and energy > last:
            state.energy_warned = True
            warnings.warn(
                f"Counterfactual training: the energies grew from {first:.3g} to {energy:.3g} "
                f"(root mean square over epoch {state.epoch}'s x+ and counterfactuals) and are "
                f"still growing: with lambda_reg={net.lambda_reg} nothing keeps them bounded "
                "and accuracy can collapse. Raise lambda_reg (e.g. 0.1), or lower lambda_div "
                "or lr.", RuntimeWarning, stacklevel=2)
