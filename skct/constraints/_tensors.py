"""Fitted actionability constraints as tensors: the form the search and the loss read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TorchConstraints", "MUTABILITY_WORDS"]

#: Accepted mutability words and their integer codes used on the torch side.
MUTABILITY_WORDS = {"none": 0, "increase": 1, "decrease": 2, "both": 3}


@dataclass
class TorchConstraints:
    """Fitted constraints as tensors. All helpers are batched over rows.

    Attributes
    ----------
    lower, upper : Tensor [D]
    mut : Tensor [D] int8 (0 none, 1 increase, 2 decrease, 3 both)
    group_index : Tensor [G, L] long, padded with 0 where ``group_mask`` is False
    group_mask : Tensor [G, L] bool
    group_mutable : Tensor [G] bool
    step_lower, step_upper : Tensor [D]
        Limits of one search step implied by mutability (0 or +-inf), derived.
    is_trivial, all_mutable : bool
        Derived once, so the search's hot loop can skip work that cannot change anything.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    mut: torch.Tensor
    group_index: torch.Tensor
    group_mask: torch.Tensor
    group_mutable: torch.Tensor
    step_lower: torch.Tensor = field(init=False, repr=False)
    step_upper: torch.Tensor = field(init=False, repr=False)
    is_trivial: bool = field(init=False)
    all_mutable: bool = field(init=False)

    def __post_init__(self):
        inf = torch.full_like(self.lower, float("inf"))
        zero = torch.zeros_like(self.lower)
        self.step_lower = torch.where((self.mut == 0) | (self.mut == 1), zero, -inf)
        self.step_upper = torch.where((self.mut == 0) | (self.mut == 2), zero, inf)
        self.all_mutable = bool((self.mut == 3).all())
        # True when no mask, bound or group applies (the search skips projections)
        self.is_trivial = bool(
            self.all_mutable
            and torch.isinf(self.lower).all()
            and torch.isinf(self.upper).all()
            and self.group_index.shape[0] == 0
        )

    @classmethod
    def from_arrays(cls, lower, upper, mutability, groups, dtype=torch.float32, device="cpu"):
        codes = np.array([MUTABILITY_WORDS[w] for w in mutability], dtype=np.int8)
        n_groups = len(groups)
        width = max((len(g) for g in groups), default=0)
        index = np.zeros((n_groups, width), dtype=np.int64)
        mask = np.zeros((n_groups, width), dtype=bool)
        for i, g in enumerate(groups):
            index[i, : len(g)] = g
            mask[i, : len(g)] = True
        mutable = np.array([codes[g[0]] != 0 for g in groups], dtype=bool)
        return cls(
            lower=torch.as_tensor(np.asarray(lower), dtype=dtype, device=device),
            upper=torch.as_tensor(np.asarray(upper), dtype=dtype, device=device),
            mut=torch.as_tensor(codes, device=device),
            group_index=torch.as_tensor(index, device=device),
            group_mask=torch.as_tensor(mask, device=device),
            group_mutable=torch.as_tensor(mutable, device=device),
        )

    @classmethod
    def unconstrained(cls, n_features, dtype=torch.float32, device="cpu"):
        return cls.from_arrays(
            np.full(n_features, -np.inf), np.full(n_features, np.inf),
            ["both"] * n_features, [], dtype=dtype, device=device,
        )

    @property
    def n_features(self):
        return self.lower.shape[0]

    @property
    def has_groups(self):
        return self.group_index.shape[0] > 0
