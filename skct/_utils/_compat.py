"""The few private scikit-learn attributes skct reads, behind small functions with a fallback.

skct maps the columns a model sees back to the user's columns by reading fitted
``ColumnTransformer`` and ``OneHotEncoder`` objects. Two things it needs have no public API:
which input columns each transformer of a ``ColumnTransformer`` received, and which output
columns a ``OneHotEncoder`` with infrequent categories or a dropped level produces. Each
function first uses scikit-learn's private attribute (exact, fast) and falls back to a
computation from public attributes when a scikit-learn version does not have it.
"""

from __future__ import annotations

import numbers

import numpy as np

# scikit-learn's parameter-validation and fit-context tools are private (underscore modules) but
# used by scikit-learn-contrib estimators alike; skct imports them here only, so a scikit-learn
# release that moves them needs one change in this module.
try:
    from sklearn.base import _fit_context as fit_context
    from sklearn.utils import _safe_indexing as safe_indexing
    from sklearn.utils._param_validation import (HasMethods, Interval, Options, StrOptions,
                                                 validate_params)
except ImportError as exc:  # pragma: no cover - depends on the installed scikit-learn
    raise ImportError(
        "skct needs scikit-learn's parameter validation (sklearn.base._fit_context, "
        "sklearn.utils._param_validation), available in scikit-learn 1.6 to 1.8; the installed "
        f"version does not provide it ({exc})."
    ) from exc

__all__ = ["transformer_input_indices", "onehot_output_levels", "onehot_dropped_level",
           "fit_context", "safe_indexing", "HasMethods", "Interval", "Options", "StrOptions",
           "validate_params"]


def transformer_input_indices(ct, name):
    """Input column indices a fitted ``ColumnTransformer`` gave its transformer ``name``.

    Parameters
    ----------
    ct : fitted sklearn.compose.ColumnTransformer
    name : str
        A transformer name of ``ct.transformers_`` (``"remainder"`` included).

    Returns
    -------
    list of int

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]})
    >>> ct = ColumnTransformer([("s", StandardScaler(), ["c", "a"])]).fit(X)
    >>> transformer_input_indices(ct, "s"), transformer_input_indices(ct, "remainder")
    ([2, 0], [1])
    """
    private = getattr(ct, "_transformer_to_input_indices", None)
    if isinstance(private, dict) and name in private:
        return [int(j) for j in np.asarray(private[name]).reshape(-1)]
    return _input_indices_fallback(ct, name)


def _input_indices_fallback(ct, name):
    n_in = int(ct.n_features_in_)
    names = [str(c) for c in getattr(ct, "feature_names_in_", [])]
    used = []
    for tname, _, cols in ct.transformers_:
        if tname == "remainder":
            continue
        idx = _column_spec_indices(cols, names, n_in)
        if tname == name:
            return idx
        used.extend(idx)
    if name == "remainder":
        return [j for j in range(n_in) if j not in set(used)]
    raise KeyError(f"ColumnTransformer has no transformer named {name!r}.")


def _column_spec_indices(cols, names, n_in):
    """Indices of a ColumnTransformer column specification (names, ints, slice, mask)."""
    if callable(cols):
        raise TypeError("a callable column selector cannot be resolved without scikit-learn's "
                        "fitted index map")
    if isinstance(cols, slice):
        if cols.start is None or isinstance(cols.start, numbers.Integral):
            return list(range(n_in))[cols]
        start, stop = names.index(str(cols.start)), names.index(str(cols.stop))
        return list(range(start, stop + 1))
    arr = np.atleast_1d(np.asarray(cols, dtype=object))
    if arr.size and all(isinstance(c, (bool, np.bool_)) for c in arr):
        return [int(j) for j in np.flatnonzero(arr.astype(bool))]
    out = []
    for c in arr.tolist():
        if isinstance(c, numbers.Integral):
            out.append(int(c) % n_in)
        else:
            out.append(names.index(str(c)))
    return out


def onehot_output_levels(encoder, i):
    """The levels of input column ``i`` that a fitted ``OneHotEncoder`` writes a column for.

    Infrequent categories share one column, reported as ``"infrequent_sklearn"`` (as
    ``inverse_transform`` does); the dropped level, if any, has no column and is left out.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> enc = OneHotEncoder(drop="first").fit(np.array([["a"], ["b"], ["c"]]))
    >>> onehot_output_levels(enc, 0).tolist()
    ['b', 'c']
    """
    method = getattr(encoder, "_compute_transformed_categories", None)
    if callable(method):
        try:
            return np.asarray(method(i, remove_dropped=True), dtype=object)
        except TypeError:  # a version whose method has another signature
            pass
    cats = np.asarray(encoder.categories_[i], dtype=object)
    drop = _drop_index(encoder, i)
    return cats if drop is None else np.delete(cats, drop)


def onehot_dropped_level(encoder, i):
    """``(has_dropped, level)``: whether input column ``i`` has a dropped level, and which.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> enc = OneHotEncoder(drop="if_binary").fit(np.array([["F", "x"], ["M", "y"],
    ...                                                     ["M", "z"]]))
    >>> onehot_dropped_level(enc, 0), onehot_dropped_level(enc, 1)
    ((True, 'F'), (False, None))
    """
    drop = _drop_index(encoder, i)
    if drop is None:
        return False, None
    method = getattr(encoder, "_compute_transformed_categories", None)
    after = getattr(encoder, "_drop_idx_after_grouping", None)
    if callable(method) and after is not None:
        try:
            cats = np.asarray(method(i, remove_dropped=False), dtype=object)
            return True, cats[int(after[i])]
        except (TypeError, IndexError):
            pass
    value = encoder.categories_[i][drop]
    return True, value.item() if hasattr(value, "item") else value


def _drop_index(encoder, i):
    drop_idx = getattr(encoder, "drop_idx_", None)
    if drop_idx is None or drop_idx[i] is None:
        return None
    return int(drop_idx[i])
