"""A fast path of the batched counterfactual search, with the contract of ``search``.

For the Generic and ECCo objectives, the search never builds a graph of the loss: the
gradient of the objective with respect to the logits is analytic (softmax minus one-hot, plus
the energy term), the L1 cost subgradient is added directly, and the loss value itself is
never computed. Constraints with one-hot groups, integer grids or a limit on changed
features harden every iterate before the model sees it (the straight-through value of the
engine's generators); the step then moves the soft state.

- **native search** (default for a float32 chain of ``nn.Linear`` layers with ReLU,
  LeakyReLU, Tanh or Sigmoid between them, :func:`skct.search._native_search.applies`, and
  nothing to harden): the whole
  search in one C call (:mod:`skct.search._native_search`), rows streamed through small
  tiles that stay in the L1 cache; ``return_path`` runs it twice (the lengths, then the
  iterates). ``SKCT_COMPILED_SEARCH=steps`` runs the chain step below instead.

Every other supported search runs one of three implementations of the step, which share one
loop (:mod:`skct.search._compiled_steps`, :mod:`skct.search._compiled_fused`):

- **chain** (default for a model that is a chain of ``nn.Linear`` layers and elementwise
  activations, see :func:`skct.search._compiled_plan.model_plan`): no autograd at all; the
  forward pass keeps its activations and the backward pass is ``W^T (act'(h) * g)`` per
  layer. The matrix products are torch's; for a two-class head the elementwise work between
  them (head, activation derivatives, cost, step and projection) runs in small native loops
  (:mod:`skct.search._fast_kernels`, compiled once per machine in well under a second), else
  in a few ATen calls per layer (``SKCT_COMPILED_SEARCH=aten`` forces those).
- **autograd** (any other model): one ``autograd.grad`` through the model only.
- **compiled** (opt-in for chains, ``SKCT_COMPILED_SEARCH=compile``): the chain step written
  for ``torch.compile``, which fuses the elementwise work between the matrix products into a
  few loops. Compiling takes seconds (tens on a cold cache), more than it saves in most uses,
  so it is never done unasked. The row dimension is dynamic (one compilation serves every
  batch size) and the weights are inputs read at call time, so training the model between
  searches never recompiles; compiled steps are cached per model structure, objective,
  constraint kind, dtype and thread count. Where compilation fails the chain step runs instead
  (with a warning, once per structure).

``SKCT_COMPILED_SEARCH=0`` turns the fast path off (the eager engine runs every search).
In the step loop, rows that converge are frozen by a mask and dropped from the working set
only once a quarter of it has converged. Results equal those of :func:`skct.search.search` up
to float rounding: the same per-row convergence rule (a row stops at the first step where
p(target) >= threshold), the same ``n_iter``, ``nascent``, ``target_proba`` and ``path``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import torch

from .._utils import eval_mode
from . import _fast_kernels, _modes, _native_search
from ._compiled_plan import constraints_supported, model_plan, plan_key, plan_tensors
from ._compiled_fused import make_fused_step
from ._compiled_steps import make_autograd_step, make_eager_step, make_native_step, native_applies
from ._projection import straight_through_harden

__all__ = ["supports", "compiled_search", "fast_search", "clear_cache", "compile_times",
           "SMALL_HEAD"]

#: Last linear layers with at most this many classes compute logits as fused dot products
#: (compiled step).
SMALL_HEAD = 4

#: The working set is compacted once at most this share of its rows is still searching.
COMPACT_SHARE = 0.75

#: Searches of more than 1.5 times this many rows run in equal chunks of at most this many
#: rows, one after the other, so that each chunk's activations stay in the cache (rows never
#: interact, so the results are the same; 100k rows ran 1.5x faster in chunks of 8192).
CHUNK_ROWS = 8192

_STEPS = {}  # (structure key, epsilon used) -> compiled step
_FAILED = set()  # structure keys whose compilation failed
_COMPILE_SECONDS = {}  # (structure key, epsilon used) -> seconds of the first compiled search


def _objective(generator):
    """("generic" | "ecco", parameters) for generators the fast step reproduces, else None.

    Only these exact classes qualify: a subclass may override any hook.
    """
    from .generators import BaseGenerator, ECCoGenerator, GenericGenerator

    kind = type(generator)
    if kind in (GenericGenerator, BaseGenerator):
        return "generic", (float(generator.step_size), float(generator.lambda_cost), 0.0, 0.0)
    if kind is ECCoGenerator:
        return "ecco", (float(generator.step_size), float(generator.lambda_cost),
                        float(generator.lambda_energy), float(generator.reg_strength))
    return None


def _structure_key(model, generator, constraints, x):
    """Cache key of the step (without the epsilon flag), or None when unsupported.

    Its first entry is the model's plan key for a chain of layers (analytic gradient), or
    "autograd" for any other model (autograd through the model only).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] < 1:
        return None
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return None
    objective = _objective(generator)
    if objective is None or not callable(model):
        return None
    trivial, hardening = True, False
    if constraints is not None:
        if constraints.n_features != x.shape[1]:
            return None
        exact = bool(getattr(constraints, "exact_bounds", False))
        if exact:  # the widened twin: the same search while every factual is in the domain
            constraints = dataclasses.replace(constraints, exact_bounds=False)
        # hardened iterates (groups, grids, max_changed) as the engine's straight-through
        # generators make them; a rehardened state (one_hot="reharden") stays with the engine
        hardening = bool(constraints.needs_hardening)
        if hardening and getattr(generator, "one_hot", "accumulate") != "accumulate":
            return None
        if not constraints_supported(constraints, x.dtype, hardening=True):
            return None
        if exact and not _inside_bounds(constraints, x):
            return None
        trivial = bool(constraints.is_trivial)
    plan = model_plan(model)
    layers = "autograd"
    if plan is not None and _plan_fits(model, plan, x):
        layers = plan_key(plan)
    return (layers, objective[0], trivial, x.dtype, torch.get_num_threads(), hardening)


def _inside_bounds(c, x):
    """Whether every entry of x [N, D] lies within [c.lower, c.upper] [D]."""
    return bool(((x >= c.lower) & (x <= c.upper)).all())


def _plan_fits(model, plan, x):
    """Whether the chain's input width, dtype and device match x (else autograd runs it)."""
    first = next(layer[1] for layer in plan if layer[0] == "linear")
    if first.in_features != x.shape[1]:
        return False
    return all(p.dtype == x.dtype and p.device.type == "cpu" for p in model.parameters())


def supports(model, generator, constraints, x):
    """Whether :func:`compiled_search` runs this search on its fast path.

    True for a CPU float32/float64 search with the Generic or ECCo generator (exact classes)
    and constraints of mutability, bounds and cost weights, one-hot groups, integer grids and a
    limit on changed features (the last three with the generator's default
    ``one_hot="accumulate"``: every iterate is hardened for the model, as the engine's
    straight-through generators do, while the soft state moves), whatever the model. A model
    that is a chain of ``nn.Linear`` layers and ReLU/LeakyReLU/Tanh/Sigmoid activations (an
    ``nn.Sequential`` or skct's ``MLP``, without hooks) gets analytic gradients; any other
    model runs with autograd through the model only. ``SKCT_COMPILED_SEARCH=0`` in the
    environment turns the fast path off.

    Constraints that clamp to the bounds exactly (``exact_bounds``, from
    ``ActionabilityConstraints(widen_bounds=False)``) run here only when every factual lies
    inside the bounds, where the exact and the widened clamp are the same. A generator with
    ``one_hot="reharden"`` runs here only without anything to harden.

    Parameters
    ----------
    model : torch.nn.Module
    generator : BaseGenerator
    constraints : TorchConstraints or None
    x : Tensor [N, D]

    Returns
    -------
    bool

    Examples
    --------
    >>> import torch
    >>> from skct.search.generators import GenericGenerator, REVISEGenerator
    >>> from skct.search._compiled import supports
    >>> mlp = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> supports(mlp, GenericGenerator(), None, torch.zeros(10, 3))
    True
    >>> supports(mlp, REVISEGenerator(), None, torch.zeros(10, 3))
    False
    >>> supports(lambda x: x[:, :2] ** 2, GenericGenerator(), None, torch.zeros(10, 3))
    True
    """
    if _modes.mode() == "off":
        return False
    return _structure_key(model, generator, constraints, x) is not None


def clear_cache():
    """Forget every compiled step (and every failed compilation)."""
    _STEPS.clear()
    _FAILED.clear()
    _COMPILE_SECONDS.clear()


def compile_times():
    """Seconds the first search of each compiled step took (compilation included), by key."""
    return dict(_COMPILE_SECONDS)


# ---------------------------------------------------------------------------------------------
# the search loop (bookkeeping around the step)
# ---------------------------------------------------------------------------------------------
def _scalars(objective, params, max_iter, epsilon, threshold, dtype, as_tensor):
    """Step scalars for t = 0..max_iter (the energy weight lambda_E * phi_t varies with t)."""
    from .generators.ecco import energy_decay

    step_size, lam, lam_e, reg = params
    eps = 0.0 if epsilon is None else float(epsilon)
    out = []
    for t in range(max_iter + 1):
        w_e = lam_e * energy_decay(t, max_iter) if objective == "ecco" else 0.0
        sc = (step_size, lam, w_e, reg, eps, float(threshold))
        out.append(torch.tensor(sc, dtype=dtype) if as_tensor else sc)
    return out


def _cost_weight(constraints, dtype):
    """Cost weights [D] as the engine passes them to the loss (None when all 1)."""
    if constraints is None or constraints.unit_cost:
        return None
    return constraints.cost_weight.to(dtype)


def _fused_constraints(constraints, d, dtype):
    """(lower, upper, mutability, step_lower, step_upper, cost weights) for the fused step."""
    weight = _cost_weight(constraints, dtype)
    weight = torch.ones(d, dtype=dtype) if weight is None else weight
    if constraints is None:
        inf = torch.full((d,), float("inf"), dtype=dtype)
        return (-inf, inf, torch.full((d,), 3, dtype=torch.int8), -inf, inf, weight)
    c = constraints
    return (c.lower, c.upper, c.mut, c.step_lower, c.step_upper, weight)


class _State:
    """Working set of the search (the rows still in it) and what is recorded per row."""

    def __init__(self, x, target, n_classes, path, offset):
        n = x.shape[0]
        # distinct buffers: the compiled step must not see its inputs aliased at step 0 only
        self.x, self.x0, self.nas = x.clone(), x, x.clone()  # [A, D]
        self.target = target  # [A]
        self.one_hot = None  # [A, C] target one-hot (None: the step builds it)
        if n_classes is not None:
            self.one_hot = torch.nn.functional.one_hot(target, n_classes).to(x.dtype)
        self.idx = torch.arange(n, device=x.device)  # [A] row of each entry
        self.live = torch.ones(n, dtype=torch.bool, device=x.device)  # [A] still searching
        self.n_live = n
        self.x_cf, self.nascent = x.clone(), x.clone()  # [N, D]
        self.proba = torch.zeros(n, dtype=x.dtype, device=x.device)
        self.converged = torch.zeros(n, dtype=torch.bool, device=x.device)
        self.n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
        self.path, self.offset = path, offset  # SearchPath of all rows, this chunk's first

    def record(self, fin, t, p_t, done, nas, xc):
        """Write out the rows ``fin`` [A] that leave the search at step t (at xc [A, D], the
        iterate the model saw)."""
        rows = self.idx[fin]
        self.x_cf[rows] = xc[fin]
        self.proba[rows] = p_t[fin]
        self.converged[rows] = done[fin]
        self.n_iter[rows] = t
        self.nascent[rows] = nas[fin]

    def snapshot(self, t, xc):
        """Path entry of step t: the iterates xc [A, D] of the rows still searching (copies)."""
        self.path.record(t, self.idx[self.live] + self.offset, xc[self.live])

    def compact(self, min_rows):
        """Keep only the live rows (at least ``min_rows``: padded with frozen ones)."""
        keep = self.live.nonzero().squeeze(1)
        if keep.numel() < min_rows:
            dead = (~self.live).nonzero().squeeze(1)
            keep = torch.cat([keep, dead[: min_rows - keep.numel()]])
        for name in ("x", "x0", "nas", "target", "one_hot", "idx", "live"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).index_select(0, keep))


def _run(step, kind, model, x, target, constraints, objective, threshold, max_iter, epsilon,
         path, offset):
    """The search loop around ``step`` ("compiled", "chain" or "autograd").

    ``path`` (a SearchPath of all the search's rows, or None) gets the iterates of these rows,
    the first of which is row ``offset`` of the search.
    """
    compiled = kind == "compiled"
    params, n_classes = (), None
    if kind != "autograd":
        params = plan_tensors(model_plan(model))  # read now: the model's current weights
        n_classes = _n_classes(model)
    scalars = _scalars(objective[0], objective[1], max_iter, epsilon, threshold, x.dtype,
                       compiled)
    if compiled:
        cons = _fused_constraints(constraints, x.shape[1], x.dtype)
    else:
        trivial = constraints is None or constraints.is_trivial
        cons = (None if trivial else constraints, _cost_weight(constraints, x.dtype))
    hardening = constraints is not None and constraints.needs_hardening
    st = _State(x, target, n_classes, path, offset)
    for t in range(max_iter + 1):
        if compiled:  # one compilation for every working-set size
            for a in (st.x, st.x0, st.nas, st.target, st.one_hot, st.live):
                torch._dynamo.maybe_mark_dynamic(a, 0)
        kw = {"final": True} if t == max_iter and not compiled else {}
        xc = st.x
        if hardening:  # the model sees the valid point; the step moves the soft state
            xc = straight_through_harden(st.x, st.x0, constraints)
            kw["base"] = st.x
        p_t, done, fin, live_next, n_fin, x_next, nas = step(
            xc, st.x0, st.target, st.one_hot, st.nas, st.live, params, scalars[t], cons, **kw)
        if path is not None:
            st.snapshot(t, xc)
        if t == max_iter:
            st.record(st.live, t, p_t, done, nas, xc)
            break
        k = int(n_fin)
        if k:
            st.record(fin, t, p_t, done, nas, xc)
            st.n_live -= k
            if not st.n_live:
                break
        st.x, st.nas, st.live = x_next, nas, live_next
        if k and st.n_live <= COMPACT_SHARE * st.x.shape[0]:
            st.compact(2 if compiled else 1)
    return st


def _compiled_step(key, use_eps):
    """The compiled step for this structure (compiled at its first call), or None when the
    mode does not ask for compilation or it failed before."""
    if _modes.mode() != "compile" or key in _FAILED or key[5]:  # (hardening: the chain step)
        return None
    fn = _STEPS.get((key, use_eps))
    if fn is None:
        name = f"skct_compiled_step_{len(_STEPS)}"
        fused = make_fused_step(key[0], key[1] == "ecco", use_eps, key[2], SMALL_HEAD, name)
        fn = _STEPS[key, use_eps] = torch.compile(fused, fullgraph=True, dynamic=False)
    return fn


def compiled_search(model, x, target, generator, constraints=None, *, decision_threshold=0.75,
                    max_iter=30, epsilon=None, return_path=False):
    """:func:`skct.search.search` on the fast path (see :func:`supports`).

    Same parameters, same :class:`~skct.search.SearchResult` and the same per-row convergence
    rule; results agree with the eager engine up to float rounding. Searches that
    :func:`supports` rejects run on the eager engine; errors are those of the engine
    (a target outside the model's classes raises ``RuntimeError``).

    Parameters
    ----------
    model, x, target, generator, constraints, decision_threshold, max_iter, epsilon,
    return_path
        As for :func:`skct.search.search`.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> import torch
    >>> from skct.search import search
    >>> from skct.search.generators import GenericGenerator
    >>> from skct.search._compiled import compiled_search
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <...>
    >>> mlp = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> x, target = torch.randn(50, 2), torch.ones(50, dtype=torch.long)
    >>> fast = compiled_search(mlp, x, target, GenericGenerator(step_size=1.0), max_iter=50)
    >>> slow = search(mlp, x, target, GenericGenerator(step_size=1.0), max_iter=50)
    >>> bool(torch.equal(fast.n_iter, slow.n_iter))
    True
    >>> torch.allclose(fast.counterfactuals, slow.counterfactuals, atol=1e-5)
    True
    """
    from ._engine import search

    result = fast_search(model, x, target, generator, constraints,
                         decision_threshold=decision_threshold, max_iter=max_iter,
                         epsilon=epsilon, return_path=return_path)
    if result is None:  # unsupported: the engine (which does not dispatch back here then)
        result = search(model, x, target, generator, constraints,
                        decision_threshold=decision_threshold, max_iter=max_iter,
                        epsilon=epsilon, return_path=return_path)
    return result


def fast_search(model, x, target, generator, constraints=None, *, decision_threshold=0.75,
                max_iter=30, epsilon=None, return_path=False):
    """:func:`compiled_search`, or None where :func:`supports` is False (the engine's seam:
    the structure is read once per search)."""
    from ._engine import SearchPath, SearchResult

    key = None if _modes.mode() == "off" else _structure_key(model, generator, constraints, x)
    if key is None:
        return None
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"target has {target.shape[0]} entries for {x.shape[0]} rows.")
    x = x.detach().contiguous()
    result = _whole_native(model, x, target, generator, constraints, key, decision_threshold,
                           max_iter, epsilon, return_path)
    if result is not None:
        return result
    n_chunks = -(-x.shape[0] // CHUNK_ROWS) if x.shape[0] > 1.5 * CHUNK_ROWS else 1
    path = SearchPath(x, max_iter + 1) if return_path else None
    parts = []
    with eval_mode(model), torch.no_grad():
        for rows in torch.arange(x.shape[0]).tensor_split(n_chunks):
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            parts.append(_search_chunk(model, x[lo:hi], target[lo:hi], generator, constraints,
                                       key, decision_threshold, max_iter, epsilon, path, lo))

    def cat(name):
        return torch.cat([getattr(p, name) for p in parts]) if len(parts) > 1 else getattr(
            parts[0], name)

    return SearchResult(counterfactuals=cat("x_cf"), converged=cat("converged"),
                        n_iter=cat("n_iter"), target_proba=cat("proba"),
                        nascent=cat("nascent"), path=path)


def _search_chunk(model, x, target, generator, constraints, key, decision_threshold,
                  max_iter, epsilon, path, offset):
    """One search of the rows x [n, D] (the model in eval mode, gradients off)."""
    args = (model, x, target, constraints, _objective(generator), decision_threshold,
            max_iter, epsilon, path, offset)
    use_eps, ecco, chain = epsilon is not None, key[1] == "ecco", key[0] != "autograd"
    step = _compiled_step(key, use_eps) if chain else None
    st = None if step is None else _compiled_run(step, key, use_eps, args)
    if st is None and chain:
        st = _run(_chain_step(key[0], ecco, use_eps), "chain", *args)
    elif st is None:
        st = _run(make_autograd_step(model, ecco, use_eps), "autograd", *args)
    return st


def _whole_native(model, x, target, generator, constraints, key, decision_threshold,
                  max_iter, epsilon, return_path):
    """The search in one native call (:mod:`._native_search`) where it applies, else None.

    With ``return_path`` it runs twice: once for each row's number of steps, then again
    writing each row's iterates into a buffer of exactly that size (the second run repeats the
    first bit for bit), from which the path's per-step records are views.
    """
    from ._engine import SearchPath, SearchResult

    if _modes.mode() != "native" or key[5] or not _native_search.applies(key[0], x.dtype):
        return None
    if not bool(((target >= 0) & (target < key[0][-1][2])).all()):
        return None  # the chain step raises the engine's error
    lib = _native_search.library()
    if lib is None:
        return None
    objective = _objective(generator)
    w_energy = None
    if objective[0] == "ecco":
        w_energy = [sc[2] for sc in _scalars(objective[0], objective[1], max_iter, epsilon,
                                             decision_threshold, x.dtype, False)]
    path = None
    with eval_mode(model), torch.no_grad():
        args = (lib, key[0], plan_tensors(model_plan(model)), x, target, objective[1],
                constraints, _cost_weight(constraints, x.dtype), decision_threshold, max_iter,
                epsilon, w_energy)  # (the weights read now, as the engine reads them)
        try:
            x_cf, converged, n_iter, proba, nascent = _native_search.run(*args,
                                                                         n_threads=key[4])
        except MemoryError:  # its weight panels did not fit: the chain step runs instead
            return None
        if return_path:
            lengths = n_iter + 1  # [N] iterates per row
            offset = torch.cumsum(lengths, 0) - lengths  # [N] first history row of each row
            hist = torch.empty(int(lengths.sum()), x.shape[1], dtype=x.dtype)
            _native_search.run(*args, n_threads=key[4], hist=hist, hist_offset=offset)
            path = SearchPath(x, max_iter + 1)
            for t in range(max_iter + 1):
                rows = (n_iter >= t).nonzero().squeeze(1)
                if rows.numel():
                    path.record(t, rows, hist[offset[rows] + t])
    return SearchResult(counterfactuals=x_cf, converged=converged, n_iter=n_iter,
                        target_proba=proba, nascent=nascent, path=path)


def _chain_step(layers, ecco, use_eps):
    """The native-loop step where it applies and the kernels build, else the ATen one."""
    lib = None
    if _modes.mode() != "aten" and native_applies(layers):
        lib = _fast_kernels.library()
    if lib is None:
        return make_eager_step(layers, ecco, use_eps)
    return make_native_step(layers, ecco, use_eps, lib)


def _n_classes(model):
    return next(layer for layer in reversed(model_plan(model))
                if layer[0] == "linear")[1].out_features


def _compiled_run(step, key, use_eps, args):
    """The search with the compiled step; None (and a warning) when compilation fails."""
    first = (key, use_eps) not in _COMPILE_SECONDS
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"torch(\.|$)")  # its own, while compiling
            st = _run(step, "compiled", *args)
    except Exception as exc:  # compilation unavailable or failed: the eager step answers
        _FAILED.add(key)
        _STEPS.pop((key, use_eps), None)
        warnings.warn(f"skct: the search step could not be compiled ({type(exc).__name__}: "
                      f"{exc}); using the eager step.", RuntimeWarning, stacklevel=3)
        return None
    if first:
        _COMPILE_SECONDS[key, use_eps] = time.perf_counter() - start
    return st
