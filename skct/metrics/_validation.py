"""Input checks of the metrics: clear errors naming the parameter."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["check_2d", "check_same_shape", "check_same_features", "as_1d", "as_indices",
           "check_n_classes", "check_bounds", "reduce_rows"]


def check_2d(X, name):
    """X as a finite, numeric, non-empty 2D numpy array; ValueError naming ``name`` otherwise."""
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    try:
        X = np.asarray(X)
        if X.dtype == object:
            X = X.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2D [n_rows, n_features], got shape {X.shape}; use "
            f"{name}.reshape(1, -1) for a single row."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); it needs at least one row and one "
                         "feature.")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return X


def check_same_shape(A, a_name, B, b_name):
    if A.shape != B.shape:
        raise ValueError(f"{a_name} and {b_name} must have the same shape, got {A.shape} and "
                         f"{B.shape}.")


def check_same_features(A, a_name, B, b_name):
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"{a_name} has {A.shape[1]} features but {b_name} has {B.shape[1]}.")


def as_1d(y, name, n_rows, rows_name):
    """y as a 1D numpy array of length n_rows (a column vector [n, 1] is flattened)."""
    if torch.is_tensor(y):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1D, got shape {y.shape}.")
    if y.shape[0] != n_rows:
        raise ValueError(f"{name} has {y.shape[0]} entries but {rows_name} has {n_rows} rows.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return y


def as_indices(y, name, n_rows, rows_name, n_classes=None):
    """y as int64 class indices in [0, n_classes); ValueError naming ``name`` otherwise."""
    y = as_1d(y, name, n_rows, rows_name)
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
        raise ValueError(
            f"{name} must hold class indices (integers in [0, n_classes)), got dtype {y.dtype}; "
            "map labels to indices first, e.g. np.searchsorted(estimator.classes_, labels)."
        )
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got {y.min()}.")
    if n_classes is not None:
        check_n_classes(y, name, n_classes)
    return y


def check_n_classes(y, name, n_classes):
    if y.size and y.max() >= n_classes:
        raise ValueError(f"{name} holds class index {y.max()} but the model has only "
                         f"{n_classes} classes (indices 0..{n_classes - 1}).")


def check_bounds(lower, upper, d, names=("lower", "upper")):
    """Per-feature bounds [d] (float64) from scalars, arrays or None (= unbounded)."""
    out = []
    for value, name, default in zip((lower, upper), names, (-np.inf, np.inf)):
        if value is None:
            out.append(np.full(d, default))
            continue
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(d, float(arr))
        if arr.shape != (d,):
            raise ValueError(f"{name} must be a scalar or an array of {d} per-feature values, "
                             f"got shape {arr.shape}.")
        if np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN.")
        out.append(arr)
    if (out[0] > out[1]).any():
        raise ValueError(f"{names[0]} must not exceed {names[1]} for any feature.")
    return out


def reduce_rows(values, per_row):
    """values [n] -> the array itself (per_row) or its mean as a float."""
    return values if per_row else float(np.mean(values))
