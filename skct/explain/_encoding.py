"""The fitted preprocessing of a Pipeline, column by column: a :class:`ModelEncoding`.

:func:`encoding_of` walks the fitted steps before a Pipeline's classifier (``ColumnTransformer``,
nested Pipelines, scalers, encoders) and records, for every column the model sees, the user
column it comes from and the map between the two: affine for scalers and passthrough, a level
for ``OneHotEncoder`` columns, a code for ``OrdinalEncoder`` columns. Steps it does not know are
recorded as such (``"other"``), so that bounds in the user's units are refused there with a
message that names the step, instead of being applied in the wrong units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler,
                                   OneHotEncoder, OrdinalEncoder, PowerTransformer,
                                   QuantileTransformer, RobustScaler, StandardScaler)

from .._utils._compat import (onehot_dropped_level, onehot_output_levels,
                              transformer_input_indices)
from ..constraints import ModelEncoding

__all__ = ["encoding_of"]


@dataclass(frozen=True)
class _Col:
    """One column during the walk: its user column and how it derives from it."""

    fid: int
    role: str = "affine"
    scale: float = 1.0
    offset: float = 0.0
    n_codes: int = 0
    gid: int = -1  # one-hot group tag


class _Walk:
    """State of one walk: group tags and ids of columns that mix several user columns."""

    def __init__(self, n_features):
        self.n_features = n_features
        self.next_gid = 0
        self.next_mixed = n_features
        self.has_dropped = {}
        self.where = np.full(n_features, "", dtype=object)

    def new_group(self, has_dropped):
        gid = self.next_gid
        self.next_gid += 1
        self.has_dropped[gid] = bool(has_dropped)
        return gid

    def mixed_id(self):
        self.next_mixed += 1
        return self.next_mixed - 1

    def note(self, cols, where, step):
        for c in cols:
            if 0 <= c.fid < self.n_features and not self.where[c.fid]:
                self.where[c.fid] = f"{where} ({type(step).__name__})"


def encoding_of(preprocessor, X, names=None):
    """The :class:`ModelEncoding` of a fitted preprocessing applied to the user's data ``X``.

    Parameters
    ----------
    preprocessor : fitted transformer or None
        The Pipeline's steps before the classifier (a Pipeline), or None.
    X : DataFrame or ndarray of shape (n_samples, n_features)
        User rows (a few are enough: they only give the steps' output widths).
    names : array-like of str or None
        Names of the model columns.

    Returns
    -------
    ModelEncoding

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> X = pd.DataFrame({"age": [20.0, 40.0, 60.0], "job": ["a", "b", "c"]})
    >>> ct = ColumnTransformer([("num", StandardScaler(), ["age"]),
    ...                         ("cat", OneHotEncoder(drop="first"), ["job"])]).fit(X)
    >>> enc = encoding_of(make_pipeline(ct), X)
    >>> enc.feature_id.tolist(), enc.role.tolist()
    ([0, 1, 1], ['affine', 'onehot', 'onehot'])
    >>> round(float(enc.scale[0]), 3), float(enc.offset[0]), enc.group_has_dropped
    (16.33, 40.0, [True])
    """
    n = X.shape[1]
    cols = [_Col(j) for j in range(n)]
    walk = _Walk(n)
    sample = X.iloc[:2] if isinstance(X, pd.DataFrame) else np.asarray(X)[:2]
    if preprocessor is not None:
        cols, _ = _step(preprocessor, cols, sample, "preprocessing", walk)
    gids = sorted({c.gid for c in cols if c.gid >= 0})
    groups = [[k for k, c in enumerate(cols) if c.gid == g] for g in gids]
    return ModelEncoding(
        n_features_in=n, feature_id=[c.fid for c in cols], role=[c.role for c in cols],
        scale=[c.scale if c.role in ("affine", "code") else np.nan for c in cols],
        offset=[c.offset if c.role in ("affine", "code") else np.nan for c in cols],
        n_codes=[c.n_codes for c in cols], groups=groups,
        group_has_dropped=[walk.has_dropped[g] for g in gids], where=walk.where,
        names=names,
    )


def _step(step, cols, X, where, walk):
    """Columns after a fitted ``step`` (and a sample of its output, for the next step)."""
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return cols, X
    if isinstance(step, Pipeline):
        for name, sub in step.steps:
            cols, X = _step(sub, cols, X, f"{where} > {name}", walk)
        return cols, X
    out = step.transform(X)
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, cols, X, where, walk), out
    affine = _affine_of(step)
    if affine is not None:
        return [_compose(c, a, b, walk, where, step) for c, a, b in zip(cols, *affine)], out
    if isinstance(step, OneHotEncoder):
        return _onehot(step, cols, walk), out
    if isinstance(step, OrdinalEncoder) and not getattr(step, "_infrequent_enabled", False):
        return [_Col(c.fid, "code", 1.0, 0.0, len(step.categories_[i]))
                for i, c in enumerate(cols)], out
    walk.note(cols, where, step)
    width = np.asarray(out).shape[1] if np.ndim(out) == 2 else len(cols)
    if width == len(cols) and isinstance(step, _COLUMNWISE):  # the user columns are kept
        return [_Col(c.fid, "other") for c in cols], out
    return [_Col(walk.mixed_id(), "other") for _ in range(width)], out


#: Steps that transform each column on its own (monotone, but not affine).
_COLUMNWISE = (PowerTransformer, QuantileTransformer, FunctionTransformer)


def _column_transformer(ct, cols, X, where, walk):
    width = max((sl.stop for sl in ct.output_indices_.values()), default=0)
    out = [None] * width
    for name, trans, _ in ct.transformers_:
        sl = ct.output_indices_[name]
        if (isinstance(trans, str) and trans == "drop") or sl.stop <= sl.start:
            continue
        idx = transformer_input_indices(ct, name)
        sub = X.iloc[:, idx] if isinstance(X, pd.DataFrame) else np.asarray(X)[:, idx]
        sub_cols, _ = _step(trans, [cols[i] for i in idx], sub, f"{where} > {name}", walk)
        if len(sub_cols) != sl.stop - sl.start:  # unexpected width: nothing can be mapped
            walk.note([cols[i] for i in idx], f"{where} > {name}", trans)
            sub_cols = [_Col(walk.mixed_id(), "other") for _ in range(sl.stop - sl.start)]
        out[sl] = sub_cols
    return out


def _affine_of(step):
    """``(a, b)`` per input column with ``input = output * a + b``, or None if not affine."""
    if isinstance(step, FunctionTransformer) and step.func is None:
        n = step.n_features_in_
        return np.ones(n), np.zeros(n)
    if isinstance(step, StandardScaler):
        n = step.n_features_in_
        scale = np.asarray(step.scale_, dtype=float) if step.with_std else np.ones(n)
        mean = np.asarray(step.mean_, dtype=float) if step.with_mean else np.zeros(n)
        return scale, mean
    if isinstance(step, RobustScaler):
        n = step.n_features_in_
        scale = np.asarray(step.scale_, dtype=float) if step.with_scaling else np.ones(n)
        center = np.asarray(step.center_, dtype=float) if step.with_centering else np.zeros(n)
        return scale, center
    if isinstance(step, MinMaxScaler):  # with clip=True too: affine inside the fitted range
        scale = np.asarray(step.scale_, dtype=float)
        return 1.0 / scale, -np.asarray(step.min_, dtype=float) / scale
    if isinstance(step, MaxAbsScaler):
        scale = np.asarray(step.scale_, dtype=float)
        return scale, np.zeros_like(scale)
    return None


def _compose(col, a, b, walk, where, step):
    """The column after an affine step ``input = output * a + b``."""
    if col.role not in ("affine", "code"):
        walk.note([col], where, step)
        return _Col(col.fid, "other")  # e.g. a scaled one-hot column: no longer 0/1
    scale, offset = a * col.scale, b * col.scale + col.offset
    if not (np.isfinite(scale) and np.isfinite(offset)) or scale == 0:
        walk.note([col], where, step)
        return _Col(col.fid, "other")
    return replace(col, scale=float(scale), offset=float(offset))


def _onehot(enc, cols, walk):
    out = []
    for i, c in enumerate(cols):
        levels = onehot_output_levels(enc, i)
        has_dropped, _ = onehot_dropped_level(enc, i)
        if len(levels) == 1:  # a two-level column with one level dropped: a 0/1 code
            out.append(_Col(c.fid, "code", 1.0, 0.0, 2 if has_dropped else 1))
            continue
        gid = walk.new_group(has_dropped)
        out.extend(_Col(c.fid, "onehot", gid=gid) for _ in levels)
    return out
