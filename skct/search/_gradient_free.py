"""Counterfactual search without gradients, for any classifier with ``predict_proba``.

:class:`GradientFreeGenerator` needs only the model's class probabilities, so it explains
gradient boosting, random forests, linear models or torch nets alike. All rows are searched at
once: the seeds of a row are the nearest reference rows the model assigns to the row's target
class (weighted L1 over the columns that may change), then

1. *rings*: points on the segment from the factual to each seed at ``n_rings`` fractions of
   the way (a growing-spheres search along the directions to the target class; a one-hot
   group takes the seed's level past half way), scored cheapest first;
2. *generations*: children of the row's cheapest valid point (or of its seeds while it has
   none), in which each feature is reverted to the factual, shrunk toward it, or taken from
   another seed at random;
3. a *wider pass* for the rows still without a valid point: rings over their next
   ``wide_neighbors`` seeds, then generations (no extra model call for the other rows);
4. a *refinement* of every valid point toward its factual: a bisection on the cost level of
   points on the segments from the factual to the point and (for a point that changes two or
   more numeric columns) to the row's nearest seeds, ``n_bisect`` steps of one model call for
   all rows, then ``n_shrink`` rounds that move single changed numeric columns part or all of
   the way back to the factual, and all of them at once by their largest valid fractions.
   A refined point replaces the row's point only when it is valid and cheaper.

A row stops early (``patience``): its rings at the first model call that gives it a valid
point, its generations once that point's cost stopped improving; later calls score only the
rows still searching.

Every candidate is projected onto the constraints (mutability, bounds widened to the factual,
one-hot levels, integer grids in raw units, ``max_changed``), so every constraint holds by
construction: its one-hot groups are whole copies of valid groups (the factual's, or the seeds'
hardened once per call) and the other columns go through :func:`~skct.search.project`, which
gives what the full projection gives. The candidates of all rows of a ring or generation are
scored by one model call per chunk of ``chunk_size`` rows. A row keeps its cheapest valid
candidate (cost ``sum_d cost_weight_d |x'_d - x_d|``, the constraints' weights: the MAD cost
in the user's units when the explainer sets them).
"""

from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from .._config import get_config
from .._utils import Interval
from ..constraints import TorchConstraints
from ._gf_steps import CandidateSpace, search_block
from ._projection import feature_changes
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
    max_rows : int, default=4096
        Most rows per ``predict_proba`` call: larger inputs are scored in pieces of this many
        rows (tree ensembles walk every tree over all the rows of a call, which is faster per
        row while the rows fit in the processor's cache).

    Notes
    -----
    ``predict_proba`` runs with the OpenMP and BLAS thread pools limited to skct's
    ``torch_threads`` (:func:`skct.get_config`; default 1, 0 leaves them alone): skct's
    searches call the model many times, and on shared cores a second thread waiting for a busy
    core made those calls many times slower.

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

    def __init__(self, estimator, dtype=torch.float64, max_rows=4096):
        super().__init__()
        self.estimator = estimator
        self.max_rows = int(max_rows)
        self.register_buffer("dtype_marker", torch.zeros(0, dtype=dtype), persistent=False)

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(
                f"{type(self.estimator).__name__} has no gradients: it is evaluated through "
                "predict_proba only; use generator='gradient_free' for its counterfactuals, "
                "and metrics that do not differentiate the model.")
        Z = x.detach().cpu().numpy()
        names = getattr(self.estimator, "feature_names_in_", None)
        frame = names is not None and len(names) == Z.shape[1]
        if frame:
            import pandas as pd
        parts = []
        with _native_threads(get_config()["torch_threads"]):
            for s in range(0, Z.shape[0], self.max_rows):  # cache-sized calls
                part = Z[s:s + self.max_rows]
                part = pd.DataFrame(part, columns=names) if frame else part
                parts.append(np.asarray(self.estimator.predict_proba(part), dtype=np.float64))
        p = np.concatenate(parts) if parts else np.zeros((0, len(self.estimator.classes_)))
        p = torch.as_tensor(p, dtype=x.dtype, device=x.device)  # [n, C]
        return torch.log(p.clamp_min(torch.finfo(x.dtype).tiny))


_CONTROLLER = []  # one threadpoolctl controller, made on first use (it lists the libraries)


def _native_threads(n):
    """Context that runs the OpenMP and BLAS pools with at most ``n`` threads (0: as they
    are), as skct runs torch: on shared cores a second thread that waits for a busy core
    made predict_proba of gradient boosting many times slower."""
    if n <= 0:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n)


class GradientFreeGenerator(BaseGenerator):
    """Counterfactuals from class probabilities only: seeded rings, then a random search.

    Works for any fitted classifier with ``predict_proba`` (through :class:`ProbaLogits`) and
    for torch nets. See :func:`gradient_free_search` for the search itself; ``fit`` keeps the
    reference pool of rows per class in the model's input space.

    Parameters
    ----------
    n_neighbors : int, default=100
        Seeds per row: the nearest reference rows of the target class.
    n_rings : int, default=2
        Fractions ``1/n_rings, ..., 1`` of the way from the factual to each seed tried.
    n_candidates : int, default=16
        Children per row and generation, and ring points per row and model call.
    n_generations : int, default=4
        Generations of the random search.
    patience : int or None, default=1
        Early stop per row: a row that has a valid counterfactual stops once its cost did not
        improve for ``patience`` generations in a row, and its ring points are scored
        ``n_candidates`` at a time, cheapest first, up to the first call that gives it a valid
        point; only the rows still searching are scored in later calls. None: every row
        scores all its ring points and children (slower, rarely cheaper).
    wide_neighbors : int, default=400
        Seeds of the wider pass, for the rows without a valid point after the first: their
        next ``wide_neighbors`` nearest reference rows of the target class (0: no such pass).
        It finds points for rows whose nearest seeds stop being valid once projected (for
        instance when the model leans on a column that may not change).
    n_bisect : int, default=5
        Steps of the refinement's bisection (0: none): the cost level of points on the
        segments from the factual to its valid point and to its ``n_candidates - 1`` nearest
        seeds (the seeds only where the point changes two or more columns outside one-hot
        groups) is halved this many times, keeping the cheapest valid point.
    n_shrink : int, default=6
        Rounds of the refinement's shrink steps (0: none): each round moves each of the
        ``n_candidates`` costliest changed columns outside one-hot groups of a row's valid
        point back toward the factual by 1, 1/2 and 1/4 of its change, one column at a time,
        then all of them by their largest valid fractions; a row stops once a round finds
        nothing cheaper.
    max_pool : int, default=2000
        At most this many reference rows per class (a seeded random subset of the others).
    chunk_size : int, default=65536
        Most candidate rows held and scored at once (rows are searched in blocks of
        ``chunk_size // n_candidates`` rows, fewer with ``patience=None``); bounds the
        memory, not the result for a block.
    random_state : int or None, default=None
        Seeds the pool's subset and the search's draws.

    Notes
    -----
    The defaults favour speed, and the refinement (``n_bisect``, ``n_shrink``) buys back the
    cost a longer search found. Measured with ``benchmarks/bench_gradient_free.py`` (300
    rejected rows of HELOC and credit default, gradient boosting and random forests), the
    mean cost in MAD units of the defaults, of the longer search ``n_neighbors=20, n_rings=8,
    n_candidates=64, n_generations=8`` (no refinement) and of the defaults without the
    refinement (``n_bisect=0, n_shrink=0``): HELOC 1.60 / 1.56 / 2.48 (gradient boosting),
    7.80 / 9.23 / 10.17 (random forest); credit default 3.63 / 4.01 / 4.77 and 7.65 / 9.38 /
    10.18; validity 0.99-1.00, no lower than either. The longer search took 1.2-1.9x the
    defaults' CPU time, the defaults 1.6-1.9x that without the refinement. On Adult (500 rows,
    gradient boosting, ``benchmarks/bench_peers.py``) the refinement lowers the mean cost from
    1.31 to 1.25 MAD at validity 1.0 and takes about 0.06 s of the 0.36 s CPU of a call
    (79-85% of the rows per CPU second without it).

    Several options per row (``CounterfactualExplainer(n_per_row=k, diversity=...)``) come
    from the ``frozen``, ``seed_share`` and ``apart`` arguments of
    :func:`gradient_free_search`. On the same 500 Adult rows with ``k = 3`` (part 1b of
    ``benchmarks/bench_peers.py``), the distinct changed-feature sets per row, mean pairwise
    distance (MAD) and validity were 1.17 / 0.23 / 1.0 when the copies differed only by the
    search's draws, and 1.58 / 0.91 / 1.0 with ``"starts"``, 2.49 / 3.77 / 1.0 with
    ``"pairwise"`` (options at 2.3x the cost, 1.9x the time of ``"starts"``), 1.76 / 2.61 /
    0.88 with ``"subsets"`` and 1.88 / 2.73 / 0.89 with ``"disjoint"``; on 20 German credit
    rows with ``k = 5``: 1.55 / 0.52 / 1.0 before, 3.05-4.45 / 1.68-3.22 / 0.99-1.0 after.

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
        "wide_neighbors": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_rings": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_candidates": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_generations": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_bisect": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_shrink": [Interval(numbers.Integral, 0, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_pool": [Interval(numbers.Integral, 1, None, closed="left")],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    #: The search evaluates the model only: no torch module or gradients needed.
    gradient_free = True

    def __init__(self, *, n_neighbors=100, n_rings=2, n_candidates=16, n_generations=4,
                 patience=1, wide_neighbors=400, n_bisect=5, n_shrink=6, max_pool=2000,
                 chunk_size=65536, random_state=None):
        self.n_neighbors = n_neighbors
        self.wide_neighbors = wide_neighbors
        self.n_rings = n_rings
        self.n_candidates = n_candidates
        self.n_generations = n_generations
        self.patience = patience
        self.n_bisect = n_bisect
        self.n_shrink = n_shrink
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


def gradient_free_search(model, x, target, generator, constraints=None, *,
                         decision_threshold=0.75, frozen=None, seed_share=None, apart=False):
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
    frozen : Tensor [N, D] bool or None, default=None
        Columns each row keeps at its factual's value in every candidate, as if immutable for
        that row only (freeze a one-hot group's columns together, as
        :meth:`~skct.search.DiverseGenerator.frozen_mask` does).
    seed_share : (Tensor [N] long, int) or None, default=None
        ``(offset, s)``: row ``i`` takes as seeds the reference rows ranked ``offset[i],
        offset[i] + s, offset[i] + 2 s, ...`` by distance (``0 <= offset < s``), so that the
        ``s`` copies of a factual with offsets ``0 .. s-1`` head for different parts of the
        target class (offset 0 keeps the nearest). None: every row takes its nearest seeds.
    apart : bool, default=False
        With ``seed_share``: the rows ``i - offset[i]`` are the copies 0 of groups of
        adjacent copies, and a copy whose valid point changes the same features as an earlier
        valid copy's is searched again with those features and copy 0's frozen (one more
        search of those rows together); a valid point it finds replaces the copy's.

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
    frozen, share = _check_copies(x, frozen, seed_share)
    c = constraints if constraints is not None else TorchConstraints.unconstrained(
        x.shape[1], dtype=x.dtype, device=x.device)
    g = torch.Generator(device=x.device)
    rs = generator.random_state
    g.manual_seed(int(rs) if isinstance(rs, numbers.Integral) else
                  int(np.random.randint(0, 2**31 - 1)))
    if x.shape[0] == 0:
        return x.clone(), x.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=x.device)
    if generator.pool_.shape[0] == 0:
        raise ValueError("The gradient-free generator's reference pool is empty: fit it on "
                         "rows the model classifies.")
    pool = torch.as_tensor(generator.pool_, dtype=x.dtype, device=x.device)  # [P, D]
    pool_class = torch.as_tensor(generator.pool_class_, device=x.device)  # [P]
    used = torch.isin(pool_class, target)  # the target classes' rows are the seeds
    missing = ~torch.isin(target, pool_class[used])  # [N] rows whose class has no pool row
    if bool(missing.any()):  # seeds come from every row: a blind, costlier search
        classes = ", ".join(str(k) for k in sorted(set(target[missing].tolist())))
        warnings.warn(  # one message per set of classes: shown once, not once per chunk
            "The gradient-free search starts from reference rows the model assigns to the "
            f"target class, and the rows it was fitted on include none of the target class "
            f"(index {classes} of the model's classes): its rows are searched from rows of "
            "other classes, and their counterfactuals come out costlier. Fit it on rows that "
            "include the target class, such as the training data (recourse_audit: "
            "reference=X_train).", UserWarning, stacklevel=2)
    else:
        pool, pool_class = pool[used], pool_class[used]
    space = CandidateSpace(c, pool)  # the pool's groups hardened once
    k = generator.n_neighbors + generator.wide_neighbors
    per_row = max(generator.n_candidates, k * generator.n_rings
                  if generator.patience is None else 0)
    block = max(1, generator.chunk_size // per_row)
    outs = [search_block(model, x[s:s + block], target[s:s + block], generator, space,
                         pool_class, decision_threshold, g,
                         None if frozen is None else frozen[s:s + block],
                         None if share is None else (share[0][s:s + block], share[1]))
            for s in range(0, x.shape[0], block)]  # blocks of rows bound the memory
    out = tuple(torch.cat(parts) for parts in zip(*outs))
    if apart and share is not None:
        out = _apart(model, x, target, generator, c, decision_threshold, frozen, share, out)
    return out


def _apart(model, x, target, generator, c, tau, frozen, share, out):
    """``out`` (x_cf [N, D], proba [N], found [N]) with the copies whose valid point changes
    the same features as an earlier valid copy's searched again with those features and copy
    0's frozen."""
    x_cf, proba, found = out
    offset, stride = share
    n = x.shape[0]
    first = torch.arange(n, device=x.device) - offset  # [N] the row of copy 0
    changed = feature_changes(x_cf, x, c)[1]  # [N, F]
    ar = torch.arange(stride, device=x.device)
    mates = first[:, None] + ar  # [N, s] the rows of the copies of the same factual
    earlier = (mates < n) & (ar < offset[:, None])
    mates = mates.clamp(max=n - 1)
    earlier &= (first[mates] == first[:, None]) & found[mates]  # valid earlier copies
    same = ((changed[mates] == changed[:, None]).all(dim=2) & earlier).any(dim=1) & found
    rows = same.nonzero().squeeze(1)  # [A] copies repeating an earlier copy's features
    if rows.numel() == 0:
        return out
    fz = (changed[rows] | changed[first[rows]])[:, c.feature_index]  # [A, D] and copy 0's
    fz = fz if frozen is None else fz | frozen[rows]
    x2, p2, f2 = gradient_free_search(model, x[rows], target[rows], generator, c,
                                      decision_threshold=tau, frozen=fz,
                                      seed_share=(offset[rows], stride))
    keep = rows[f2]
    x_cf, proba = x_cf.clone(), proba.clone()
    x_cf[keep], proba[keep] = x2[f2], p2[f2]
    return x_cf, proba, found


def _check_copies(x, frozen, seed_share):
    """``frozen`` as a bool tensor [N, D] on x's device (or None) and ``seed_share`` as
    (offset [N] long, stride) (None where the stride is 1 and every offset 0)."""
    n, d = x.shape
    if frozen is not None:
        frozen = torch.as_tensor(frozen, device=x.device)
        if frozen.shape != (n, d) or frozen.dtype != torch.bool:
            raise ValueError(f"frozen must be a bool mask of shape {(n, d)}, got "
                             f"{frozen.dtype} {tuple(frozen.shape)}.")
        if not bool(frozen.any()):
            frozen = None
    if seed_share is None:
        return frozen, None
    offset, stride = seed_share
    offset = torch.as_tensor(offset, device=x.device).long().reshape(-1)
    stride = int(stride)
    if stride < 1 or offset.shape[0] != n or bool(((offset < 0) | (offset >= stride)).any()):
        raise ValueError(f"seed_share must be (offsets, s) with s >= 1 and one offset in "
                         f"0 .. s-1 per row, got s={stride} and {offset.shape[0]} offsets.")
    return frozen, (None if stride == 1 else (offset, stride))
