"""Data preparation: each data set loaded, split and preprocessed into the model space.

:func:`load_experiment_data` returns the arrays every later stage works on, either skct's own
preparation (``data="skct"``) or that of the paper's code (``data="reference"``:
CounterfactualTraining.jl paper/experiments/CTExperiments and TaijaData.jl);
:func:`constraints_for` and :func:`attack_bounds` derive the search constraints and the
attacks' domain from them.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from .._utils import derive_seed, labels_to_indices
from ..constraints import ActionabilityConstraints
from ..datasets import DATASETS, load_mnist, load_synthetic, train_test_split_paper
from ._settings import DATA_SETTINGS, SYNTHETIC_DATASETS, check_dataset

__all__ = ["load_experiment_data"]

#: Loaders of the real tabular data sets of the paper.
TABULAR_LOADERS = {name: DATASETS[name]
                   for name in ("adult", "california_housing", "credit_default", "gmsc")}

#: The two data preparations and the two domains :func:`load_experiment_data` offers.
VARIANTS = ("skct", "reference")

#: Training and validation rows of each data set in the paper's code (CounterfactualTraining.jl
#: paper/experiments/CTExperiments/src/synthetic.jl, tabular.jl, mnist.jl: ``n_train``,
#: ``n_validation``). The validation share of the training part is ``n_val / (n_train +
#: n_val)`` (CTExperiments src/experiment.jl ``setup``).
REFERENCE_SIZES = {
    **{name: (3000, 600) for name in SYNTHETIC_DATASETS},
    "adult": (25049, 1000), "california_housing": (15504, 1000),
    "credit_default": (9617, 1000), "gmsc": (12371, 1000), "mnist": (10000, 1000),
}

#: ``train_test_ratio`` of the paper's code, a Julia ``Float32``.
_RATIO = np.float32(0.8)

#: Rows the paper's code draws from a synthetic generator before it shuffles and splits them
#: (CTExperiments src/model_and_data.jl ``get_data``: ``navailable = 100_000``).
_SYNTHETIC_POOL = 100_000

#: Standard deviations of the paper's domain (CounterfactualTraining.jl src/utils.jl
#: ``infer_domain_constraints(X; nstd=2)``).
_DOMAIN_NSTD = 2.0


def _check_variant(value, name):
    if not isinstance(value, str) or value not in VARIANTS:
        raise ValueError(f"{name} must be one of {list(VARIANTS)}, got {value!r}.")
    return value


def load_experiment_data(dataset, *, data_home=None, random_state=0, n_samples=None,
                         n_train=None, data="skct", domain="skct"):
    """Load, split and preprocess one data set as the experiment uses it (model space).

    Parameters
    ----------
    dataset : str
        One of :data:`DATASET_NAMES`.
    data_home : str, path-like or None, default=None
        Directory of the real data files (see :func:`skct.datasets.get_data_home`).
    random_state : int, default=0
        Seed of the synthetic generators and, with ``data="reference"``, of every draw
        (shuffle, validation rows, MNIST sample).
    n_samples : int or None, default=None
        Rows generated for a synthetic set (None: 4500, i.e. 3600 training rows).
    n_train : int or None, default=None
        MNIST training images used (None: the paper's 10000).
    data : {"skct", "reference"}, default="skct"
        ``"skct"``: skct's preparation; the validation arrays are empty. ``"reference"``: the
        preparation of the paper's code. Synthetic: 100000 rows drawn from the paper code's
        generator (``variant="reference"`` of the makers), shuffled, the first 80% (3600 of
        4500) kept for training and validation and the last ``n_samples - 3600`` (900) as the
        test set. Tabular: the file's first ``round(0.8 n)`` rows train (no shuffling),
        numerical columns standardised with the sample standard deviation and categorical
        ones one-hot encoded on every level of the file (fitted on the training rows), model
        columns in file order; Adult keeps its rows with ``"?"``
        (``load_adult(missing="keep")``). MNIST: 11000 training images drawn class-balanced
        (1100 per digit, with replacement, in file order), the 10000 test images. Then
        validation rows are held out of the training part, stratified per class,
        ``floor(share * n_class)`` of each class with ``share = n_val / (n_train + n_val)``
        of :data:`REFERENCE_SIZES` (so 599 or 600 of the 3600 synthetic rows, about 1000
        elsewhere).
    domain : {"skct", "reference"}, default="skct"
        ``"skct"``: ``bounds`` is ``"auto"`` (MNIST: ``[-1, 1]`` per pixel). ``"reference"``:
        explicit bounds ``[min(mu - 2 sigma, min x), max(mu + 2 sigma, max x)]`` for every
        model column (one-hot columns included), from the training and validation rows, with
        the sample standard deviation (MNIST: ``[-1, 1]`` per pixel).

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train``, ``X_val``, ``X_test`` (float32 arrays in model space), ``y_train``,
        ``y_val``, ``y_test`` (int64 class indices), ``classes`` (labels), ``feature_names``
        (model space), ``immutable`` (column indices of the protected features),
        ``immutable_names`` (raw names), ``categorical`` (lists of one-hot column indices),
        ``bounds`` (dict ``{column: (low, high)}`` of explicit domain bounds, or "auto"),
        ``image_shape`` (MNIST) and ``info`` (a JSON-able summary, with the ``data`` and
        ``domain`` variants and ``n_val``).

    Examples
    --------
    >>> from skct.experiments import load_experiment_data
    >>> d = load_experiment_data("moons", n_samples=100)
    >>> d.X_train.shape, d.X_val.shape, d.X_test.shape, d.immutable
    ((80, 2), (0, 2), (20, 2), [0])
    >>> r = load_experiment_data("moons", data="reference", domain="reference")
    >>> r.X_train.shape[0] + r.X_val.shape[0], r.X_test.shape[0], sorted(r.bounds)
    (3600, 900, [0, 1])
    """
    check_dataset(dataset)
    reference = _check_variant(data, "data") == "reference"
    _check_variant(domain, "domain")
    if dataset in SYNTHETIC_DATASETS:
        parts = (_reference_synthetic if reference else _skct_synthetic)(
            dataset, n_samples, random_state)
    elif dataset == "mnist":
        parts = _mnist(data_home, n_train, random_state, reference)
    else:
        parts = _tabular(dataset, data_home, random_state, reference)
    if not reference:
        parts["X_val"] = parts["X_train"][:0]
        parts["y_val"] = np.asarray(parts["y_train"])[:0]
    if domain == "reference" and parts["bounds"] == "auto":
        parts["bounds"] = reference_domain(np.concatenate([parts["X_train"], parts["X_val"]]))
    return _finish(dataset, parts, data, domain)


def _finish(dataset, parts, data, domain):
    """The Bunch: float32 arrays, labels as class indices, the ``info`` summary."""
    X = {k: np.ascontiguousarray(parts[f"X_{k}"], dtype=np.float32)
         for k in ("train", "val", "test")}
    y_raw = {k: np.asarray(parts[f"y_{k}"]) for k in ("train", "val", "test")}
    classes = np.unique(np.concatenate([y_raw["train"], y_raw["val"]]))
    y = {k: labels_to_indices(v, classes, f"y_{k}") for k, v in y_raw.items()}
    names, immutable = parts["names"], parts["immutable"]
    categorical = parts["categorical"]
    info = {
        "dataset": dataset, "source": parts["source"], "data": data, "domain": domain,
        "n_train": int(X["train"].shape[0]), "n_val": int(X["val"].shape[0]),
        "n_test": int(X["test"].shape[0]), "n_features": int(X["train"].shape[1]),
        "n_classes": int(len(classes)), "classes": classes.tolist(),
        "immutable_features": parts["immutable_names"],
        "immutable_columns": [names[j] for j in immutable] if len(immutable) <= 10 else
        f"{len(immutable)} columns",
        "n_categorical_groups": len(categorical),
        "train_class_shares": np.bincount(y["train"], minlength=len(classes)).tolist(),
    }
    return Bunch(X_train=X["train"], X_val=X["val"], X_test=X["test"], y_train=y["train"],
                 y_val=y["val"], y_test=y["test"], classes=classes, feature_names=names,
                 immutable=immutable, immutable_names=parts["immutable_names"],
                 categorical=categorical, bounds=parts["bounds"],
                 image_shape=parts.get("image_shape"), info=info)


# -- the reference's rules ---------------------------------------------------------------------
def _julia_ratio_rows(n):
    """``Int(round(0.8f0 * n))`` of the paper's code (Float32 product, ties to even)."""
    return int(np.rint(_RATIO * np.float32(n)))


def _rng(random_state, *keys):
    return np.random.RandomState(derive_seed(int(random_state), "reference-data", *keys))


def reference_validation_split(y, val_share, random_state):
    """Indices ``(train, validation)`` as the paper's code holds out its validation rows.

    CounterfactualExplanations.jl src/data_preprocessing/utils.jl ``train_test_split(data;
    test_size, keep_class_ratio=true)``: of each class, ``floor(test_size * share_c * N)``
    rows drawn without replacement; both index arrays sorted (row order kept).

    Examples
    --------
    >>> from skct.experiments._data import reference_validation_split
    >>> tr, va = reference_validation_split([0] * 7 + [1] * 5, 0.5, 0)
    >>> len(va), len(tr)  # floor(3.5) + floor(2.5)
    (5, 7)
    """
    y = np.asarray(y)
    n = len(y)
    rng = check_random_state(random_state)
    picked = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        k = math.floor(val_share * (len(members) / n) * n)  # Julia's order of operations
        picked.append(rng.choice(members, size=k, replace=False))
    val = np.sort(np.concatenate(picked)).astype(np.int64)
    train = np.setdiff1d(np.arange(n), val)
    return train, val


def reference_domain(X, nstd=_DOMAIN_NSTD):
    """Explicit bounds ``{column: (low, high)}`` of the paper's domain for every column of ``X``.

    CounterfactualTraining.jl src/utils.jl ``infer_domain_constraints(X; nstd=2)``:
    ``[min(mu - nstd sigma, min x), max(mu + nstd sigma, max x)]`` with the sample standard
    deviation (``ddof=1``).

    Examples
    --------
    >>> import numpy as np
    >>> from skct.experiments._data import reference_domain
    >>> X = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 9.0]])  # sample stds 2 and 5.196...
    >>> reference_domain(X)[0]  # mu -/+ 2 sigma is wider than the data
    (-2.0, 6.0)
    >>> reference_domain(X, nstd=0.5)[0]  # the data are wider than mu -/+ sigma / 2
    (0.0, 4.0)
    """
    X = np.asarray(X, dtype=np.float64)  # [n, D]
    mu = X.mean(axis=0)
    sigma = X.std(axis=0, ddof=1) if len(X) > 1 else np.zeros(X.shape[1])
    low = np.minimum(mu - nstd * sigma, X.min(axis=0))
    high = np.maximum(mu + nstd * sigma, X.max(axis=0))
    return {j: (float(lo), float(hi)) for j, (lo, hi) in enumerate(zip(low, high))}


def _hold_out(parts, dataset, random_state, n_train_ref=None):
    """Move the reference's validation rows out of ``X_train``/``y_train`` (in place)."""
    n_tr, n_val = REFERENCE_SIZES[dataset]
    n_tr = n_tr if n_train_ref is None else n_train_ref
    train, val = reference_validation_split(parts["y_train"], n_val / (n_val + n_tr),
                                            _rng(random_state, dataset, "validation"))
    X, y = parts["X_train"], np.asarray(parts["y_train"])
    parts.update(X_train=X[train], X_val=X[val], y_train=y[train], y_val=y[val])
    return parts


# -- synthetic ---------------------------------------------------------------------------------
def _synthetic_parts(X_train, X_test, y_train, y_test, source):
    return {"X_train": X_train, "X_test": X_test, "y_train": y_train, "y_test": y_test,
            "names": ["x0", "x1"], "immutable": [0], "immutable_names": ["x0"],
            "categorical": [], "bounds": "auto", "source": source}


def _skct_synthetic(dataset, n_samples, random_state):
    n = int(n_samples or DATA_SETTINGS[dataset]["n_samples"])
    X, y = load_synthetic(dataset, n_samples=n, random_state=random_state)
    X_train, X_test, y_train, y_test = train_test_split_paper(X, y)
    return _synthetic_parts(X_train, X_test, y_train, y_test,
                            f"generated ({n} rows, random_state={random_state})")


def _reference_synthetic(dataset, n_samples, random_state):
    """CTExperiments src/synthetic.jl + src/model_and_data.jl ``get_data``."""
    n = int(n_samples or DATA_SETTINGS[dataset]["n_samples"])
    n_keep = _julia_ratio_rows(n)  # train + validation, 3600 of 4500
    pool = max(_SYNTHETIC_POOL, n)
    rng = _rng(random_state, dataset, "draw")
    X, y = load_synthetic(dataset, n_samples=pool, random_state=rng, variant="reference")
    order = rng.permutation(pool)
    head, tail = order[:n_keep], order[pool - (n - n_keep):]
    parts = _synthetic_parts(X[head], X[tail], y[head], y[tail],
                             f"paper code's generator: {pool} rows drawn and shuffled, first "
                             f"{n_keep} train + validation, last {n - n_keep} test "
                             f"(random_state={random_state})")
    return _hold_out(parts, dataset, random_state)


# -- MNIST -------------------------------------------------------------------------------------
def _balanced_sample(y, n, rng):
    """TaijaData.jl src/utils.jl ``subsample``: ``round(n / k)`` rows per class, drawn with
    replacement, indices sorted."""
    classes = pd.unique(np.asarray(y))  # Julia's unique(): order of first appearance
    per_class = int(round(n / len(classes)))
    idx = [rng.choice(np.flatnonzero(y == c), size=per_class, replace=True) for c in classes]
    return np.sort(np.concatenate(idx))


def _mnist(data_home, n_train, random_state, reference):
    n = int(n_train or DATA_SETTINGS["mnist"]["n_train"])
    train = load_mnist(data_home=data_home, subset="train")
    test = load_mnist(data_home=data_home, subset="test")
    parts = {"X_test": test.data, "y_test": test.target, "names": list(train.feature_names),
             "immutable": [int(i) for i in train.immutable_features],
             "immutable_names": ["top and bottom 5 pixel rows"], "categorical": [],
             "bounds": {i: (-1.0, 1.0) for i in range(train.data.shape[1])},
             "image_shape": (28, 28)}
    if not reference:
        parts.update(X_train=train.data[:n], y_train=train.target[:n],
                     source=f"mnist.npz: first {n} training images, 10000 test images")
        return parts
    # CTExperiments src/mnist.jl: load_mnist(round(ntotal * 0.8)), ntotal = round((n + 1000)
    # / 0.8); TaijaData src/vision/mnist.jl draws that many class-balanced images
    n_val = REFERENCE_SIZES["mnist"][1]
    n_draw = _julia_ratio_rows(int(np.rint(np.float32(n + n_val) / _RATIO)))
    idx = _balanced_sample(train.target, n_draw, _rng(random_state, "mnist", "sample"))
    parts.update(X_train=train.data[idx], y_train=train.target[idx],
                 source=f"mnist.npz: {len(idx)} training images drawn class-balanced with "
                        f"replacement (random_state={random_state}), 10000 test images")
    return _hold_out(parts, "mnist", random_state, n_train_ref=n)


# -- tabular -----------------------------------------------------------------------------------
def _reference_encode(frame, n_train, numerical, categorical):
    """TaijaData.jl src/tabular/*.jl: ``Standardizer(count=true) |> ContinuousEncoder()``.

    Numerical columns standardised with the training rows' mean and sample standard deviation;
    categorical columns one-hot encoded on every level of the whole file (sorted); the model
    columns keep the file's column order, named like skct's ``ColumnTransformer`` output
    (``num__age``, ``cat__sex_Male``).
    """
    train = frame.iloc[:n_train]
    blocks = []
    for col in frame.columns:
        if col in categorical:
            levels = sorted(frame[col].unique().tolist())
            codes = pd.Categorical(frame[col], categories=levels)
            onehot = pd.get_dummies(codes, dtype=np.float64)  # [n, n_levels]
            onehot.columns = [f"cat__{col}_{lev}" for lev in levels]
            blocks.append(onehot.set_axis(frame.index))
        elif col in numerical:
            values = frame[col].astype(np.float64)
            sd = train[col].astype(np.float64).std(ddof=1)
            scaled = (values - train[col].astype(np.float64).mean()) / (sd if sd > 0 else 1.0)
            blocks.append(scaled.rename(f"num__{col}").to_frame())
    Z = pd.concat(blocks, axis=1)
    return Z.iloc[:n_train], Z.iloc[n_train:]


def _tabular(dataset, data_home, random_state, reference):
    loader = TABULAR_LOADERS[dataset]
    keep = {"missing": "keep"} if reference and dataset == "adult" else {}
    bunch = loader(data_home=data_home, **keep)
    n_rows = len(bunch.data)
    if reference:
        n_tr = _julia_ratio_rows(n_rows)
        Z_train, Z_test = _reference_encode(bunch.data, n_tr, bunch.numerical_features,
                                            bunch.categorical_features)
        y_train, y_test = bunch.target.iloc[:n_tr], bunch.target.iloc[n_tr:]
        source = (f"{dataset} file: {n_rows} rows, first {n_tr} train; numerical columns "
                  "standardised (sample std) and categorical ones one-hot encoded on the "
                  "training rows, as the paper's code does")
    else:
        Xr_train, Xr_test, y_train, y_test = train_test_split_paper(bunch.data, bunch.target)
        pre = copy.deepcopy(bunch.preprocessor).set_output(transform="pandas").fit(Xr_train)
        Z_train = pre.transform(Xr_train)
        Z_test = pre.transform(Xr_test)
        source = (f"{dataset} file: {n_rows} rows, first 80% train; preprocessor "
                  "(standardise numerical, one-hot categorical) fitted on the training rows")
    # resolve raw names (age, one-hot groups) to model-space columns once
    resolver = ActionabilityConstraints(
        mutability={f: "none" for f in bunch.immutable_features},
        categorical=list(bunch.categorical_features) or None,
    ).fit(Z_train)
    parts = {
        "X_train": Z_train.to_numpy(dtype=np.float32), "X_test": Z_test.to_numpy(np.float32),
        "y_train": np.asarray(y_train), "y_test": np.asarray(y_test),
        "names": [str(c) for c in Z_train.columns],
        "immutable": [int(j) for j in np.flatnonzero(resolver.mutability_ == "none")],
        "immutable_names": list(bunch.immutable_features),
        "categorical": [[int(j) for j in g] for g in resolver.categorical_groups_],
        "bounds": "auto", "source": source,
    }
    return _hold_out(parts, dataset, random_state) if reference else parts


# -- constraints and attack domain -------------------------------------------------------------
def constraints_for(data, protect, *, categorical=True, widen_bounds=True):
    """Index-based constraints: one-hot groups, bounds and (when ``protect``) immutability.

    ``categorical=False`` leaves out the one-hot groups: their columns are then plain
    continuous columns (kind ``"continuous"``, so never rounded), bounded by ``data.bounds``
    like any other, as in the training searches of the paper's code. ``widen_bounds`` is
    passed to :class:`~skct.constraints.ActionabilityConstraints` (False: a plain clamp to
    the bounds, as the paper's code applies its domain).
    """
    mutability = {int(j): "none" for j in data.immutable} if protect else None
    groups = data.categorical or None
    kinds = None
    if not categorical and groups:
        kinds = {int(j): "continuous" for g in groups for j in g}
        groups = None
    return ActionabilityConstraints(mutability=mutability, bounds=data.bounds,
                                    categorical=groups, kinds=kinds, widen_bounds=widen_bounds)


def attack_bounds(bounds, n_features):
    """``(lower, upper)`` of the adversarial attacks from the data's explicit ``bounds``.

    ``"auto"`` or None: unbounded (``None, None``). A dict ``{column: (low, high)}``: one
    lower and one upper value per column (``-inf`` / ``inf`` where a column or a side has no
    bound), e.g. the pixel range ``[-1, 1]`` of MNIST.

    Examples
    --------
    >>> from skct.experiments._data import attack_bounds
    >>> attack_bounds({1: (0.0, 2.0)}, 3)
    (array([-inf,   0., -inf]), array([inf,  2., inf]))
    >>> attack_bounds("auto", 3)
    (None, None)
    """
    if bounds is None or isinstance(bounds, str):
        return None, None
    lower, upper = np.full(n_features, -np.inf), np.full(n_features, np.inf)
    for column, (low, high) in bounds.items():
        if low is not None:
            lower[int(column)] = float(low)
        if high is not None:
            upper[int(column)] = float(high)
    return lower, upper
