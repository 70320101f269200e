"""Evaluation metrics for counterfactual explanations and counterfactually trained models.

Plain functions, numpy in and numpy (or float) out. Counterfactuals ``X_cf`` [n, d] belong to
factuals ``X`` [n, d] and target classes ``y_target`` [n]; reference data ``X_ref``, ``y_ref``
stand for the data distribution.

Classes are always given as **class indices** (integers in ``[0, n_classes)``, the column of the
model's logits), never as labels: callers map labels to indices (e.g. with
``np.searchsorted(estimator.classes_, labels)``) before calling these functions.

Functions that need a model take ``model``: a :class:`torch.nn.Module`, or any callable mapping a
float tensor [n, d] to logits [n, n_classes]. Modules are put in eval mode while they are used
and restored afterwards; gradients with respect to inputs are taken with
:func:`torch.autograd.grad`, so the parameters and their ``.grad`` are never touched. Inputs are
never modified in place.

The energy of a point for a class is ``E(x, y) = -logit_y(x)`` (Grathwohl et al., 2020): the
unnormalised log-density of the joint energy model ``p(x, y) ~ exp(logit_y(x))`` is ``-E``.
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions, validate_params

from ..losses import energy
from .._utils import eval_mode

__all__ = [
    "METRICS",
    "adversarial_accuracy",
    "cost",
    "energy_differential",
    "faithfulness",
    "fgsm",
    "implausibility",
    "mmd",
    "pgd",
    "protected_feature_sensitivity",
    "redundancy",
    "sparsity",
    "strict_validity",
    "validity",
]


# -- the model -------------------------------------------------------------------------------
def _as_logits_fn(model):
    """Return a callable mapping a float tensor [n, d] to logits [n, C].

    A fitted :class:`~skct.CounterfactualTrainedClassifier` or skorch net gives its torch module
    (inputs in the classifier's own input space). A :class:`torch.nn.Module` or any other
    callable passes through unchanged (a module stays a
    module, so that ``skct._utils.eval_mode`` and the device/dtype lookup see it).
    """
    if isinstance(model, torch.nn.Module):
        return model
    if hasattr(model, "logits_module_") or hasattr(model, "module_"):
        # a fitted CounterfactualTrainedClassifier or skorch net (model-space inputs)
        from ..explain import to_logits_module

        return to_logits_module(model)
    if callable(model) and not isinstance(model, type):
        return model
    raise TypeError(
        "model must be a torch.nn.Module or a callable mapping a float tensor [n, d] to logits "
        f"[n, n_classes], got {type(model).__name__}."
    )


def _device_dtype(fn):
    """Device and floating dtype the model's inputs should have (CPU float32 for callables)."""
    device, dtype = torch.device("cpu"), torch.float32
    if isinstance(fn, torch.nn.Module):
        tensors = list(itertools.chain(fn.parameters(), fn.buffers()))
        if tensors:
            device = tensors[0].device
        floats = [t for t in tensors if t.is_floating_point()]
        if floats:
            dtype = floats[0].dtype
    return device, dtype


def _to_tensor(X, device, dtype):
    """Copy a numpy array into a new tensor (never shares memory with the caller's array)."""
    return torch.tensor(np.asarray(X), dtype=dtype, device=device)


def _forward(fn, x):
    """logits [n, C] = fn(x [n, d]), checked."""
    logits = fn(x)
    if not torch.is_tensor(logits) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(
            f"model must map a tensor [n, d] to logits [n, n_classes]; for input shape "
            f"{tuple(x.shape)} it returned {shape}."
        )
    return logits


def _predict_logits(fn, X):
    """Logits [n, C] (detached) of a numpy array X [n, d], model in eval mode."""
    device, dtype = _device_dtype(fn)
    with eval_mode(fn), torch.no_grad():
        return _forward(fn, _to_tensor(X, device, dtype))


def _input_grad(fn, x, target, objective):
    """Gradient [n, d] of sum_i objective(logits, target)_i w.r.t. the inputs x [n, d].

    Must run under ``torch.enable_grad()`` with the model in eval mode. Only the input gets a
    gradient; parameters and their ``.grad`` are left alone.
    """
    x = x.detach().requires_grad_(True)
    loss = objective(_forward(fn, x), target).sum()
    if not loss.requires_grad:  # model output does not depend on its input
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def _cross_entropy(logits, target):
    """CE per row: logits [n, C], target [n] long -> [n]."""
    return F.cross_entropy(logits, target, reduction="none")


def _torch_generator(random_state, device):
    """A torch generator on ``device`` seeded from an sklearn-style random_state."""
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


# -- input checks ----------------------------------------------------------------------------
def _check_2d(X, name):
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


def _check_same_shape(A, a_name, B, b_name):
    if A.shape != B.shape:
        raise ValueError(f"{a_name} and {b_name} must have the same shape, got {A.shape} and "
                         f"{B.shape}.")


def _check_same_features(A, a_name, B, b_name):
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"{a_name} has {A.shape[1]} features but {b_name} has {B.shape[1]}.")


def _as_1d(y, name, n_rows, rows_name):
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


def _as_indices(y, name, n_rows, rows_name, n_classes=None):
    """y as int64 class indices in [0, n_classes); ValueError naming ``name`` otherwise."""
    y = _as_1d(y, name, n_rows, rows_name)
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
        raise ValueError(
            f"{name} must hold class indices (integers in [0, n_classes)), got dtype {y.dtype}; "
            "map labels to indices first, e.g. np.searchsorted(estimator.classes_, labels)."
        )
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got {y.min()}.")
    if n_classes is not None:
        _check_n_classes(y, name, n_classes)
    return y


def _check_n_classes(y, name, n_classes):
    if y.size and y.max() >= n_classes:
        raise ValueError(f"{name} holds class index {y.max()} but the model has only "
                         f"{n_classes} classes (indices 0..{n_classes - 1}).")


def _check_bounds(lower, upper, d, names=("lower", "upper")):
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


def _reduce(values, per_row):
    """values [n] -> the array itself (per_row) or its mean as a float."""
    return values if per_row else float(np.mean(values))


# -- validity --------------------------------------------------------------------------------
@validate_params({"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"]},
                 prefer_skip_nested_validation=True)
def validity(model, X_cf, y_target):
    """Share of counterfactuals the model assigns to their target class.

    ``validity = (1/n) * sum_i 1[argmax_c logit_c(x'_i) == y+_i]``.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals, in the model's input space.
    y_target : array-like of shape (n,)
        Target class index of each row (integers in ``[0, n_classes)``).

    Returns
    -------
    float
        In ``[0, 1]``; higher is better.

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import validity
    >>> model = torch.nn.Linear(1, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]])); _ = model.bias.zero_()
    >>> validity(model, [[2.0], [-1.0]], [1, 1])
    0.5
    """
    fn = _as_logits_fn(model)
    X_cf = _check_2d(X_cf, "X_cf")
    y = _as_indices(y_target, "y_target", X_cf.shape[0], "X_cf")
    logits = _predict_logits(fn, X_cf)
    _check_n_classes(y, "y_target", logits.shape[1])
    pred = logits.argmax(dim=1).cpu().numpy()
    return float(np.mean(pred == y))


@validate_params(
    {"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"],
     "decision_threshold": [Interval(numbers.Real, 0, 1, closed="both")]},
    prefer_skip_nested_validation=True,
)
def strict_validity(model, X_cf, y_target, *, decision_threshold=0.75):
    """Share of counterfactuals whose target-class probability reaches the decision threshold.

    ``strict_validity = (1/n) * sum_i 1[softmax(logits(x'_i))_{y+_i} >= tau]``.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    y_target : array-like of shape (n,)
        Target class indices.
    decision_threshold : float in [0, 1], default=0.75
        The threshold ``tau``.

    Returns
    -------
    float
        In ``[0, 1]``; higher is better.

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import strict_validity
    >>> model = torch.nn.Linear(1, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]])); _ = model.bias.zero_()
    >>> # p(1 | x) = sigmoid(2 x): 0.98 at x = 2, 0.62 at x = 0.25
    >>> strict_validity(model, [[2.0], [0.25]], [1, 1], decision_threshold=0.75)
    0.5
    """
    fn = _as_logits_fn(model)
    X_cf = _check_2d(X_cf, "X_cf")
    y = _as_indices(y_target, "y_target", X_cf.shape[0], "X_cf")
    logits = _predict_logits(fn, X_cf)
    _check_n_classes(y, "y_target", logits.shape[1])
    target = torch.as_tensor(y, device=logits.device)
    proba = torch.softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)  # [n]
    return float(np.mean(proba.cpu().numpy() >= decision_threshold))


# -- closeness -------------------------------------------------------------------------------
@validate_params(
    {"X_cf": ["array-like"], "X": ["array-like"],
     "ord": [Interval(numbers.Real, 0, None, closed="neither"),
             Options(numbers.Real, {np.inf})],
     "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def cost(X_cf, X, *, ord=1, per_row=False):
    """Distance between counterfactuals and their factuals.

    ``cost_i = ||x'_i - x_i||_p = (sum_j |x'_ij - x_ij|^p)^(1/p)`` with ``p = ord`` (``p = inf``:
    the largest absolute change); the mean over rows unless ``per_row``.

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    X : array-like of shape (n, d)
        Factuals.
    ord : float > 0 or inf, default=1
        Order of the norm (1: L1, 2: Euclidean, ``np.inf``: largest change).
    per_row : bool, default=False
        Return the per-row costs instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        Lower is better.

    Examples
    --------
    >>> from skct.metrics import cost
    >>> cost([[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])  # (3 + 1) / 2
    2.0
    >>> cost([[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], per_row=True)
    array([3., 1.])
    """
    X_cf = _check_2d(X_cf, "X_cf")
    X = _check_2d(X, "X")
    _check_same_shape(X_cf, "X_cf", X, "X")
    delta = X_cf.astype(np.float64) - X.astype(np.float64)  # [n, d]
    return _reduce(np.linalg.norm(delta, ord=ord, axis=1), per_row)


@validate_params(
    {"X_cf": ["array-like"], "X": ["array-like"],
     "tol": [Interval(numbers.Real, 0, None, closed="neither")], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def redundancy(X_cf, X, *, tol=1e-5, per_row=False):
    """Share of features a counterfactual leaves unchanged (also called sparsity).

    ``redundancy_i = (1/d) * sum_j 1[|x'_ij - x_ij| < tol]``; the mean over rows unless
    ``per_row``.

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    X : array-like of shape (n, d)
        Factuals.
    tol : float > 0, default=1e-5
        Changes smaller than this count as no change.
    per_row : bool, default=False
        Return the per-row shares instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        In ``[0, 1]``; higher means sparser explanations.

    Examples
    --------
    >>> from skct.metrics import redundancy
    >>> redundancy([[1.0, 2.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 1.0]], per_row=True)
    array([0.5, 1. ])
    """
    X_cf = _check_2d(X_cf, "X_cf")
    X = _check_2d(X, "X")
    _check_same_shape(X_cf, "X_cf", X, "X")
    unchanged = np.abs(X_cf.astype(np.float64) - X.astype(np.float64)) < tol  # [n, d]
    return _reduce(unchanged.mean(axis=1), per_row)


#: Alias of :func:`redundancy`.
sparsity = redundancy


# -- plausibility ----------------------------------------------------------------------------
def _mean_l1_to_class(X_cf, y, samples_of):
    """Per row i: mean L1 distance of X_cf[i] to samples_of(y_i) [k, d] -> [n] (one cdist per
    class)."""
    out = np.empty(X_cf.shape[0], dtype=np.float64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        out[rows] = cdist(X_cf[rows], samples_of(c), metric="cityblock").mean(axis=1)
    return out


@validate_params(
    {"X_cf": ["array-like"], "y_target": ["array-like"], "X_ref": ["array-like"],
     "y_ref": ["array-like"], "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
     "random_state": ["random_state"], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def implausibility(X_cf, y_target, X_ref, y_ref, *, n_neighbors=1000, random_state=None,
                   per_row=False):
    """Mean L1 distance of each counterfactual to reference samples of its target class.

    ``implausibility_i = (1/|R_i|) * sum_{x in R_i} ||x'_i - x||_1`` where ``R_i`` holds the rows
    of ``X_ref`` with ``y_ref == y+_i``, subsampled without replacement to at most
    ``n_neighbors`` rows (one subsample per class, shared by all rows with that target); the
    mean over rows unless ``per_row``. Lower means counterfactuals closer to the data of their
    target class (Altmeyer et al., 2024).

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    y_target : array-like of shape (n,)
        Target class of each row (class indices; any labels work as long as ``y_ref`` uses the
        same ones).
    X_ref : array-like of shape (m, d)
        Reference data, e.g. the training set.
    y_ref : array-like of shape (m,)
        Classes of the reference rows.
    n_neighbors : int, default=1000
        Largest number of reference rows per class.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling.
    per_row : bool, default=False
        Return the per-row distances instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        Lower is better.

    Examples
    --------
    >>> from skct.metrics import implausibility
    >>> X_ref = [[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]]
    >>> implausibility([[1.0, 1.0]], [0], X_ref, [0, 0, 1])  # (2 + 2) / 2
    2.0
    """
    X_cf = _check_2d(X_cf, "X_cf")
    X_ref = _check_2d(X_ref, "X_ref")
    _check_same_features(X_cf, "X_cf", X_ref, "X_ref")
    y = _as_1d(y_target, "y_target", X_cf.shape[0], "X_cf")
    y_ref = _as_1d(y_ref, "y_ref", X_ref.shape[0], "X_ref")
    rng = check_random_state(random_state)
    classes = np.unique(y)
    pools = {}
    for c in classes:  # one subsample per class, in sorted class order (reproducible)
        idx = np.flatnonzero(y_ref == c)
        if idx.size == 0:
            raise ValueError(f"y_ref has no rows of target class {c!r} (found in y_target).")
        if idx.size > n_neighbors:
            idx = rng.choice(idx, size=n_neighbors, replace=False)
        pools[c] = X_ref[idx].astype(np.float64)
    dist = _mean_l1_to_class(X_cf.astype(np.float64), y, pools.__getitem__)
    return _reduce(dist, per_row)


def _gaussian_gram(A, B, length_scale):
    """k(a, b) = exp(-||a - b||^2 / (2 l^2)): A [n, d], B [m, d] -> [n, m]."""
    dist = torch.cdist(A, B, compute_mode="donot_use_mm_for_euclid_dist")  # exact, [n, m]
    return torch.exp(-dist.square() / (2.0 * length_scale**2))


def _mmd2_from_gram(K0, s):
    """Unbiased MMD^2 of the split ``s`` of a pooled sample.

    K0 [N, N]: Gram matrix of the pooled sample with a zero diagonal; s [P, N]: 0/1 membership of
    the first sample, one split per row. Returns [P]. With ``xx = s K0 s``, ``xy = s K0 (1 - s)``
    and ``yy = 1 K0 1 - xx - 2 xy``: ``xx / (n(n-1)) + yy / (m(m-1)) - 2 xy / (n m)``.
    """
    N = K0.shape[0]
    n = s.sum(dim=1)  # [P]
    m = N - n
    Ks = s @ K0  # [P, N]
    xx = (Ks * s).sum(dim=1)  # [P]
    xy = Ks.sum(dim=1) - xx  # [P]
    yy = K0.sum() - xx - 2.0 * xy  # [P]
    return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (n * m)


@validate_params(
    {"X_cf": ["array-like"], "X_target": ["array-like"],
     "length_scale": [Interval(numbers.Real, 0, None, closed="neither")],
     "n_permutations": [Interval(numbers.Integral, 0, None, closed="left")],
     "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def mmd(X_cf, X_target, *, length_scale=1.0, n_permutations=0, random_state=None):
    """Unbiased squared maximum mean discrepancy between two samples (Gaussian kernel).

    With ``k(a, b) = exp(-||a - b||^2 / (2 l^2))``, ``x_1..x_n`` the rows of ``X_cf`` and
    ``z_1..z_m`` those of ``X_target``::

        MMD^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(z_i, z_j)
                - 2/(n m) sum_{i, j} k(x_i, z_j)

    (diagonal terms excluded), clamped at 0. A small value means the counterfactuals are
    distributed like the target sample (e.g. the reference rows of the target class).

    With ``n_permutations = P > 0`` a permutation test is run as well: the pooled sample is
    split at random into groups of sizes n and m, P times, and
    ``p = (1 + #{P_k >= MMD^2}) / (1 + P)`` where ``P_k`` are the permuted statistics (compared
    before clamping).

    Parameters
    ----------
    X_cf : array-like of shape (n, d)
        First sample, n >= 2.
    X_target : array-like of shape (m, d)
        Second sample, m >= 2.
    length_scale : float > 0, default=1.0
        Kernel bandwidth ``l``; pick it on the scale of the (standardised) features.
    n_permutations : int >= 0, default=0
        Number of permutations of the test; 0 skips the test.
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations.

    Returns
    -------
    mmd2 : float
        Returned alone when ``n_permutations == 0``.
    (mmd2, p_value) : tuple of floats
        When ``n_permutations > 0``; ``p_value`` is in ``(0, 1]``.

    Notes
    -----
    Computed in float64 on the full pooled Gram matrix ((n + m)^2 memory); the permutations are
    evaluated in vectorised blocks.

    Examples
    --------
    >>> from skct.metrics import mmd
    >>> round(mmd([[0.0], [1.0]], [[0.0], [1.0]]), 6)  # identical samples
    0.0
    >>> round(mmd([[0.0], [0.1]], [[5.0], [5.1]]), 4)  # 2 k(0, 0.1) ~= 1.99
    1.99
    """
    A = _check_2d(X_cf, "X_cf")
    B = _check_2d(X_target, "X_target")
    _check_same_features(A, "X_cf", B, "X_target")
    for arr, name in ((A, "X_cf"), (B, "X_target")):
        if arr.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 rows for the unbiased MMD estimator, got "
                             f"{arr.shape[0]}.")
    n, m = A.shape[0], B.shape[0]
    Z = torch.tensor(np.concatenate([A, B]), dtype=torch.float64)  # [N, d]
    K0 = _gaussian_gram(Z, Z, float(length_scale))  # [N, N]
    K0.fill_diagonal_(0.0)
    s_obs = torch.zeros(1, n + m, dtype=torch.float64)
    s_obs[:, :n] = 1.0
    observed = float(_mmd2_from_gram(K0, s_obs)[0])
    mmd2 = max(observed, 0.0)
    if n_permutations == 0:
        return mmd2

    rng = check_random_state(random_state)
    N = n + m
    block = max(1, (1 << 22) // N)  # permutations per vectorised block (~32 MiB for s @ K0)
    n_ge = 0
    for start in range(0, n_permutations, block):
        p = min(block, n_permutations - start)
        perm = np.argsort(rng.random_sample((p, N)), axis=1)  # [p, N] random permutations
        s = np.zeros((p, N))
        np.put_along_axis(s, perm[:, :n], 1.0, axis=1)
        stats = _mmd2_from_gram(K0, torch.from_numpy(s))  # [p]
        n_ge += int((stats >= observed).sum())
    return mmd2, (1 + n_ge) / (1 + n_permutations)


# -- faithfulness (model-based plausibility) -------------------------------------------------
def _sgld(fn, target, x0, *, n_steps, step_size, noise_scale, generator):
    """Improper SGLD on the energy E(x, y) = -logit_y(x), all chains at once.

    target [M] long, x0 [M, D] -> samples [M, D] (detached). Per step:
    ``x <- x - (step_size / 2) * grad_x E(x, y) + noise_scale * N(0, I)``. Run under
    ``torch.enable_grad()`` with the model in eval mode.
    """
    x = x0.detach()
    for _ in range(n_steps):
        grad = _input_grad(fn, x, target, energy)  # [M, D]
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x - 0.5 * step_size * grad + noise_scale * noise
    return x.detach()


def _conditional_samples(fn, classes, lower, upper, *, n_samples, n_steps, step_size,
                         noise_scale, init, random_state):
    """SGLD samples from p_theta(x | y) for each class: classes [K] -> ndarray [K, S, D].

    All K * S chains run in one tensor. ``init="uniform"`` starts them uniformly in
    ``[lower, upper]`` (per-feature arrays [D]); ``"normal"`` from N(0, I).
    """
    device, dtype = _device_dtype(fn)
    gen = _torch_generator(random_state, device)
    k, d = len(classes), lower.shape[0]
    target = torch.as_tensor(np.repeat(classes, n_samples), device=device)  # [K * S]
    if init == "uniform":
        lo = torch.as_tensor(lower, dtype=dtype, device=device)
        hi = torch.as_tensor(upper, dtype=dtype, device=device)
        u = torch.rand((k * n_samples, d), generator=gen, dtype=dtype, device=device)
        x0 = lo + (hi - lo) * u  # [K * S, D]
    else:
        x0 = torch.randn((k * n_samples, d), generator=gen, dtype=dtype, device=device)
    with eval_mode(fn), torch.enable_grad():
        x = _sgld(fn, target, x0, n_steps=n_steps, step_size=step_size,
                  noise_scale=noise_scale, generator=gen)
    return x.reshape(k, n_samples, d).cpu().numpy().astype(np.float64)


@validate_params(
    {"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"],
     "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
     "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
     "step_size": [Interval(numbers.Real, 0, None, closed="left")],
     "noise_scale": [Interval(numbers.Real, 0, None, closed="left")],
     "init": [StrOptions({"uniform", "normal"})],
     "bounds": ["array-like", None],
     "random_state": ["random_state"], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def faithfulness(model, X_cf, y_target, *, n_samples=100, n_steps=100, step_size=2.0,
                 noise_scale=0.01, init="uniform", bounds=None, random_state=None,
                 per_row=False):
    """Distance of counterfactuals to samples from the model's own class-conditional p(x | y+).

    The model read as a joint energy model, ``p_theta(x, y) ~ exp(-E(x, y))`` with
    ``E(x, y) = -logit_y(x)``, defines a conditional ``p_theta(x | y)``. For each target class
    present in ``y_target``, ``S = n_samples`` points are drawn from it by (improper) stochastic
    gradient Langevin dynamics, all chains in one batch::

        x_0 ~ U[lower, upper]   (or N(0, I) with init="normal")
        x_{k+1} = x_k - (step_size / 2) * grad_x E(x_k, y) + noise_scale * eps_k,
        eps_k ~ N(0, I),   k = 0 .. n_steps - 1

    Then ``faithfulness_i = (1/S) * sum_s ||x'_i - xhat_s^(y+_i)||_1``, averaged over rows unless
    ``per_row``. Lower means counterfactuals that agree with what the model itself considers
    typical of the target class (the "unfaithfulness" of Altmeyer et al., 2024).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    y_target : array-like of shape (n,)
        Target class indices.
    n_samples : int, default=100
        Samples drawn per target class.
    n_steps : int, default=100
        SGLD steps per chain.
    step_size : float, default=2.0
        ``alpha`` of the update above (the gradient step is ``alpha / 2``).
    noise_scale : float, default=0.01
        Standard deviation ``sigma`` of the Gaussian noise added at each step.
    init : {"uniform", "normal"}, default="uniform"
        Start of the chains: uniform in ``bounds``, or standard normal.
    bounds : tuple (lower, upper) or None, default=None
        Scalars or per-feature arrays for ``init="uniform"``; None uses the per-feature range of
        ``X_cf`` (pass bounds when ``X_cf`` has few rows, e.g. the range of the training data).
        The chains themselves are not clipped.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial points and the noise.
    per_row : bool, default=False
        Return the per-row distances instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        Lower is better.

    Notes
    -----
    The defaults are the sampler of the ECCCo reference implementation: the "improper" SGLD of
    joint energy models (Grathwohl et al., 2020), in which the noise is not tied to the step
    size, with ``step_size = 2`` and ``noise_scale = 0.01`` (so the gradient step is exactly
    ``-grad E``), and 100 steps per chain. Proper SGLD would use noise of standard deviation
    ``sqrt(step_size)``; with the small noise used here the chains behave like noisy gradient
    descent on the energy and collect in its low-energy regions. For a model whose logits grow
    without bound (e.g. a linear model) those regions are at infinity, so the distances grow
    with ``n_steps``: compare models at equal sampler settings.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import faithfulness
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> X_cf = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    >>> value = faithfulness(model, X_cf, [0, 1, 1], n_steps=20, random_state=0)
    >>> bool(np.isfinite(value))
    True
    """
    fn = _as_logits_fn(model)
    X_cf = _check_2d(X_cf, "X_cf")
    n, d = X_cf.shape
    y = _as_indices(y_target, "y_target", n, "X_cf")
    if bounds is None:
        lower, upper = X_cf.min(axis=0).astype(np.float64), X_cf.max(axis=0).astype(np.float64)
    else:
        if len(bounds) != 2:
            raise ValueError("bounds must be a pair (lower, upper).")
        lower, upper = _check_bounds(bounds[0], bounds[1], d,
                                     names=("bounds[0] (lower)", "bounds[1] (upper)"))
        if init == "uniform" and not (np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise ValueError("bounds must be finite for init='uniform'.")
    n_classes = _predict_logits(fn, X_cf[:1]).shape[1]
    _check_n_classes(y, "y_target", n_classes)
    classes = np.unique(y)
    samples = _conditional_samples(fn, classes, lower, upper, n_samples=n_samples,
                                   n_steps=n_steps, step_size=step_size,
                                   noise_scale=noise_scale, init=init,
                                   random_state=random_state)  # [K, S, D]
    if not np.isfinite(samples).all():
        raise ValueError("SGLD diverged (non-finite samples); lower step_size or n_steps.")
    pos = {c: k for k, c in enumerate(classes)}
    dist = _mean_l1_to_class(X_cf.astype(np.float64), y, lambda c: samples[pos[c]])
    return _reduce(dist, per_row)


@validate_params(
    {"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"],
     "X_ref": ["array-like"], "y_ref": ["array-like"], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def energy_differential(model, X_cf, y_target, X_ref, y_ref, *, per_row=False):
    """Energy of each counterfactual minus the mean energy of reference rows of its target class.

    ``dE_i = E(x'_i, y+_i) - (1/|R_i|) * sum_{x in R_i} E(x, y+_i)`` with
    ``E(x, y) = -logit_y(x)`` and ``R_i`` the rows of ``X_ref`` with ``y_ref == y+_i``; the mean
    over rows unless ``per_row``. Near or below 0: the model finds the counterfactual at least as
    typical of the target class as the real members of that class.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    y_target : array-like of shape (n,)
        Target class indices.
    X_ref : array-like of shape (m, d)
        Reference data.
    y_ref : array-like of shape (m,)
        Class indices of the reference rows.
    per_row : bool, default=False
        Return the per-row differences instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        Lower is better.

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import energy_differential
    >>> model = torch.nn.Linear(1, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    >>> # E(3, 1) = -3; reference energies of class 1: -1, -2 (mean -1.5)
    >>> energy_differential(model, [[3.0]], [1], [[1.0], [2.0], [0.0]], [1, 1, 0])
    -1.5
    """
    fn = _as_logits_fn(model)
    X_cf = _check_2d(X_cf, "X_cf")
    X_ref = _check_2d(X_ref, "X_ref")
    _check_same_features(X_cf, "X_cf", X_ref, "X_ref")
    y = _as_indices(y_target, "y_target", X_cf.shape[0], "X_cf")
    y_ref = _as_indices(y_ref, "y_ref", X_ref.shape[0], "X_ref")
    logits_cf = _predict_logits(fn, X_cf).double().cpu().numpy()  # [n, C]
    logits_ref = _predict_logits(fn, X_ref).double().cpu().numpy()  # [m, C]
    n_classes = logits_cf.shape[1]
    _check_n_classes(y, "y_target", n_classes)
    _check_n_classes(y_ref, "y_ref", n_classes)
    counts = np.bincount(y_ref, minlength=n_classes)  # [C]
    missing = np.setdiff1d(np.unique(y), np.flatnonzero(counts))
    if missing.size:
        raise ValueError(f"y_ref has no rows of target class(es) {missing.tolist()} "
                         "(found in y_target).")
    # mean reference energy per class c: -(1/|R_c|) sum_{x in R_c} logit_c(x)
    e_ref = -np.bincount(y_ref, weights=logits_ref[np.arange(len(y_ref)), y_ref],
                         minlength=n_classes) / np.maximum(counts, 1)  # [C]
    e_cf = -logits_cf[np.arange(len(y)), y]  # [n]
    return _reduce(e_cf - e_ref[y], per_row)


# -- adversarial robustness ------------------------------------------------------------------
def _row_bounds(x, lower, upper):
    """Per-row domain [n, d] widened to contain the clean points x [n, d] (tensors)."""
    return torch.minimum(lower, x), torch.maximum(upper, x)


def _fgsm_step(fn, x, target, eps, lo, hi):
    """x + eps * sign(grad_x CE(f(x), y)), clipped to [lo, hi]: all [n, d]."""
    grad = _input_grad(fn, x, target, _cross_entropy)
    return torch.clamp(x + eps * grad.sign(), lo, hi)


def _pgd_attack(fn, x, target, eps, lo, hi, *, n_steps, step_size, random_start, generator):
    """L-inf PGD: x [n, d] -> adversarial examples [n, d] with ||x_adv - x||_inf <= eps.

    x_0 = clip(x + U[-eps, eps]) (or x); then n_steps times
    x_{k+1} = clip(x + clamp(x_k + step_size * sign(grad CE) - x, -eps, eps), lo, hi).
    """
    x_adv = x
    if random_start and eps > 0:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x_adv = torch.clamp(x + eps * (2.0 * u - 1.0), lo, hi)
    for _ in range(n_steps):
        grad = _input_grad(fn, x_adv, target, _cross_entropy)
        step = x_adv + step_size * grad.sign()
        x_adv = torch.clamp(x + torch.clamp(step - x, -eps, eps), lo, hi)
    return x_adv.detach()


def _prepare_attack(model, X, y, lower, upper):
    """Checked model, tensors x [n, d], target [n] and per-row domain [n, d]."""
    fn = _as_logits_fn(model)
    X = _check_2d(X, "X")
    n, d = X.shape
    y = _as_indices(y, "y", n, "X")
    lower, upper = _check_bounds(lower, upper, d)
    device, dtype = _device_dtype(fn)
    x = _to_tensor(X, device, dtype)
    n_classes = _predict_logits(fn, X[:1]).shape[1]
    _check_n_classes(y, "y", n_classes)
    target = torch.as_tensor(y, device=device)
    lo, hi = _row_bounds(x, _to_tensor(lower, device, dtype), _to_tensor(upper, device, dtype))
    return fn, x, target, lo, hi


_ATTACK_PARAMS = {
    "model": "no_validation", "X": ["array-like"], "y": ["array-like"],
    "eps": [Interval(numbers.Real, 0, None, closed="left")],
    "lower": ["array-like", numbers.Real, None], "upper": ["array-like", numbers.Real, None],
}


@validate_params(_ATTACK_PARAMS, prefer_skip_nested_validation=True)
def fgsm(model, X, y, eps, *, lower=None, upper=None):
    """Fast gradient sign method (Goodfellow et al., 2015).

    ``x_adv = clip(x + eps * sign(grad_x CE(logits(x), y)), lower, upper)``, all rows at once.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Clean inputs.
    y : array-like of shape (n,)
        True class indices.
    eps : float >= 0
        L-infinity size of the perturbation.
    lower, upper : float, array-like of shape (d,) or None, default=None
        Domain bounds (None: unbounded). A row outside the domain keeps its own values as the
        bound, so that clipping never moves it further than ``eps``.

    Returns
    -------
    ndarray of shape (n, d)
        Adversarial examples (float32, or the model's floating dtype).

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import fgsm
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    >>> fgsm(model, [[0.0, 0.0]], [0], 0.1)  # moves against class 0: sign(w1 - w0)
    array([[-0.1,  0.1]], dtype=float32)
    """
    fn, x, target, lo, hi = _prepare_attack(model, X, y, lower, upper)
    with eval_mode(fn), torch.enable_grad():
        x_adv = _fgsm_step(fn, x, target, float(eps), lo, hi)
    return x_adv.detach().cpu().numpy()


@validate_params(
    {**_ATTACK_PARAMS,
     "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
     "step_size": [Interval(numbers.Real, 0, None, closed="left")],
     "random_start": ["boolean"], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def pgd(model, X, y, eps, *, n_steps=40, step_size=0.01, random_start=True, lower=None,
        upper=None, random_state=None):
    """Projected gradient descent attack in the L-infinity ball (Madry et al., 2018).

    Starting from ``x_0 = clip(x + u)``, ``u ~ U[-eps, eps]^d`` (or ``x_0 = x`` without
    ``random_start``), ``n_steps`` times::

        x_{k+1} = clip(x + clamp(x_k + step_size * sign(grad_x CE(logits(x_k), y)) - x,
                                 -eps, eps), lower, upper)

    so every iterate stays in ``{x' : ||x' - x||_inf <= eps}`` and in the domain. All rows are
    attacked at once.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Clean inputs.
    y : array-like of shape (n,)
        True class indices.
    eps : float >= 0
        Radius of the L-infinity ball.
    n_steps : int, default=40
        Number of signed-gradient steps.
    step_size : float, default=0.01
        Size of each step.
    random_start : bool, default=True
        Start at a uniform random point of the ball.
    lower, upper : float, array-like of shape (d,) or None, default=None
        Domain bounds (None: unbounded). A row outside the domain keeps its own values as the
        bound, so the ball constraint always holds.
    random_state : int, RandomState instance or None, default=None
        Seeds the random start.

    Returns
    -------
    ndarray of shape (n, d)
        Adversarial examples.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import pgd
    >>> model = torch.nn.Linear(2, 2)
    >>> X = np.zeros((3, 2))
    >>> X_adv = pgd(model, X, [0, 1, 0], 0.05, random_state=0)
    >>> bool(np.abs(X_adv - X).max() <= 0.05 + 1e-7)
    True
    """
    fn, x, target, lo, hi = _prepare_attack(model, X, y, lower, upper)
    gen = _torch_generator(random_state, x.device)
    with eval_mode(fn), torch.enable_grad():
        x_adv = _pgd_attack(fn, x, target, float(eps), lo, hi, n_steps=n_steps,
                            step_size=step_size, random_start=random_start, generator=gen)
    return x_adv.cpu().numpy()


@validate_params(
    {"model": "no_validation", "X": ["array-like"], "y": ["array-like"],
     "attack": [StrOptions({"fgsm", "pgd"})],
     "epsilons": ["array-like", Interval(numbers.Real, 0, None, closed="left"), None],
     "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
     "step_size": [Interval(numbers.Real, 0, None, closed="left")],
     "random_start": ["boolean"],
     "lower": ["array-like", numbers.Real, None], "upper": ["array-like", numbers.Real, None],
     "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def adversarial_accuracy(model, X, y, *, attack="fgsm", epsilons=None, n_steps=40,
                         step_size=0.01, random_start=True, lower=None, upper=None,
                         random_state=None):
    """Accuracy of the model on adversarially perturbed inputs, for a range of budgets.

    ``acc(eps) = (1/n) * sum_i 1[argmax logits(x_adv_i(eps)) == y_i]`` where ``x_adv(eps)`` is
    the :func:`fgsm` or :func:`pgd` attack of L-infinity size ``eps`` on the cross-entropy with
    the true class. ``acc(0)`` is the clean accuracy.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Clean inputs.
    y : array-like of shape (n,)
        True class indices.
    attack : {"fgsm", "pgd"}, default="fgsm"
        The attack.
    epsilons : array-like of float >= 0 or None, default=None
        Budgets; None means ``np.linspace(0, 0.1, 10)``.
    n_steps, step_size, random_start : see :func:`pgd` (ignored by FGSM)
    lower, upper : float, array-like of shape (d,) or None, default=None
        Domain bounds.
    random_state : int, RandomState instance or None, default=None
        Seeds PGD's random starts.

    Returns
    -------
    dict
        ``{"epsilon": ndarray (k,), "accuracy": ndarray (k,)}``; ``pandas.DataFrame(result)``
        makes a table of it.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import adversarial_accuracy
    >>> model = torch.nn.Linear(1, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    >>> res = adversarial_accuracy(model, [[0.5], [-0.05]], [1, 0], epsilons=[0.0, 0.1, 1.0])
    >>> res["accuracy"]
    array([1. , 0.5, 0. ])
    """
    eps_values = (np.linspace(0.0, 0.1, 10) if epsilons is None
                  else np.asarray(epsilons, dtype=np.float64).ravel())
    if eps_values.size == 0:
        raise ValueError("epsilons is empty.")
    if not np.isfinite(eps_values).all() or (eps_values < 0).any():
        raise ValueError("epsilons must be finite and >= 0.")
    fn, x, target, lo, hi = _prepare_attack(model, X, y, lower, upper)
    gen = _torch_generator(random_state, x.device)
    accuracy = np.empty(eps_values.size)
    with eval_mode(fn):
        for k, eps in enumerate(eps_values):
            with torch.enable_grad():
                if attack == "fgsm":
                    x_adv = _fgsm_step(fn, x, target, float(eps), lo, hi)
                else:
                    x_adv = _pgd_attack(fn, x, target, float(eps), lo, hi, n_steps=n_steps,
                                        step_size=step_size, random_start=random_start,
                                        generator=gen)
            with torch.no_grad():
                pred = _forward(fn, x_adv.detach()).argmax(dim=1)
            accuracy[k] = float((pred == target).double().mean())
    return {"epsilon": eps_values, "accuracy": accuracy}


# -- protected-feature sensitivity -----------------------------------------------------------
@validate_params(
    {"model": "no_validation", "X": ["array-like"], "features": ["array-like"],
     "target": [None, numbers.Integral, "array-like"],
     "n_steps": [Interval(numbers.Integral, 1, None, closed="left")],
     "per_feature": ["boolean"], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def protected_feature_sensitivity(model, X, *, features, target=None, n_steps=50,
                                  per_feature=False, random_state=None):
    """Mean absolute integrated-gradients attribution of protected features.

    Integrated gradients (Sundararajan et al., 2017) of the logit ``f_t`` of class ``t``::

        IG_j(x) = (x_j - b_j) * int_0^1 d f_t(b + a (x - b)) / d x_j  da

    with a random baseline ``b`` drawn per row uniformly in the per-feature range of ``X``
    (``b_j ~ U[min_i X_ij, max_i X_ij]``) and ``t`` the predicted class (or ``target``). The
    sensitivity is ``(1/(n |P|)) * sum_i sum_{j in P} |IG_j(x_i)|`` over the protected features
    ``P``. This follows the sensitivity measure of the counterfactual training paper
    (Altmeyer et al.): a model trained to keep protected features immutable in its
    counterfactuals should also rely less on them, i.e. have smaller attributions.

    Needs captum (``pip install skct[attribution]``).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Inputs to explain.
    features : array-like of int
        Column indices of the protected features (negative indices count from the end).
    target : int, array-like of shape (n,) or None, default=None
        Class index whose logit is attributed (one for all rows, or one per row); None: the
        predicted class of each row.
    n_steps : int, default=50
        Number of points of the path integral (captum's Gauss-Legendre rule).
    per_feature : bool, default=False
        Return the mean absolute attribution of each protected feature (in the order given)
        instead of their mean.
    random_state : int, RandomState instance or None, default=None
        Seeds the baselines.

    Returns
    -------
    float or ndarray of shape (len(features),)
        Lower means a model less sensitive to the protected features.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import protected_feature_sensitivity
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    >>> X = np.random.default_rng(0).normal(size=(10, 2))
    >>> protected_feature_sensitivity(model, X, features=[1], random_state=0)  # unused feature
    0.0
    """
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:
        raise ImportError(
            "protected_feature_sensitivity needs captum; install it with "
            "`pip install skct[attribution]` (or `pip install captum`)."
        ) from exc
    fn = _as_logits_fn(model)
    X = _check_2d(X, "X")
    n, d = X.shape
    feats = np.asarray(features).ravel()
    if feats.size == 0:
        raise ValueError("features is empty; give the indices of the protected features.")
    if feats.dtype.kind not in "iu":
        raise ValueError(f"features must hold integer column indices, got dtype {feats.dtype}.")
    if (feats < -d).any() or (feats >= d).any():
        raise ValueError(f"features holds indices out of range for {d} features: "
                         f"{feats[(feats < -d) | (feats >= d)].tolist()}.")
    feats = feats % d

    logits = _predict_logits(fn, X)  # [n, C]
    n_classes = logits.shape[1]
    if target is None:
        t = logits.argmax(dim=1).cpu().numpy()
    elif isinstance(target, numbers.Integral):
        t = np.full(n, int(target))
    else:
        t = _as_indices(target, "target", n, "X")
    _check_n_classes(t, "target", n_classes)

    rng = check_random_state(random_state)
    lo, hi = X.min(axis=0), X.max(axis=0)
    baseline = lo + (hi - lo) * rng.random_sample((n, d))  # [n, d]
    device, dtype = _device_dtype(fn)
    x = _to_tensor(X, device, dtype)
    b = _to_tensor(baseline, device, dtype)
    ig = IntegratedGradients(lambda inp: _forward(fn, inp))
    with eval_mode(fn):
        attr = ig.attribute(x, baselines=b, target=torch.as_tensor(t, device=device),
                            n_steps=n_steps)  # [n, d]
    scores = attr.detach().abs()[:, torch.as_tensor(feats, device=device)].mean(dim=0)
    scores = scores.double().cpu().numpy()  # [len(features)]
    return scores if per_feature else float(scores.mean())


#: Counterfactual quality metrics by short name.
METRICS = {
    "validity": validity,
    "strict_validity": strict_validity,
    "cost": cost,
    "redundancy": redundancy,
    "implausibility": implausibility,
    "mmd": mmd,
    "faithfulness": faithfulness,
    "energy_differential": energy_differential,
}
