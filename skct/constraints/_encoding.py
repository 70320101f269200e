"""How the columns a model sees derive from the user's columns (the fitted preprocessing).

:class:`ModelEncoding` describes, per model-input column, the user column it comes from and how:
an affine map (scalers, passthrough), a one-hot level, an ordinal code, or something skct
cannot map column by column. :class:`~skct.constraints.ActionabilityConstraints` reads it to put
bounds written in the user's units into the model's space, to round integer columns in the
user's units and to count changed features; ``skct.explain`` builds it from a fitted Pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ModelEncoding", "ROLES"]

#: How a model column derives from its user column.
ROLES = ("affine", "onehot", "code", "other")


@dataclass
class ModelEncoding:
    """Per model-input column: its user column and the map between the two spaces.

    Attributes
    ----------
    n_features_in : int
        Number of user columns F.
    feature_id : ndarray of int, shape (D,)
        User column of each model column; ``>= F`` for a column that mixes several user columns
        (e.g. the output of a PCA), each such column its own id.
    role : ndarray of str, shape (D,)
        ``"affine"``: ``user = model * scale + offset``; ``"onehot"``: one level of a one-hot
        group; ``"code"``: an ordinal code ``code = model * scale + offset`` in
        ``0 .. n_codes - 1`` (an ``OrdinalEncoder``, or a one-hot column of a two-level feature
        whose other level was dropped); ``"other"``: no per-column map is known.
    scale, offset : ndarray of float, shape (D,)
        The affine map of ``"affine"`` and ``"code"`` columns (NaN elsewhere).
    n_codes : ndarray of int, shape (D,)
        Number of codes of ``"code"`` columns (0 elsewhere).
    groups : list of ndarray of int
        Model columns of each one-hot group.
    group_has_dropped : list of bool
        Whether the group's all-zero pattern is a level (``OneHotEncoder(drop=...)``).
    where : ndarray of str, shape (F,)
        The preprocessing step of each user column, for messages (``""`` when none).
    names : ndarray of str or None, shape (D,)
        Names of the model columns, when known.
    """

    n_features_in: int
    feature_id: np.ndarray
    role: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    n_codes: np.ndarray
    groups: list = field(default_factory=list)
    group_has_dropped: list = field(default_factory=list)
    where: np.ndarray | None = None
    names: np.ndarray | None = None

    def __post_init__(self):
        d = len(self.feature_id)
        self.feature_id = np.asarray(self.feature_id, dtype=np.int64)
        self.role = np.asarray(self.role, dtype=str)
        self.scale = np.asarray(self.scale, dtype=np.float64)
        self.offset = np.asarray(self.offset, dtype=np.float64)
        self.n_codes = np.asarray(self.n_codes, dtype=np.int64)
        self.groups = [np.asarray(g, dtype=np.intp) for g in self.groups]
        self.group_has_dropped = [bool(b) for b in self.group_has_dropped]
        self.where = np.asarray(np.full(self.n_features_in, "") if self.where is None
                                else self.where, dtype=str)
        if self.names is not None:
            self.names = np.asarray(self.names, dtype=str)
        for name in ("role", "scale", "offset", "n_codes"):
            if len(getattr(self, name)) != d:
                raise ValueError(f"ModelEncoding.{name} has {len(getattr(self, name))} "
                                 f"entries for {d} model columns.")
        if len(self.group_has_dropped) != len(self.groups):
            raise ValueError("ModelEncoding.group_has_dropped needs one entry per group.")
        bad = sorted(set(self.role.tolist()) - set(ROLES))
        if bad:
            raise ValueError(f"ModelEncoding.role: unknown roles {bad}; expected {ROLES}.")

    @classmethod
    def identity(cls, n_features, names=None):
        """Model columns are the user columns (no preprocessing).

        Examples
        --------
        >>> from skct.constraints import ModelEncoding
        >>> enc = ModelEncoding.identity(3)
        >>> enc.feature_id.tolist(), enc.role.tolist()
        ([0, 1, 2], ['affine', 'affine', 'affine'])
        """
        return cls(
            n_features_in=n_features, feature_id=np.arange(n_features),
            role=np.full(n_features, "affine"), scale=np.ones(n_features),
            offset=np.zeros(n_features), n_codes=np.zeros(n_features, dtype=np.int64),
            names=names,
        )

    @property
    def n_features_model(self):
        return len(self.feature_id)

    def columns_of(self, j):
        """Model columns that encode user column ``j``."""
        return np.flatnonzero(self.feature_id == j)

    def group_of(self, j):
        """Index into ``groups`` of the one-hot group of user column ``j`` (None if none)."""
        for gi, g in enumerate(self.groups):
            if len(g) and self.feature_id[g[0]] == j:
                return gi
        return None
