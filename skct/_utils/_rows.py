"""Outputs of chunked work assembled in place: :class:`RowBlocks`.

The explainer's chunks and the audit's batches write their rows into outputs allocated once
(arrays, and frames column by column), so that no list of chunks is joined at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RowBlocks"]


_IN_PLACE = tuple(getattr(pd.arrays, name) for name in (
    "NumpyExtensionArray", "IntegerArray", "FloatingArray", "BooleanArray", "DatetimeArray",
    "TimedeltaArray") if hasattr(pd.arrays, name))


class RowBlocks:
    """Outputs of ``n_rows`` rows filled chunk by chunk, each allocated once.

    Chunked work (an explanation in chunks, the batches of an audit) produces, per chunk,
    arrays and frames of that chunk's rows. :meth:`write` copies them into outputs of
    ``n_rows`` rows allocated at the first chunk, so that the chunks can be dropped as they
    come: joining them at the end (``np.concatenate``, ``pd.concat``) would hold every chunk
    and the joined copy at once. A frame's column is written into a NumPy array, a pandas array
    or, for a categorical column, into codes of the categories in order of first appearance (as
    ``pd.concat`` after setting every chunk to the union of the categories gives them); a
    column whose dtype differs between chunks, or that no buffer can hold, keeps its chunks
    and joins them with ``pd.concat`` when read. A value of all ``n_rows`` rows written at once
    (a single chunk) is kept as it is, without a copy. Chunks are written in row order.

    Parameters
    ----------
    n_rows : int
        Rows of every output.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> blocks = RowBlocks(4)
    >>> for start in (0, 2):
    ...     rows = np.arange(start, start + 2)
    ...     blocks.write(start, x=rows * 10, frame=pd.DataFrame({"a": rows}))
    >>> blocks.pop("x").tolist()
    [0, 10, 20, 30]
    >>> blocks.pop("frame", index=pd.RangeIndex(4))["a"].tolist()
    [0, 1, 2, 3]
    """

    def __init__(self, n_rows):
        self.n_rows = int(n_rows)
        self._out = {}

    def write(self, start, **values):
        """Write each chunk value (ndarray or DataFrame of the same rows) at row ``start``."""
        for key, value in values.items():
            if key not in self._out and start == 0 and len(value) == self.n_rows:
                self._out[key] = _Whole(value)  # one chunk of every row: kept as it is
                continue
            if key not in self._out:
                self._out[key] = _FrameBlock(self.n_rows, value) if isinstance(
                    value, pd.DataFrame) else _ArrayBlock(self.n_rows, value)
            self._out[key].write(start, value)

    def keys(self):
        """The names of the outputs written so far."""
        return self._out.keys()

    def pop(self, key, index=None):
        """The finished output ``key`` (a frame gets ``index``), released from the blocks."""
        block = self._out.pop(key)
        return block.result(index) if isinstance(block, _FrameBlock) else block.result()


class _Whole:
    """A value written at once for every row (one chunk): the output is the value itself."""

    def __init__(self, value):
        self.value = value

    def write(self, start, value):
        raise ValueError("RowBlocks: rows written twice; a chunk of every row was given.")

    def result(self):
        return self.value


class _ArrayBlock:
    """An ndarray [n_rows, ...] filled chunk by chunk (upcast once if a chunk needs it)."""

    def __init__(self, n_rows, first):
        first = np.asarray(first)
        self.out = np.empty((n_rows,) + first.shape[1:], dtype=first.dtype)

    def write(self, start, value):
        value = np.asarray(value)
        dtype = np.result_type(self.out.dtype, value.dtype)
        if dtype != self.out.dtype:  # as np.concatenate would give it
            self.out = self.out.astype(dtype)
        self.out[start:start + len(value)] = value

    def result(self):
        return self.out


class _FrameBlock:
    """The columns of a DataFrame [n_rows, F] filled chunk by chunk."""

    def __init__(self, n_rows, first):
        self.columns = first.columns
        self.cols = [_column_block(n_rows, first.iloc[:, j]) for j in range(first.shape[1])]

    def write(self, start, frame):
        for j, col in enumerate(self.cols):
            series = frame.iloc[:, j]
            if not col.accepts(series):
                self.cols[j] = col = _Pieces(col, start)
            col.write(start, series)

    def result(self, index):
        data = {}
        for j in range(len(self.columns)):
            data[j] = self.cols[j].result()  # arrays: nothing to align on the index
            self.cols[j] = None  # one column's pieces are dropped before the next is built
        out = pd.DataFrame(data, index=index, copy=False)
        out.columns = self.columns
        return out


def _column_block(n_rows, series):
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _CategoricalColumn(n_rows, dtype)
    if isinstance(dtype, np.dtype):
        return _BufferColumn(np.empty(n_rows, dtype=dtype), dtype)
    if isinstance(series.array, _IN_PLACE):
        try:
            return _BufferColumn(type(series.array)._empty((n_rows,), dtype), dtype)
        except (AttributeError, NotImplementedError, TypeError):
            pass
    return _Pieces()


class _BufferColumn:
    """A column written into one preallocated array of its dtype."""

    def __init__(self, buffer, dtype):
        self.buffer, self.dtype, self.filled = buffer, dtype, 0

    def accepts(self, series):
        return series.dtype == self.dtype

    def write(self, start, series):
        stop = start + len(series)
        self.buffer[start:stop] = series.array if not isinstance(
            self.buffer, np.ndarray) else series.to_numpy()
        self.filled = max(self.filled, stop)

    def as_series(self, stop):
        """The rows written so far, as a Series (for a column that turns to pieces)."""
        return pd.Series(self.buffer[:stop], dtype=self.dtype, copy=False)

    def result(self):
        return self.buffer


class _CategoricalColumn:
    """A categorical column as codes of the union of the chunks' categories."""

    def __init__(self, n_rows, dtype):
        self.codes = np.empty(n_rows, dtype=np.int32)
        self.dtypes = [dtype]  # distinct dtypes, in order of appearance
        self.union = pd.Index(np.asarray(dtype.categories, dtype=object))
        self.filled = 0

    def accepts(self, series):
        return isinstance(series.dtype, pd.CategoricalDtype) and \
            series.dtype.ordered == self.dtypes[0].ordered

    def write(self, start, series):
        dtype = series.dtype
        if dtype not in self.dtypes:
            self.dtypes.append(dtype)
            cats = np.asarray(dtype.categories, dtype=object)
            new = cats[self.union.get_indexer(cats) < 0]
            self.union = self.union.append(pd.Index(new, dtype=object))
        codes = np.asarray(series.cat.codes)
        lookup = self.union.get_indexer(np.asarray(dtype.categories, dtype=object))
        out = np.full(len(codes), -1, dtype=self.codes.dtype)  # -1: missing
        out[codes >= 0] = lookup[codes[codes >= 0]]
        self.codes[start:start + len(series)] = out
        self.filled = max(self.filled, start + len(series))

    def _dtype(self):
        first = self.dtypes[0]
        if len(self.dtypes) == 1:
            return first
        # the union in order of first appearance (the order of self.union, which the codes
        # index), typed as the chunks' categories were when they all agree
        cats = pd.Index(pd.unique(np.concatenate(
            [np.asarray(d.categories, dtype=object) for d in self.dtypes])))
        if all(d.categories.dtype == first.categories.dtype for d in self.dtypes):
            cats = cats.astype(first.categories.dtype)
        return pd.CategoricalDtype(cats, ordered=first.ordered)

    def as_series(self, stop):
        return pd.Series(pd.Categorical.from_codes(self.codes[:stop], dtype=self._dtype()))

    def result(self):
        return pd.Categorical.from_codes(self.codes, dtype=self._dtype())


class _Pieces:
    """A column kept as its chunks and joined by ``pd.concat`` when read."""

    def __init__(self, previous=None, stop=0):
        self.pieces = [] if previous is None or stop == 0 else [previous.as_series(stop)]

    def accepts(self, series):
        return True

    def write(self, start, series):
        self.pieces.append(series.reset_index(drop=True))

    def result(self):
        out = pd.concat(self.pieces, ignore_index=True)
        self.pieces = []
        return out.to_numpy() if isinstance(out.dtype, np.dtype) else out.array
