"""The feature schema: what kind of values each of the user's columns holds, and their range.

A :class:`FeatureSchema` is learned from the user's raw data (before any preprocessing): per
column its kind (continuous, integer, binary, ordinal or categorical), its dtype, its observed
range and its median absolute deviation (the unit of the default recourse cost). Counterfactuals
are returned with values of each column's kind and dtype, inside its domain.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["KINDS", "ColumnSchema", "FeatureSchema"]

#: The kinds of column a schema knows, from the most to the least numeric.
KINDS = ("continuous", "integer", "binary", "ordinal", "categorical")

#: Kinds whose values are integers in the user's units (the search rounds them).
INTEGRAL_KINDS = ("integer", "binary", "ordinal")


@dataclass(frozen=True)
class ColumnSchema:
    """One user column: its kind, dtype, observed range, levels and cost unit.

    Attributes
    ----------
    name : str or int
        The column's label (its position for arrays without names).
    kind : str
        One of :data:`KINDS`.
    dtype : str
        The dtype of the column in the data given to fit (its name: ``"int64"``,
        ``"category"``, ...); counterfactuals come back in the dtype of the rows explained.
    lower, upper : float
        Observed minimum and maximum (NaN for non-numeric columns).
    levels : tuple or None
        The values a binary, ordinal or categorical column takes (in order), else None.
    mad : float
        Median absolute deviation of the values: the unit of the recourse cost. Where it is 0
        (more than half the values equal, e.g. a mostly-zero capital gain) the standard
        deviation stands in, and 1.0 where that is 0 too or the column is not numeric.
    """

    name: object
    kind: str
    dtype: str
    numeric: bool
    lower: float
    upper: float
    levels: tuple | None
    mad: float

    @property
    def nonnegative(self):
        """Whether every observed value is >= 0 (False for non-numeric columns)."""
        return bool(self.numeric and self.lower >= 0)


class FeatureSchema:
    """The user's columns: kind, dtype, observed range, levels and cost unit of each.

    Build it with :meth:`from_data`. Kinds are inferred from dtypes and values: bool columns
    and numeric columns with two integral values are ``"binary"``, other all-integral numeric
    columns ``"integer"`` (a float column needs two distinct values for that), other numeric
    columns ``"continuous"``, ordered pandas categoricals ``"ordinal"``, and other pandas
    categoricals, object and string columns ``"categorical"``.

    Parameters
    ----------
    columns : sequence of ColumnSchema

    Examples
    --------
    >>> import pandas as pd
    >>> from skct.constraints import FeatureSchema
    >>> X = pd.DataFrame({"income": [1.5, 2.0, 7.25], "children": [0, 2, 3],
    ...                   "phone": [1, 2, 2], "job": ["a", "b", "a"]})
    >>> schema = FeatureSchema.from_data(X)
    >>> schema.kinds.tolist()
    ['continuous', 'integer', 'binary', 'categorical']
    >>> schema.lower.tolist()[:3], schema.upper.tolist()[:3]
    ([1.5, 0.0, 1.0], [7.25, 3.0, 2.0])
    >>> FeatureSchema.from_data(X, kinds={"children": "ordinal"}).kinds.tolist()[1]
    'ordinal'
    """

    def __init__(self, columns):
        self.columns = tuple(columns)

    @classmethod
    def from_data(cls, X, *, kinds=None, integer=None):
        """Learn the schema of ``X`` (a DataFrame, or a 2D array whose columns are 0..n-1).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The user's raw data.
        kinds : dict or None, default=None
            Overrides the inferred kind by column name (or index): ``{"grade": "ordinal"}``.
        integer : list or None, default=None
            Columns (names or indices) of kind ``"integer"``; shorthand for ``kinds``.

        Returns
        -------
        FeatureSchema
        """
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
        if frame.shape[0] == 0:
            raise ValueError("X is empty: a schema needs at least one row.")
        labels = list(frame.columns)
        wanted = _kind_overrides(kinds, integer, labels)
        columns = [_column_schema(labels[j], frame.iloc[:, j], wanted.get(j))
                   for j in range(len(labels))]
        return cls(columns)

    def __len__(self):
        return len(self.columns)

    def __getitem__(self, j):
        return self.columns[j]

    def __repr__(self):
        kinds = ", ".join(f"{c.name}: {c.kind}" for c in self.columns[:6])
        more = ", ..." if len(self) > 6 else ""
        return f"FeatureSchema({kinds}{more})"

    @property
    def names(self):
        return np.asarray([c.name for c in self.columns], dtype=object)

    @property
    def kinds(self):
        return np.asarray([c.kind for c in self.columns], dtype=object)

    @property
    def lower(self):
        return np.asarray([c.lower for c in self.columns], dtype=np.float64)

    @property
    def upper(self):
        return np.asarray([c.upper for c in self.columns], dtype=np.float64)

    @property
    def mad(self):
        return np.asarray([c.mad for c in self.columns], dtype=np.float64)

    def to_frame(self):
        """The schema as a DataFrame (one row per column), for display."""
        return pd.DataFrame({
            "kind": self.kinds, "dtype": [c.dtype for c in self.columns],
            "lower": self.lower, "upper": self.upper,
            "nonnegative": [c.nonnegative for c in self.columns],
            "n_levels": [np.nan if c.levels is None else len(c.levels) for c in self.columns],
            "mad": self.mad,
        }, index=pd.Index(self.names, name="column"))


# ---------------------------------------------------------------------------------------
# inference
# ---------------------------------------------------------------------------------------


def _is_numeric(dtype):
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _kind_overrides(kinds, integer, labels):
    """{column index: kind} from the ``kinds`` dict and the ``integer`` list."""
    out = {}
    for key in integer or []:
        out[_column_index(key, labels, "integer")] = "integer"
    for key, kind in (kinds or {}).items():
        if kind not in KINDS:
            raise ValueError(f"kinds: {kind!r} for column {key!r} is not one of {list(KINDS)}.")
        j = _column_index(key, labels, "kinds")
        if j in out and out[j] != kind:
            raise ValueError(f"kinds: column {key!r} is {kind!r} in kinds but listed in "
                             "integer; give it one kind.")
        out[j] = kind
    return out


def _column_index(key, labels, param):
    if key in labels and not isinstance(key, bool):
        return labels.index(key)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if -len(labels) <= key < len(labels):
            return int(key) % len(labels)
        raise ValueError(f"{param}: column index {key} is out of range for {len(labels)} "
                         "columns.")
    shown = labels if len(labels) <= 12 else labels[:12] + ["..."]
    raise ValueError(f"{param}: unknown column {key!r}; the data has columns {shown}.")


def _mad(values):
    """Median absolute deviation; the standard deviation where it is 0, then 1.0."""
    med = np.median(values)
    mad = float(np.median(np.abs(values - med)))
    if np.isfinite(mad) and mad > 0:
        return mad
    sd = float(np.std(values))
    return sd if np.isfinite(sd) and sd > 0 else 1.0


def _column_schema(name, series, kind):
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _categorical_dtype_schema(name, series, kind)
    if not _is_numeric(dtype):
        if kind not in (None, "categorical", "ordinal"):
            raise ValueError(f"kinds: column {name!r} holds non-numeric values ({dtype}); it "
                             f"can be 'categorical' or 'ordinal', not {kind!r}.")
        levels = _sorted_levels(series)
        return ColumnSchema(name, kind or "categorical", str(dtype), False, np.nan, np.nan,
                            levels, 1.0)
    values = series.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(f"column {name!r} has no finite value to learn a domain from.")
    lower, upper = float(finite.min()), float(finite.max())
    integral = bool(np.all(finite == np.round(finite)))
    # the distinct values matter only for integral columns and declared levels (cheap otherwise)
    needs = integral or kind in ("binary", "ordinal", "categorical")
    distinct = np.unique(finite) if needs else finite[:0]
    if kind is None:
        # a float column holding one integral value (a constant -1.0 pixel) stays continuous
        integral = integral and (distinct.size > 1 or pd.api.types.is_integer_dtype(dtype))
        if pd.api.types.is_bool_dtype(dtype) or (integral and distinct.size == 2):
            kind = "binary"
        else:
            kind = "integer" if integral else "continuous"
    if kind in ("integer", "binary") and not integral:
        bad = float(finite[finite != np.round(finite)][0])
        raise ValueError(f"{'integer' if kind == 'integer' else 'kinds'}: column {name!r} is "
                         f"declared {kind!r} but has fractional values (e.g. {bad!r}).")
    if kind == "binary" and distinct.size > 2:
        raise ValueError(f"kinds: column {name!r} is declared 'binary' but has "
                         f"{distinct.size} distinct values ({distinct[:4].tolist()}...).")
    levels = None
    if pd.api.types.is_bool_dtype(dtype):
        levels = (False, True)
    elif kind in ("binary", "ordinal", "categorical"):
        levels = tuple(distinct.tolist())
    return ColumnSchema(name, kind, str(dtype), True, lower, upper, levels, _mad(finite))


def _categorical_dtype_schema(name, series, kind):
    dtype = series.dtype
    cats = dtype.categories
    numeric = pd.api.types.is_numeric_dtype(cats.dtype)
    default = "ordinal" if dtype.ordered else "categorical"
    kind = kind or default
    if kind not in ("ordinal", "categorical"):
        raise ValueError(f"kinds: column {name!r} is a pandas categorical; it can be "
                         f"'categorical' or 'ordinal', not {kind!r}.")
    lower = upper = np.nan
    if numeric and series.notna().any():
        observed = np.asarray(series.dropna().astype(cats.dtype), dtype=np.float64)
        lower, upper = float(observed.min()), float(observed.max())
    return ColumnSchema(name, kind, str(dtype), False, lower, upper, tuple(cats.tolist()), 1.0)


def _sorted_levels(series):
    levels = pd.unique(series.dropna())
    try:
        return tuple(sorted(levels.tolist()))
    except TypeError:  # mixed types: keep the order of appearance
        return tuple(levels.tolist())
