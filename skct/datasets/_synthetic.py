"""The paper's synthetic data sets: seeded makers (2D blobs, circles, moons, credit example)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sklearn.datasets as _skd
from sklearn.utils import Bunch

from ._validation import check_bool, check_n_samples, check_real

__all__ = [
    "load_synthetic",
    "make_circles",
    "make_credit_example",
    "make_linearly_separable",
    "make_moons",
    "make_overlapping",
]


def _as_xy(X, y):
    return np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)


def make_linearly_separable(n_samples=3000, *, random_state=None):
    """Two well separated Gaussian blobs in 2D (the paper's "linearly separable" set).

    Class 0 is centred at ``(-2, -2)`` and class 1 at ``(2, 2)``, both with standard deviation
    0.5 per axis (:func:`sklearn.datasets.make_blobs`), so the classes are, in practice,
    perfectly separable by a line. Rows come shuffled.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows, split as evenly as possible between the two classes.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64
        Labels in ``{0, 1}``.

    Examples
    --------
    >>> from skct.datasets import make_linearly_separable
    >>> X, y = make_linearly_separable(100, random_state=0)
    >>> X.shape, X.dtype, y.dtype, int(y.sum())
    ((100, 2), dtype('float32'), dtype('int64'), 50)
    """
    n_samples = check_n_samples(n_samples)
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-2.0, -2.0], [2.0, 2.0]],
        cluster_std=0.5,
        random_state=random_state,
    )
    return _as_xy(X, y)


def make_overlapping(n_samples=3000, *, random_state=None):
    """Two overlapping Gaussian blobs in 2D (the paper's "overlapping" set).

    Same centres as :func:`make_linearly_separable`, ``(-2, -2)`` and ``(2, 2)``, but with
    standard deviation 2.0 per axis, so the classes overlap (the Bayes accuracy is about 92%).

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows, split as evenly as possible between the two classes.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import make_overlapping
    >>> X, y = make_overlapping(100, random_state=0)
    >>> X.shape, int(y.sum())
    ((100, 2), 50)
    """
    n_samples = check_n_samples(n_samples)
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-2.0, -2.0], [2.0, 2.0]],
        cluster_std=2.0,
        random_state=random_state,
    )
    return _as_xy(X, y)


def make_circles(n_samples=3000, *, noise=0.15, factor=0.01, random_state=None):
    """A small circle inside a larger one (wraps :func:`sklearn.datasets.make_circles`).

    The paper's settings are the defaults: ``noise=0.15``, ``factor=0.01`` (the inner "circle"
    is nearly a point at the origin). Class 0 is the outer circle, class 1 the inner one.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows.
    noise : float, default=0.15
        Standard deviation of the Gaussian noise added to the points.
    factor : float, default=0.01
        Scale of the inner circle relative to the outer one, in ``[0, 1)``.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import make_circles
    >>> X, y = make_circles(100, random_state=0)
    >>> X.shape, X.dtype, int(y.sum())
    ((100, 2), dtype('float32'), 50)
    """
    n_samples = check_n_samples(n_samples)
    noise = check_real(noise, "noise")
    factor = check_real(factor, "factor")
    if not factor < 1.0:
        raise ValueError(f"factor must be in [0, 1), got {factor!r}.")
    X, y = _skd.make_circles(
        n_samples=n_samples, noise=noise, factor=factor, random_state=random_state
    )
    return _as_xy(X, y)


def make_moons(n_samples=3000, *, noise=0.1, random_state=None):
    """Two interleaving half circles (wraps :func:`sklearn.datasets.make_moons`).

    The paper does not state the noise level; ``noise=0.1`` (the default of the ``make_moons``
    generator used by the Julia ecosystem the paper builds on) gives two clearly visible but
    slightly overlapping moons.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import make_moons
    >>> X, y = make_moons(100, random_state=0)
    >>> X.shape, y.dtype, int(y.sum())
    ((100, 2), dtype('int64'), 50)
    """
    n_samples = check_n_samples(n_samples)
    noise = check_real(noise, "noise")
    X, y = _skd.make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    return _as_xy(X, y)


def make_credit_example(n_samples=1000, *, random_state=None, as_frame=True):
    """The paper's two-feature credit example: "age" (immutable) and "debt" (mutable).

    Each class is an isotropic Gaussian on a standardised scale with standard deviation 0.7:

    * class 0 ("rejected"): mean ``age = -1``, ``debt = +1`` (younger, more debt);
    * class 1 ("approved"): mean ``age = +1``, ``debt = -1`` (older, less debt).

    Both features are discriminative, so an unconstrained counterfactual for a rejected
    applicant typically "ages" them; with ``age`` immutable it must lower the debt instead.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows, split as evenly as possible between the two classes (rows shuffled).
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.
    as_frame : bool, default=True
        Return ``data`` as a DataFrame with columns ``["age", "debt"]`` (and ``target`` as a
        Series); else as arrays, with ``frame=None``.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data`` (float32), ``target`` (int64, 1 = approved), ``frame``, ``feature_names``,
        ``immutable_features=["age"]``, ``categorical_features=[]``, ``numerical_features``,
        ``target_names=["rejected", "approved"]``, ``preprocessor=None`` (already on a
        standardised scale) and ``DESCR``.

    Examples
    --------
    >>> from skct.datasets import make_credit_example
    >>> credit = make_credit_example(200, random_state=0)
    >>> list(credit.data.columns), credit.immutable_features
    (['age', 'debt'], ['age'])
    >>> bool(credit.data["age"][credit.target == 1].mean() > 0)
    True
    """
    n_samples = check_n_samples(n_samples)
    as_frame = check_bool(as_frame, "as_frame")
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-1.0, 1.0], [1.0, -1.0]],
        cluster_std=0.7,
        random_state=random_state,
    )
    X, y = _as_xy(X, y)
    feature_names = ["age", "debt"]
    frame = None
    if as_frame:
        data = pd.DataFrame(X, columns=feature_names)
        target = pd.Series(y, name="target")
        frame = pd.concat([data, target], axis=1)
    else:
        data, target = X, y
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=feature_names,
        immutable_features=["age"],
        categorical_features=[],
        numerical_features=list(feature_names),
        target_names=["rejected", "approved"],
        preprocessor=None,
        DESCR=(
            "Synthetic 2D credit example of the paper: age (immutable) and debt (mutable), "
            "Gaussian classes with std 0.7; rejected (0) centred at (age=-1, debt=1), "
            "approved (1) at (age=1, debt=-1)."
        ),
    )


_SYNTHETIC = {
    "linearly_separable": make_linearly_separable,
    "overlapping": make_overlapping,
    "circles": make_circles,
    "moons": make_moons,
}


def load_synthetic(name, *, n_samples=3000, random_state=None):
    """Generate one of the paper's synthetic sets by name.

    Parameters
    ----------
    name : {"linearly_separable", "overlapping", "circles", "moons"}
        Which generator to call (with its default parameters).
    n_samples : int, default=3000
        Number of rows.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> from skct.datasets import load_synthetic
    >>> X, y = load_synthetic("moons", n_samples=50, random_state=1)
    >>> X.shape
    (50, 2)
    """
    if not isinstance(name, str) or name not in _SYNTHETIC:
        raise ValueError(
            f"Unknown synthetic data set {name!r}; valid names are {sorted(_SYNTHETIC)}."
        )
    return _SYNTHETIC[name](n_samples, random_state=random_state)
