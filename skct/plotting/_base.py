"""What the Displays share: matplotlib imported lazily, labels, arrays, literal text."""

from __future__ import annotations

import numpy as np

__all__ = ["check_matplotlib_support", "pyplot", "class_order", "to_numpy", "literal"]


def check_matplotlib_support(caller):
    """Raise an ImportError naming ``caller`` when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{caller} needs matplotlib: pip install matplotlib (or "
                          "skct[plot]).") from exc


def pyplot(caller):
    check_matplotlib_support(caller)
    import matplotlib.pyplot as plt

    return plt


def class_order(y, targets):
    """Sorted unique labels of ``y`` and ``targets`` (the class order of ``proba``)."""
    if targets is None or np.isin(targets, y).all():
        return np.unique(y)
    return np.unique(np.concatenate([y, targets]))


def to_numpy(X):
    return X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)


def literal(*texts):
    """Show the text artists as written: user text is never read as mathematics (``$``)."""
    for group in texts:
        for text in ([group] if hasattr(group, "set_parse_math") else group):
            text.set_parse_math(False)
