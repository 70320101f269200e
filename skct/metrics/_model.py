"""The model seen by the metrics: a callable mapping a float tensor [n, d] to logits [n, C].

Shared by every metric that needs the model: the model is put in eval mode while it is used and
restored afterwards; gradients with respect to inputs are taken with
:func:`torch.autograd.grad`, so the parameters and their ``.grad`` are never touched.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state

from .._utils import eval_mode

__all__ = ["as_logits_fn", "device_dtype", "to_tensor", "checked_forward", "predict_logits",
           "input_grad", "cross_entropy", "torch_generator"]


def as_logits_fn(model):
    """Return a callable mapping a float tensor [n, d] to logits [n, C].

    A fitted :class:`~skct.CounterfactualTrainedClassifier` or skorch net gives its torch module
    (inputs in the classifier's own input space). A :class:`torch.nn.Module` or any other
    callable passes through unchanged (a module stays a
    module, so that ``skct._utils.eval_mode`` and the device/dtype lookup see it).
    """
    if isinstance(model, torch.nn.Module):
        return model
    if hasattr(model, "logits_module_") or hasattr(model, "module_"):
        # a fitted CounterfactualTrainedClassifier or skorch net (model-space inputs)
        from ..explain import to_logits_module

        return to_logits_module(model)
    if callable(model) and not isinstance(model, type):
        return model
    raise TypeError(
        "model must be a torch.nn.Module or a callable mapping a float tensor [n, d] to logits "
        f"[n, n_classes], got {type(model).__name__}."
    )


def device_dtype(fn):
    """Device and floating dtype the model's inputs should have (CPU float32 for callables)."""
    device, dtype = torch.device("cpu"), torch.float32
    if isinstance(fn, torch.nn.Module):
        tensors = list(itertools.chain(fn.parameters(), fn.buffers()))
        if tensors:
            device = tensors[0].device
        floats = [t for t in tensors if t.is_floating_point()]
        if floats:
            dtype = floats[0].dtype
    return device, dtype


def to_tensor(X, device, dtype):
    """Copy a numpy array into a new tensor (never shares memory with the caller's array)."""
    return torch.tensor(np.asarray(X), dtype=dtype, device=device)


def checked_forward(fn, x):
    """logits [n, C] = fn(x [n, d]), checked."""
    logits = fn(x)
    if not torch.is_tensor(logits) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(
            f"model must map a tensor [n, d] to logits [n, n_classes]; for input shape "
            f"{tuple(x.shape)} it returned {shape}."
        )
    return logits


def predict_logits(fn, X):
    """Logits [n, C] (detached) of a numpy array X [n, d], model in eval mode."""
    device, dtype = device_dtype(fn)
    with eval_mode(fn), torch.no_grad():
        return checked_forward(fn, to_tensor(X, device, dtype))


def input_grad(fn, x, target, objective):
    """Gradient [n, d] of sum_i objective(logits, target)_i w.r.t. the inputs x [n, d].

    Must run under ``torch.enable_grad()`` with the model in eval mode. Only the input gets a
    gradient; parameters and their ``.grad`` are left alone.
    """
    x = x.detach().requires_grad_(True)
    loss = objective(checked_forward(fn, x), target).sum()
    if not loss.requires_grad:  # model output does not depend on its input
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def cross_entropy(logits, target):
    """CE per row: logits [n, C], target [n] long -> [n]."""
    return F.cross_entropy(logits, target, reduction="none")


def torch_generator(random_state, device):
    """A torch generator on ``device`` seeded from an sklearn-style random_state."""
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
