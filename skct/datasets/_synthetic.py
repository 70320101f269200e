"""The paper's synthetic data sets: seeded makers (2D blobs, circles, moons, credit example)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sklearn.datasets as _skd
from sklearn.utils import Bunch, check_random_state

from ._validation import check_bool, check_n_samples, check_real

__all__ = [
    "REFERENCE_CENTERS",
    "load_synthetic",
    "make_circles",
    "make_credit_example",
    "make_linearly_separable",
    "make_moons",
    "make_overlapping",
]


#: Variants of the synthetic makers: skct's own sets, or those of the paper's code.
VARIANTS = ("skct", "reference")

#: Centres (class 0, class 1) of the paper code's blobs: MLJBase ``make_blobs`` draws two
#: centres uniformly in ``(-10, 10)^2`` from TaijaData's fixed seed (``Xoshiro(42)``), so they
#: are the same in every run (TaijaData.jl src/synthetic/linearly_separable.jl, blobs.jl).
REFERENCE_CENTERS = ((2.587, -0.452), (-0.993, 4.063))


def _as_xy(X, y):
    return np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)


def _check_variant(variant):
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}.")
    return variant


def _shuffled(X, y, rng):
    """Rows in a random order (MLJBase's makers shuffle their output by default)."""
    order = rng.permutation(len(y))
    return _as_xy(X[order], y[order])


def _reference_blobs(n_samples, cluster_std, random_state):
    """MLJBase ``make_blobs(n, 2; centers=2)`` with the paper's fixed centres.

    Follows MLJBase src/data/datasets_synthetic.jl: ``n // 2`` rows of class 0 then the rest of
    class 1, standard normal draws scaled and shifted per centre. As there, the row ranges of
    the two centres share one row (the last row of class 0), which gets both transforms:
    ``(z * std + c0) * std + c1`` while keeping label 0.
    """
    rng = check_random_state(random_state)
    centers = np.asarray(REFERENCE_CENTERS)
    n0 = n_samples // 2
    y = np.repeat([0, 1], [n0, n_samples - n0])  # [n]
    X = rng.standard_normal((n_samples, 2))  # [n, 2]
    X[:n0] = X[:n0] * cluster_std + centers[0]
    X[n0 - 1:] = X[n0 - 1:] * cluster_std + centers[1]  # row n0 - 1: in both ranges
    return _shuffled(X, y, rng)


def make_linearly_separable(n_samples=3000, *, random_state=None, variant="skct"):
    """Two well separated Gaussian blobs in 2D (the paper's "linearly separable" set).

    Class 0 is centred at ``(-2, -2)`` and class 1 at ``(2, 2)``, both with standard deviation
    0.5 per axis (:func:`sklearn.datasets.make_blobs`), so the classes are, in practice,
    perfectly separable by a line. Rows come shuffled. ``variant="reference"`` draws the blobs
    of the paper's code instead (see :data:`REFERENCE_CENTERS`).

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows, split as evenly as possible between the two classes.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.
    variant : {"skct", "reference"}, default="skct"
        ``"skct"``: the centres above, :func:`sklearn.datasets.make_blobs`.
        ``"reference"``: the paper code's generator (MLJBase ``make_blobs`` as TaijaData calls it):
        class 0 centred at ``(2.587, -0.452)``, class 1 at ``(-0.993, 4.063)``, standard
        deviation 0.5; ``n_samples // 2`` rows of class 0.

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
    >>> X, y = make_linearly_separable(1000, random_state=0, variant="reference")
    >>> [round(float(v), 1) for v in X[y == 1].mean(axis=0)]
    [-1.0, 4.1]
    """
    n_samples = check_n_samples(n_samples)
    if _check_variant(variant) == "reference":
        return _reference_blobs(n_samples, 0.5, random_state)
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-2.0, -2.0], [2.0, 2.0]],
        cluster_std=0.5,
        random_state=random_state,
    )
    return _as_xy(X, y)


def make_overlapping(n_samples=3000, *, random_state=None, variant="skct"):
    """Two overlapping Gaussian blobs in 2D (the paper's "overlapping" set).

    Same centres as :func:`make_linearly_separable`, ``(-2, -2)`` and ``(2, 2)``, but with
    standard deviation 2.0 per axis, so the classes overlap (the Bayes accuracy is about 92%).

    Parameters
    ----------
    n_samples : int, default=3000
        Number of rows, split as evenly as possible between the two classes.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.
    variant : {"skct", "reference"}, default="skct"
        ``"skct"``: the centres above, :func:`sklearn.datasets.make_blobs`.
        ``"reference"``: the paper code's generator: the centres of
        :data:`REFERENCE_CENTERS` (as ``make_linearly_separable(variant="reference")``) with
        standard deviation 2.0 (Bayes accuracy about 92% too).

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
    if _check_variant(variant) == "reference":
        return _reference_blobs(n_samples, 2.0, random_state)
    X, y = _skd.make_blobs(
        n_samples=n_samples,
        centers=[[-2.0, -2.0], [2.0, 2.0]],
        cluster_std=2.0,
        random_state=random_state,
    )
    return _as_xy(X, y)


def _reference_circles(n_samples, noise, factor, random_state):
    """MLJBase ``make_circles``: angles uniform in ``[0, 2 pi)``, the first ``n // 2`` rows on
    the inner circle (radius ``factor``, label 0), the rest on the unit circle (label 1), then
    Gaussian noise (MLJBase src/data/datasets_synthetic.jl)."""
    rng = check_random_state(random_state)
    n0 = n_samples // 2
    theta = rng.uniform(0.0, 2.0 * np.pi, n_samples)  # [n]
    X = np.column_stack([np.cos(theta), np.sin(theta)])  # [n, 2]
    X[:n0] *= factor
    y = np.repeat([0, 1], [n0, n_samples - n0])
    if noise:
        X += noise * rng.standard_normal((n_samples, 2))
    return _shuffled(X, y, rng)


def _reference_moons(n_samples, noise, random_state):
    """MLJBase ``make_moons``: angles uniform in ``[0, pi)``; the first ``n - n // 2`` rows on
    the upper half circle, the rest mirrored (``-theta``) and shifted by ``(1.0, 0.3)``; the
    first ``n // 2`` rows labelled 0 (for odd ``n`` the middle row is an upper-moon row labelled
    1, as there); then Gaussian noise (MLJBase src/data/datasets_synthetic.jl)."""
    rng = check_random_state(random_state)
    n1 = n_samples // 2
    n2 = n_samples - n1
    theta = rng.uniform(0.0, np.pi, n_samples)  # [n]
    theta[n2:] *= -1.0
    X = np.column_stack([np.cos(theta), np.sin(theta)])  # [n, 2]
    X[n2:] += np.array([1.0, 0.3])
    y = np.ones(n_samples, dtype=np.int64)
    y[:n1] = 0
    if noise:
        X += noise * rng.standard_normal((n_samples, 2))
    return _shuffled(X, y, rng)


def make_circles(n_samples=3000, *, noise=0.15, factor=0.01, random_state=None,
                 variant="skct"):
    """A small circle inside a larger one (wraps :func:`sklearn.datasets.make_circles`).

    The paper's settings are the defaults: ``noise=0.15``, ``factor=0.01`` (the inner "circle"
    is nearly a point at the origin). With ``variant="skct"`` class 0 is the outer circle and
    class 1 the inner one (scikit-learn's labels); with ``variant="reference"`` the labels are
    the other way round (class 0 inner, class 1 outer) and the points lie at uniformly random
    angles (scikit-learn spaces them evenly), as the generator of the paper's code does.

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
    variant : {"skct", "reference"}, default="skct"
        ``"skct"``: :func:`sklearn.datasets.make_circles`, outer circle labelled 0.
        ``"reference"``: the paper code's generator (MLJBase ``make_circles``): angles drawn
        uniformly in ``[0, 2 pi)``, the first ``n_samples // 2`` points on the inner circle
        (label 0), the others on the outer one (label 1); rows shuffled.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), dtype float32
    y : ndarray of shape (n_samples,), dtype int64

    Examples
    --------
    >>> import numpy as np
    >>> from skct.datasets import make_circles
    >>> X, y = make_circles(100, random_state=0)
    >>> X.shape, X.dtype, int(y.sum())
    ((100, 2), dtype('float32'), 50)
    >>> X, y = make_circles(100, random_state=0, variant="reference")
    >>> bool(np.linalg.norm(X[y == 0], axis=1).mean() < 0.5)  # class 0: the inner circle
    True
    """
    n_samples = check_n_samples(n_samples)
    noise = check_real(noise, "noise")
    factor = check_real(factor, "factor")
    if not factor < 1.0:
        raise ValueError(f"factor must be in [0, 1), got {factor!r}.")
    if _check_variant(variant) == "reference":
        return _reference_circles(n_samples, noise, factor, random_state)
    X, y = _skd.make_circles(
        n_samples=n_samples, noise=noise, factor=factor, random_state=random_state
    )
    return _as_xy(X, y)


def make_moons(n_samples=3000, *, noise=0.1, random_state=None, variant="skct"):
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
    variant : {"skct", "reference"}, default="skct"
        ``"skct"``: :func:`sklearn.datasets.make_moons` (evenly spaced angles; class 1 is the
        lower half circle shifted by ``(1, 0.5)``). ``"reference"``: the paper code's
        generator (MLJBase ``make_moons``): angles drawn uniformly in ``[0, pi)``; class 0 is
        the upper half circle ``(cos t, sin t)``, class 1 the lower one shifted by
        ``(1.0, 0.3)``, ``(cos t + 1, 0.3 - sin t)``; rows shuffled.

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
    >>> X, y = make_moons(2000, noise=0.0, random_state=0, variant="reference")
    >>> round(float(X[y == 1, 1].max()), 2)  # the lower moon, lifted by 0.3
    0.3
    """
    n_samples = check_n_samples(n_samples)
    noise = check_real(noise, "noise")
    if _check_variant(variant) == "reference":
        return _reference_moons(n_samples, noise, random_state)
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


def load_synthetic(name, *, n_samples=3000, random_state=None, variant="skct"):
    """Generate one of the paper's synthetic sets by name.

    Parameters
    ----------
    name : {"linearly_separable", "overlapping", "circles", "moons"}
        Which generator to call (with its default parameters).
    n_samples : int, default=3000
        Number of rows.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.
    variant : {"skct", "reference"}, default="skct"
        skct's version of the set or that of the paper's code (see the makers).

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
    return _SYNTHETIC[name](n_samples, random_state=random_state, variant=variant)
