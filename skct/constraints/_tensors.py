"""Fitted actionability constraints as tensors: the form the search and the loss read."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TorchConstraints", "MUTABILITY_WORDS"]

#: Accepted mutability words and their integer codes used on the torch side.
MUTABILITY_WORDS = {"none": 0, "increase": 1, "decrease": 2, "both": 3}


@dataclass
class TorchConstraints:
    """Fitted constraints as tensors. All helpers are batched over rows.

    Build them with :meth:`from_arrays` (or ``ActionabilityConstraints.to_torch``); the
    optional fields below default to today's behaviour: no rounding, unit cost weights, one
    feature per column (one per one-hot group), no limit on the number of changed features.

    Attributes
    ----------
    lower, upper : Tensor [D]
    mut : Tensor [D] int8 (0 none, 1 increase, 2 decrease, 3 both)
    group_index : Tensor [G, L] long, padded with 0 where ``group_mask`` is False
    group_mask : Tensor [G, L] bool
    group_mutable : Tensor [G] bool
    feature_id : Tensor [D] long
        User column (feature) of each model column; the columns of a one-hot group share one.
    grid_scale, grid_offset : Tensor [D]
        ``raw = model * grid_scale + grid_offset`` for columns whose raw values are integers
        (the search rounds there, in raw units); a scale of 0 marks a continuous column.
    cost_weight : Tensor [D]
        Weight of each model column in the search's L1 cost term.
    max_changed : int or None
        At most that many features (by ``feature_id``) differ from the factual per row.
    group_has_dropped : Tensor [G] bool
        Whether the group's all-zero pattern is a legal level (``OneHotEncoder(drop=...)``).
    exact_bounds : bool
        False (default): the bounds are widened per row to contain the factual, so a factual
        outside the domain keeps its value. True: every iterate is clamped to
        ``[lower, upper]`` exactly, and a factual outside the domain is pulled inside
        (``ActionabilityConstraints(widen_bounds=False)``).
    step_lower, step_upper : Tensor [D]
        Limits of one search step implied by mutability (0 or +-inf), derived.
    feature_index : Tensor [D] long
        ``feature_id`` renumbered 0..F-1 (derived; ``n_feature_ids`` is F).
    grid_columns : Tensor [K] long
        Columns with a non-zero ``grid_scale`` (derived).
    grid_lower, grid_upper : Tensor [D]
        The bounds in raw units rounded inward to the grid (``ceil``/``floor``; derived).
    is_trivial, all_mutable, has_grid, unit_cost, needs_hardening : bool
        Derived once, so the search's hot loop can skip work that cannot change anything.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    mut: torch.Tensor
    group_index: torch.Tensor
    group_mask: torch.Tensor
    group_mutable: torch.Tensor
    feature_id: torch.Tensor | None = None
    grid_scale: torch.Tensor | None = None
    grid_offset: torch.Tensor | None = None
    cost_weight: torch.Tensor | None = None
    max_changed: int | None = None
    group_has_dropped: torch.Tensor | None = None
    exact_bounds: bool = False
    step_lower: torch.Tensor = field(init=False, repr=False)
    step_upper: torch.Tensor = field(init=False, repr=False)
    feature_index: torch.Tensor = field(init=False, repr=False)
    n_feature_ids: int = field(init=False, repr=False)
    grid_columns: torch.Tensor = field(init=False, repr=False)
    grid_lower: torch.Tensor = field(init=False, repr=False)
    grid_upper: torch.Tensor = field(init=False, repr=False)
    is_trivial: bool = field(init=False)
    all_mutable: bool = field(init=False)
    has_grid: bool = field(init=False, repr=False)
    unit_cost: bool = field(init=False, repr=False)
    needs_hardening: bool = field(init=False, repr=False)
    mutable_group_index: torch.Tensor = field(init=False, repr=False)
    mutable_group_mask: torch.Tensor = field(init=False, repr=False)
    mutable_group_has_dropped: torch.Tensor = field(init=False, repr=False)
    immutable_group_columns: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        lo = self.lower
        inf = torch.full_like(lo, float("inf"))
        zero = torch.zeros_like(lo)
        if self.feature_id is None:
            self.feature_id = _default_feature_id(self.n_features, self.group_index,
                                                  self.group_mask)
        if self.grid_scale is None:
            self.grid_scale = zero.clone()
        if self.grid_offset is None:
            self.grid_offset = zero.clone()
        if self.cost_weight is None:
            self.cost_weight = torch.ones_like(lo)
        if self.group_has_dropped is None:
            self.group_has_dropped = torch.zeros(self.group_index.shape[0], dtype=torch.bool,
                                                 device=lo.device)
        self._split_groups()
        self.step_lower = torch.where((self.mut == 0) | (self.mut == 1), zero, -inf)
        self.step_upper = torch.where((self.mut == 0) | (self.mut == 2), zero, inf)
        _, self.feature_index = torch.unique(self.feature_id, return_inverse=True)  # [D]
        self.n_feature_ids = int(self.feature_index.max()) + 1 if self.n_features else 0
        self.grid_columns = (self.grid_scale != 0).nonzero().squeeze(1)  # [K]
        self.grid_lower, self.grid_upper = self._grid_bounds()
        self.all_mutable = bool((self.mut == 3).all())
        self.has_grid = self.grid_columns.shape[0] > 0
        self.unit_cost = bool((self.cost_weight == 1).all())
        self.needs_hardening = bool(self.has_groups or self.has_grid
                                    or self.max_changed is not None)
        # True when no mask, bound, group, grid or limit applies (the search skips projections)
        self.is_trivial = bool(
            self.all_mutable
            and torch.isinf(self.lower).all()
            and torch.isinf(self.upper).all()
            and not self.needs_hardening
        )

    def _split_groups(self):
        """The mutable groups alone (padded only to their own widest group) and the columns of
        the immutable ones, so that hardening against a factual skips groups that never change
        (e.g. an immutable 41-level country)."""
        mutable = self.group_mutable  # [G]
        gi, gm = self.group_index[mutable], self.group_mask[mutable]  # [Gm, L]
        used = gm.any(dim=0).nonzero()
        width = int(used.max()) + 1 if used.numel() else 0
        self.mutable_group_index, self.mutable_group_mask = gi[:, :width], gm[:, :width]
        self.mutable_group_has_dropped = self.group_has_dropped[mutable]  # [Gm]
        self.immutable_group_columns = self.group_index[~mutable][self.group_mask[~mutable]]

    @staticmethod
    def grid_tolerance(x, scale, offset):
        """Snap tolerance, in raw units, of ``raw = x * scale + offset`` computed in x's dtype.

        A few units in the last place of the terms, capped at a quarter of a grid step, so that
        a value that is an integer up to float error (250.00002 in float32) counts as on the
        grid.
        """
        eps = torch.finfo(x.dtype).eps
        tol = 16 * eps * ((x * scale).abs() + offset.abs()) + 16 * eps
        return torch.clamp(tol, max=0.25)

    def _grid_bounds(self):
        """Raw-unit bounds of the grid columns rounded inward ([D]; +-inf elsewhere)."""
        s, o = self.grid_scale, self.grid_offset
        on = s != 0
        safe = torch.where(on, s, torch.ones_like(s))
        a, b = self.lower * safe + o, self.upper * safe + o  # raw images of the bounds
        raw_lo, raw_hi = torch.minimum(a, b), torch.maximum(a, b)
        tol_lo = self.grid_tolerance(self.lower.nan_to_num(0.0, 0.0, 0.0), safe, o)
        tol_hi = self.grid_tolerance(self.upper.nan_to_num(0.0, 0.0, 0.0), safe, o)
        inf = torch.full_like(s, float("inf"))
        g_lo = torch.where(on, torch.ceil(raw_lo - torch.maximum(tol_lo, tol_hi)), -inf)
        g_hi = torch.where(on, torch.floor(raw_hi + torch.maximum(tol_lo, tol_hi)), inf)
        return g_lo, g_hi

    @classmethod
    def from_arrays(cls, lower, upper, mutability, groups, dtype=torch.float32, device="cpu",
                    *, feature_id=None, grid_scale=None, grid_offset=None, cost_weight=None,
                    max_changed=None, group_has_dropped=None, exact_bounds=False):
        """Build the tensors from per-column arrays in the model's input space.

        Parameters
        ----------
        lower, upper : array-like of shape (D,)
            Domain bounds per model column (``-inf``/``inf`` for none).
        mutability : sequence of str of length D
            One of ``"none"``, ``"increase"``, ``"decrease"``, ``"both"`` per column.
        groups : list of list of int
            Column indices of each one-hot group.
        dtype, device
            Of the float tensors.
        feature_id : array-like of int of shape (D,), optional
            User column of each model column (default: the column index, one id per group).
        grid_scale, grid_offset : array-like of shape (D,), optional
            ``raw = model * grid_scale + grid_offset`` for integer-valued raw columns; 0 scale
            means continuous (default: all continuous).
        cost_weight : array-like of shape (D,), optional
            Non-negative L1 cost weight per column (default: 1).
        max_changed : int or None, default=None
            Most features (by ``feature_id``) that may differ from the factual per row.
        group_has_dropped : array-like of bool of shape (G,), optional
            Per group, whether its all-zero pattern is a legal (dropped) level.
        exact_bounds : bool, default=False
            Clamp to the bounds exactly instead of widening them per row to the factual.

        Examples
        --------
        >>> import numpy as np
        >>> from skct.constraints import TorchConstraints
        >>> c = TorchConstraints.from_arrays(np.zeros(3), np.ones(3), ["both"] * 3, [[1, 2]],
        ...                                  max_changed=1)
        >>> c.feature_id.tolist(), c.n_feature_ids, c.max_changed
        ([0, 1, 1], 2, 1)
        """
        d = len(mutability)
        codes = np.array([MUTABILITY_WORDS[w] for w in mutability], dtype=np.int8)
        n_groups = len(groups)
        width = max((len(g) for g in groups), default=0)
        index = np.zeros((n_groups, width), dtype=np.int64)
        mask = np.zeros((n_groups, width), dtype=bool)
        for i, g in enumerate(groups):
            index[i, : len(g)] = g
            mask[i, : len(g)] = True
        mutable = np.array([codes[g[0]] != 0 for g in groups], dtype=bool)
        fid = _check_feature_id(feature_id, d, groups)
        scale = _check_vector(grid_scale, d, "grid_scale", 0.0)
        offset = _check_vector(grid_offset, d, "grid_offset", 0.0)
        weight = _check_vector(cost_weight, d, "cost_weight", 1.0)
        if (weight < 0).any():
            raise ValueError(f"cost_weight must be non-negative; column "
                             f"{int(np.flatnonzero(weight < 0)[0])} is {weight[weight < 0][0]}.")
        in_group = [j for g in groups for j in g]
        if in_group and (scale[in_group] != 0).any():
            j = next(j for j in in_group if scale[j] != 0)
            raise ValueError(f"grid_scale must be 0 for one-hot group columns; column {j} is "
                             f"{scale[j]} (a group is kept one-hot, not rounded).")
        dropped = np.zeros(n_groups, dtype=bool) if group_has_dropped is None else \
            np.asarray(group_has_dropped, dtype=bool).reshape(-1)
        if dropped.shape[0] != n_groups:
            raise ValueError(f"group_has_dropped has {dropped.shape[0]} entries for "
                             f"{n_groups} groups.")
        if max_changed is not None and (not isinstance(max_changed, numbers.Integral)
                                        or isinstance(max_changed, bool) or max_changed < 0):
            raise ValueError(f"max_changed must be a non-negative integer or None, got "
                             f"{max_changed!r}.")
        if not isinstance(exact_bounds, (bool, np.bool_)):
            raise TypeError(f"exact_bounds must be True or False, got {exact_bounds!r}.")

        def f(a):
            return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

        return cls(
            lower=f(lower), upper=f(upper),
            mut=torch.as_tensor(codes, device=device),
            group_index=torch.as_tensor(index, device=device),
            group_mask=torch.as_tensor(mask, device=device),
            group_mutable=torch.as_tensor(mutable, device=device),
            feature_id=None if fid is None else torch.as_tensor(fid, device=device),
            grid_scale=f(scale), grid_offset=f(offset), cost_weight=f(weight),
            max_changed=None if max_changed is None else int(max_changed),
            group_has_dropped=torch.as_tensor(dropped, device=device),
            exact_bounds=bool(exact_bounds),
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


def _default_feature_id(d, group_index, group_mask):
    """Column index per column; every column of a group gets the group's first column."""
    fid = torch.arange(d, device=group_index.device)  # [D]
    if group_index.shape[0]:
        first = group_index[:, :1].expand_as(group_index)  # [G, L]
        fid[group_index[group_mask]] = first[group_mask]
    return fid


def _check_vector(values, d, name, default):
    if values is None:
        return np.full(d, default, dtype=np.float64)
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.shape[0] != d:
        raise ValueError(f"{name} has {out.shape[0]} entries for {d} columns.")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite; column "
                         f"{int(np.flatnonzero(~np.isfinite(out))[0])} is not.")
    return out


def _check_feature_id(feature_id, d, groups):
    if feature_id is None:
        return None
    fid = np.asarray(feature_id).reshape(-1)
    if fid.shape[0] != d:
        raise ValueError(f"feature_id has {fid.shape[0]} entries for {d} columns.")
    if not np.issubdtype(fid.dtype, np.integer):
        raise ValueError(f"feature_id must hold integers, got dtype {fid.dtype}.")
    for g in groups:
        if len(set(fid[g].tolist())) > 1:
            raise ValueError(f"the one-hot group of columns {list(g)} spans several features "
                             f"(feature_id {sorted(set(fid[g].tolist()))}); a group is one "
                             "feature.")
    return fid.astype(np.int64)
