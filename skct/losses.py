"""The terms of the counterfactual training objective: pure torch, batched over rows.

With the energy ``E(x, y) = -logit_y(x)`` of a classifier:

- contrastive divergence ``div = E(x+, y+) - E(x', y+)`` compares a real sample ``x+`` of the
  target class with a counterfactual ``x'``. Minimising it lowers the energy of real data of
  class y+ and raises that of counterfactuals, so the model learns to make its counterfactuals
  look like real data of the target class (plausibility).
- the ridge term ``E(x+, y+)**2 + E(x', y+)**2`` keeps the energies bounded.
- the adversarial loss is the cross-entropy, with the factual's true label, of a nascent
  counterfactual (a search iterate within an L-infinity ball of radius epsilon around the
  factual): an adversarial example found for free by the search.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["energy", "contrastive_divergence", "energy_ridge", "adversarial_loss", "protect"]


def energy(logits, target):
    """``E(x, y) = -logit_y(x)``: logits [N, C], target [N] long -> [N]."""
    return -logits.gather(1, target[:, None]).squeeze(1)


def contrastive_divergence(logits_plus, logits_cf, target):
    """``E(x+, y+) - E(x', y+)`` per row -> [N] (logits [N, C], target [N])."""
    return energy(logits_plus, target) - energy(logits_cf, target)


def energy_ridge(logits_plus, logits_cf, target):
    """``E(x+, y+)**2 + E(x', y+)**2`` per row -> [N]."""
    return energy(logits_plus, target) ** 2 + energy(logits_cf, target) ** 2


def adversarial_loss(logits_adv, y_true):
    """Cross-entropy of adversarial examples with the factuals' true labels, per row -> [N]."""
    return F.cross_entropy(logits_adv, y_true, reduction="none")


def protect(x_plus, x_cf, mut):
    """The protection rule of counterfactual training, batched over rows.

    For each feature d: ``x_plus[d] := x_cf[d]`` when d is immutable, or d may only increase and
    ``x_cf[d] > x_plus[d]``, or d may only decrease and ``x_cf[d] < x_plus[d]``: moving the
    counterfactual toward ``x_plus`` along d would violate d's mutability, so the contrastive
    divergence must not reward d.

    Parameters
    ----------
    x_plus, x_cf : Tensor [N, D]
    mut : Tensor [D] int8 mutability codes

    Returns
    -------
    Tensor [N, D]
    """
    swap = (mut == 0) | ((mut == 1) & (x_cf > x_plus)) | ((mut == 2) & (x_cf < x_plus))
    return torch.where(swap, x_cf, x_plus)
