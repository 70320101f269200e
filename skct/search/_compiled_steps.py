"""The eager steps of the fast search: ATen calls, native loops, autograd through the model.

Each computes, for the rows of a working set, p(target | x) at the current iterate, the
gradient of the Generic or ECCo objective with respect to the input (analytic from the
logits on: no graph of the loss, no loss value), the masked and projected gradient step, the
convergence test and the nascent iterate. They share one signature (and so does the fused step
of :mod:`skct.search._compiled_fused`)::

    step(x, x0, target, one_hot, nas, live, params, sc, cons, final=False, base=None)
        -> p_t [A], done [A], fin [A], live_next [A], n_fin, x_next [A, D], nas_next [A, D]

- x, x0, nas: [A, D] iterate, factual, last iterate within epsilon; target [A] long; one_hot
  [A, C] of the target (None for the autograd step); live [A] bool, rows still searching;
- params: weights and biases of the model's linear layers (read at call time);
- sc: step size, lambda_cost, lambda_E * phi_t, reg strength, epsilon, threshold;
- cons: ``(TorchConstraints or None, cost weights [D] or None)``;
- final: the last step only tests its iterate (no backward pass, x_next is x);
- base: the search state the step moves, when it is not x itself (x is then its hardened
  point, at which the model, the cost and the convergence test are evaluated).

:func:`make_eager_step` (chains of layers) runs the backward pass as ATen calls, with ATen's
own backward kernels (``threshold_backward``, ``tanh_backward``...), so it reproduces
autograd's arithmetic; :func:`make_native_step` does the elementwise work in the native loops
of :mod:`skct.search._fast_kernels`; :func:`make_autograd_step` runs any other model with one
``autograd.grad`` through it.
"""

from __future__ import annotations

import torch

from . import _fast_kernels as _native
from ._projection import mask_step, project

__all__ = ["make_eager_step", "make_native_step", "make_autograd_step", "native_applies"]

_aten = torch.ops.aten


# ---------------------------------------------------------------------------------------------
# eager: few ATen calls, in place where safe
# ---------------------------------------------------------------------------------------------
def _binary(layers):
    """Whether the model ends in a linear layer with two outputs (the binary-head shortcut)."""
    return layers[-1][0] == "linear" and layers[-1][2] == 2


def native_applies(layers):
    """Whether :func:`make_native_step` runs this chain (a two-class linear head)."""
    return _binary(layers)


def _eager_forward(layers, x, params, stop):
    """The first ``stop`` layers: (weights per layer, saved per layer, output)."""
    weights, saved, h, k = [], [], x, 0
    for layer in layers[:stop]:
        if layer[0] == "linear":
            w = params[k]
            b = params[k + 1] if layer[3] else None
            k += 2 if layer[3] else 1
            h = h @ w.t() if b is None else torch.addmm(b, h, w.t())
            weights.append(w)
            saved.append(None)
            continue
        kind = layer[1]
        if kind == "leaky_relu":  # backward reads the input
            saved.append(h)
            h = torch.nn.functional.leaky_relu(h, layer[2])
        else:  # backward reads the output, computed in place unless h is the input
            h = h.clone() if h is x else h
            h = h.relu_() if kind == "relu" else h.tanh_() if kind == "tanh" else h.sigmoid_()
            saved.append(h)
        weights.append(None)
    return weights, saved, h


def _eager_backward(layers, weights, saved, g, stop):
    """Gradient at the input of the first ``stop`` layers from the gradient g at their output,
    except through a first linear layer, which the caller fuses with the cost term.

    Returns (g, weight of that first linear layer or None).
    """
    for i in range(stop - 1, -1, -1):
        layer = layers[i]
        if layer[0] == "linear":
            if i == 0:
                return g, weights[0]
            g = g @ weights[i]
        elif layer[1] == "relu":
            g = _aten.threshold_backward(g, saved[i], 0)
        elif layer[1] == "tanh":
            g = _aten.tanh_backward(g, saved[i])
        elif layer[1] == "sigmoid":
            g = _aten.sigmoid_backward(g, saved[i])
        else:
            g = _aten.leaky_relu_backward(g, saved[i], layer[2], False)
    return g, None


def _binary_terms(w, b, one_hot, cache):
    """What the two-class head reuses across steps: (v = w1 - w0, b1 - b0, y1, +-1 sign).

    Cached on the identity of the weights list and of the one-hot (both change only between
    searches or when the working set shrinks).
    """
    if cache.get("w") is not w:
        zero = torch.zeros((), dtype=w.dtype)
        cache["w"], cache["v"] = w, w[1] - w[0]  # [H]
        cache["db"] = zero if b is None else b[1] - b[0]
    return (cache["v"], cache["db"], *_target_terms(one_hot, cache))


def _target_terms(one_hot, cache):
    """(y1 [A], 1.0 where the target is class 1; sign [A], +1 there and -1 elsewhere), cached
    on the identity of the one-hot (it changes only when the working set shrinks)."""
    if cache.get("y1_of") is not one_hot:
        cache["y1_of"], cache["y1"] = one_hot, one_hot[:, 1]
        cache["sign"] = 2 * cache["y1"] - 1
    return cache["y1"], cache["sign"]


def _binary_core(d, z1, y1, sign, ecco, sc):
    """From d = z1 - z0 [A]: (p(target) [A], dCE/dz1 = p1 - y1 [A], and with ECCo the energy
    coefficient lambda_E phi_t (1 + 2 r E) [A] of the target's logit, E = -z_t; else None)."""
    p_t = torch.sigmoid(d * sign)
    g1 = torch.sigmoid(d).sub_(y1)  # dCE/dz1 = -dCE/dz0
    if not ecco:
        return p_t, g1, None
    z_t = z1 - (1 - y1) * d  # logit of the target
    return p_t, g1, (1 - 2 * sc[3] * z_t).mul_(sc[2])


def _eager_binary_head(a, w, b, one_hot, ecco, sc, cache):
    """Two-class head on its input a [A, H]: (p(target) [A], gradient at a [A, H]).

    Only z1 - z0 = a . (w1 - w0) + (b1 - b0) is needed: p(target) = sigmoid(+-(z1 - z0)), the
    cross-entropy gradient is (p1 - y1) (w1 - w0). ECCo's energy term adds -coef * w_target.
    """
    v, db, y1, sign = _binary_terms(w, b, one_hot, cache)
    d = torch.addmv(db, a, v)  # [A] z1 - z0
    z1 = None if not ecco else torch.mv(a, w[1]) if b is None else torch.addmv(b[1], a, w[1])
    p_t, g1, coef = _binary_core(d, z1, y1, sign, ecco, sc)
    if not ecco:
        return p_t, torch.outer(g1, v)
    # gradient at a: g1 v - coef w_target, with w_target = w0 + y1 v
    return p_t, torch.outer(g1 - coef * y1, v).addr_(coef, w[0], alpha=-1)


def _eager_head(z, target, one_hot, ecco, sc):
    """Softmax cross-entropy (+ energy) on logits z [A, C]: (p(target) [A], dL/dz [A, C])."""
    lse = torch.logsumexp(z, 1)  # [A]
    z_t = z.gather(1, target[:, None]).squeeze(1)  # [A]
    p_t = (z_t - lse).exp()
    g = (z - lse[:, None]).exp_().sub_(one_hot)  # softmax - one-hot
    if ecco:  # energy penalty lambda_E phi_t (E + r E^2), E = -z_t
        g.addcmul_(one_hot, (1 - 2 * sc[3] * z_t)[:, None], value=-sc[2])
    return p_t, g


def _binary_logit_head(z, one_hot, ecco, sc, cache):
    """:func:`_eager_head` for two logits z [A, 2], from d = z1 - z0 alone (a few vector
    operations instead of a log-sum-exp): p(target) = sigmoid(+-d), dCE/dz = (p1 - y1) [-1, 1],
    and ECCo's energy term -coef at the target's logit (as :func:`_eager_binary_head`).
    """
    y1, sign = _target_terms(one_hot, cache)
    if "pm" not in cache:
        cache["pm"] = torch.tensor([-1.0, 1.0], dtype=z.dtype, device=z.device)
    z1 = z[:, 1]
    p_t, g1, coef = _binary_core(z1 - z[:, 0], z1, y1, sign, ecco, sc)
    g = torch.outer(g1, cache["pm"])  # [A, 2]
    if ecco:
        g.addcmul_(one_hot, coef[:, None], value=-1)
    return p_t, g


def _test(x, x0, p_t, live, nas, sc, use_eps):
    """Convergence test and nascent iterate at x: (done, fin, live_next, n_fin, nas)."""
    done = p_t >= sc[5]
    fin = live & done
    if use_eps:
        close = (x - x0).abs().amax(dim=1) <= sc[4]
        nas = torch.where(close[:, None], x, nas)
    return done, fin, live ^ fin, fin.sum(), nas


def _finish(x, x0, g, w_in, p_t, live, nas, sc, cons, use_eps, base=None):
    """Common end of the eager steps: cost subgradient, projected step, convergence, nascent.

    g is the gradient of the cross-entropy (+ energy) at the input, or, when ``w_in`` is
    given, at the output of a first linear layer with weight ``w_in`` (its product is fused
    with the cost term). The step moves ``base`` (x when None).
    """
    c, cost_weight = cons
    cost = torch.sub(x, x0).sign_()  # L1 subgradient [A, D]
    if cost_weight is not None:
        cost.mul_(cost_weight)
    if w_in is None:
        g = g.add_(cost, alpha=sc[1])
    else:
        g = torch.addmm(cost, g, w_in, beta=sc[1])  # lambda * cost + g @ W_in
    base = x if base is None else base
    if c is None:
        x_next = torch.add(base, g, alpha=-sc[0])
    else:
        x_next = project(base + mask_step(g.mul_(-sc[0]), c), x0, c, hard=False)
    done, fin, live_next, n_fin, nas = _test(x, x0, p_t, live, nas, sc, use_eps)
    return p_t, done, fin, live_next, n_fin, x_next, nas


def make_eager_step(layers, ecco, use_eps):
    """The eager step for a plan key's layers (see the module docstring for its signature)."""
    binary = _binary(layers)
    stop = len(layers) - 1 if binary else len(layers)
    cache = {}

    def step(x, x0, target, one_hot, nas, live, params, sc, cons, final=False, base=None):
        weights, saved, h = _eager_forward(layers, x, params, stop)
        if binary:
            w, b = (params[-2], params[-1]) if layers[-1][3] else (params[-1], None)
            p_t, g = _eager_binary_head(h, w, b, one_hot, ecco, sc, cache)
        else:
            p_t, g = _eager_head(h, target, one_hot, ecco, sc)
        if final:  # the last iterate is only tested: no backward pass, no step
            done, fin, live_next, n_fin, nas = _test(x, x0, p_t, live, nas, sc, use_eps)
            return p_t, done, fin, live_next, n_fin, x, nas
        g, w_in = _eager_backward(layers, weights, saved, g, stop)
        return _finish(x, x0, g, w_in, p_t, live, nas, sc, cons, use_eps, base)

    return step


class _Buffers:
    """Preallocated outputs of one working-set size, reused at every step.

    Fresh multi-megabyte buffers at every step can cost more than the arithmetic on them (the
    allocator may hand back pages that fault in again); the native step writes into these.
    """

    def __init__(self):
        self.store = {}

    def get(self, name, shape, dtype):
        buf = self.store.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self.store[name] = torch.empty(shape, dtype=dtype)
        return buf


def _native_forward(layers, x, params, stop, bufs):
    """The first ``stop`` layers into reused buffers: (weights, saved, output)."""
    weights, saved, h, k = [], [], x, 0
    for i, layer in enumerate(layers[:stop]):
        if layer[0] == "linear":
            w = params[k]
            b = params[k + 1] if layer[3] else None
            k += 2 if layer[3] else 1
            out = bufs.get(("h", i), (x.shape[0], layer[2]), x.dtype)
            h = torch.mm(h, w.t(), out=out) if b is None else torch.addmm(b, h, w.t(), out=out)
            weights.append(w)
            saved.append(None)
            continue
        kind = layer[1]
        if kind == "leaky_relu":  # backward reads the input
            saved.append(h)
            h = torch.nn.functional.leaky_relu(h, layer[2])
        else:  # in place on the layer's buffer (a row-major copy if it is the iterate)
            h = h.clone(memory_format=torch.contiguous_format) if h is x else h
            h = h.relu_() if kind == "relu" else h.tanh_() if kind == "tanh" else h.sigmoid_()
            saved.append(h)
        weights.append(None)
    return weights, saved, h


def make_native_step(layers, ecco, use_eps, lib):
    """The eager step with the elementwise work in native loops (:mod:`._fast_kernels`).

    Same signature and arithmetic as :func:`make_eager_step` (up to float rounding): the matrix
    products are torch's, into buffers reused across steps; the two-class head with the
    derivative of the activation before it, the other activation derivatives (in place) and
    the cost, step and projection are one pass each; the iterate is kept feature-major. Only
    for models with a two-class linear head.
    """
    stop = len(layers) - 1  # the head is layers[-1]
    fused = stop > 0 and layers[stop - 1][0] == "act" and layers[stop - 1][1] != "leaky_relu"
    head_act = layers[stop - 1][1] if fused else None
    back = stop - 1 if fused else stop  # layers the backward loop still goes through
    cache, bufs = {"t": 0}, _Buffers()

    def head_terms(params, one_hot):
        w, b = (params[-2], params[-1]) if layers[-1][3] else (params[-1], None)
        if cache.get("w") is not w:  # per search: contiguous rows for the native loops
            cache["w"], cache["w0"], cache["w1"] = w, w[0].contiguous(), w[1].contiguous()
            cache["v"] = (w[1] - w[0]).contiguous()
            zero = torch.zeros((), dtype=w.dtype)
            cache["b1"] = zero if b is None else b[1]
            cache["db"] = zero if b is None else b[1] - b[0]
        if cache.get("one_hot") is not one_hot:  # per working set
            cache["one_hot"], cache["y1"] = one_hot, one_hot[:, 1].contiguous()
            cache["sign"] = 2 * cache["y1"] - 1  # +1 where the target is class 1

    def backward(g, weights, saved, n, dtype):
        for i in range(back - 1, -1, -1):
            layer = layers[i]
            if layer[0] == "linear":  # row-major products, as in the engine: a row's bits
                # never depend on how many rows are searched with it (W^T g^T, feature-major,
                # was faster for the input layer but not row-stable)
                g = torch.mm(g, weights[i], out=bufs.get(("g", i), (n, layer[1]), dtype))
            else:
                g = _native.act_back(lib, g, saved[i], layer[1], layer[2])
        return g

    def step(x, x0, target, one_hot, nas, live, params, sc, cons, final=False, base=None):
        c, cost_weight = cons
        n, dtype = x.shape[0], x.dtype
        weights, saved, h = _native_forward(layers, x, params, stop, bufs)
        head_terms(params, one_hot)
        d = torch.addmv(cache["db"], h, cache["v"])  # [A] z1 - z0
        z1 = torch.addmv(cache["b1"], h, cache["w1"]) if ecco else None  # [A]
        p_t, done, fin, live_next, n_fin, g = _native.head2(
            lib, h, d, z1, cache["v"], cache["y1"], cache["sign"], head_act, 0.0, cache["w0"],
            sc[2], sc[3], sc[5], live, bufs.get(("head",), h.shape, dtype))
        if use_eps:
            nas = _test(x, x0, p_t, live, nas, sc, use_eps)[4]
        if final:  # the last iterate is only tested: no backward pass, no step
            return p_t, done, fin, live_next, n_fin, x, nas
        g = backward(g, weights, saved, n, dtype)
        if cache.get("x0") is not x0:  # per working set: the factuals feature-major too
            cache["x0"], cache["x0_fm"] = x0, _native.feature_major(x0)
        cache["t"] += 1  # two iterate buffers, alternating: x is read while x_next is written
        out = bufs.get(("x", cache["t"] % 2), (x.shape[1], n), dtype)
        x_next = _native.update(lib, x, cache["x0_fm"], g, cost_weight, sc[0], sc[1], c, out,
                                base=base)
        return p_t, done, fin, live_next, n_fin, x_next, nas

    return step


def make_autograd_step(model, ecco, use_eps):
    """The step for any differentiable model: autograd through the model only.

    The model runs as in the engine (hooks included); the gradient of the objective with
    respect to the logits is analytic and fed to one ``autograd.grad`` call through the model,
    so no graph of the loss is built. ``one_hot`` is built from the logits' width (pass None).
    """

    cache = {}  # the one-hot of the current target tensor (replaced when the set shrinks)

    def step(x, x0, target, one_hot, nas, live, params, sc, cons, final=False, base=None):
        xr = x.detach().requires_grad_(True)
        with torch.enable_grad():  # as in the engine, the model always runs with gradients
            z = model(xr)  # [A, C]
        zd = z.detach()
        if cache.get("target") is not target:
            cache["target"] = target
            cache["one_hot"] = torch.zeros_like(zd).scatter_(1, target[:, None], 1.0)
        if zd.shape[1] == 2:
            p_t, gz = _binary_logit_head(zd, cache["one_hot"], ecco, sc, cache)
        else:
            p_t, gz = _eager_head(zd, target, cache["one_hot"], ecco, sc)
        if final:  # the last iterate is only tested
            done, fin, live_next, n_fin, nas = _test(x, x0, p_t, live, nas, sc, use_eps)
            return p_t, done, fin, live_next, n_fin, x, nas
        (g,) = torch.autograd.grad(z, xr, gz)
        return _finish(x, x0, g, None, p_t, live, nas, sc, cons, use_eps, base)

    return step
