"""Class labels -> class indices: the one lookup every part of skct uses."""

from __future__ import annotations

import numpy as np

__all__ = ["plain", "labels_to_indices"]


def plain(label):
    """numpy scalars -> Python scalars (stable reprs, hashable keys, clean DataFrame columns)."""
    return label.item() if hasattr(label, "item") else label


def labels_to_indices(labels, classes, param="y", *, unknown="raise", where=""):
    """Indices into ``classes`` of every label in ``labels`` (a dictionary lookup).

    ``classes`` need no order (unlike ``np.searchsorted``) and may mix types. An unknown label
    raises a ``ValueError`` naming ``param`` and listing the classes (``unknown="raise"``), or
    becomes -1 (``unknown=-1``) for callers that report unknown labels themselves.

    Parameters
    ----------
    labels : array-like of shape (n,)
    classes : array-like of shape (n_classes,)
    param : str
        Name of the parameter the labels came from (used in the error message).
    unknown : "raise" or -1
    where : str
        Extra context for the error message (e.g. ``" for model 'mlp'"``).

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> labels_to_indices(["b", "a", "b"], ["a", "b"]).tolist()
    [1, 0, 1]
    >>> labels_to_indices([3], [1, 2], unknown=-1).tolist()
    [-1]
    """
    lookup = {plain(c): i for i, c in enumerate(classes)}
    values = np.asarray(labels, dtype=object).reshape(-1).tolist()
    out = np.empty(len(values), dtype=np.int64)
    for i, lab in enumerate(values):  # a dict lookup per label, not a search over classes
        idx = lookup.get(plain(lab))
        if idx is None:
            if unknown == "raise":
                raise ValueError(f"{param}: unknown class label {plain(lab)!r}{where}; the "
                                 f"model's classes are {list(classes)}.")
            idx = -1
        out[i] = idx
    return out
