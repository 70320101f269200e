"""What the compiled search can run: a model read as a chain of layers, and the checks on it.

The compiled search (:mod:`skct.search._compiled`) computes input gradients analytically, so it
needs the model as a plain chain of ``nn.Linear`` layers and elementwise activations (ReLU,
LeakyReLU, Tanh, Sigmoid; Identity and Dropout, which are the identity in eval mode). Such a
chain is read from an ``nn.Sequential`` (nested ones too) or, for other modules, from a
``torch.fx`` trace of their forward; anything else (hooks, branches, other layers) is not a
chain and the eager engine runs instead.
"""

from __future__ import annotations

import dataclasses
import operator
import weakref

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["model_plan", "plan_key", "constraints_supported"]

#: Elementwise activations the analytic backward knows, by module type.
_ACT_MODULES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
                nn.LeakyReLU: "leaky_relu"}
#: The same activations as functions or tensor methods (``F.relu(h)``, ``h.tanh()``).
_ACT_FUNCS = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh", torch.sigmoid: "sigmoid",
              F.leaky_relu: "leaky_relu", "relu": "relu", "tanh": "tanh",
              "sigmoid": "sigmoid"}
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
                 "has_grid", "unit_cost", "needs_hardening"}


def _signature(model):
    """Cheap fingerprint of a model's structure: changes when a submodule is replaced."""
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


def _function_layer(node):
    """Layer tuple of an activation applied as a function or method (fx node), else False."""
    kind = _ACT_FUNCS.get(node.target)
    if kind is None or kind == "leaky_relu" and node.op != "call_function":
        return False
    if kind == "leaky_relu":
        slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
        if not isinstance(slope, (int, float)):
            return False
        return ("act", kind, float(slope))
    extra = {k: v for k, v in node.kwargs.items() if k != "inplace"}
    if len(node.args) != 1 or extra:
        return False
    return ("act", kind, 0.0)


def _traced_layers(model):
    """Layers of a module whose forward is a chain of supported calls (``torch.fx`` trace)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # any forward fx cannot trace is simply not a chain
        return None
    modules = dict(model.named_modules())
    layers, previous = [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                return None  # more than one input
            previous = node
            continue
        if node.op == "output":
            return layers if node.args[0] is previous else None
        if not node.args or node.args[0] is not previous or len(node.users) != 1:
            return None  # not a chain: branches, extra inputs or unused values
        if node.op == "call_module":
            if len(node.args) != 1 or node.kwargs:
                return None
            layer = _module_layer(modules[node.target])
        elif node.op in ("call_function", "call_method") and node.target is not operator.getitem:
            layer = _function_layer(node)
        else:
            return None
        if layer is False:
            return None
        if layer is not None:
            layers.append(layer)
        previous = node
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
    if isinstance(model, nn.Sequential):
        layers = _sequential_layers(model)
    else:
        layers = _traced_layers(model)
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


def constraints_supported(c, dtype):
    """Whether the fast step reproduces the engine's projection for these constraints.

    Mutability, bounds and cost weights are supported. One-hot groups, integer grids, a limit
    on the number of changed features, and any field a newer
    :class:`~skct.constraints.TorchConstraints` may carry that is set to something else than
    None or False are not: the eager engine runs those searches.
    """
    if c.has_groups or getattr(c, "has_grid", False) or getattr(c, "needs_hardening", False):
        return False
    if getattr(c, "max_changed", None) is not None:
        return False
    for t in (c.lower, c.upper, c.step_lower, c.step_upper):
        if t.dtype != dtype or t.device.type != "cpu":
            return False
    names = {f.name for f in dataclasses.fields(c)} | set(vars(c))
    return all(getattr(c, name, None) in (None, False) for name in names - _KNOWN_FIELDS)
