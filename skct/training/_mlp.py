"""The default network of counterfactual training: a multi-layer perceptron returning logits."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "glorot_init_"]


class MLP(nn.Module):
    """Multi-layer perceptron returning logits: D -> hidden... -> C, ReLU between layers.

    ``hidden_layer_sizes=()`` gives a linear model.

    Examples
    --------
    >>> import torch
    >>> MLP(3, 2, hidden_layer_sizes=(8,))(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(32,)):
        super().__init__()
        layers, width = [], n_features
        for h in hidden_layer_sizes:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, X):  # [N, D] -> [N, C]
        return self.net(X)


def glorot_init_(module, generator=None):
    """Re-initialise every ``nn.Linear`` of ``module`` in place: Glorot weights, zero biases.

    Weights are drawn from the Glorot (Xavier) uniform distribution
    ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, biases set to 0: Flux's ``Dense``
    default (``init=glorot_uniform``, ``bias=true`` as zeros), which the paper's networks use
    (CounterfactualTraining.jl, ``paper/experiments/CTExperiments/src/mlp.jl``). Other layers
    are left as they are.

    Parameters
    ----------
    module : torch.nn.Module
    generator : torch.Generator or None, default=None
        CPU source of the random numbers (None: torch's process-wide generator).

    Returns
    -------
    module : torch.nn.Module
        The same module.

    Examples
    --------
    >>> import torch
    >>> mlp = glorot_init_(MLP(3, 2, hidden_layer_sizes=(8,)), torch.Generator().manual_seed(0))
    >>> float(mlp.net[0].bias.abs().sum()), bool(mlp.net[0].weight.abs().max() <= (6 / 11) ** 0.5)
    (0.0, True)
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                # drawn on the CPU (a CPU generator serves a module on any device, and the
                # same seed gives the same weights everywhere), then copied in place
                w = torch.empty(layer.weight.shape, dtype=layer.weight.dtype)  # [out, in]
                nn.init.xavier_uniform_(w, generator=generator)
                layer.weight.copy_(w)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    return module
