"""The fused step of the fast search, written for ``torch.compile`` (opt-in).

The same step as :func:`skct.search._compiled_steps.make_eager_step` (same signature, without
``final``; ``sc`` a [6] tensor and ``cons`` the tensors ``(lower, upper, mutability,
step_lower, step_upper, cost weights)``), in a form whose elementwise work inductor fuses into
a few loops: for a last layer with few classes the logits are per-row dot products rather than
a skinny matrix product, and the projection is written out with ``torch.where``.
"""

from __future__ import annotations

import types

import torch

__all__ = ["make_fused_step"]


def _act(layer, h):
    kind = layer[1]
    if kind == "relu":
        return torch.relu(h)
    if kind == "tanh":
        return torch.tanh(h)
    if kind == "sigmoid":
        return torch.sigmoid(h)
    return torch.nn.functional.leaky_relu(h, layer[2])


def _act_backward(layer, g, saved):
    """Gradient through an activation from its output (its input for LeakyReLU)."""
    kind = layer[1]
    if kind == "relu":
        return torch.where(saved > 0, g, 0.0)
    if kind == "tanh":
        return g * (1 - saved * saved)
    if kind == "sigmoid":
        return g * (1 - saved) * saved
    return torch.where(saved > 0, g, g * layer[2])


def _fused_forward(layers, x, params, small_head):
    """Forward pass keeping what the backward pass needs: (weights, saved, output).

    With a small head the last linear layer is not applied: the output is its input.
    """
    weights, saved, h, k = [], [], x, 0
    for i, layer in enumerate(layers):
        if layer[0] == "linear":
            w, b = params[k], params[k + 1] if layer[3] else None
            k += 2 if layer[3] else 1
            weights.append((w, b))
            if small_head and i == len(layers) - 1:
                break
            h = h @ w.t() if b is None else torch.addmm(b, h, w.t())
            saved.append(None)
        else:
            a = _act(layer, h)
            saved.append(h if layer[1] == "leaky_relu" else a)
            h = a
    return weights, saved, h


def _fused_binary_head(a, w, b, one_hot, sc, ecco):
    """Two-class head from per-row dot products (see :func:`_eager_binary_head`)."""
    v = w[1] - w[0]
    y1 = one_hot[:, 1]
    d = (a * v).sum(1) if b is None else (a * v).sum(1) + (b[1] - b[0])
    p_t = torch.sigmoid(d * (2 * y1 - 1))
    g1 = torch.sigmoid(d) - y1
    if not ecco:
        return p_t, g1[:, None] * v
    z1 = (a * w[1]).sum(1) if b is None else (a * w[1]).sum(1) + b[1]
    coef = sc[2] * (1 - 2 * sc[3] * (z1 - (1 - y1) * d))
    return p_t, (g1 - coef * y1)[:, None] * v - coef[:, None] * w[0]


def _small_head(a, w, b, target, sc, ecco):
    """Logits as per-class dot products: (p(target) [A], gradient at the head's input)."""
    n_classes = w.shape[0]
    z = [(a * w[c]).sum(1) if b is None else (a * w[c]).sum(1) + b[c] for c in range(n_classes)]
    m, z_t = z[0], z[0]
    for c in range(1, n_classes):
        m = torch.maximum(m, z[c])
        z_t = torch.where(target == c, z[c], z_t)
    e = [torch.exp(zc - m) for zc in z]
    s = e[0]
    for c in range(1, n_classes):
        s = s + e[c]
    p_t = torch.exp(z_t - (m + torch.log(s)))
    coef = sc[2] * (1 - 2 * sc[3] * z_t) if ecco else None  # energy term on z_t
    g = None
    for c in range(n_classes):
        gz = e[c] / s - (target == c).to(a.dtype)
        if ecco:
            gz = gz - torch.where(target == c, coef, 0.0)
        term = gz[:, None] * w[c]
        g = term if g is None else g + term
    return p_t, g


def _full_head(z, one_hot, target, sc, ecco):
    """Softmax cross-entropy (+ energy) gradient on logits z [A, C]: (p(target), dL/dz)."""
    m = z.amax(1, keepdim=True)
    e = torch.exp(z - m)
    s = e.sum(1, keepdim=True)
    z_t = z.gather(1, target[:, None]).squeeze(1)
    p_t = torch.exp(z_t - (m + torch.log(s)).squeeze(1))
    g = e / s - one_hot
    if ecco:
        g = g - (sc[2] * (1 - 2 * sc[3] * z_t))[:, None] * one_hot
    return p_t, g


def _fused_project(x_new, x0, cons):
    """``project(x_new, x0, c, hard=False)``: mutability, then bounds widened to the factual."""
    lower, upper, mut = cons[0], cons[1], cons[2]
    out = torch.where(mut == 0, x0, x_new)
    out = torch.where(mut == 1, torch.maximum(out, x0), out)
    out = torch.where(mut == 2, torch.minimum(out, x0), out)
    lo, hi = torch.minimum(lower, x0), torch.maximum(upper, x0)
    return torch.maximum(torch.minimum(out, hi), lo)


def make_fused_step(layers, ecco, use_eps, trivial, small_head_max, name):
    """The fused step (for ``torch.compile``), a fresh function object named ``name``.

    A fresh code object gives each structure its own compilation cache entry, so that many
    structures never exhaust torch's per-function recompilation limit.
    """
    last = layers[-1]
    small_head = last[0] == "linear" and last[2] <= small_head_max

    def step(x, x0, target, one_hot, nas, live, params, sc, cons):
        weights, saved, h = _fused_forward(layers, x, params, small_head)
        if small_head and last[2] == 2:
            p_t, g = _fused_binary_head(h, weights[-1][0], weights[-1][1], one_hot, sc, ecco)
        elif small_head:
            p_t, g = _small_head(h, weights[-1][0], weights[-1][1], target, sc, ecco)
        else:
            p_t, g = _full_head(h, one_hot, target, sc, ecco)
        n_lin = len(weights) - (1 if small_head else 0)
        for i in range(len(layers) - (2 if small_head else 1), -1, -1):  # back to the input
            if layers[i][0] == "linear":
                n_lin -= 1
                g = g @ weights[n_lin][0]
            else:
                g = _act_backward(layers[i], g, saved[i])
        # -step_size * (g + lambda * w * sign(x - x0)), written so that the weighted L1
        # subgradient fuses into the update rather than into the last matrix product
        step_ = -sc[0] * g - (sc[0] * sc[1]) * (torch.sign(x - x0) * cons[5])
        if trivial:
            x_next = x + step_
        else:
            x_next = _fused_project(x + torch.clamp(step_, cons[3], cons[4]), x0, cons)
        done = p_t >= sc[5]
        fin = live & done
        if use_eps:
            close = (x - x0).abs().amax(dim=1) <= sc[4]
            nas = torch.where(close[:, None], x, nas)
        return p_t, done, fin, live & ~done, fin.sum(), x_next, nas

    code = step.__code__.replace(co_name=name)
    return types.FunctionType(code, step.__globals__, name, step.__defaults__,
                              step.__closure__)
