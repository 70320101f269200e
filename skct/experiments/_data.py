"""Data preparation: each data set loaded, split and preprocessed into the model space.

:func:`load_experiment_data` returns the arrays every later stage works on;
:func:`constraints_for` and :func:`attack_bounds` derive the search constraints and the
attacks' domain from them.
"""

from __future__ import annotations

import copy

import numpy as np

from .._utils import labels_to_indices
from ..constraints import ActionabilityConstraints
from ..datasets import DATASETS, load_mnist, load_synthetic, train_test_split_paper
from ._settings import DATA_SETTINGS, SYNTHETIC_DATASETS, check_dataset

__all__ = ["load_experiment_data"]

#: Loaders of the real tabular data sets of the paper.
TABULAR_LOADERS = {name: DATASETS[name]
                   for name in ("adult", "california_housing", "credit_default", "gmsc")}


def load_experiment_data(dataset, *, data_home=None, random_state=0, n_samples=None,
                         n_train=None):
    """Load, split and preprocess one data set as the experiment uses it (model space).

    Parameters
    ----------
    dataset : str
        One of :data:`DATASET_NAMES`.
    data_home : str, path-like or None, default=None
        Directory of the real data files (see :func:`skct.datasets.get_data_home`).
    random_state : int, default=0
        Seed of the synthetic generators.
    n_samples : int or None, default=None
        Rows generated for a synthetic set (None: 4500, i.e. 3600 training rows).
    n_train : int or None, default=None
        MNIST training images used (None: the paper's 10000).

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train``, ``X_test`` (float32 arrays in model space), ``y_train``, ``y_test``
        (int64 class indices), ``classes`` (labels), ``feature_names`` (model space),
        ``immutable`` (column indices of the protected features), ``immutable_names`` (raw
        names), ``categorical`` (lists of one-hot column indices), ``bounds`` (dict of explicit
        domain bounds or "auto"), ``image_shape`` (MNIST) and ``info`` (a JSON-able summary).

    Examples
    --------
    >>> from skct.experiments import load_experiment_data
    >>> d = load_experiment_data("moons", n_samples=100)
    >>> d.X_train.shape, d.X_test.shape, d.immutable
    ((80, 2), (20, 2), [0])
    """
    from sklearn.utils import Bunch

    check_dataset(dataset)
    image_shape = None
    bounds = "auto"
    categorical = []
    if dataset in SYNTHETIC_DATASETS:
        n = int(n_samples or DATA_SETTINGS[dataset]["n_samples"])
        X, y = load_synthetic(dataset, n_samples=n, random_state=random_state)
        X_train, X_test, y_train, y_test = train_test_split_paper(X, y)
        names = ["x0", "x1"]
        immutable, immutable_names = [0], ["x0"]
        source = f"generated ({n} rows, random_state={random_state})"
    elif dataset == "mnist":
        n = int(n_train or DATA_SETTINGS["mnist"]["n_train"])
        train = load_mnist(data_home=data_home, subset="train")
        test = load_mnist(data_home=data_home, subset="test")
        X_train, y_train = train.data[:n], train.target[:n]
        X_test, y_test = test.data, test.target
        names = list(train.feature_names)
        immutable = [int(i) for i in train.immutable_features]
        immutable_names = ["top and bottom 5 pixel rows"]
        bounds = {i: (-1.0, 1.0) for i in range(X_train.shape[1])}
        image_shape = (28, 28)
        source = f"mnist.npz: first {n} training images, 10000 test images"
    else:
        bunch = TABULAR_LOADERS[dataset](data_home=data_home)
        Xr_train, Xr_test, y_train, y_test = train_test_split_paper(bunch.data, bunch.target)
        pre = copy.deepcopy(bunch.preprocessor).set_output(transform="pandas").fit(Xr_train)
        Z_train = pre.transform(Xr_train)
        Z_test = pre.transform(Xr_test)
        names = [str(c) for c in Z_train.columns]
        # resolve raw names (age, one-hot groups) to model-space columns once
        resolver = ActionabilityConstraints(
            mutability={f: "none" for f in bunch.immutable_features},
            categorical=list(bunch.categorical_features) or None,
        ).fit(Z_train)
        immutable = [int(j) for j in np.flatnonzero(resolver.mutability_ == "none")]
        immutable_names = list(bunch.immutable_features)
        categorical = [[int(j) for j in g] for g in resolver.categorical_groups_]
        X_train = Z_train.to_numpy(dtype=np.float32)
        X_test = Z_test.to_numpy(dtype=np.float32)
        y_train, y_test = np.asarray(y_train), np.asarray(y_test)
        source = (f"{dataset} file: {len(bunch.data)} rows, first 80% train; preprocessor "
                  "(standardise numerical, one-hot categorical) fitted on the training rows")
    X_train = np.ascontiguousarray(X_train, dtype=np.float32)
    X_test = np.ascontiguousarray(X_test, dtype=np.float32)
    classes = np.unique(np.asarray(y_train))
    y_train = labels_to_indices(y_train, classes, "y_train")
    y_test = labels_to_indices(y_test, classes, "y_test")
    info = {
        "dataset": dataset, "source": source, "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]), "n_features": int(X_train.shape[1]),
        "n_classes": int(len(classes)), "classes": classes.tolist(),
        "immutable_features": immutable_names,
        "immutable_columns": [names[j] for j in immutable] if len(immutable) <= 10 else
        f"{len(immutable)} columns",
        "n_categorical_groups": len(categorical),
        "train_class_shares": np.bincount(y_train, minlength=len(classes)).tolist(),
    }
    return Bunch(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
                 classes=classes, feature_names=names, immutable=immutable,
                 immutable_names=immutable_names, categorical=categorical, bounds=bounds,
                 image_shape=image_shape, info=info)


def constraints_for(data, protect):
    """Index-based constraints: one-hot groups, bounds and (when ``protect``) immutability."""
    mutability = {int(j): "none" for j in data.immutable} if protect else None
    return ActionabilityConstraints(mutability=mutability, bounds=data.bounds,
                                    categorical=data.categorical or None)


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
