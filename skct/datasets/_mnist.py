"""MNIST from ``mnist.npz``, pixels in [-1, 1], with the paper's immutable pixel rows."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._home import find_file
from ._validation import check_subset

__all__ = ["load_mnist"]

#: Pixel rows treated as immutable in the paper: the top 5 and bottom 5 rows of the image.
_MNIST_IMMUTABLE_ROWS = (0, 1, 2, 3, 4, 23, 24, 25, 26, 27)


def load_mnist(*, data_home=None, subset="train"):
    """Load MNIST from ``mnist.npz``, pixels scaled to [-1, 1] as in the paper.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Directory holding ``mnist.npz``; see :func:`get_data_home` for the search order.
    subset : {"train", "test"}, default="train"
        60000 training or 10000 test images.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data``: float32 ndarray (n, 784), pixel ``p`` mapped to ``p / 127.5 - 1``;
        ``images``: the same values as (n, 28, 28) (a view of ``data``: they share memory);
        ``target``: int64 ndarray of digits 0-9; ``feature_names``: ``"pixel_0"`` ...
        ``"pixel_783"`` (row-major); ``immutable_features``: the 280 indices of the pixels in
        the top 5 and bottom 5 pixel rows (the paper's choice); ``categorical_features=[]``;
        ``numerical_features`` (all pixel names); ``target_names``: ``"0"`` ... ``"9"``;
        ``frame=None``; ``preprocessor=None``; ``DESCR``.

    Examples
    --------
    >>> from skct.datasets import load_mnist
    >>> mnist = load_mnist(subset="test")
    >>> mnist.data.shape, mnist.images.shape, len(mnist.immutable_features)
    ((10000, 784), (10000, 28, 28), 280)
    >>> float(mnist.data.min()), float(mnist.data.max())
    (-1.0, 1.0)
    """
    subset = check_subset(subset)
    path = find_file("mnist.npz", data_home)
    with np.load(path) as npz:
        try:
            x = npz[f"x_{subset}"]
            y = npz[f"y_{subset}"]
        except KeyError as exc:
            raise ValueError(
                f"'{path}' should hold arrays x_train, y_train, x_test, y_test; found "
                f"{sorted(npz.files)}."
            ) from exc
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise ValueError(f"Unexpected MNIST array shapes in '{path}': {x.shape}, {y.shape}.")
    n = len(x)
    data = x.reshape(n, 28 * 28).astype(np.float32)
    data /= np.float32(127.5)
    data -= np.float32(1.0)
    immutable = [r * 28 + c for r in _MNIST_IMMUTABLE_ROWS for c in range(28)]
    feature_names = [f"pixel_{i}" for i in range(28 * 28)]
    return Bunch(
        data=data,
        images=data.reshape(n, 28, 28),
        target=np.asarray(y, dtype=np.int64),
        frame=None,
        feature_names=feature_names,
        categorical_features=[],
        numerical_features=list(feature_names),
        immutable_features=immutable,
        target_names=[str(i) for i in range(10)],
        preprocessor=None,
        DESCR=(
            f"MNIST {subset} set: {n} 28x28 grey-scale digits, pixels scaled to [-1, 1]; the "
            "top 5 and bottom 5 pixel rows (280 pixels) are immutable, as in the paper."
        ),
    )
