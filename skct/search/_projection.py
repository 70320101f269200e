"""The projection kernel of the search: mutability masks, domain clipping, one-hot hardening.

Pure tensor maths batched over rows, applied after every search step (and by generators that
define their own search space).
"""

from __future__ import annotations

import torch

from ..constraints import TorchConstraints

__all__ = ["mask_step", "project", "straight_through_harden", "harden_groups"]


def _apply_mutability(x_new, x_ref, mut):
    """Project ``x_new`` [N, D] onto the changes from ``x_ref`` [N, D] that ``mut`` [D] allows.

    "none" keeps ``x_ref``, "increase" never goes below it, "decrease" never above it.
    """
    out = torch.where(mut == 0, x_ref, x_new)
    out = torch.where(mut == 1, torch.maximum(out, x_ref), out)
    out = torch.where(mut == 2, torch.minimum(out, x_ref), out)
    return out


def mask_step(step, c: TorchConstraints):
    """Zero the components of a step [N, D] that would violate mutability (per step).

    "none" allows no change, "increase" only positive and "decrease" only negative components:
    one clamp against the limits [D] derived from the mutability codes.
    """
    if c.all_mutable:
        return step
    return torch.clamp(step, c.step_lower, c.step_upper)


def _clip_to_bounds(x, x_ref, lower, upper):
    """Clip x [N, D] to [lower, upper] [D], widened per row to contain the factual x_ref."""
    lo = torch.minimum(lower, x_ref)
    hi = torch.maximum(upper, x_ref)
    return torch.maximum(torch.minimum(x, hi), lo)


def harden_groups(x, c: TorchConstraints, x_ref=None):
    """Set each mutable one-hot group of x [N, D] to a one-hot vector at its argmax level.

    Immutable groups are copied from ``x_ref`` when given (so they never change).
    """
    if not c.has_groups:
        return x
    vals = x[:, c.group_index]  # [N, G, L]
    vals = vals.masked_fill(~c.group_mask, float("-inf"))
    winner = vals.argmax(dim=-1, keepdim=True)  # [N, G, 1]
    levels = torch.arange(c.group_index.shape[1], device=x.device)  # [L]
    hard = (levels == winner).to(x.dtype)  # [N, G, L]
    if x_ref is not None:
        keep = ~c.group_mutable[None, :, None]  # [1, G, 1]
        hard = torch.where(keep, x_ref[:, c.group_index], hard)
    flat_idx = c.group_index[c.group_mask]  # [K]
    out = x.clone()
    out[:, flat_idx] = hard[:, c.group_mask]
    return out


def project(x, x_ref, c: TorchConstraints, hard=True):
    """Full projection used after every search step.

    Mutability relative to the factual ``x_ref``, then domain bounds (widened per row to contain
    the factual), then one-hot groups hardened (when ``hard``).
    """
    if c.is_trivial:
        return x
    x = _apply_mutability(x, x_ref, c.mut)
    x = _clip_to_bounds(x, x_ref, c.lower, c.upper)
    if hard:
        x = harden_groups(x, c, x_ref)
    return x


def straight_through_harden(x, x_ref, c: TorchConstraints):
    """Hard one-hot groups in the forward pass, identity gradient in the backward pass."""
    if not c.has_groups:
        return x
    hard = harden_groups(x.detach(), c, x_ref)
    # hard + (x - x) is exactly ``hard`` in the forward pass; x + (hard - x) is not in floating
    # point (e.g. -0.3 + 1.3 == 0.99999994 in float32) when soft values leave [0, 1].
    return hard + (x - x.detach())
