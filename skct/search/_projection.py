"""The projection kernel of the search: mutability masks, domain clipping, hardening.

Hardening turns a soft search state into a valid point: one-hot groups at one level, integer
columns on their grid in raw units. Pure tensor maths batched over rows, applied after every
search step (and by generators that define their own search space).
"""

from __future__ import annotations

import torch

from ..constraints import TorchConstraints
from . import _native_harden

__all__ = ["mask_step", "project", "straight_through_harden", "harden_groups", "round_to_grid",
           "limit_changes", "feature_changes", "harden", "reharden_groups", "domain_reference"]


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


def _clip_to_bounds(x, x_ref, lower, upper, widen=True):
    """Clip x [N, D] to [lower, upper] [D], widened per row to contain the factual x_ref.

    With ``widen=False`` the bounds are used as they are (a factual outside them does not
    widen them; ``x_ref`` is then unused).
    """
    if not widen:
        return torch.maximum(torch.minimum(x, upper), lower)
    lo = torch.minimum(lower, x_ref)
    hi = torch.maximum(upper, x_ref)
    return torch.maximum(torch.minimum(x, hi), lo)


def domain_reference(x_ref, c: TorchConstraints):
    """The factual x_ref [N, D] the hardening keeps or reverts to.

    With ``c.exact_bounds`` it is the factual clamped into the domain (so that what is kept or
    reverted never leaves it); otherwise the factual itself.
    """
    if not c.exact_bounds:
        return x_ref
    return _clip_to_bounds(x_ref, x_ref, c.lower, c.upper, widen=False)


def harden_groups(x, c: TorchConstraints, x_ref=None):
    """Set each mutable one-hot group of x [N, D] to a one-hot vector at its argmax level.

    A group with a dropped level (``c.group_has_dropped``, e.g. ``OneHotEncoder(drop="first")``)
    has one more, implicit level: the all-zero pattern, whose soft value is ``1 - sum`` of the
    group's columns (what the dropped column would hold), so a factual at the dropped level
    stays there and any other level can reach it. Ties go to the first explicit level.

    With ``x_ref`` given, immutable groups and groups equal to the factual's are copied from
    ``x_ref`` (so they never change, even when the factual is not a valid level, such as an
    unseen category encoded as all zeros).
    """
    if not c.has_groups:
        return x
    if _native_harden.applies(x, x_ref):  # the same, in one native pass over the rows
        return _native_harden.harden_groups(_native_harden.library(), x, c, x_ref)
    out = x.clone()
    if x_ref is None:  # every group hardened, immutable ones too
        gi, gm = c.group_index, c.group_mask
        out[:, gi[gm]] = _hard_levels(x, gi, gm, c.group_has_dropped)[:, gm]
        return out
    # immutable groups keep the factual's columns; only the mutable ones are hardened
    imm = c.immutable_group_columns  # [K_imm]
    if imm.numel():
        out[:, imm] = x_ref[:, imm]
    gi, gm = c.mutable_group_index, c.mutable_group_mask  # [Gm, Lm]
    if gi.shape[0]:
        hard = _hard_levels(x, gi, gm, c.mutable_group_has_dropped)  # [N, Gm, Lm]
        block, ref = x[:, gi], x_ref[:, gi]
        same = ((block == ref) | ~gm).all(dim=-1, keepdim=True)  # [N, Gm, 1]
        hard = torch.where(same, ref, hard)
        out[:, gi[gm]] = hard[:, gm]
    return out


def _hard_levels(x, gi, gm, has_dropped):
    """One-hot [N, G, L] at the argmax level of each group (index gi, mask gm [G, L]) of x."""
    block = x[:, gi]  # [N, G, L]
    vals = block.masked_fill(~gm, float("-inf"))
    if bool(has_dropped.any()):
        implicit = 1.0 - block.masked_fill(~gm, 0.0).sum(dim=-1)  # [N, G]
        implicit = implicit.masked_fill(~has_dropped, float("-inf"))
        vals = torch.cat([vals, implicit[..., None]], dim=-1)  # [N, G, L + 1]
    winner = vals.argmax(dim=-1, keepdim=True)  # [N, G, 1]; L means the dropped level
    levels = torch.arange(gi.shape[1], device=x.device)  # [L]
    return (levels == winner).to(x.dtype)  # [N, G, L]


def _raw_direction(c: TorchConstraints, cols):
    """Per grid column [K]: whether raw values may only go up, or only down (scale sign)."""
    mut, up = c.mut[cols], c.grid_scale[cols] > 0
    increase, decrease = mut == 1, mut == 2
    return (increase & up) | (decrease & ~up), (decrease & up) | (increase & ~up)


def round_to_grid(x, x_ref, c: TorchConstraints):
    """Round the integer-grid columns of x [N, D] in raw units, keeping every constraint.

    For a grid column, ``raw = x * grid_scale + grid_offset`` is rounded to the nearest
    integer inside the raw bounds rounded inward (``[ceil(lower), floor(upper)]``, widened per
    row to the factual ``x_ref``) and inside the direction its mutability allows, then mapped
    back. An entry equal to its factual, an immutable one, or one whose rounded value is the
    (on-grid) factual's keeps the factual bit for bit; an off-grid factual (e.g. 2.3) moves
    only to ``ceil``/``floor`` in the allowed direction, and stays where no grid value is
    allowed. Continuous columns are returned as they are. With ``c.exact_bounds`` the factual
    kept (and the widening) is the factual clamped into the domain.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.constraints import TorchConstraints
    >>> c = TorchConstraints.from_arrays([-np.inf, 0.0], [np.inf, 4.5], ["both", "increase"],
    ...                                  [], grid_scale=[0.0, 2.0], grid_offset=[0.0, 1.0])
    >>> x_ref = torch.tensor([[0.3, 1.0]])          # raw of column 1: 3
    >>> round_to_grid(torch.tensor([[0.31, 1.4]]), x_ref, c)   # raw 3.8 -> 4 -> model 1.5
    tensor([[0.3100, 1.5000]])
    >>> round_to_grid(torch.tensor([[0.31, 9.0]]), x_ref, c)   # raw 19 -> floor(upper raw) 10
    tensor([[0.3100, 4.5000]])
    """
    if not c.has_grid:
        return x
    x_ref = domain_reference(x_ref, c)
    cols = c.grid_columns  # [K]
    s, o = c.grid_scale[cols], c.grid_offset[cols]  # [K]
    xs, xr = x[:, cols], x_ref[:, cols]  # [N, K]
    raw, raw_ref = xs * s + o, xr * s + o  # [N, K]
    ref_near = torch.round(raw_ref)
    ref_on = (raw_ref - ref_near).abs() <= c.grid_tolerance(xr, s, o)  # factual on the grid
    a = torch.where(ref_on, ref_near, raw_ref)  # [N, K] the factual in raw units, snapped
    a_up, a_down = torch.ceil(a), torch.floor(a)
    lo = torch.minimum(c.grid_lower[cols], a_up)  # [N, K] widened to the factual
    hi = torch.maximum(c.grid_upper[cols], a_down)
    up_only, down_only = _raw_direction(c, cols)  # [K]
    lo = torch.where(up_only, torch.maximum(lo, a_up), lo)
    hi = torch.where(down_only, torch.minimum(hi, a_down), hi)
    r = torch.minimum(torch.maximum(torch.round(raw), lo), hi)  # [N, K]
    keep = (xs == xr) | (lo > hi) | (ref_on & (r == a)) | (c.mut[cols] == 0)
    back = (r - o) / s  # [N, K] model units
    # float error of the map back must not leave the (widened) model-space domain
    back = _clip_to_bounds(back, xr, c.lower[cols], c.upper[cols])
    out = x.clone()
    out[:, cols] = torch.where(keep, xr, back)
    return out


def feature_changes(x, x_ref, c: TorchConstraints):
    """Per row and feature (``feature_id``): weighted change and whether it changed.

    Returns ``(change, changed)``, both [N, F] with F = ``c.n_feature_ids``: the sum over the
    feature's columns of ``cost_weight * |x - x_ref|``, and whether any of its columns differs.
    """
    n, f = x.shape[0], c.n_feature_ids
    fid = c.feature_index.expand(n, -1)  # [N, D]
    w = (x - x_ref).abs() * c.cost_weight  # [N, D]
    change = torch.zeros(n, f, dtype=x.dtype, device=x.device).scatter_add_(1, fid, w)
    diff = (x != x_ref).to(x.dtype)  # [N, D]
    changed = torch.zeros(n, f, dtype=x.dtype, device=x.device).scatter_add_(1, fid, diff) > 0
    return change, changed  # [N, F], [N, F]


def limit_changes(x, x_ref, c: TorchConstraints):
    """Keep at most ``c.max_changed`` changed features per row of x [N, D], revert the others.

    The features (by ``feature_id``; a one-hot group is one feature) with the largest weighted
    change stay; every column of the others is set back to the factual ``x_ref`` exactly (with
    ``c.exact_bounds``: to the factual clamped into the domain, against which the changes are
    then counted). Ties keep the feature that comes first.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.constraints import TorchConstraints
    >>> c = TorchConstraints.from_arrays([-np.inf] * 3, [np.inf] * 3, ["both"] * 3, [],
    ...                                  max_changed=1)
    >>> limit_changes(torch.tensor([[0.5, -2.0, 1.0]]), torch.zeros(1, 3), c)
    tensor([[ 0., -2.,  0.]])
    """
    k = c.max_changed
    if k is None:
        return x
    if k >= c.n_feature_ids:
        return x
    x_ref = domain_reference(x_ref, c)
    change, changed = feature_changes(x, x_ref, c)  # [N, F]
    key = torch.where(changed, change, torch.full_like(change, -1.0))  # unchanged rank last
    order = key.argsort(dim=1, descending=True, stable=True)  # [N, F]
    ranks = torch.arange(change.shape[1], device=x.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, ranks)  # [N, F] rank of each feature
    keep = (rank < k) & changed  # [N, F]
    keep_col = keep.gather(1, c.feature_index.expand(x.shape[0], -1))  # [N, D]
    return torch.where(keep_col, x, x_ref)


def harden(x, x_ref, c: TorchConstraints):
    """Turn x [N, D] into a valid point: groups hardened, grid columns rounded, changes limited.

    ``x`` should already satisfy mutability and bounds (see :func:`project`). The limit on
    changed features (``max_changed``) counts what changed after hardening and rounding. With
    ``c.exact_bounds``, the factual that rounding and the limit keep or revert to is the
    factual clamped into the domain (a feature pulled inside does not count as a change).
    """
    if not c.needs_hardening:
        return x
    x = harden_groups(x, c, x_ref)
    x = round_to_grid(x, x_ref, c)
    x = limit_changes(x, x_ref, c)
    return x


def project(x, x_ref, c: TorchConstraints, hard=True):
    """Full projection used after every search step.

    Mutability relative to the factual ``x_ref``, then domain bounds (widened per row to contain
    the factual; with ``c.exact_bounds`` the bounds as they are, which win over mutability for a
    factual outside them), then (when ``hard``) :func:`harden`: one-hot groups hardened, integer
    columns rounded on their grid and at most ``max_changed`` features changed.
    """
    if c.is_trivial:
        return x
    x = _apply_mutability(x, x_ref, c.mut)
    x = _clip_to_bounds(x, x_ref, c.lower, c.upper, widen=not c.exact_bounds)
    if hard:
        x = harden(x, x_ref, c)
    return x


def straight_through_harden(x, x_ref, c: TorchConstraints):
    """:func:`harden` in the forward pass, identity gradient in the backward pass.

    With ``c.exact_bounds`` the forward value is also clamped into the domain, so that even
    the first iterate (the factual itself) of a factual outside it lies inside.
    """
    exact = c.exact_bounds and not c.is_trivial
    if not (c.needs_hardening or exact):
        return x
    hard = x.detach()
    if exact:
        hard = _clip_to_bounds(hard, x_ref, c.lower, c.upper, widen=False)
    hard = harden(hard, x_ref, c)
    # hard + (x - x) is exactly ``hard`` in the forward pass; x + (hard - x) is not in floating
    # point (e.g. -0.3 + 1.3 == 0.99999994 in float32) when soft values leave [0, 1].
    return hard + (x - x.detach())


def reharden_groups(x, x_ref, c: TorchConstraints):
    """Replace a stepped search state x [N, D] by its valid point in the one-hot groups.

    Mutability relative to the factual ``x_ref``, then every mutable one-hot group hardened at
    the argmax of the stepped (unclipped) values, then the domain bounds as in
    :func:`project`. Integer grids and the limit on changed features are left to
    :func:`straight_through_harden`, as in the default search. This is how
    CounterfactualExplanations.jl (1.4, ``src/counterfactuals/search.jl``: ``update!`` then
    ``apply_domain_constraints!``) advances its state: the stepped state is decoded (its
    ``decode_state`` reconstructs every categorical encoding at its maximum, see
    ``reconstruct_cat_encoding`` in ``src/data_preprocessing/counterfactual_data.jl``), clamped
    to the domain and encoded again, so soft changes of a group never accumulate over steps.
    Ties go to the first level (the reference draws one at random).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.constraints import TorchConstraints
    >>> c = TorchConstraints.from_arrays(np.zeros(3), np.ones(3), ["both"] * 3, [[0, 1, 2]])
    >>> reharden_groups(torch.tensor([[0.6, 0.7, -0.3]]), torch.tensor([[1.0, 0.0, 0.0]]), c)
    tensor([[0., 1., 0.]])
    """
    if c.is_trivial:
        return x
    x = _apply_mutability(x, x_ref, c.mut)
    x = harden_groups(x, c, x_ref)
    return _clip_to_bounds(x, x_ref, c.lower, c.upper, widen=not c.exact_bounds)
