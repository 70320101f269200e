"""Counterfactual search without gradients, for any classifier with ``predict_proba``.

:class:`GradientFreeGenerator` needs only the model's class probabilities, so it explains
gradient boosting, random forests, linear models or torch nets alike. All rows are searched at
once: the seeds of a row are the nearest reference rows the model assigns to the row's target
class (weighted L1 over the columns that may change), then

1. *rings*: points on the segment from the factual to each seed at ``n_rings`` fractions of
   the way (a growing-spheres search along the directions to the target class), scored
   cheapest first;
2. *generations*: children of the row's cheapest valid point (or of its seeds while it has
   none), in which each feature is reverted to the factual, shrunk toward it, or taken from
   another seed at random.

A row stops early (``patience``): its rings at the first model call that gives it a valid
point, its generations once that point's cost stopped improving; later calls score only the
rows still searching.

Every candidate is projected with :func:`~skct.search.project` (mutability, bounds widened to
the factual, one-hot levels, integer grids in raw units, ``max_changed``), so every constraint
holds by construction, and the candidates of all rows of a generation are scored by one model
call per chunk of ``chunk_size`` rows. A row keeps its cheapest valid candidate (cost
``sum_d cost_weight_d |x'_d - x_d|``, the constraints' weights: the MAD cost in the user's
units when the explainer sets them).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from .._utils import Interval, eval_mode
from ..constraints import TorchConstraints
from ._projection import feature_changes, project
from .generators._base import BaseGenerator

__all__ = ["GradientFreeGenerator", "ProbaLogits", "gradient_free_search"]


class ProbaLogits(torch.nn.Module):
    """A classifier's ``predict_proba`` seen as a torch module returning log-probabilities.

    Log-probabilities are logits up to a per-row constant, so ``softmax`` of the output gives
    the classifier's probabilities back. The module has no gradients: it evaluates only (as
    :func:`~skct.search.sparsify`, the gradient-free search and the validity metrics do), and
    calling it on an input that requires a gradient raises an error.

    Parameters
    ----------
    estimator : fitted classifier
        Anything with ``predict_proba`` on model-space rows (a Pipeline's final step).
    dtype : torch.dtype, default=torch.float64
        Floating dtype its inputs should have (reported through a buffer, so that code that
        reads a module's dtype from its tensors finds it).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skct.search import ProbaLogits
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> logits = ProbaLogits(clf)(torch.tensor(X))
    >>> np.allclose(torch.softmax(logits, 1).numpy(), clf.predict_proba(X))
    True
    """

    #: The module evaluates only (no gradients with respect to its input).
    differentiable = False

    def __init__(self, estimator, dtype=torch.float64):
        super().__init__()
        self.estimator = estimator
        self.register_buffer("dtype_marker", torch.zeros(0, dtype=dtype), persistent=False)

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(
                f"{type(self.estimator).__name__} has no gradients: it is evaluated through "
                "predict_proba only; use generator='gradient_free' for its counterfactuals, "
                "and metrics that do not differentiate the model.")
        Z = x.detach().cpu().numpy()
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None and len(names) == Z.shape[1]:
            import pandas as pd

            Z = pd.DataFrame(Z, columns=names)
        p = np.asarray(self.estimator.predict_proba(Z), dtype=np.float64)  # [n, C]
        p = torch.as_tensor(p, dtype=x.dtype, device=x.device)
        return torch.log(p.clamp_min(torch.finfo(x.dtype).tiny))


class GradientFreeGenerator(BaseGenerator):
    """Counterfactuals from class probabilities only: seeded rings, then a random search.

    Works for any fitted classifier with ``predict_proba`` (through :class:`ProbaLogits`) and
    for torch nets. See :func:`gradient_free_search` for the search itself; ``fit`` keeps the
    reference pool of rows per class in the model's input space.

    Parameters
    ----------
    n_neighbors : int, default=20
        Seeds per row: the nearest reference rows of the target class.
    n_rings : int, default=8
        Fractions ``1/n_rings, ..., 1`` of the way from the factual to each seed tried.
    n_candidates : int, default=64
        Children per row and generation.
    n_generations : int, default=8
        Generations of the random search.
    patience : int or None, default=1
        Early stop per row: a row that has a valid counterfactual stops once its cost did not
        improve for ``patience`` generations in a row, and its ring points are scored
        ``n_candidates`` at a time, cheapest first, up to the first call that gives it a valid
        point; only the rows still searching are scored in later calls. None: every row
        scores all its ring points and children (slower, rarely cheaper).
    max_pool : int, default=2000
        At most this many reference rows per class (a seeded random subset of the others).
    chunk_size : int, default=65536
        Most candidate rows held and scored at once (rows are searched in blocks of
        ``chunk_size // n_candidates``); bounds the memory, not the result for a block.
    random_state : int or None, default=None
        Seeds the pool's subset and the search's draws.

    Attributes
    ----------
    pool_ : ndarray of shape (n_pool, n_features)
        Reference rows in the model's input space.
    pool_class_ : ndarray of int, shape (n_pool,)
        The class index of each pool row (what the model predicts for it).

    Examples
    --------
    >>> import numpy as np
    >>> from skct.search.generators import GradientFreeGenerator
    >>> X = np.random.RandomState(0).randn(50, 3)
    >>> gen = GradientFreeGenerator(max_pool=10, random_state=0).fit(X, (X[:, 0] > 0) * 1)
    >>> gen.pool_.shape
    (20, 3)
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_rings": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_candidates": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_generations": [Interval(numbers.Integral, 0, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_pool": [Interval(numbers.Integral, 1, None, closed="left")],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    #: The search evaluates the model only: no torch module or gradients needed.
    gradient_free = True

    def __init__(self, *, n_neighbors=20, n_rings=8, n_candidates=64, n_generations=8,
                 patience=1, max_pool=2000, chunk_size=65536, random_state=None):
        self.n_neighbors = n_neighbors
        self.n_rings = n_rings
        self.n_candidates = n_candidates
        self.n_generations = n_generations
        self.patience = patience
        self.max_pool = max_pool
        self.chunk_size = chunk_size
        self.random_state = random_state

    def fit(self, X, y=None):
        """Keep the reference pool: rows ``X`` (model space) and their class indices ``y``.

        ``y`` holds the class index the model gives each row (-1: not in the pool); None keeps
        every row under class 0 (seeds then ignore the target class).
        """
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        y = np.zeros(len(X), dtype=np.int64) if y is None else \
            np.asarray(y, dtype=np.int64).reshape(-1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} entries for {X.shape[0]} rows.")
        rng = np.random.RandomState(self.random_state if isinstance(
            self.random_state, numbers.Integral) else None)
        keep = []
        for k in np.unique(y[y >= 0]):
            rows = np.flatnonzero(y == k)
            if rows.size > self.max_pool:
                rows = np.sort(rng.choice(rows, self.max_pool, replace=False))
            keep.append(rows)
        rows = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
        self.pool_ = np.asarray(X[rows], dtype=np.float64)
        self.pool_class_ = y[rows]
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "pool_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    def loss(self, *args, **kwargs):
        raise TypeError("GradientFreeGenerator has no differentiable objective: run it with "
                        "skct.search.gradient_free_search (CounterfactualExplainer does).")


def _target_scores(model, x, t, chunk):
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


def _seeds(gen, x, t, c):
    """[N, K, D] the K nearest pool rows of each row's target class (weighted L1, mutable)."""
    pool = torch.as_tensor(gen.pool_, dtype=x.dtype, device=x.device)  # [P, D]
    pcls = torch.as_tensor(gen.pool_class_, device=x.device)  # [P]
    if pool.shape[0] == 0:
        raise ValueError("The gradient-free generator's reference pool is empty: fit it on "
                         "rows the model classifies.")
    k = gen.n_neighbors
    w = c.cost_weight * (c.mut != 0).to(x.dtype) + 1e-12  # [D]
    out = torch.empty(x.shape[0], k, x.shape[1], dtype=x.dtype, device=x.device)
    for cls in torch.unique(t).tolist():  # a loop over classes, not rows
        rows = (t == cls).nonzero().squeeze(1)
        cand = pool[pcls == cls] if bool((pcls == cls).any()) else pool  # [Pc, D]
        d = torch.cdist(x[rows] * w, cand * w, p=1)  # [R, Pc]
        kk = min(k, cand.shape[0])
        idx = d.topk(kk, dim=1, largest=False).indices  # [R, kk]
        idx = torch.cat([idx, idx[:, :1].expand(-1, k - kk)], dim=1)  # [R, K] padded
        out[rows] = cand[idx]
    return out


class _Best:
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


def _score(model, cand, x, t, c, tau, chunk):
    """Project candidates [N, M, D] and score them: (cand, cost, proba, valid), [N, M] each."""
    n, m, d = cand.shape
    ref = x[:, None, :].expand(n, m, d).reshape(n * m, d)
    flat = project(cand.reshape(n * m, d), ref, c)  # [N*M, D] every constraint holds
    cost = feature_changes(flat, ref, c)[0].sum(dim=1)  # [N*M]
    p, hit = _target_scores(model, flat, t.repeat_interleave(m), chunk)
    ok = hit & (p >= tau)
    return flat.reshape(n, m, d), cost.reshape(n, m), p.reshape(n, m), ok.reshape(n, m)


def _children(gen, best_x, found, seeds, x, c, g):
    """[N, M, D] children of each row's best point [N, D] or seeds (see the module docstring).

    Rows with a valid point (``found`` [N]) mostly breed from it, reverting features to the
    factual and shrinking changes toward it (cheaper points); rows without one breed from
    their most probable point or a seed, taking features from another seed and stretching
    changes (more probable points; the projection keeps them in the domain).
    """
    n, k, d = seeds.shape
    m, f, fid = gen.n_candidates, c.n_feature_ids, c.feature_index  # fid: [D]

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=x.dtype, device=x.device)

    def per_col(a):  # [N, M, F] -> [N, M, D]
        return a.gather(2, fid.expand(n, m, d))

    rows = torch.arange(n, device=x.device)[:, None]
    seed_a = seeds[rows, torch.randint(0, k, (n, m), generator=g, device=x.device)]
    seed_b = seeds[rows, torch.randint(0, k, (n, m), generator=g, device=x.device)]
    found = found[:, None].expand(n, m)  # [N, M]
    from_best = rand(n, m) < torch.where(found, 0.75, 0.5)
    parent = torch.where(from_best[..., None], best_x[:, None, :], seed_a)  # [N, M, D]
    u = rand(n, m, f)
    p_revert = rand(n, m, 1) * torch.where(found, 0.8, 0.1)[..., None]
    revert = per_col(u < p_revert)
    swap = per_col(u > 1 - 0.4 * rand(n, m, 1)) & ~found[..., None]
    continuous = ~torch.isin(torch.arange(d, device=x.device), c.group_index[c.group_mask])
    stretch = torch.where(found[..., None], 0.5 + 0.5 * rand(n, m, f), 1.0 + rand(n, m, f))
    scale = torch.where(continuous & (rand(n, m, 1) < 0.5), per_col(stretch), 1.0)
    xx = x[:, None, :]
    child = xx + scale * (torch.where(swap, seed_b, parent) - xx)
    return torch.where(revert, xx.expand_as(child), child)


def _rings(model, x, t, seeds, best, gen, c, tau):
    """Score the ring points of all rows, cheapest first, into ``best``.

    Ring point ``(seed k, fraction a)`` costs ``a * cost(seed k)`` before projection; each
    row's ``K * n_rings`` points are scored in that order, ``n_candidates`` per row and model
    call, and (with ``patience``) a row stops at the first call that gives it a valid point:
    its later points cost at least as much before projection.
    """
    n, k, d = seeds.shape
    r = gen.n_rings
    alpha = torch.arange(1, r + 1, dtype=x.dtype, device=x.device) / r  # [R]
    seed_cost = ((seeds - x[:, None, :]).abs() * c.cost_weight).sum(dim=2)  # [N, K]
    est = (seed_cost[:, :, None] * alpha).reshape(n, k * r)  # [N, K*R] index = k * R + a
    order = est.argsort(dim=1, stable=True)  # [N, K*R]
    step = k * r if gen.patience is None else gen.n_candidates
    active = torch.arange(n, device=x.device)
    for s in range(0, k * r, step):
        if active.numel() == 0:
            break
        o = order[active, s:s + step]  # [A, S]
        xa = x[active]  # [A, D]
        toward = seeds[active[:, None], o // r] - xa[:, None, :]  # [A, S, D]
        pts = xa[:, None, :] + alpha[o % r][..., None] * toward
        best.update(active, *_score(model, pts, xa, t[active], c, tau, gen.chunk_size))
        if gen.patience is not None:
            active = active[~best.found[active]]


def _generations(model, x, t, seeds, best, gen, c, tau, g):
    """The random search into ``best``: each generation breeds the rows still active.

    With ``patience``, a row with a valid point whose cost did not improve for ``patience``
    generations in a row stops (its later children are not scored).
    """
    active = torch.arange(x.shape[0], device=x.device)
    stale = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)  # [N]
    for _ in range(gen.n_generations):
        if active.numel() == 0:
            break
        xa = x[active]
        cand = _children(gen, best.x[active], best.found[active], seeds[active], xa, c, g)
        better = best.update(active, *_score(model, cand, xa, t[active], c, tau,
                                             gen.chunk_size))
        if gen.patience is not None:
            stale[active] = torch.where(better, 0, stale[active] + 1)
            active = active[~best.found[active] | (stale[active] < gen.patience)]


def _search_block(model, x, t, gen, c, tau, g):
    """The search of one block of rows: (best points [N, D], p(target) [N], found [N])."""
    n, d = x.shape
    best = _Best(x)
    seeds = project(_seeds(gen, x, t, c).reshape(-1, d),
                    x.repeat_interleave(gen.n_neighbors, dim=0), c)
    seeds = seeds.reshape(n, gen.n_neighbors, d)  # [N, K, D]
    _rings(model, x, t, seeds, best, gen, c, tau)
    _generations(model, x, t, seeds, best, gen, c, tau, g)
    return best.x, best.proba, best.found


def gradient_free_search(model, x, target, generator, constraints=None, *,
                         decision_threshold=0.75):
    """Counterfactuals of all rows from the model's class probabilities (no gradients).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, D] to logits (or log-probabilities, :class:`ProbaLogits`)
        [n, C]; only evaluated, without gradients.
    x : Tensor [N, D]
        The factuals in the model's input space.
    target : Tensor [N] long
        Target class index per row.
    generator : GradientFreeGenerator
        Fitted (its reference pool gives the seeds).
    constraints : TorchConstraints or None
        None: unconstrained, unit weights.
    decision_threshold : float, default=0.75
        A candidate is valid when the model predicts the target with at least this probability.

    Returns
    -------
    x_cf : Tensor [N, D]
        Each row's cheapest valid candidate (its most probable one where none is valid);
        every constraint holds.
    proba : Tensor [N]
        p(target | x_cf).
    found : Tensor [N] bool
        Whether a valid candidate was found.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skct.search import GradientFreeGenerator, ProbaLogits, gradient_free_search
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(200, 2); y = (X[:, 0] > 0).astype(int)
    >>> rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> gen = GradientFreeGenerator(random_state=0).fit(X, rf.predict(X))
    >>> x = torch.tensor(X[y == 0][:10])
    >>> x_cf, p, found = gradient_free_search(ProbaLogits(rf), x, torch.ones(10, dtype=int), gen)
    >>> bool(found.all()), bool((rf.predict(x_cf.numpy()) == 1).all())
    (True, True)
    """
    if not hasattr(generator, "pool_"):
        raise ValueError("generator: fit the GradientFreeGenerator on reference rows first.")
    x = torch.as_tensor(x).detach()
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if x.ndim != 2 or target.shape[0] != x.shape[0]:
        raise ValueError(f"x must be 2D with one target per row, got x {tuple(x.shape)} and "
                         f"target {tuple(target.shape)}.")
    c = constraints if constraints is not None else TorchConstraints.unconstrained(
        x.shape[1], dtype=x.dtype, device=x.device)
    g = torch.Generator(device=x.device)
    rs = generator.random_state
    g.manual_seed(int(rs) if isinstance(rs, numbers.Integral) else
                  int(np.random.randint(0, 2**31 - 1)))
    per_row = max(generator.n_candidates, generator.n_neighbors * generator.n_rings)
    block = max(1, generator.chunk_size // per_row)
    outs = [_search_block(model, x[s:s + block], target[s:s + block], generator, c,
                          float(decision_threshold), g)
            for s in range(0, x.shape[0], block)]  # blocks of rows bound the memory
    if not outs:
        return x.clone(), x.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=x.device)
    return tuple(torch.cat(parts) for parts in zip(*outs))
