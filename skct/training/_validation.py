"""Input checks of the classifier whose messages name the column and the fix."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

__all__ = ["check_label_types", "check_numeric_input", "to_float32"]


def _parses_as_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _text_message(where, examples):
    """Message for text values: numbers stored as strings, or categories to encode."""
    if all(_parses_as_number(v) for v in examples):
        return (f"{where} numbers stored as strings (e.g. {examples[0]!r}); convert them to a "
                "numeric dtype first (e.g. X.astype(float)), as scikit-learn requires.")
    return (f"{where} text (e.g. {examples[0]!r}); the classifier needs numbers. Encode such "
            "columns first, e.g. make_pipeline(ColumnTransformer([('categories', "
            "OneHotEncoder(), [<columns>])], remainder='passthrough'), classifier); "
            "set_output(transform='pandas') keeps the column names for the constraints.")


def _strings_in(values):
    """Up to three distinct str values of an array-like (object arrays are scanned)."""
    found = []
    for v in np.asarray(values, dtype=object).ravel():
        if isinstance(v, str) and v not in found:
            found.append(v)
            if len(found) == 3:
                break
    return found


def check_numeric_input(X, param="X"):
    """Raise a clear ``ValueError`` when ``X`` holds text, before scikit-learn converts it.

    A DataFrame's text columns are named; numbers stored as strings are rejected (as
    scikit-learn does) rather than silently converted.

    Examples
    --------
    >>> import pandas as pd
    >>> check_numeric_input(pd.DataFrame({"a": [1.0], "b": ["c"]}))
    Traceback (most recent call last):
    ...
    ValueError: X: column 'b' holds text (e.g. 'c'); ...
    """
    if isinstance(X, pd.DataFrame):
        for col in X.columns:
            dtype = X[col].dtype
            if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                continue
            examples = _strings_in(X[col].to_numpy(dtype=object))
            if examples:
                raise ValueError(_text_message(f"{param}: column {col!r} holds", examples))
        return
    if isinstance(X, (list, tuple, np.ndarray)):
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if arr.dtype.kind in "USO":
            examples = _strings_in(arr)
            if examples:
                raise ValueError(_text_message(f"{param} contains", examples))


def _label_kind(value):
    if isinstance(value, (str, np.str_)):
        return "str"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (numbers.Number, np.number)):
        return "number"
    return type(value).__name__


def check_label_types(y):
    """Raise a clear ``ValueError`` when class labels mix types (e.g. str and int).

    Examples
    --------
    >>> check_label_types([1, 2])
    >>> check_label_types(pd.Series([1, "a"]))
    Traceback (most recent call last):
    ...
    ValueError: y mixes label types (number and str, e.g. 1 and 'a'); ...
    """
    arr = np.asarray(y)
    if arr.dtype != object:
        return
    first = {}
    for v in arr.ravel():
        first.setdefault(_label_kind(v), v)
        if len(first) > 1:
            break
    if len(first) > 1:
        kinds = sorted(first)
        raise ValueError(
            f"y mixes label types ({' and '.join(kinds)}, e.g. "
            f"{' and '.join(repr(first[k]) for k in kinds)}); use one type for all class "
            "labels, e.g. y.astype(str).")


def to_float32(X, param="X"):
    """A float32 copy of a validated float array; values beyond float32's range raise.

    Examples
    --------
    >>> to_float32(np.array([[1e300]]))
    Traceback (most recent call last):
    ...
    ValueError: X has values up to 1e+300, too large for float32 ...
    """
    if X.dtype != np.float32 and X.size:
        largest = float(np.abs(X).max())
        limit = float(np.finfo(np.float32).max)
        if largest > limit:
            raise ValueError(
                f"{param} has values up to {largest:.3g}, too large for float32 (at most "
                f"{limit:.3g}), the precision the network computes in; rescale {param} "
                "(e.g. a StandardScaler in a Pipeline).")
    return np.array(X, dtype=np.float32, copy=True)
