"""Post-hoc sparsification: revert changed features that a counterfactual does not need."""

from __future__ import annotations

import numbers

import torch

from .._utils import eval_mode
from ..constraints import TorchConstraints
from ._projection import domain_reference, feature_changes

__all__ = ["sparsify"]


def _target_proba(model, x, target):
    """p(target | x) [N] for logits model(x) [N, C] (as the search engine computes it)."""
    logits = model(x)  # [N, C]
    return (logits.gather(1, target[:, None]).squeeze(1) - torch.logsumexp(logits, 1)).exp()


def sparsify(model, x_cf, x, target, constraints: TorchConstraints | None = None,
             decision_threshold=0.75, *, return_proba=False):
    """Revert the changes a counterfactual does not need, smallest first, while it stays valid.

    For every row whose counterfactual is valid (``p(target | x_cf) >= decision_threshold``),
    the changed features (by the constraints' ``feature_id``; a one-hot group is one feature)
    are tried in increasing order of weighted change (``cost_weight * |x_cf - x|`` summed over
    the feature's columns): a feature is set back to the factual exactly, and the revert is
    kept only where the row stays valid. Rows are processed together, one model call per
    change rank (at most the number of features), never one per row.

    A valid row never becomes invalid, invalid rows are returned as they are, and since
    reverting to the factual always satisfies the constraints (mutability, bounds widened to the
    factual, integer grids, one-hot levels, ``max_changed``), so does the result; with exact
    bounds (``ActionabilityConstraints(widen_bounds=False)``) a feature is set back to the
    factual clamped into the domain, so that the result stays inside it. Immutable columns
    are not touched. Inputs are not modified.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, D] to logits [n, C]; run in eval mode without gradients.
    x_cf : Tensor [N, D]
        Counterfactuals in the model's input space.
    x : Tensor [N, D]
        The factuals.
    target : Tensor [N] long
        Target class index per row.
    constraints : TorchConstraints or None
        Gives ``feature_id`` and ``cost_weight``; None means one feature per column, weight 1.
    decision_threshold : float in [0, 1], default=0.75
        A row is valid when p(target | row) >= this value.
    return_proba : bool, default=False
        Also return p(target | x_sparse) [N].

    Returns
    -------
    x_sparse : Tensor [N, D]
    proba : Tensor [N]
        Only with ``return_proba``.

    Examples
    --------
    >>> import torch
    >>> from skct.search import sparsify
    >>> model = torch.nn.Linear(3, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.1, 0.0]]))
    ...     _ = model.bias.zero_()
    >>> x = torch.zeros(1, 3)
    >>> x_cf = torch.tensor([[1.0, 0.5, 2.0]])  # only feature 0 matters to the model
    >>> sparsify(model, x_cf, x, torch.tensor([1]), decision_threshold=0.9)
    tensor([[1., 0., 0.]])
    """
    x_cf, x, target, c, thr = _check_inputs(x_cf, x, target, constraints, decision_threshold)
    # with exact bounds a factual outside the domain is reverted to its clamp into the domain
    x = domain_reference(x, c)
    n = x.shape[0]
    with torch.no_grad(), eval_mode(model):
        proba = _target_proba(model, x_cf, target) if n else x.new_zeros(0)  # [N]
        out = x_cf.clone()  # [N, D]
        change, changed = feature_changes(x_cf, x, c)  # [N, F]
        key = torch.where(changed, change, torch.full_like(change, float("inf")))
        order = key.argsort(dim=1, stable=True)  # [N, F] smallest change first
        n_changed = changed.sum(dim=1)  # [N]
        valid = proba >= thr  # [N]
        n_ranks = int(n_changed[valid].max()) if bool(valid.any()) else 0
        for r in range(n_ranks):
            rows = (valid & (n_changed > r)).nonzero().squeeze(1)  # [A]
            f = order[rows, r]  # [A] feature tried at this rank
            cols = c.feature_index[None, :] == f[:, None]  # [A, D]
            cand = torch.where(cols, x[rows], out[rows])  # [A, D]
            p = _target_proba(model, cand, target[rows])  # [A]
            ok = p >= thr  # [A]
            out[rows[ok]] = cand[ok]
            proba[rows[ok]] = p[ok]
    return (out, proba) if return_proba else out


def _check_inputs(x_cf, x, target, constraints, decision_threshold):
    x_cf, x = torch.as_tensor(x_cf).detach(), torch.as_tensor(x).detach()
    if x.ndim != 2 or x_cf.shape != x.shape:
        raise ValueError(f"x_cf and x must be 2D of the same shape, got {tuple(x_cf.shape)} "
                         f"and {tuple(x.shape)}.")
    n, d = x.shape
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if target.shape[0] != n:
        raise ValueError(f"target has {target.shape[0]} entries for {n} rows.")
    if not isinstance(decision_threshold, numbers.Real) or not 0 <= decision_threshold <= 1:
        raise ValueError(f"decision_threshold must be a number in [0, 1], got "
                         f"{decision_threshold!r}.")
    c = constraints if constraints is not None else TorchConstraints.unconstrained(
        d, dtype=x.dtype, device=x.device)
    if c.n_features != d:
        raise ValueError(f"constraints were fitted on {c.n_features} features, x has {d}.")
    return x_cf, x, target, c, float(decision_threshold)
