"""The domain in the user's units and in the model's space, the rounding grid and cost weights.

Pure numpy helpers of :class:`~skct.constraints.ActionabilityConstraints`: the user's bounds are
learned (observed range or mean +- n_sigma std) or given, then mapped column by column into the
model's input space through a :class:`~skct.constraints.ModelEncoding`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._schema import INTEGRAL_KINDS

__all__ = ["sigma_bounds", "raw_bounds", "model_bounds", "model_grid_and_cost",
           "ONEHOT_COST"]

#: Cost weight of one one-hot column: a change of category moves two columns by 1, costing 1.
ONEHOT_COST = 0.5


def sigma_bounds(X, n_sigma):
    """``[min(mu - n_sigma*sd, min x), max(mu + n_sigma*sd, max x)]`` per column of X [N, D].

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = sigma_bounds(np.array([[0.0], [2.0]]), 2.0)
    >>> lo.tolist(), hi.tolist()
    ([-1.0], [3.0])
    """
    X = np.asarray(X, dtype=np.float64)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    return np.minimum(mu - n_sigma * sd, X.min(axis=0)), np.maximum(mu + n_sigma * sd,
                                                                    X.max(axis=0))


def raw_bounds(schema, raw, rule, n_sigma, explicit):
    """Domain per user column in the user's units ([F] arrays; NaN for non-numeric columns).

    ``rule`` is ``"observed"``, ``"sigma"`` or None (unbounded) for the columns without
    explicit bounds; ``explicit`` maps a column index to its ``(low, high)``.
    """
    n = len(schema)
    lower, upper = np.full(n, np.nan), np.full(n, np.nan)
    frame = raw if isinstance(raw, pd.DataFrame) else pd.DataFrame(np.asarray(raw))
    for j, column in enumerate(schema):
        if j in explicit:
            lower[j], upper[j] = explicit[j]
        elif not column.numeric:
            continue
        elif rule is None:
            lower[j], upper[j] = -np.inf, np.inf
        elif rule == "observed":
            lower[j], upper[j] = column.lower, column.upper
        else:
            values = frame.iloc[:, j].to_numpy(dtype=np.float64)[:, None]
            lo, hi = sigma_bounds(values[np.isfinite(values[:, 0])], n_sigma)
            lower[j], upper[j] = lo[0], hi[0]
    return lower, upper


def _to_model(low, high, scale, offset):
    """Map user-unit bounds through ``user = model * scale + offset`` (any sign of scale)."""
    a, b = (low - offset) / scale, (high - offset) / scale
    return np.minimum(a, b), np.maximum(a, b)


def model_bounds(encoding, Z, lower_raw, upper_raw, rule, n_sigma, explicit, groups):
    """Domain per model column ([D] arrays) from the user's domain, through ``encoding``.

    The ``"sigma"`` rule is computed on the model-space data ``Z`` itself (the paper's domain);
    the observed range and explicit bounds are mapped from the user's units. Columns that skct
    cannot map get the observed range of ``Z``; ordinal codes and one-hot columns are always
    bounded by their codes and ``[0, 1]``.
    """
    d = encoding.n_features_model
    fid, role = encoding.feature_id, encoding.role
    if rule == "sigma":
        lower, upper = sigma_bounds(Z, n_sigma)
    elif rule is None:
        lower, upper = np.full(d, -np.inf), np.full(d, np.inf)
    else:
        lower, upper = Z.min(axis=0).astype(np.float64), Z.max(axis=0).astype(np.float64)
    n_raw = encoding.n_features_in
    for k in range(d):
        j = fid[k]
        mapped = role[k] == "affine" and j < n_raw and not np.isnan(lower_raw[j])
        if mapped and (j in explicit or rule == "observed"):
            lower[k], upper[k] = _to_model(lower_raw[j], upper_raw[j], encoding.scale[k],
                                           encoding.offset[k])
        elif role[k] == "code":
            lower[k], upper[k] = _to_model(0.0, encoding.n_codes[k] - 1.0, encoding.scale[k],
                                           encoding.offset[k])
    for g in groups:  # one-hot columns live in [0, 1], whatever ``bounds`` says
        lower[g] = 0.0
        upper[g] = 1.0
    return lower, upper


def model_grid_and_cost(encoding, schema, groups):
    """Rounding grid ``(grid_scale, grid_offset)`` and cost weights per model column ([D]).

    A column is on the grid (``user = model * scale + offset`` rounded to an integer) when its
    user column is integer, binary or ordinal with integer values, or an ordinal code; its cost
    weight is ``|scale| / MAD`` (a change in the user's units over the column's median absolute
    deviation), one code step for ordinal codes, :data:`ONEHOT_COST` per one-hot column and 1
    where no map is known.
    """
    d = encoding.n_features_model
    scale = np.zeros(d)
    offset = np.zeros(d)
    weight = np.ones(d)
    in_group = np.zeros(d, dtype=bool)
    for g in groups:
        in_group[g] = True
    mad = schema.mad
    for k in range(d):
        j, role = encoding.feature_id[k], encoding.role[k]
        if in_group[k] or role == "onehot":
            weight[k] = ONEHOT_COST
        elif role == "code":
            scale[k], offset[k] = encoding.scale[k], encoding.offset[k]
            weight[k] = abs(encoding.scale[k])
        elif role == "affine" and j < len(schema):
            weight[k] = abs(encoding.scale[k]) / mad[j]
            if _on_integer_grid(schema[j]):
                scale[k], offset[k] = encoding.scale[k], encoding.offset[k]
    return scale, offset, weight


def _on_integer_grid(column):
    if not column.numeric:
        return False
    if column.kind in INTEGRAL_KINDS and column.levels is None:
        return True
    if column.kind in INTEGRAL_KINDS + ("categorical",) and column.levels is not None:
        levels = np.asarray(column.levels, dtype=np.float64)
        return bool(np.all(levels == np.round(levels)))
    return False
