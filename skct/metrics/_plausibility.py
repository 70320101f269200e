"""Plausibility against data: implausibility, MMD (with a reusable reference), energy differential.

The energy of a point for a class is ``E(x, y) = -logit_y(x)`` (Grathwohl et al., 2020).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from scipy.spatial.distance import cdist
from sklearn.utils import check_random_state

from .._utils import Interval, validate_params
from ._model import as_logits_fn, predict_logits
from ._validation import (as_1d, as_indices, check_2d, check_n_classes, check_same_features,
                          reduce_rows)

__all__ = ["implausibility", "mmd", "MMDReference", "energy_differential", "mean_l1_to_class"]


def mean_l1_to_class(X_cf, y, samples_of):
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
    X_cf = check_2d(X_cf, "X_cf")
    X_ref = check_2d(X_ref, "X_ref")
    check_same_features(X_cf, "X_cf", X_ref, "X_ref")
    y = as_1d(y_target, "y_target", X_cf.shape[0], "X_cf")
    y_ref = as_1d(y_ref, "y_ref", X_ref.shape[0], "X_ref")
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
    dist = mean_l1_to_class(X_cf.astype(np.float64), y, pools.__getitem__)
    return reduce_rows(dist, per_row)


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
    A = check_2d(X_cf, "X_cf")
    B = check_2d(X_target, "X_target")
    check_same_features(A, "X_cf", B, "X_target")
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


class MMDReference:
    """MMD against one fixed reference sample, with the reference's kernel sum computed once.

    The unbiased squared MMD of :func:`mmd` (Gaussian kernel, diagonal terms excluded, clamped at
    0) of any sample ``X`` against the fixed reference ``Y``::

        MMD^2(X, Y) = xx(X) + yy - 2 xy(X, Y)

    where ``yy = 1/(m(m-1)) sum_{i != j} k(y_i, y_j)`` is computed once, in blocks of ``block``
    rows, and reused for every sample compared with it (e.g. every batch of counterfactuals of
    an experiment against all test rows of their target class). Distances come from the
    matrix-product form of :func:`torch.cdist` in float64, so values agree with :func:`mmd` up
    to floating-point rounding (about 1e-12), not bit for bit. The object pickles without its
    tensor (joblib memory-maps the reference rows for the workers).

    Parameters
    ----------
    X_ref : array-like of shape (m, d)
        The reference sample.
    length_scale : float > 0, default=1.0
        Kernel bandwidth ``l`` of ``k(a, b) = exp(-||a - b||^2 / (2 l^2))``.
    block : int, default=2048
        Rows per block when summing the reference kernel.

    Attributes
    ----------
    yy : float
        The reference term (NaN when the reference has fewer than 2 rows).

    Examples
    --------
    >>> import numpy as np
    >>> from skct.metrics import MMDReference, mmd
    >>> rng = np.random.default_rng(0)
    >>> Y, X = rng.normal(size=(50, 2)), rng.normal(size=(20, 2)) + 1.0
    >>> ref = MMDReference(Y, length_scale=1.0)
    >>> bool(abs(ref(X) - mmd(X, Y)) < 1e-9)
    True
    >>> sorted(MMDReference.per_class(Y, np.r_[np.zeros(49, int), 1]))  # class 1 has one row only
    [0]
    """

    def __init__(self, X_ref, *, length_scale=1.0, block=2048):
        self.Y = np.array(X_ref, dtype=np.float64)
        self.length_scale = float(length_scale)
        self._Yt = None
        Yt = self._tensor()
        m = Yt.shape[0]
        total = 0.0
        for start in range(0, m, block):
            total += float(self._gram(Yt[start:start + block], Yt).sum())
        total -= float(m)  # the diagonal, k(y, y) = 1
        self.yy = total / (m * (m - 1)) if m > 1 else float("nan")

    @classmethod
    def per_class(cls, X_ref, y_ref, *, length_scale=1.0):
        """One reference per class of ``y_ref`` that has at least 2 rows.

        Parameters
        ----------
        X_ref : array-like of shape (m, d)
        y_ref : array-like of shape (m,)
            Class index of each row.
        length_scale : float > 0, default=1.0

        Returns
        -------
        dict
            ``{class index: MMDReference}`` (the ``mmd`` of :class:`ReferenceData`).
        """
        X_ref, y_ref = np.asarray(X_ref), np.asarray(y_ref)
        refs = {}
        for c in np.unique(y_ref).tolist():
            rows = np.flatnonzero(y_ref == c)
            if rows.size >= 2:
                refs[c] = cls(X_ref[rows], length_scale=length_scale)
        return refs

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_Yt"] = None
        return state

    def __repr__(self):
        return f"MMDReference(n_rows={self.Y.shape[0]}, length_scale={self.length_scale:g})"

    def _tensor(self):
        if self._Yt is None:
            self._Yt = torch.from_numpy(np.array(self.Y, dtype=np.float64))
        return self._Yt

    def _gram(self, A, B):
        d2 = torch.cdist(A, B, compute_mode="use_mm_for_euclid_dist").square()
        return torch.exp(-d2 / (2.0 * self.length_scale**2))

    def __call__(self, X):
        """Unbiased squared MMD of the sample ``X`` [n, d] (n >= 2) against the reference."""
        X = torch.from_numpy(np.array(X, dtype=np.float64))
        n = X.shape[0]
        Kxx = self._gram(X, X)
        xx = float((Kxx.sum() - Kxx.diagonal().sum()) / (n * (n - 1)))
        xy = float(self._gram(X, self._tensor()).mean())
        return max(xx + self.yy - 2.0 * xy, 0.0)


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
    fn = as_logits_fn(model)
    X_cf = check_2d(X_cf, "X_cf")
    X_ref = check_2d(X_ref, "X_ref")
    check_same_features(X_cf, "X_cf", X_ref, "X_ref")
    y = as_indices(y_target, "y_target", X_cf.shape[0], "X_cf")
    y_ref = as_indices(y_ref, "y_ref", X_ref.shape[0], "X_ref")
    logits_cf = predict_logits(fn, X_cf).double().cpu().numpy()  # [n, C]
    logits_ref = predict_logits(fn, X_ref).double().cpu().numpy()  # [m, C]
    n_classes = logits_cf.shape[1]
    check_n_classes(y, "y_target", n_classes)
    check_n_classes(y_ref, "y_ref", n_classes)
    counts = np.bincount(y_ref, minlength=n_classes)  # [C]
    missing = np.setdiff1d(np.unique(y), np.flatnonzero(counts))
    if missing.size:
        raise ValueError(f"y_ref has no rows of target class(es) {missing.tolist()} "
                         "(found in y_target).")
    # mean reference energy per class c: -(1/|R_c|) sum_{x in R_c} logit_c(x)
    e_ref = -np.bincount(y_ref, weights=logits_ref[np.arange(len(y_ref)), y_ref],
                         minlength=n_classes) / np.maximum(counts, 1)  # [C]
    e_cf = -logits_cf[np.arange(len(y)), y]  # [n]
    return reduce_rows(e_cf - e_ref[y], per_row)
