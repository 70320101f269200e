"""What the fast search can run analytically: a model read as a chain of layers.

The chain step of :mod:`skct.search._compiled` computes input gradients analytically, so it
needs the model as a plain chain of ``nn.Linear`` layers and elementwise activations (ReLU,
LeakyReLU, Tanh, Sigmoid; Identity and Dropout, which are the identity in eval mode). Such a
chain is read from an ``nn.Sequential`` (nested ones too) or skct's own
:class:`~skct.training.MLP`, without running any of the model's code. Anything else (other
modules, hooks, other layers) is not read as a chain: the fast path then runs the model itself,
with autograd, as the engine does.
"""

from __future__ import annotations

import dataclasses
import sys
import weakref

import torch
from torch import nn

__all__ = ["model_plan", "plan_key", "constraints_supported"]

#: Elementwise activations the analytic backward knows, by module type.
_ACT_MODULES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
                nn.LeakyReLU: "leaky_relu"}
#: Modules that are the identity in eval mode (the search runs the model in eval mode).
_IDENTITY = (nn.Identity, nn.Dropout, nn.AlphaDropout)

#: Plans already read, per model object: (signature when read, plan).
_PLANS = weakref.WeakKeyDictionary()

#: TorchConstraints fields whose meaning the fast step knows: it reproduces mutability, bounds
#: and cost weights, and :func:`constraints_supported` checks that the rest (groups, integer
#: grids, the limit on changed features and what derives from them) are off.
_KNOWN_FIELDS = {"lower", "upper", "mut", "group_index", "group_mask", "group_mutable",
                 "step_lower", "step_upper", "is_trivial", "all_mutable", "feature_id",
                 "grid_scale", "grid_offset", "cost_weight", "max_changed", "group_has_dropped",
                 "feature_index", "n_feature_ids", "grid_columns", "grid_lower", "grid_upper",
                 "has_grid", "unit_cost", "needs_hardening", "mutable_group_index",
                 "mutable_group_mask", "mutable_group_has_dropped", "immutable_group_columns"}


def _signature(model):
    """Cheap fingerprint of a model's structure: changes when a submodule is replaced."""
    # (the class's forward and an instance-level forward too, in case either is replaced)
    return (type(model).forward, model.__dict__.get("forward"),
            tuple((name, id(m), type(m)) for name, m in model.named_modules()))


def _has_hooks(model):
    hook_dicts = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                  "_backward_pre_hooks")
    if any(getattr(m, h, None) for m in model.modules() for h in hook_dicts):
        return True
    glob = torch.nn.modules.module
    global_hooks = ("_global_forward_hooks", "_global_forward_pre_hooks",
                    "_global_backward_hooks")
    return any(getattr(glob, h, None) for h in global_hooks)


def _module_layer(module):
    """One layer tuple for a leaf module, None when it is the identity, False if unknown."""
    if isinstance(module, nn.Linear):
        return ("linear", module)
    if isinstance(module, _IDENTITY):
        return None
    kind = _ACT_MODULES.get(type(module))
    if kind == "leaky_relu":
        return ("act", kind, float(module.negative_slope))
    if kind is not None:
        return ("act", kind, 0.0)
    return False


def _sequential_layers(seq):
    layers = []
    for m in seq:
        if isinstance(m, nn.Sequential):
            sub = _sequential_layers(m)
            if sub is None:
                return None
            layers.extend(sub)
            continue
        layer = _module_layer(m)
        if layer is False:
            return None
        if layer is not None:
            layers.append(layer)
    return layers


def _chain_of(model):
    """The Sequential whose chain of layers is the model's forward, or None.

    ``nn.Sequential`` itself, or the ``net`` of skct's :class:`~skct.training.MLP` (looked up
    only if skct.training is already imported: an MLP cannot exist otherwise).
    """
    if isinstance(model, nn.Sequential):
        return model
    training = sys.modules.get("skct.training")
    mlp = getattr(training, "MLP", None)
    if mlp is not None and type(model) is mlp and isinstance(model.net, nn.Sequential):
        return model.net
    return None


def model_plan(model):
    """The model as a tuple of layers, or None when it is not a supported chain.

    Each layer is ``("linear", module)`` or ``("act", name, negative_slope)``. The plan is
    cached per model object and read again when a submodule is replaced; weights are never
    cached (the search reads them at call time).
    """
    if not isinstance(model, nn.Module) or _has_hooks(model):
        return None
    sig = _signature(model)
    cached = _PLANS.get(model)
    if cached is not None and cached[0] == sig:
        return cached[1]
    chain = _chain_of(model)
    layers = None if chain is None else _sequential_layers(chain)
    plan = None
    if layers and any(layer[0] == "linear" for layer in layers):
        plan = tuple(layers)
    _PLANS[model] = (sig, plan)
    return plan


def plan_key(plan):
    """Hashable structure of a plan: layer widths, bias flags, activations (no weights)."""
    key = []
    for layer in plan:
        if layer[0] == "linear":
            m = layer[1]
            key.append(("linear", m.in_features, m.out_features, m.bias is not None))
        else:
            key.append(layer)
    return tuple(key)


def plan_tensors(plan):
    """Current weights and biases of the plan's linear layers, detached (no copies)."""
    out = []
    for layer in plan:
        if layer[0] == "linear":
            m = layer[1]
            out.append(m.weight.detach())
            if m.bias is not None:
                out.append(m.bias.detach())
    return out


def constraints_supported(c, dtype, hardening=False):
    """Whether the fast step reproduces the engine's projection for these constraints.

    Mutability, bounds and cost weights are supported; with ``hardening`` also one-hot
    groups, integer grids and a limit on the number of changed features (the step loop then
    hardens every iterate as the engine's straight-through generators do). Any field a newer
    :class:`~skct.constraints.TorchConstraints` may carry that is set to something else than
    None or False is not: the eager engine runs those searches.
    """
    needs = (c.has_groups or getattr(c, "has_grid", False)
             or getattr(c, "needs_hardening", False)
             or getattr(c, "max_changed", None) is not None)
    if needs and not hardening:
        return False
    for t in (c.lower, c.upper, c.step_lower, c.step_upper):
        if t.dtype != dtype or t.device.type != "cpu":
            return False
    names = {f.name for f in dataclasses.fields(c)} | set(vars(c))
    return all(getattr(c, name, None) in (None, False) for name in names - _KNOWN_FIELDS)
