"""The steps of the gradient-free search: candidate space, seeds, rings, generations and the
refinement of the valid points (bisection, shrink steps).

Candidates are built so that their one-hot groups are copied whole from valid points (the
factual, or pool rows whose groups are hardened once per call), so that projecting them needs
no hardening of the groups: :class:`CandidateSpace` projects the other columns with
:func:`~skct.search.project` under the constraints of those columns alone, puts immutable
groups back to the factual's and applies the limit on changed features to whole rows, which
is what :func:`~skct.search.project` gives for such candidates (the refinement's candidates are
valid points with columns outside the groups moved, so the same holds). Everything is batched
over rows; the only Python loops run over model calls, generations, refinement steps, chunks
of candidates and target classes.
"""

from __future__ import annotations

import torch

from .._utils import eval_mode
from ..constraints import TorchConstraints
from ._projection import harden_groups, limit_changes, project

__all__ = ["CandidateSpace", "Best", "neighbours", "rings", "generations", "bisect", "shrink",
           "search_block"]


class CandidateSpace:
    """Projection and cost of candidates [N, M, D] whose one-hot groups are whole copies of
    valid groups (see the module docstring); any other constraints get :func:`project`.

    The cheap path applies when every group column's bounds contain [0, 1] (what
    ``ActionabilityConstraints`` always sets); otherwise every candidate goes through the full
    projection, which gives the same point for such candidates. ``project`` writes into the
    candidates it is given (the steps build fresh ones).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.constraints import TorchConstraints
    >>> from skct.search import project
    >>> from skct.search._gf_steps import CandidateSpace
    >>> c = TorchConstraints.from_arrays([0.0, 0, 0], [4.0, 1, 1], ["increase", "both", "both"],
    ...                                  [[1, 2]], grid_scale=[1.0, 0, 0])
    >>> x = torch.tensor([[2.0, 1.0, 0.0]])
    >>> cand = torch.tensor([[[1.0, 0.0, 1.0], [3.4, 1.0, 0.0]]])  # [N=1, M=2, D=3]
    >>> space = CandidateSpace(c, torch.zeros(1, 3))
    >>> space.project(cand.clone(), x)
    tensor([[[2., 0., 1.],
             [3., 1., 0.]]])
    >>> torch.equal(space.project(cand.clone(), x)[0], project(cand[0], x.expand(2, 3), c))
    True
    """

    def __init__(self, c: TorchConstraints, pool):
        self.c = c
        d = c.n_features
        dev = c.lower.device
        in_group = torch.zeros(d, dtype=torch.bool, device=dev)
        if c.has_groups:
            in_group[c.group_index[c.group_mask]] = True
        self.in_group = in_group  # [D]
        self.cont_all = (~in_group).nonzero().squeeze(1)  # [Dc] columns outside the groups
        self.w = c.cost_weight.to(pool.dtype)  # [D]
        # groups of the pool hardened once (a pool row's soft or unseen level gets a level)
        self.pool = harden_groups(pool, c) if c.has_groups else pool  # [P, D]
        cols = c.group_index[c.group_mask]
        self.lean = c.has_groups and not c.is_trivial and bool(
            (c.lower[cols] <= 0).all() and (c.upper[cols] >= 1).all())
        if self.lean:
            self.cont = (~in_group).nonzero().squeeze(1)  # [Dc]
            self.imm = c.immutable_group_columns  # [K_imm]
            self.c_cont = _columns(c, self.cont)

    def project(self, cand, x, frozen=None):
        """Candidates cand [N, M, D] of factuals x [N, D] with every constraint holding.

        ``frozen`` [N, D] bool (or None): columns set to the factual's first, so that they
        stay it, as if immutable for that row (whole one-hot groups)."""
        n, m, d = cand.shape
        c = self.c
        if frozen is not None:
            cand = torch.where(frozen[:, None, :], x[:, None, :], cand)  # [N, M, D]
        if not self.lean:
            ref = x[:, None, :].expand(n, m, d).reshape(n * m, d)
            return project(cand.reshape(n * m, d), ref, c).reshape(n, m, d)
        out = cand  # freshly built by the caller: projected in place
        k = self.cont.shape[0]
        if k:
            xc = x[:, self.cont]  # [N, Dc]
            yc = project(out[:, :, self.cont].reshape(n * m, k),
                         xc[:, None, :].expand(n, m, k).reshape(n * m, k), self.c_cont)
            out[:, :, self.cont] = yc.reshape(n, m, k)
        if self.imm.numel():
            out[:, :, self.imm] = x[:, None, self.imm]
        if c.max_changed is not None:
            ref = x[:, None, :].expand(n, m, d).reshape(n * m, d)
            out = limit_changes(out.reshape(n * m, d), ref, c).reshape(n, m, d)
        return out

    def cost(self, cand, x):
        """Weighted L1 change [N, M] of cand [N, M, D] from x [N, D]."""
        return ((cand - x[:, None, :]).abs() * self.w).sum(dim=2)


def _columns(c: TorchConstraints, cols):
    """The constraints of the columns ``cols`` (none of them in a one-hot group) alone."""
    dev = c.lower.device
    return TorchConstraints(
        lower=c.lower[cols], upper=c.upper[cols], mut=c.mut[cols],
        group_index=torch.zeros(0, 0, dtype=torch.long, device=dev),
        group_mask=torch.zeros(0, 0, dtype=torch.bool, device=dev),
        group_mutable=torch.zeros(0, dtype=torch.bool, device=dev),
        feature_id=c.feature_id[cols], grid_scale=c.grid_scale[cols],
        grid_offset=c.grid_offset[cols], cost_weight=c.cost_weight[cols],
        max_changed=None, exact_bounds=c.exact_bounds)


def target_scores(model, x, t, chunk):
    """(p(target | x) [n], argmax == target [n]) with one model call per chunk of rows."""
    ps, hits = [], []
    with torch.no_grad(), eval_mode(model):
        for s in range(0, x.shape[0], chunk):
            logits = model(x[s:s + chunk])  # [m, C]
            proba = torch.softmax(logits.to(x.dtype), dim=1)
            tt = t[s:s + chunk, None]
            ps.append(proba.gather(1, tt).squeeze(1))
            hits.append(proba.argmax(dim=1) == tt.squeeze(1))
    if not ps:
        return x.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=x.device)
    return torch.cat(ps), torch.cat(hits)


def neighbours(space, pool_class, x, t, k):
    """Per row of x [N, D], its k nearest pool rows of the row's target class t [N].

    Weighted L1 over the columns that may change. Returns (index into ``space.pool`` [N, k],
    distance [N, k]), nearest first; a class with fewer than k rows repeats its nearest one.
    """
    c, pool = space.c, space.pool
    cols = (c.mut != 0).nonzero().squeeze(1)  # [Dm] the columns that may change
    if cols.numel() == 0:
        cols = torch.arange(c.n_features, device=x.device)
    w = space.w[cols]  # [Dm]
    idx = torch.empty(x.shape[0], k, dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], k, dtype=x.dtype, device=x.device)
    for cls in torch.unique(t).tolist():  # a loop over classes, not rows
        rows = (t == cls).nonzero().squeeze(1)
        members = (pool_class == cls).nonzero().squeeze(1)
        if members.numel() == 0:
            members = torch.arange(pool.shape[0], device=x.device)
        d = torch.cdist(x[rows][:, cols] * w, pool[members][:, cols] * w, p=1)  # [R, Pc]
        kk = min(k, members.shape[0])
        near = d.topk(kk, dim=1, largest=False)  # sorted, nearest first
        pad = k - kk  # [R, k] padded with the nearest
        idx[rows] = members[torch.cat([near.indices, near.indices[:, :1].expand(-1, pad)], 1)]
        dist[rows] = torch.cat([near.values, near.values[:, :1].expand(-1, pad)], 1)
    return idx, dist


class Best:
    """The cheapest valid candidate per row so far (and the most probable one otherwise)."""

    def __init__(self, x):
        n = x.shape[0]
        self.x = x.clone()  # [N, D]
        self.cost = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
        self.proba = torch.full((n,), -1.0, dtype=x.dtype, device=x.device)
        self.found = torch.zeros(n, dtype=torch.bool, device=x.device)

    def update(self, rows, cand, cost, proba, ok):
        """Keep, for rows [A] (indices), the best of their M candidates: cand [A, M, D], the
        rest [A, M]. Returns whether each row's cheapest valid point got cheaper [A]."""
        key = torch.where(ok, cost, torch.full_like(cost, float("inf")))
        i = key.argmin(dim=1)  # [A]
        ar = torch.arange(cand.shape[0], device=cand.device)
        better = ok[ar, i] & (key[ar, i] < self.cost[rows])  # [A]
        r = rows[better]
        self.x[r] = cand[ar, i][better]
        self.cost[r] = key[ar, i][better]
        self.proba[r] = proba[ar, i][better]
        self.found[r] = True
        # rows without a valid candidate keep their most probable one
        j = proba.argmax(dim=1)
        closer = ~self.found[rows] & (proba[ar, j] > self.proba[rows])
        r = rows[closer]
        self.x[r] = cand[ar, j][closer]
        self.proba[r] = proba[ar, j][closer]
        return better


def _score(ctx, cand, x, t, rows):
    """Project candidates [N, M, D] of the block's rows [N] (indices) and score them: (cand,
    cost, proba, valid), [N, M] each."""
    n, m, d = cand.shape
    cand = ctx.space.project(cand, x, ctx.frozen_of(rows))  # [N, M, D] constraints hold
    cost = ctx.space.cost(cand, x)  # [N, M]
    p, hit = target_scores(ctx.model, cand.reshape(n * m, d), t.repeat_interleave(m),
                           ctx.gen.chunk_size)
    p, hit = p.reshape(n, m), hit.reshape(n, m)
    return cand, cost, p, hit & (p >= ctx.tau)


def rings(ctx, rows, idx, dist, best):
    """Score the ring points of rows [A] (indices), cheapest first, into ``best``.

    Ring point ``(seed k, fraction a)`` is ``x + a (seed - x)`` in the columns outside one-hot
    groups and the seed's level (``a >= 1/2``) or the factual's in each group; it costs about
    ``a * dist[k]`` before projection. Each row's ``K * n_rings`` points are scored in that
    order, ``n_candidates`` per row and model call, and (with ``patience``) a row stops at the
    first call that gives it a valid point: its later points cost at least as much.
    """
    gen, x, pool = ctx.gen, ctx.x, ctx.space.pool
    k, r = idx.shape[1], gen.n_rings
    alpha = torch.arange(1, r + 1, dtype=x.dtype, device=x.device) / r  # [R]
    est = (dist[:, :, None] * alpha).reshape(-1, k * r)  # [A, K*R] index = k * R + a
    order = est.argsort(dim=1, stable=True)  # [A, K*R]
    step = k * r if gen.patience is None else gen.n_candidates
    group, cont = ctx.space.in_group, ctx.space.cont_all  # [D], [Dc]
    nx, d = x.shape
    bank = torch.cat([x, pool])  # [N + P, D] the block's factuals, then the pool
    cols = torch.arange(d, device=x.device)
    local = torch.arange(rows.shape[0], device=x.device)  # positions in idx / order
    for s in range(0, k * r, step):
        if local.numel() == 0:
            break
        o = order[local, s:s + step]  # [A, S]
        xa = x[rows[local]]  # [A, D]
        a = alpha[o % r]  # [A, S]
        seed = nx + idx[local[:, None], o // r]  # [A, S] rows of [x; pool]
        own = torch.where(a > 0.5, seed, rows[local][:, None])  # the groups' source rows
        src = torch.where(group, own[..., None], seed[..., None])  # [A, S, D]
        pts = bank.take(src * d + cols)  # [A, S, D] groups whole, the rest the seed's
        if cont.numel():  # x + a (seed - x) outside the groups
            xc = xa[:, None, cont]
            pts[:, :, cont] = xc + a[..., None] * (pts[:, :, cont] - xc)
        t = ctx.t[rows[local]]
        best.update(rows[local], *_score(ctx, pts, xa, t, rows[local]))
        if gen.patience is not None:
            local = local[~best.found[rows[local]]]


def _children(ctx, rows, idx):
    """[A, M, D] children of rows [A]: from each row's best point or a seed, each feature
    reverted to the factual, shrunk toward it, or (rows without a valid point) taken from
    another seed and stretched away from it; one-hot groups stay whole copies.

    Each feature of a child is first copied from one source row (factual, best point, or a
    seed: one gather from the stacked rows), then the columns outside the groups are scaled
    about the factual (a reverted column stays the factual's exactly).
    """
    gen, c, g, space = ctx.gen, ctx.space.c, ctx.g, ctx.space
    x, best_x, found = ctx.x[rows], ctx.best.x[rows], ctx.best.found[rows]
    n, k = idx.shape
    m, f, fid, d = gen.n_candidates, c.n_feature_ids, c.feature_index, x.shape[1]
    dev = x.device

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=x.dtype, device=dev)

    ar = torch.arange(n, device=dev)[:, None]  # [N, 1]
    seed_a = idx[ar, torch.randint(0, k, (n, m), generator=g, device=dev)]  # [N, M] pool rows
    seed_b = idx[ar, torch.randint(0, k, (n, m), generator=g, device=dev)]
    found = found[:, None].expand(n, m)  # [N, M]
    from_best = rand(n, m) < torch.where(found, 0.75, 0.5)
    u = rand(n, m, f)
    p_revert = rand(n, m, 1) * torch.where(found, 0.8, 0.1)[..., None]
    revert = u < p_revert  # [N, M, F]
    swap = (u > 1 - 0.4 * rand(n, m, 1)) & ~found[..., None]
    stretch = torch.where(found[..., None], 0.5 + 0.5 * rand(n, m, f), 1.0 + rand(n, m, f))
    scaled = rand(n, m, 1) < 0.5  # [N, M, 1]
    # source rows in [x; best_x; pool]: the factual, the parent (best point or seed a), seed b
    bank = torch.cat([x, best_x, space.pool])  # [2N + P, D]
    parent = torch.where(from_best, n + ar, 2 * n + seed_a)  # [N, M]
    src = torch.where(revert, ar[..., None], torch.where(swap, (2 * n + seed_b)[..., None],
                                                         parent[..., None]))  # [N, M, F]
    cols = torch.arange(d, device=dev)
    child = bank.take(src.gather(2, fid.expand(n, m, d)) * d + cols)  # [N, M, D]
    cont = space.cont_all  # [Dc] columns outside the groups
    if cont.numel():
        xc = x[:, None, cont]  # [N, 1, Dc]
        scale = torch.where(scaled, stretch.gather(2, fid[cont].expand(n, m, -1)), 1.0)
        child[:, :, cont] = xc + scale * (child[:, :, cont] - xc)
    return child


def generations(ctx, rows, idx):
    """The random search of rows [A] (their seeds ``idx`` [A, K]) into ``ctx.best``.

    With ``patience``, a row with a valid point whose cost did not improve for ``patience``
    generations in a row stops (its later children are not scored).
    """
    gen, best = ctx.gen, ctx.best
    local = torch.arange(rows.shape[0], device=rows.device)
    stale = torch.zeros(rows.shape[0], dtype=torch.long, device=rows.device)  # [A]
    for _ in range(gen.n_generations):
        if local.numel() == 0:
            break
        act = rows[local]
        cand = _children(ctx, act, idx[local])
        better = best.update(act, *_score(ctx, cand, ctx.x[act], ctx.t[act], act))
        if gen.patience is not None:
            stale[local] = torch.where(better, 0, stale[local] + 1)
            local = local[~best.found[act] | (stale[local] < gen.patience)]


def _project_some(space, cand, x, mask, frozen=None):
    """``space.project`` of the candidates cand [N, M, D] where mask [N, M] holds (the others
    are left as they are; ``frozen`` [N, D] or None); the candidates are projected in
    place."""
    if bool(mask.all()):
        return space.project(cand, x, frozen)
    rows = mask.nonzero()[:, 0]  # [P] the row of each masked candidate
    fz = None if frozen is None else frozen[rows]
    cand[mask] = space.project(cand[mask][:, None, :], x[rows], fz)[:, 0]
    return cand


def _score_some(ctx, cand, x, t, mask, rows):
    """:func:`_score` of the candidates [N, M, D] of rows [N] where ``mask`` [N, M] holds;
    the others get p = -1 and are not valid (and cost neither projection nor a model call)."""
    n, m, d = cand.shape
    p = torch.full((n, m), -1.0, dtype=x.dtype, device=x.device)
    ok = torch.zeros(n, m, dtype=torch.bool, device=x.device)
    cost = torch.full((n, m), float("inf"), dtype=x.dtype, device=x.device)
    if not bool(mask.any()):
        return cand, cost, p, ok
    cand = _project_some(ctx.space, cand, x, mask, ctx.frozen_of(rows))  # [N, M, D]
    at = mask.nonzero()[:, 0]
    cost[mask] = ((cand[mask] - x[at]).abs() * ctx.space.w).sum(dim=1)
    tt = t[:, None].expand(n, m)[mask]
    ps, hit = target_scores(ctx.model, cand[mask], tt, ctx.gen.chunk_size)
    p[mask] = ps
    ok[mask] = hit & (ps >= ctx.tau)
    return cand, cost, p, ok


def bisect(ctx, rows, idx, steps):
    """Pull each valid best point of rows [A] toward its factual along several segments.

    Directions: the best point and, for a row whose best point changes two or more columns
    outside the one-hot groups, its ``n_candidates - 1`` nearest seeds idx [A, K] as the
    constraints allow them (projected; columns outside the groups only, the groups stay the
    best point's). Direction j's point at cost level ``r`` is ``x + min(1, r / c_j) (e_j - x)``
    (``c_j``: the cost of its end ``e_j`` outside the groups). ``r`` is halved ``steps`` times
    between 0 and the best point's cost, one model call per step for all rows: a level with a
    valid point moves the upper end down and drops the directions invalid at it, else the
    lower end moves up; an end found invalid is not scored again. A point replaces the best
    one only when it is valid and cheaper, so no row gets costlier or loses its validity.
    """
    best, cont = ctx.best, ctx.space.cont_all
    x, b = ctx.x[rows], best.x[rows]  # [A, D]
    moved = (b[:, cont] != x[:, cont]).sum(dim=1)  # [A] changed columns outside the groups
    keep = best.found[rows] & (moved > 0)
    if steps == 0 or not bool(keep.any()):
        return
    rows, idx, x, b, moved = rows[keep], idx[keep], x[keep], b[keep], moved[keep]
    t, a = ctx.t[rows], rows.shape[0]
    m = min(ctx.gen.n_candidates, idx.shape[1] + 1)
    ends = b[:, None, :].repeat(1, m, 1)  # [A, M, D] direction 0: the best point
    ends[:, 1:, cont] = ctx.space.pool[idx[:, :m - 1]][:, :, cont]
    live = (moved >= 2)[:, None].expand(a, m).clone()  # [A, M] directions still tried
    live[:, 0] = False
    ends = _project_some(ctx.space, ends, x, live, ctx.frozen_of(rows))  # as constraints allow
    live[:, 0] = True
    xc = x[:, None, cont]  # [A, 1, Dc]
    reach = ((ends[:, :, cont] - xc).abs() * ctx.space.w[cont]).sum(dim=2)  # [A, M]
    live &= reach > 0
    lo, hi = x.new_zeros(a), reach[:, 0].clone()  # [A] the cost levels' interval
    for _ in range(steps):
        mid = (lo + hi) / 2
        frac = (mid[:, None] / reach.clamp_min(torch.finfo(x.dtype).tiny)).clamp(max=1.0)
        pts = ends.clone()  # [A, M, D]
        pts[:, :, cont] = xc + frac[..., None] * (ends[:, :, cont] - xc)
        cand, cost, p, ok = _score_some(ctx, pts, x, t, live, rows)
        best.update(rows, cand, cost, p, ok)
        hit = ok.any(dim=1)  # [A]
        hi = torch.where(hit, mid, hi)
        lo = torch.where(hit, lo, mid)
        live &= (ok | ~hit[:, None]) & (ok | (frac < 1))


#: Fractions of its change a shrink step takes off one column (1: back to the factual's).
SHRINK = (1.0, 0.5, 0.25)


def shrink(ctx, rows, rounds):
    """Move columns of each valid best point of rows [A] toward the factual.

    Per round, the candidates of a row are its best point with one of its ``n_candidates``
    costliest changed columns outside the one-hot groups moved toward the factual by each
    fraction of :data:`SHRINK` (one model call per ``chunk_size`` candidates; padding
    candidates are not scored), then the point with every such column moved by the largest
    fraction valid on its own (scored where two or more columns have one). The cheapest valid
    point becomes the best point where it is cheaper; a row stops at the first round that does
    not improve it.
    """
    best, cont, gen = ctx.best, ctx.space.cont_all, ctx.gen
    rows = rows[best.found[rows]]
    if rows.numel() == 0 or cont.numel() == 0:
        return
    frac = torch.tensor(SHRINK, dtype=ctx.x.dtype, device=ctx.x.device)  # [S]
    w = ctx.space.w[cont]  # [K]
    for _ in range(rounds):
        change = (best.x[rows][:, cont] - ctx.x[rows][:, cont]).abs() * w  # [A, K]
        n_top = min(int((change > 0).sum(dim=1).max()), gen.n_candidates)
        if n_top == 0:
            break
        top = change.topk(n_top, dim=1)  # [A, L] the costliest changes first
        step = max(1, gen.chunk_size // (n_top * len(SHRINK)))
        better = torch.cat([_shrink_rows(ctx, rows[i:i + step], cont[top.indices[i:i + step]],
                                         top.values[i:i + step] > 0, frac)
                            for i in range(0, rows.shape[0], step)])  # chunks bound memory
        rows = rows[better]
        if rows.numel() == 0:
            break


def _shrink_rows(ctx, rows, cols, real, frac):
    """One shrink round of rows [A]: column cols [A, L] of each best point moved toward the
    factual by each fraction frac [S] (where real [A, L]), then all of them at once by their
    largest valid fraction. Returns whether the row's best point got cheaper [A]."""
    x, b, t = ctx.x[rows], ctx.best.x[rows], ctx.t[rows]  # [A, D], [A, D], [A]
    a, n_top = cols.shape
    s, d = frac.shape[0], x.shape[1]
    bv, xv = b.gather(1, cols), x.gather(1, cols)  # [A, L]
    moved = bv[:, :, None] - frac * (bv - xv)[:, :, None]  # [A, L, S]
    pts = b[:, None, None, :].repeat(1, n_top, s, 1)  # [A, L, S, D]
    pts.scatter_(3, cols[:, :, None, None].expand(a, n_top, s, 1), moved[..., None])
    mask = real[:, :, None].expand(a, n_top, s).reshape(a, n_top * s)
    scored = _score_some(ctx, pts.reshape(a, n_top * s, d), x, t, mask, rows)
    better = ctx.best.update(rows, *scored)
    ok = scored[3].reshape(a, n_top, s)  # [A, L, S]
    first = torch.where(ok.any(dim=2), ok.int().argmax(dim=2), s)  # [A, L] largest valid
    f = torch.cat([frac, frac.new_zeros(1)])[first]  # [A, L] (0: no valid move)
    both = b.scatter(1, cols, bv - f * (bv - xv))[:, None, :]  # [A, 1, D] every move at once
    many = ((f > 0).sum(dim=1) >= 2)[:, None]  # [A, 1] (one move: scored above)
    return better | ctx.best.update(rows, *_score_some(ctx, both, x, t, many, rows))


class _Context:
    """What every step of one block's search reads (model, rows, generator, draws, best, the
    frozen columns [N, D] or None)."""

    def __init__(self, model, x, t, gen, space, tau, g, frozen=None):
        self.model, self.x, self.t, self.gen, self.space = model, x, t, gen, space
        self.tau, self.g, self.frozen = float(tau), g, frozen
        self.best = Best(x)

    def frozen_of(self, rows):
        """The frozen columns [A, D] of rows [A] (indices), or None."""
        return None if self.frozen is None else self.frozen[rows]


def _seeds(space, pool_class, x, t, k, share):
    """(index [N, K], distance [N, K]) of each row's seeds: its k nearest pool rows of its
    target class, or with ``share`` = (offset [N] long, stride s) the ones ranked
    ``offset, offset + s, ...`` among its ``k * s`` nearest (copies of a factual with offsets
    0 .. s-1 get different seeds, offset 0 the nearest)."""
    if share is None:
        return neighbours(space, pool_class, x, t, k)
    offset, stride = share
    idx, dist = neighbours(space, pool_class, x, t, k * stride)  # [N, k * s]
    ranks = offset[:, None] + stride * torch.arange(k, device=x.device)  # [N, k]
    return idx.gather(1, ranks), dist.gather(1, ranks)


def search_block(model, x, t, gen, space, pool_class, tau, g, frozen=None, share=None):
    """The search of one block of rows: (best points [N, D], p(target) [N], found [N]).

    ``frozen`` [N, D] bool (or None): columns every candidate of a row keeps at the factual.
    ``share`` (or None): (offset [N], stride s), the rows' shares of the seeds (see
    :func:`_seeds`); each row then gets ``1/s`` of the seeds it could take alone.

    Rings and generations over each row's ``n_neighbors`` nearest seeds; then the rows still
    without a valid point get a second, wider pass over their next ``wide_neighbors`` seeds
    (rings, then generations), so that the extra model calls go to those rows only. Neither
    pass takes more seeds than the largest target class of the pool has rows. Last, the valid
    points are refined toward their factuals: :func:`bisect` (``n_bisect`` steps), then
    :func:`shrink` (``n_shrink`` rounds).
    """
    ctx = _Context(model, x, t, gen, space, tau, g, frozen)
    rows = torch.arange(x.shape[0], device=x.device)
    # no more seeds than the largest target class has rows (a class with none: the pool)
    counts = (pool_class[None, :] == torch.unique(t)[:, None]).sum(dim=1)  # [classes]
    avail = int(torch.where(counts == 0, pool_class.numel(), counts).max())
    if share is not None:
        avail = max(1, avail // share[1])  # seeds per share
    k = min(gen.n_neighbors, avail)
    idx, dist = _seeds(space, pool_class, x, t, k, share)  # [N, K]
    rings(ctx, rows, idx, dist, ctx.best)
    generations(ctx, rows, idx)
    miss = (~ctx.best.found).nonzero().squeeze(1)
    wide = min(k + gen.wide_neighbors, avail)
    if miss.numel() and wide > k:
        part = None if share is None else (share[0][miss], share[1])
        far, dist = _seeds(space, pool_class, x[miss], t[miss], wide, part)  # [N_miss, wide]
        rings(ctx, miss, far[:, k:], dist[:, k:], ctx.best)  # the first k were tried
        generations(ctx, miss, far)
    bisect(ctx, rows, idx, gen.n_bisect)  # then the rows with a valid point are refined
    shrink(ctx, rows, gen.n_shrink)
    return ctx.best.x, ctx.best.proba, ctx.best.found
