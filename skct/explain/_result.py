"""What :meth:`CounterfactualExplainer.explain` returns, and the resolution of targets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._utils import dense_path_property, labels_to_indices, safe_indexing

__all__ = ["CounterfactualPath", "CounterfactualResult", "resolve_targets", "repeat_rows",
           "order_options", "blank_rows", "check_finite"]


class CounterfactualPath:
    """The search iterates of an explanation in model space, kept compact until read.

    Rows that were not searched stay at their factual; each searched chunk of rows keeps its
    search's path (a :class:`~skct.search.SearchResult` path, compact or dense). :meth:`to_dense`
    builds the padded ``[n_steps, N, D]`` float64 array.

    Parameters
    ----------
    factuals : array-like [N, D]
        The factuals in model space (the value of rows never searched).
    n_steps : int
        Length of the path (``max_iter + 1``).

    Examples
    --------
    >>> import torch
    >>> path = CounterfactualPath(torch.zeros(3, 2), n_steps=2)
    >>> path.add(torch.tensor([1]), torch.ones(2, 1, 2))  # row 1 searched, dense piece
    >>> path.to_dense()[:, :, 0].tolist()
    [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    """

    def __init__(self, factuals, n_steps):
        self.factuals = factuals
        self.n_steps = int(n_steps)
        self.pieces = []  # (rows [A] long, path of those rows: compact or Tensor [T + 1, A, D])

    @property
    def shape(self):
        """``(n_steps, N, D)``, the shape of :meth:`to_dense`."""
        return (self.n_steps,) + tuple(self.factuals.shape)

    def add(self, rows, path):
        """The rows ``rows`` [A] followed ``path`` (``to_dense()`` or a Tensor [T + 1, A, D])."""
        self.pieces.append((rows, path))

    def to_dense(self):
        """The padded path, an ndarray of float64 [n_steps, N, D]."""
        base = np.asarray(self.factuals, dtype=np.float64)  # [N, D]
        out = np.broadcast_to(base, self.shape).copy()  # [T + 1, N, D]
        for rows, path in self.pieces:
            dense = path.to_dense() if hasattr(path, "to_dense") else path  # [T + 1, A, D]
            out[:, np.asarray(rows)] = dense.detach().cpu().double().numpy()
        return out


@dataclass
class CounterfactualResult:
    """Counterfactual explanations for a batch of factuals.

    Attributes
    ----------
    counterfactuals : DataFrame or ndarray
        Counterfactuals in the user's columns (categoricals as categories).
    factuals : DataFrame or ndarray
        The rows that were explained (a copy).
    targets : ndarray
        Target class label per row.
    valid : ndarray of bool
        Decided on the returned rows: the model predicts the target for the counterfactual
        as returned (after rounding, domain clipping and the inverse preprocessing) with
        ``p(target | x') >= decision_threshold``. Rows whose target cannot be reached within
        the constraints are ``False``; their ``counterfactuals`` hold the search's last iterate.
    converged : ndarray of bool
        Whether the search reached the threshold (in the model's space, before the returned
        rows were checked).
    n_iter : ndarray of int
        Gradient steps taken per row.
    target_proba : ndarray of float
        ``p(target | x')`` of the returned row, as the estimator's ``predict_proba`` gives it.
    counterfactuals_model, factuals_model : ndarray
        The returned rows and the factuals in the model's input space (after preprocessing),
        in the model's precision (float32 values stored as float64, so an unchanged feature
        has exactly zero difference).
    target_index : ndarray of int
        Target class index into ``classes_``.
    feature_names_model : ndarray of str or None
        Names of the model-space columns.
    path : ndarray of shape (max_iter + 1, n_rows, n_features_model) or None
        Every search iterate in model space, when requested. Built on first access from
        :attr:`compact_path` (then kept); may also be given as an array.
    compact_path : CounterfactualPath or None
        The same iterates, kept per searched chunk for the rows still searching only.
    n_changed : ndarray of int or None
        Number of features (user columns; a one-hot group is one) that differ from the factual.
    row_id : ndarray of int or None
        Position of each entry's factual in the explained rows (``np.arange(N)`` for one
        counterfactual per row; each position ``n_per_row`` times, adjacent, otherwise).
    rank : ndarray of int or None
        Each entry's place among its factual's counterfactuals: 0 for the best, valid ones
        first, then by cost in the user's units over each column's MAD (all 0 for one per
        row).
    """

    counterfactuals: object
    factuals: object
    targets: np.ndarray
    valid: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    target_proba: np.ndarray
    counterfactuals_model: np.ndarray
    factuals_model: np.ndarray
    target_index: np.ndarray
    feature_names_model: np.ndarray | None = None
    path: np.ndarray | None = field(default=None, repr=False)
    n_changed: np.ndarray | None = None
    row_id: np.ndarray | None = None
    rank: np.ndarray | None = None

    @property
    def compact_path(self):
        """The path as a :class:`CounterfactualPath` (None if none was kept or given dense)."""
        p = self.__dict__.get("_path")
        return p if isinstance(p, CounterfactualPath) else None

    def __repr__(self):
        n = len(self.valid)
        changed = "" if self.n_changed is None or not n else \
            f", median_n_changed={float(np.median(self.n_changed)):g}"
        return (f"CounterfactualResult(n_rows={n}, valid={int(self.valid.sum())}/{n}, "
                f"mean_n_iter={self.n_iter.mean() if n else 0:.1f}{changed})")


# ``path`` stays a dataclass field (constructor, equality) read through a lazy property: the
# dataclass took the field's default above, so the class attribute can now be the property.
CounterfactualResult.path = dense_path_property(
    "Every search iterate [T + 1, N, D] (dense, built when read).")


def resolve_targets(target, classes, predicted_index, rng, param="target"):
    """Target class indices [n] from a user's ``target`` spec.

    ``target`` is a class label, an array of labels (one per row), ``"opposite"`` (binary: the
    class other than the predicted one) or None (a random class other than the predicted one).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> resolve_targets("opposite", np.array(["no", "yes"]), np.array([0, 1, 1]), rng).tolist()
    [1, 0, 0]
    >>> resolve_targets("yes", np.array(["no", "yes"]), np.array([0, 1]), rng).tolist()
    [1, 1]
    """
    n = len(predicted_index)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(f"{param}: the model knows only one class {list(classes)}; "
                         "there is no other class to explain toward.")
    if target is None:
        offset = rng.randint(1, n_classes, size=n)
        return (predicted_index + offset) % n_classes
    if isinstance(target, str) and target == "opposite":
        if n_classes != 2:
            raise ValueError(f"{param}='opposite' needs a binary classifier; this one has "
                             f"{n_classes} classes {list(classes)}.")
        return 1 - predicted_index
    labels = np.asarray(target, dtype=object if np.asarray(target).dtype.kind in "OUS" else None)
    if labels.ndim == 0:
        labels = np.full(n, labels.item(), dtype=object)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{param}: expected one label or {n} labels (one per row), got an "
                         f"array of shape {labels.shape}.")
    return labels_to_indices(labels, classes, param=param)


def repeat_rows(X, k):
    """Every row of an array or DataFrame ``k`` times, the copies adjacent (index repeated).

    Examples
    --------
    >>> repeat_rows(np.array([[1], [2]]), 2).ravel().tolist()
    [1, 1, 2, 2]
    """
    rows = np.repeat(np.arange(X.shape[0]), k)
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]


def check_finite(X):
    """ValueError naming the columns of ``X`` (array or DataFrame) holding NaN or infinity.

    Numeric columns only (one column at a time: no float copy of the whole table).

    Examples
    --------
    >>> check_finite(pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]}))
    Traceback (most recent call last):
    ...
    ValueError: X contains NaN or infinity in column(s) ['a'].
    """
    if isinstance(X, pd.DataFrame):
        num = X.select_dtypes(include="number")
        bad = [c for j, c in enumerate(num.columns)
               if not np.isfinite(num.iloc[:, j].to_numpy(dtype=np.float64)).all()]
        if bad:
            raise ValueError(f"X contains NaN or infinity in column(s) {bad}.")
    elif X.dtype.kind in "fiub" and not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")


def order_options(part, k, cost_weight):
    """One chunk's ``k`` entries per factual ordered by rank, with ``rank`` added.

    ``part`` holds per-entry arrays (``valid``, ``Z_ret``, ``x`` and the others of the
    explainer's chunk), ``cf`` and ``piece`` (searched positions, their path) or None; the
    copies of a factual are adjacent. The rank puts valid entries first, then orders by
    ``sum_d cost_weight_d * |Z_ret - x|`` (the cost in the user's units over each MAD); ties
    keep the copies' order.
    """
    n = len(part["valid"])
    cost = (np.abs(part["Z_ret"] - part["x"]) * cost_weight).sum(axis=1)  # [n]
    group = np.arange(n) // k
    order = np.lexsort((np.arange(n), cost, ~part["valid"], group))  # [n] new -> old
    out = {key: (v[order] if isinstance(v, np.ndarray) else v) for key, v in part.items()}
    out["cf"] = safe_indexing(part["cf"], order)
    out["rank"] = np.tile(np.arange(k), n // k)
    if part["piece"] is not None:
        where = np.empty(n, dtype=np.int64)
        where[order] = np.arange(n)  # old -> new
        rows, path = part["piece"]
        out["piece"] = (where[np.asarray(rows)], path)
    return out


def blank_rows(cf, rows):
    """A copy of ``cf`` with missing values in every column of ``rows`` (a bool mask)."""
    if isinstance(cf, pd.DataFrame):
        out = cf.copy()
        for col in out.columns:
            dtype = out[col].dtype
            if pd.api.types.is_bool_dtype(dtype):
                out[col] = out[col].astype("boolean")
            elif pd.api.types.is_integer_dtype(dtype):
                out[col] = out[col].astype("Int64" if dtype.kind == "i" else "UInt64")
            elif not isinstance(dtype, pd.CategoricalDtype) and dtype.kind not in "fcO":
                out[col] = out[col].astype(object)
            out.loc[rows, col] = np.nan
        return out
    out = np.array(cf, dtype=np.float64 if cf.dtype.kind in "biuf" else object, copy=True)
    out[rows] = np.nan
    return out
