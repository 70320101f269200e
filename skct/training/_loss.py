"""The counterfactual training loss of one batch as one weighted sum over its logits' rows.

The logits ``Z`` [R, C] of a training step hold, in order, the batch's ``b`` rows (``b = 0``
when the criterion scores the batch itself) and the chunk's ``K`` rows each of ``x_adv``,
``x+`` and ``x'``; ``idx`` [R] holds each row's label (``y`` for the batch and ``x_adv``,
``y+`` for ``x+`` and ``x'``). Every logged component and the loss are linear in

    v = [-log p(idx_r | Z_r) (R), g_r = Z[r, idx_r] (R), g_r ** 2 (R)]

with ``E(x, y+) = -g``: ``ce = mean of the batch's -log p``, ``adv = mean of x_adv's -log p``,
``div = mean(E(x+) - E(x'))``, ``reg = mean(E(x+)**2 + E(x')**2)``; so ``W @ v`` gives all
five (rows ``ce, div, reg, adv, loss``; :func:`component_weights`, cached per shape).

:func:`ct_loss` computes them as one autograd node whose backward is the gradient of the loss
row in closed form, ``a_r * softmax(Z_r) + onehot(idx_r) * (b_r - a_r + 2 c_r g_r)``
(``a``: weight of the row's ``-log p``, ``b``: of ``g``, ``c``: of ``g**2``): a handful of
kernels for what autograd would run as some twenty nodes (double backward is not supported).
On contiguous float32/float64 CPU tensors, and where a C compiler is available, one native pass
(:mod:`skct.training._loss_kernel`) computes ``W @ v`` and that gradient together in forward
(same results up to float rounding). :func:`ct_terms` gives the loss and that gradient, with
no autograd node, to a training step that runs ``logits.backward(gradient)`` itself.

A product sums every entry of ``v`` into every row (``0 * inf`` is NaN), so when the loss is
not finite :func:`split_components` recomputes each component from its own entries only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._loss_kernel import ct_loss_native, kernel_for

__all__ = ["COMPONENTS", "LossWeights", "component_weights", "loss_vector", "ct_loss",
           "ct_terms", "split_components"]

#: The rows of the weights: the logged components, then the loss.
COMPONENTS = ("ce", "div", "reg", "adv", "loss")


@dataclass
class LossWeights:
    """Weights of one batch shape: ``W`` [5, 3R] over ``v``, and per row [R, 1] the loss row's
    ``a``, ``b - a`` and ``2 c`` (see the module docstring).

    ``W`` weighs ``log p`` (the negative of ``v``'s first part), so that ``v`` needs no sign
    flip: its first R columns are minus those of the module docstring.
    """

    W: torch.Tensor
    a: torch.Tensor
    b_minus_a: torch.Tensor
    c2: torch.Tensor


def component_weights(b, k, lambdas, dtype=torch.float32, device="cpu"):
    """The :class:`LossWeights` of ``b`` batch rows and ``k`` counterfactuals.

    Parameters
    ----------
    b : int
        Batch rows in the logits (0: the criterion scores the batch, ``ce`` is then 0 here).
    k : int
        Counterfactuals of the batch (rows ``x_adv``, ``x+``, ``x'`` each).
    lambdas : tuple of float
        ``(lambda_div, lambda_reg, lambda_adv)``.

    Examples
    --------
    >>> w = component_weights(2, 1, (0.5, 0.1, 0.25))
    >>> w.W.shape, w.a.flatten().tolist()
    (torch.Size([5, 15]), [0.5, 0.5, 0.25, 0.0, 0.0])
    """
    lam_div, lam_reg, lam_adv = lambdas
    r = b + 3 * k
    w = torch.zeros(5, 3, r, dtype=torch.float64)  # [component, part of v, row]
    if b:
        w[0, 0, :b] = 1.0 / b  # ce: mean -log p of the batch
    if k:
        w[3, 0, b:b + k] = 1.0 / k  # adv: mean -log p of x_adv
        w[1, 1, b + k:b + 2 * k] = -1.0 / k  # div: mean(E(x+) - E(x')) = mean(-g+ + g')
        w[1, 1, b + 2 * k:] = 1.0 / k
        w[2, 2, b + k:] = 1.0 / k  # reg: mean(g+**2 + g'**2)
    w[4] = w[0] + lam_div * w[1] + lam_reg * w[2] + lam_adv * w[3]
    loss = w[4]

    def cast(t):
        return t.to(dtype=dtype, device=device).contiguous()
    w[:, 0] = -w[:, 0]  # over log p, not -log p
    return LossWeights(W=cast(w.reshape(5, 3 * r)), a=cast(-w[4, 0, :, None]),
                       b_minus_a=cast((loss[1] + w[4, 0])[:, None]),
                       c2=cast(2 * loss[2, :, None]))


def loss_vector(logits, idx):
    """``v`` [3R, 1] (its first part ``log p``, see :class:`LossWeights`), ``log_softmax``
    [R, C] and ``g`` [R, 1] of ``logits`` [R, C] and ``idx`` [R, 1].

    Examples
    --------
    >>> import torch
    >>> v, _, g = loss_vector(torch.tensor([[0.0, 0.0], [1.0, 3.0]]), torch.tensor([[0], [1]]))
    >>> [round(x, 4) for x in v.flatten().tolist()], g.flatten().tolist()
    ([-0.6931, -0.1269, 0.0, 3.0, 0.0, 9.0], [0.0, 3.0])
    """
    log_p = torch.log_softmax(logits, 1)  # [R, C]
    g = logits.gather(1, idx)  # [R, 1]
    return torch.cat([log_p.gather(1, idx), g, g * g]), log_p, g


class _CTLoss(torch.autograd.Function):
    """``(W @ v)[4]`` as one node; ``W @ v`` goes to ``out`` (see the module docstring).

    Kept lean, as it runs once per training batch: the intermediates the backward needs are
    attributes of ``ctx`` (none is an input or an output, so autograd's saved-tensor checks
    have nothing to guard), and ``W @ v`` leaves through ``out`` rather than as a second,
    non-differentiable output.
    """

    @staticmethod
    def forward(ctx, logits, idx, weights, out):
        v, log_p, g = loss_vector(logits, idx)
        comps = weights.W @ v  # [5, 1]
        out.append(comps)
        ctx.weights, ctx.log_p, ctx.idx, ctx.g = weights, log_p, idx, g
        return comps[4, 0]  # the loss: a view, its gradient is backward's

    @staticmethod
    def backward(ctx, grad_loss):
        if torch.is_grad_enabled():
            raise RuntimeError("The counterfactual training loss supports no double backward "
                               "(create_graph=True).")
        w = ctx.weights
        grad = ctx.log_p.exp().mul_(w.a)  # [R, C] a_r * softmax(Z_r)
        grad.scatter_add_(1, ctx.idx, torch.addcmul(w.b_minus_a, w.c2, ctx.g))
        return grad.mul_(grad_loss), None, None, None


class _CTLossNative(torch.autograd.Function):
    """:class:`_CTLoss` with the components and the gradient from one native pass (see
    :mod:`skct.training._loss_kernel`), computed in forward; backward scales the gradient."""

    @staticmethod
    def forward(ctx, logits, idx, weights, out, fn):
        res = ct_loss_native(fn, logits, idx, weights)
        if res is None:  # an index out of range: torch's gather raises its own error
            loss_vector(logits, idx)
        comps, ctx.grad = res
        out.append(comps)
        return comps[4, 0]

    @staticmethod
    def backward(ctx, grad_loss):
        if torch.is_grad_enabled():
            raise RuntimeError("The counterfactual training loss supports no double backward "
                               "(create_graph=True).")
        return ctx.grad * grad_loss, None, None, None, None


def ct_loss(logits, idx, weights):
    """The loss (a differentiable scalar) and ``W @ v`` [5, 1] (``ce, div, reg, adv, loss``).

    Parameters
    ----------
    logits : Tensor [R, C]
    idx : Tensor [R, 1] long
    weights : LossWeights

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    >>> idx = torch.tensor([[0], [0], [1], [1]])
    >>> loss, comps = ct_loss(z, idx, component_weights(1, 1, (1, 1, 1)))
    >>> [round(x, 4) for x in comps.flatten().tolist()]
    [0.1269, 3.0, 9.0, 1.3133, 13.4402]
    >>> loss.backward(); z.grad.shape
    torch.Size([4, 2])
    """
    out = []
    fn = kernel_for(logits, idx, weights)
    if fn is not None:
        loss = _CTLossNative.apply(logits, idx, weights, out, fn)
    else:
        loss = _CTLoss.apply(logits, idx, weights, out)
    return loss, out[0]


def ct_terms(logits, idx, weights, native=None):
    """:func:`ct_loss` for a training step that backpropagates from the logits itself:
    ``(loss, W @ v, gradient)``, with no autograd node (``native``: whether native code may
    run, None: ask skct's switches now, see :func:`~skct.training._loss_kernel.kernel_for`).

    The loss is a plain value (a view of ``W @ v`` [5, 1]) and ``gradient`` [R, C] its
    gradient with respect to ``logits``: ``logits.backward(gradient)`` gives the gradients
    that ``loss.backward()`` gives for :func:`ct_loss`. Both come from the native pass where
    it runs (see :mod:`skct.training._loss_kernel`), else from the torch operations of
    :func:`ct_loss`'s forward and backward (the same results, bit for bit).

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    >>> idx = torch.tensor([[0], [0], [1], [1]])
    >>> loss, comps, grad = ct_terms(z, idx, component_weights(1, 1, (1, 1, 1)))
    >>> z.backward(grad)
    >>> round(loss.item(), 4), loss.requires_grad, z.grad.shape
    (13.4402, False, torch.Size([4, 2]))
    """
    fn = kernel_for(logits, idx, weights, native)
    res = None if fn is None else ct_loss_native(fn, logits, idx, weights)
    if res is None:  # the torch path (an index out of range: gather raises its error)
        v, log_p, g = loss_vector(logits.detach(), idx)
        comps = weights.W @ v  # [5, 1]
        grad = log_p.exp_().mul_(weights.a)  # [R, C], as _CTLoss.backward
        grad.scatter_add_(1, idx, torch.addcmul(weights.b_minus_a, weights.c2, g))
        res = comps, grad
    comps, grad = res
    return comps[4, 0], comps, grad


def split_components(weights, v):
    """``weights.W @ v`` with each row summing only its own (non-zero weight) entries -> [5].

    Examples
    --------
    >>> import torch
    >>> w = component_weights(1, 1, (1.0, 1.0, 1.0))
    >>> v = torch.tensor([-0.5, -float("inf")] + [1.0] * 10)[:, None]
    >>> split_components(w, v).tolist()[:2], (w.W @ v).flatten().tolist()[0]
    ([0.5, 0.0], nan)
    """
    W = weights.W
    v = v.flatten()
    own = torch.where(W != 0, W * v, torch.zeros((), dtype=v.dtype, device=v.device))
    return own.sum(dim=1)
