"""Several diverse counterfactuals per factual, searched together in one batch.

Each factual is searched ``k`` times in the same batched search (its copies side by side, rows
``i * k .. i * k + k - 1``). :class:`DiverseGenerator` wraps the chosen generator so that the
copies differ:

- ``"starts"``: copy 0 starts at the factual (the search of ``k = 1``); every other copy
  starts at a seeded random point of the constrained domain near it (each mutable column moved
  by up to ``start_scale`` of its cost unit, a median absolute deviation with ``cost="mad"``,
  in the directions it may move, then projected on the domain).
- ``"pairwise"``: the same starts, plus a term pulling each copy away from the other copies of
  its factual: ``lambda_diversity * mean_j 1 / (1 + d(x'_i, x'_j))`` with ``d`` the weighted L1
  distance of the search's cost (DiCE's determinantal kernel, taken row by row). The other
  copies enter at their latest iterate (also those that have left the search).
- ``"subsets"``: the same starts, and every copy but copy 0 may change only a random half of
  the mutable features (at least one), so that the copies change different feature sets.
- ``"disjoint"``: the same starts, and copies 1 .. k-1 share out the mutable features: a seeded
  random partition of them into ``k - 1`` groups per factual, each copy changing only its own
  group (groups repeat when there are fewer mutable features than copies), so that every
  valid copy but copy 0 changes a feature set no other copy touches (DiCE's random method
  varies random feature subsets in the same spirit).

Every copy is a point of the constrained domain at every step (the wrapped generator's own
``to_input`` projects it), so each one is as actionable as the single counterfactual. The
gradient-free search, which does not go through the engine, takes the same feature subsets
(and, for ``"starts"``/``"pairwise"``, shares of the seeds) from
:meth:`DiverseGenerator.search_options`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..constraints import TorchConstraints
from ._projection import project

__all__ = ["DiverseGenerator", "DIVERSITY_STRATEGIES"]

#: The ways :class:`DiverseGenerator` makes the copies of a factual differ.
DIVERSITY_STRATEGIES = ("starts", "pairwise", "subsets", "disjoint")


class DiverseGenerator:
    """A generator whose ``k`` copies of each factual search different counterfactuals.

    The search state is the wrapped generator's with one more column, each row's position in
    the batch (the engine keeps only the rows still searching, so the hooks find their rows'
    copies through it). The engine, the projection and the wrapped objective are unchanged.

    Parameters
    ----------
    generator : BaseGenerator
        The fitted generator to wrap.
    n_per_row : int
        Copies per factual (``k``); the batch holds ``k`` adjacent copies of every factual.
    diversity : {"starts", "pairwise", "subsets", "disjoint"}, default="pairwise"
        How the copies differ (see the module's description).
    lambda_diversity : float, default=0.1
        Weight of the pairwise term (``"pairwise"`` only).
    start_scale : float, default=0.5
        Size of the random starts, in cost units per column.
    random_state : int, default=0
        Seed of the starts and of the feature subsets.

    Examples
    --------
    >>> import torch
    >>> from skct.search import DiverseGenerator, search
    >>> from skct.search.generators import GenericGenerator
    >>> model = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    ...     _ = model.bias.zero_()
    >>> x = torch.full((3, 2), -1.0).repeat_interleave(2, dim=0)  # 3 factuals, 2 copies each
    >>> gen = DiverseGenerator(GenericGenerator(), 2, random_state=0)
    >>> res = search(model, x, torch.ones(6, dtype=torch.long), gen, max_iter=100)
    >>> bool(res.converged.all()), bool((res.counterfactuals[0] != res.counterfactuals[1]).any())
    (True, True)
    """

    def __init__(self, generator, n_per_row, diversity="pairwise", *, lambda_diversity=0.1,
                 start_scale=0.5, random_state=0):
        if diversity not in DIVERSITY_STRATEGIES:
            raise ValueError(f"diversity must be one of {list(DIVERSITY_STRATEGIES)}, got "
                             f"{diversity!r}.")
        if diversity in ("subsets", "disjoint") and generator.latent:
            raise ValueError(f"diversity={diversity!r} needs an input-space generator; "
                             f"{type(generator).__name__} searches a latent space.")
        self.generator = generator
        self.n_per_row = int(n_per_row)
        self.diversity = diversity
        self.lambda_diversity = float(lambda_diversity)
        self.start_scale = float(start_scale)
        self.random_state = random_state
        self._constraints = None  # set by bind()

    @property
    def latent(self):
        return self.generator.latent

    def bind(self, constraints):
        """Use ``constraints`` (the search's TorchConstraints) for the starts and distances."""
        self._constraints = constraints
        return self

    # -- the engine's hooks ----------------------------------------------------------------
    def init_state(self, x):
        """The wrapped state of the copies [M, S] with their positions appended [M, S + 1]."""
        m, d = x.shape
        c = self._constraints if self._constraints is not None else \
            TorchConstraints.unconstrained(d, dtype=x.dtype, device=x.device)
        gen, first = self._copies(m, x.device)
        self._frozen = self._draw_frozen(m, c, gen, first, x.device)  # [M, D] bool or None
        state = self.generator.init_state(x)  # [M, S]
        u = (torch.rand(state.shape, generator=gen, dtype=torch.float64) * 2 - 1).to(
            device=x.device, dtype=state.dtype)  # [M, S] in [-1, 1]
        if self.generator.latent:
            start = state + self.start_scale * u
        else:
            unit = self._cost_unit(c, d, x)  # [D] one cost unit per column
            start = x + self.start_scale * u * unit
            start = project(start, x, c, hard=False)
            if self._frozen is not None:
                start = torch.where(self._frozen, x, start)
        start = torch.where(first[:, None], state, start)
        self._latest = x.detach().clone()  # [M, D] latest iterate of every copy
        pos = torch.arange(m, device=x.device, dtype=state.dtype)[:, None]
        return torch.cat([start, pos], dim=1).detach()

    def to_input(self, state, x, constraints):
        """The wrapped generator's point [A, D] (frozen features at the factual)."""
        self._pos = state[:, -1].detach().round().long()  # [A]
        inner = state[:, :-1]
        if self._frozen is not None:
            inner = torch.where(self._frozen[self._pos], x, inner)
        xc = self.generator.to_input(inner, x, constraints)  # [A, D]
        self._latest[self._pos] = xc.detach()
        return xc

    def loss(self, x_cf, x, target, logits, t, max_iter, cost_weight=None):
        """The wrapped objective [A], plus the pairwise term with ``"pairwise"``."""
        out = self.generator.loss(x_cf, x, target, logits, t, max_iter,
                                  **({} if cost_weight is None else {"cost_weight": cost_weight}))
        if self.diversity != "pairwise" or self.lambda_diversity == 0:
            return out
        k = self.n_per_row
        pos = self._pos  # [A]
        mates = (pos // k)[:, None] * k + torch.arange(k, device=pos.device)  # [A, k]
        others = self._latest[mates]  # [A, k, D] detached
        w = 1.0 if cost_weight is None else cost_weight
        dist = ((x_cf[:, None, :] - others).abs() * w).sum(dim=2)  # [A, k]
        similarity = 1.0 / (1.0 + dist)  # [A, k]
        not_self = mates != pos[:, None]  # [A, k]
        mean_sim = (similarity * not_self).sum(dim=1) / max(k - 1, 1)  # [A]
        return out + self.lambda_diversity * mean_sim

    def update(self, state, grad, x, constraints):
        """The wrapped generator's step on the state, positions kept [A, S + 1]."""
        pos = state[:, -1:]
        inner = self.generator.update(state[:, :-1], grad[:, :-1], x, constraints)
        if self._frozen is not None:
            inner = torch.where(self._frozen[pos[:, 0].round().long()], x, inner)
        return torch.cat([inner, pos], dim=1)

    def frozen_mask(self, m, constraints=None, device=None):
        """The columns each of ``m`` rows (``m / n_per_row`` factuals' adjacent copies) may
        not change: [M, D] bool, or None where every copy may change every column.

        The mask :meth:`init_state` draws for the same rows and seed: with ``"subsets"`` every
        copy but copy 0 may change only a random half of the mutable features, with
        ``"disjoint"`` copies 1 .. k-1 share them out; the other strategies freeze nothing. A
        feature is frozen whole (all the columns of a one-hot group together). Searches that
        do not go through the engine (the gradient-free one) take the same copies from it.

        Parameters
        ----------
        m : int
            Rows: whole groups of ``n_per_row`` copies.
        constraints : TorchConstraints or None
            The search's constraints (None: those given to :meth:`bind`).
        device : torch.device or None
            Device of the mask (None: the constraints').

        Examples
        --------
        >>> from skct.constraints import TorchConstraints
        >>> from skct.search import DiverseGenerator
        >>> from skct.search.generators import GenericGenerator
        >>> c = TorchConstraints.unconstrained(4)
        >>> div = DiverseGenerator(GenericGenerator(), 3, "disjoint", random_state=0)
        >>> mask = div.frozen_mask(6, c)  # 2 factuals, 3 copies each
        >>> mask.shape, bool(mask[0].any()), bool((mask[1] ^ mask[2]).all())
        (torch.Size([6, 4]), False, True)
        """
        c = constraints if constraints is not None else self._constraints
        if c is None:
            raise ValueError("constraints: pass the search's constraints or bind() them.")
        device = c.lower.device if device is None else device
        gen, first = self._copies(m, device)
        return self._draw_frozen(m, c, gen, first, device)

    def search_options(self, m, constraints=None, rows=None):
        """Keyword arguments of :func:`~skct.search.gradient_free_search` that make the copies
        of ``m`` rows (``m / n_per_row`` factuals' adjacent copies) differ, for the rows
        ``rows`` (a long tensor of indices, None: all) of them.

        ``"subsets"``, ``"disjoint"``: ``frozen``, the :meth:`frozen_mask`; ``"starts"``:
        ``seed_share``, copy ``j`` searching from the seeds ranked ``j, j + k, ...``;
        ``"pairwise"``: the same and ``apart=True``.

        Examples
        --------
        >>> from skct.constraints import TorchConstraints
        >>> from skct.search import DiverseGenerator
        >>> from skct.search.generators import GenericGenerator
        >>> c = TorchConstraints.unconstrained(4)
        >>> div = DiverseGenerator(GenericGenerator(), 2, "pairwise")
        >>> opts = div.search_options(6, c)
        >>> opts["seed_share"][0].tolist(), opts["seed_share"][1], opts["apart"]
        ([0, 1, 0, 1, 0, 1], 2, True)
        """
        c = constraints if constraints is not None else self._constraints
        dev = c.lower.device if c is not None else None
        pick = slice(None) if rows is None else rows
        if self.diversity in ("subsets", "disjoint"):
            frozen = self.frozen_mask(m, c, device=dev)
            return {"frozen": None if frozen is None else frozen[pick]}
        offset = torch.arange(m, device=dev) % self.n_per_row  # [M] the copy of each row
        return {"seed_share": (offset[pick], self.n_per_row),
                "apart": self.diversity == "pairwise"}

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _cost_unit(c, d, x):
        """One cost unit per column [D]: ``1 / cost_weight`` (1 where the weight is 0)."""
        w = c.cost_weight.to(dtype=x.dtype, device=x.device)
        return torch.where(w > 0, 1.0 / w.clamp_min(1e-12), torch.ones_like(w))

    def _copies(self, m, device):
        """(the seeded draws of ``m`` rows' copies, [M] bool: copy 0 of its factual)."""
        if m % self.n_per_row:
            raise ValueError(f"{m} rows are not whole groups of n_per_row={self.n_per_row} "
                             "copies.")
        gen = torch.Generator(device="cpu").manual_seed(int(self.random_state))
        return gen, (torch.arange(m, device=device) % self.n_per_row) == 0

    def _draw_frozen(self, m, c, gen, first, device):
        """[M, D] bool: the columns each copy may not change (``"subsets"``, ``"disjoint"``),
        else None."""
        if self.diversity not in ("subsets", "disjoint"):
            return None
        fid = c.feature_index.cpu()  # [D] in 0..F-1
        mutable = torch.zeros(c.n_feature_ids, dtype=torch.bool).scatter_(
            0, fid, (c.mut != 0).cpu())  # [F] features with a mutable column
        n_mut = int(mutable.sum())
        if n_mut < 2:
            return None
        keys = torch.rand((m, c.n_feature_ids), generator=gen, dtype=torch.float64)
        keys[:, ~mutable] = np.inf
        order = keys.argsort(dim=1)  # [M, F] random order of the mutable features first
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(c.n_feature_ids).expand(m, -1))  # [M, F]
        if self.diversity == "subsets":
            keep = rank < max(1, n_mut // 2)  # [M, F] a random half may change
        else:  # one random order per factual, dealt out to its copies 1 .. k-1
            k = self.n_per_row
            rank = rank[::k].repeat_interleave(k, dim=0)  # [M, F] the factual's order
            copy = torch.arange(m) % k  # [M]
            group = (copy - 1).clamp_min(0) % max(1, min(k - 1, n_mut))  # [M]
            keep = (rank % max(1, min(k - 1, n_mut)) == group[:, None]) & (rank < n_mut)
        keep |= first.cpu()[:, None]  # copy 0 may change every feature
        return (~keep)[:, fid].to(device)  # [M, D]
