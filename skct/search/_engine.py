"""The batched counterfactual search engine.

All rows are searched at once; a per-row convergence mask freezes rows as soon as the model
gives their target class a probability of at least the decision threshold. Only the rows still
active go through the model at each step, so converged rows cost nothing. This module knows
nothing about scikit-learn: it takes a torch module (or any callable returning logits), tensors
and a generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._config import get_config
from .._utils import dense_path_property, eval_mode
from ..constraints import TorchConstraints
from . import _compiled

__all__ = ["SearchPath", "SearchResult", "search"]


class SearchPath:
    """Every iterate of a search, stored compactly: per step, only the rows that moved.

    Step ``t`` of the path holds, for every row, the value it had after its last update at a
    step ``<= t`` (rows never updated keep ``initial``), which is the padded
    ``[n_steps, N, D]`` array the search describes; :meth:`to_dense` builds it on demand.
    Memory: the values of the rows updated (``sum(n_iter + 1) * D`` for a search) instead of
    ``n_steps * N * D``.

    Parameters
    ----------
    initial : Tensor [N, D]
        Each row's value before its first update (kept by reference, not copied).
    n_steps : int
        Length of the path (``max_iter + 1`` for a search).

    Examples
    --------
    >>> import torch
    >>> path = SearchPath(torch.zeros(3, 1), n_steps=3)
    >>> path.record(0, torch.tensor([0, 1, 2]), torch.tensor([[1.0], [2.0], [3.0]]))
    >>> path.record(1, torch.tensor([2]), torch.tensor([[4.0]]))
    >>> path.to_dense()[:, :, 0]
    tensor([[1., 2., 3.],
            [1., 2., 4.],
            [1., 2., 4.]])
    """

    def __init__(self, initial, n_steps):
        self.initial = initial
        self.n_steps = int(n_steps)
        self.updates = []  # (step t, rows [A] long, values [A, D]) in recording order

    @property
    def shape(self):
        """``(n_steps, N, D)``, the shape of :meth:`to_dense`."""
        return (self.n_steps,) + tuple(self.initial.shape)

    def record(self, t, rows, values):
        """Rows ``rows`` [A] take the values ``values`` [A, D] at step ``t`` (by reference)."""
        if not 0 <= t < self.n_steps:
            raise ValueError(f"step {t} is outside the path's {self.n_steps} steps.")
        self.updates.append((int(t), rows, values))

    def to_dense(self, dtype=None, device=None):
        """The padded path, a Tensor [n_steps, N, D] (in ``dtype`` on ``device`` if given)."""
        dtype = self.initial.dtype if dtype is None else dtype
        device = self.initial.device if device is None else device
        out = torch.empty(self.shape, dtype=dtype, device=device)  # [T + 1, N, D]
        cur = self.initial.to(dtype=dtype, device=device, copy=True)  # [N, D]
        ups = sorted(self.updates, key=lambda u: u[0])  # stable: recording order within a step
        j = 0
        for t in range(self.n_steps):
            while j < len(ups) and ups[j][0] == t:
                _, rows, values = ups[j]
                cur[rows.to(device)] = values.to(dtype=dtype, device=device)
                j += 1
            out[t] = cur
        return out


@dataclass
class SearchResult:
    """What one batched search returns (all tensors detached, on the input's device).

    Attributes
    ----------
    counterfactuals : Tensor [N, D]
        Final counterfactuals (valid points: constraints hold, one-hot groups are hard, integer
        columns on their grid, at most ``max_changed`` features changed).
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
        Every iterate (frozen rows repeat their last value), when requested. Built on first
        access from :attr:`compact_path` (then kept); may also be given as a dense Tensor.
    compact_path : SearchPath or None
        The same iterates, stored per step for the rows still searching only.
    """

    counterfactuals: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor
    target_proba: torch.Tensor
    nascent: torch.Tensor
    path: torch.Tensor | None = None

    @property
    def compact_path(self):
        """The path as a :class:`SearchPath` (None if none was kept or it was given dense)."""
        p = self.__dict__.get("_path")
        return p if isinstance(p, SearchPath) else None

    @property
    def total_steps(self):
        """Row-steps actually computed (sum of ``n_iter``): the search's work."""
        return int(self.n_iter.sum())


# ``path`` stays a dataclass field (constructor, equality) read through a lazy property: the
# dataclass took the field's default above, so the class attribute can now be the property.
SearchResult.path = dense_path_property(
    "Every iterate [T + 1, N, D] (dense, built on first access).")


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
        Mutability, bounds, one-hot groups, integer grids, the limit on changed features and
        the cost weights (passed to ``generator.loss`` as ``cost_weight`` when not all 1);
        None means unconstrained.
    decision_threshold : float
        A row stops once p(target | x') >= this value.
    max_iter : int
        Maximum number of gradient steps per row.
    epsilon : float or None
        L-infinity radius for the nascent (adversarial) iterate.
    return_path : bool
        Keep every iterate. Stored compactly (memory: the rows still searching at each step,
        ``sum(n_iter + 1) * D`` values); ``result.path`` pads it to [T + 1, N, D] when read.

    Returns
    -------
    SearchResult

    Raises
    ------
    ValueError
        If x is not 2D or holds NaN or infinity, if target does not have one entry per row, or
        if the constraints were fitted on another number of features.
    """
    if x.ndim != 2:
        raise ValueError(f"x must be 2D [n_rows, n_features], got shape {tuple(x.shape)}.")
    n, d = x.shape
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if target.shape[0] != n:
        raise ValueError(f"target has {target.shape[0]} entries for {n} rows.")
    finite = torch.isfinite(x).all(dim=1)  # [N]
    if not bool(finite.all()):
        bad = (~finite).nonzero().squeeze(1)[:5].tolist()
        raise ValueError(f"x contains NaN or infinity (rows {bad}); a search needs finite "
                         "factuals.")
    if constraints is not None and constraints.n_features != d:
        raise ValueError(f"constraints were fitted on {constraints.n_features} features, x "
                         f"has {d}.")
    x = x.detach()
    if get_config()["fast_search"]:
        # the same search without a loss graph (skct.set_config(fast_search=True)); None
        # where the fast path does not reproduce it
        result = _compiled.fast_search(model, x, target, generator, constraints,
                                       decision_threshold=decision_threshold,
                                       max_iter=max_iter, epsilon=epsilon,
                                       return_path=return_path)
        if result is not None:
            return result
    c = constraints if constraints is not None else TorchConstraints.unconstrained(
        d, dtype=x.dtype, device=x.device)
    # weighted L1 cost only when weights other than 1 are set (today's generators unchanged)
    weights = {} if c.unit_cost else {"cost_weight": c.cost_weight.to(x.dtype)}

    with eval_mode(model), torch.enable_grad():
        # Compact tensors hold only the rows still searching; results are written out only
        # for rows that leave the search (converged, or at the last step).
        s_act = generator.init_state(x).detach()  # [A, S]
        x_act, t_act = x, target  # [A, D], [A]
        idx = torch.arange(n, device=x.device)  # [A] row of each active entry
        nas_act = x  # [A, D] last iterate within epsilon
        x_cf = x.clone()  # [N, D]
        proba = torch.zeros(n, dtype=x.dtype, device=x.device)
        converged = torch.zeros(n, dtype=torch.bool, device=x.device)
        n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
        nascent = x.clone()
        path = SearchPath(x, max_iter + 1) if return_path else None

        for t in range(max_iter + 1):
            s = s_act.requires_grad_(True)
            xc = generator.to_input(s, x_act, c)  # [A, D], valid point, differentiable
            logits = model(xc)  # [A, C]
            ld = logits.detach()
            # p(target | x') = exp(logit_t - logsumexp(logits)): cheaper than a full softmax
            pa = (ld.gather(1, t_act[:, None]).squeeze(1) - torch.logsumexp(ld, 1)).exp()
            xc_det = xc.detach()
            if epsilon is not None:
                close = (xc_det - x_act).abs().amax(dim=1) <= epsilon  # [A]
                nas_act = torch.where(close[:, None], xc_det, nas_act)
            done = pa >= decision_threshold  # [A]
            last = t == max_iter
            n_done = int(done.sum())
            if return_path:  # only the rows still searching (a copy: generators may alias)
                path.record(t, idx, xc_det.clone())
            if last or n_done:
                out = torch.ones_like(done) if last else done
                rows = idx[out]
                x_cf[rows] = xc_det[out]
                proba[rows] = pa[out]
                converged[rows] = done[out]
                n_iter[rows] = t
                nascent[rows] = nas_act[out]
            if last or n_done == idx.shape[0]:
                break
            loss = generator.loss(xc, x_act, t_act, logits, t, max_iter, **weights)  # [A]
            if n_done:
                still = ~done
                (grad,) = torch.autograd.grad(loss[still].sum(), s)
                keep = still.nonzero().squeeze(1)
                s_old, grad = s.detach().index_select(0, keep), grad.index_select(0, keep)
                x_act, t_act = x_act.index_select(0, keep), t_act.index_select(0, keep)
                idx, nas_act = idx.index_select(0, keep), nas_act.index_select(0, keep)
            else:
                (grad,) = torch.autograd.grad(loss.sum(), s)
                s_old = s.detach()
            s_act = generator.update(s_old, grad, x_act, c).detach()

    return SearchResult(
        counterfactuals=x_cf,
        converged=converged,
        n_iter=n_iter,
        target_proba=proba,
        nascent=nascent,
        path=path,
    )
