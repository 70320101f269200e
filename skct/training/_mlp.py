"""The default network of counterfactual training: a multi-layer perceptron returning logits."""

from __future__ import annotations

from torch import nn

__all__ = ["MLP"]


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
