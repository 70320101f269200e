"""The batched counterfactual search engine.

All rows are searched at once; a per-row convergence mask freezes rows as soon as the model
gives their target class a probability of at least the decision threshold. Only the rows still
active go through the model at each step, so converged rows cost nothing. This module knows
nothing about scikit-learn: it takes a torch module (or any callable returning logits), tensors
and a generator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .constraints import TorchConstraints

__all__ = ["SearchResult", "search", "eval_mode"]


@dataclass
class SearchResult:
    """What one batched search returns (all tensors detached, on the input's device).

    Attributes
    ----------
    counterfactuals : Tensor [N, D]
        Final counterfactuals (valid points: constraints hold, one-hot groups are hard).
    converged : Tensor [N] bool
        Whether p(target | x') >= decision threshold was reached.
    n_iter : Tensor [N] long
        Gradient steps taken per row.
    target_proba : Tensor [N]
        p(target | x') of the final counterfactual.
    nascent : Tensor [N, D]
        Last iterate with ``||x_t - x||_inf <= epsilon`` (the factual itself if none); the
        adversarial example of counterfactual training. Equal to the factuals if ``epsilon``
        was None.
    path : Tensor [T + 1, N, D] or None
        Every iterate (frozen rows repeat their last value), when requested.
    """

    counterfactuals: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor
    target_proba: torch.Tensor
    nascent: torch.Tensor
    path: torch.Tensor | None = None

    @property
    def total_steps(self):
        """Row-steps actually computed (sum of ``n_iter``): the search's work."""
        return int(self.n_iter.sum())


@contextlib.contextmanager
def eval_mode(module):
    """Put a torch module (and all its children) in eval mode, restoring each flag afterwards."""
    if not isinstance(module, torch.nn.Module):
        yield module
        return
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in modes:
            m.training = flag


def search(model, x, target, generator, constraints: TorchConstraints | None = None, *,
           decision_threshold=0.75, max_iter=30, epsilon=None, return_path=False):
    """Generate counterfactuals for all rows of ``x`` at once.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, D] to logits [n, C]. Put in eval mode for the search and
        restored afterwards; its parameters and their ``.grad`` are never touched.
    x : Tensor [N, D]
        Factuals in the model's input space.
    target : Tensor [N] long
        Target class index per row.
    generator : BaseGenerator
        Objective and search space (fitted, if it needs fitting).
    constraints : TorchConstraints or None
        Mutability, bounds and one-hot groups; None means unconstrained.
    decision_threshold : float
        A row stops once p(target | x') >= this value.
    max_iter : int
        Maximum number of gradient steps per row.
    epsilon : float or None
        L-infinity radius for the nascent (adversarial) iterate.
    return_path : bool
        Keep every iterate (memory: (T + 1) * N * D).

    Returns
    -------
    SearchResult
    """
    if x.ndim != 2:
        raise ValueError(f"x must be 2D [n_rows, n_features], got shape {tuple(x.shape)}.")
    n, d = x.shape
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if target.shape[0] != n:
        raise ValueError(f"target has {target.shape[0]} entries for {n} rows.")
    c = constraints if constraints is not None else TorchConstraints.unconstrained(
        d, dtype=x.dtype, device=x.device)
    if c.n_features != d:
        raise ValueError(f"constraints were fitted on {c.n_features} features, x has {d}.")
    x = x.detach()

    with eval_mode(model), torch.enable_grad():
        state = generator.init_state(x).detach()  # [N, S]
        x_cf = x.clone()  # [N, D]
        proba = torch.zeros(n, dtype=x.dtype, device=x.device)
        converged = torch.zeros(n, dtype=torch.bool, device=x.device)
        n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
        nascent = x.clone()
        path = []
        active = torch.arange(n, device=x.device)  # indices of rows still searching

        for t in range(max_iter + 1):
            s = state.index_select(0, active).requires_grad_(True)  # [A, S]
            xa = x.index_select(0, active)  # [A, D]
            ta = target.index_select(0, active)  # [A]
            xc = generator.to_input(s, xa, c)  # [A, D], valid point, differentiable
            logits = model(xc)  # [A, C]
            pa = torch.softmax(logits.detach(), dim=1).gather(1, ta[:, None]).squeeze(1)

            xc_det = xc.detach()
            x_cf[active] = xc_det
            proba[active] = pa
            if epsilon is not None:
                close = (xc_det - xa).abs().amax(dim=1) <= epsilon  # [A]
                nascent[active[close]] = xc_det[close]
            if return_path:
                path.append(x_cf.clone())

            done = pa >= decision_threshold  # [A]
            converged[active[done]] = True
            if t == max_iter:
                break
            still = ~done
            if not bool(still.any()):
                break
            loss = generator.loss(xc, xa, ta, logits, t, max_iter)  # [A]
            (grad,) = torch.autograd.grad(loss[still].sum(), s)
            keep = still.nonzero().squeeze(1)
            new_state = generator.update(s.index_select(0, keep), grad.index_select(0, keep),
                                         xa.index_select(0, keep), c)
            active = active.index_select(0, keep)
            state[active] = new_state.to(state.dtype)
            n_iter[active] += 1

        if return_path:
            # rows frozen early repeat their last value; pad to T + 1 entries
            while len(path) < max_iter + 1:
                path.append(x_cf.clone())

    return SearchResult(
        counterfactuals=x_cf,
        converged=converged,
        n_iter=n_iter,
        target_proba=proba,
        nascent=nascent,
        path=torch.stack(path) if return_path else None,
    )
