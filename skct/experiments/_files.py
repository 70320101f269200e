"""The results folder: plain formats, atomic writes, and no symbolic link ever followed.

Everything an experiment writes goes through a :class:`ResultsFolder`: a file is written to a
fresh temporary name (created exclusively, never through a link) and renamed over its final
name, so a planted link at that name is replaced, not written through; directories inside the
folder that are links are refused with an error; deleting a directory removes links
themselves, never what they point to; a link planted at a file the runner reads counts as a
missing file. Tables are stored as JSON or CSV, which load without executing code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import stat
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

__all__ = []

#: dtypes a stored table may declare (anything else is rejected when read); text columns are
#: ``str`` (pandas >= 3) or ``object``.
NUMBER_DTYPES = ("int64", "float64", "float32", "bool")
TEXT_DTYPES = ("str", "object")
FRAME_DTYPES = NUMBER_DTYPES + TEXT_DTYPES


def finite_float(x):
    """``float(x)``, or None when it is not finite (JSON has no NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None


def jsonable(obj):
    """Plain-JSON version of nested settings (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return finite_float(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return repr(obj)


def fingerprint(obj):
    """A short stable hash of JSON-able settings (key order does not matter)."""
    text = json.dumps(jsonable(obj), sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def sha256(data):
    """Hex SHA-256 of ``data`` (bytes)."""
    return hashlib.sha256(data).hexdigest()


def frame_to_json(df):
    """A DataFrame as a JSON-able dict that :func:`frame_from_json` restores exactly.

    Floats are written with Python's round-trip representation (NaN as ``NaN``), so every
    value, dtype (int64, float64, float32, bool, text) and the column order come back
    unchanged.
    """
    dtypes = [str(df[c].dtype) for c in df.columns]
    for c, d in zip(df.columns, dtypes):
        if d not in FRAME_DTYPES:
            raise TypeError(f"column {c!r}: dtype {d} cannot be stored.")
    return {"columns": [str(c) for c in df.columns], "dtypes": dtypes,
            "data": [df[c].tolist() for c in df.columns]}


def frame_from_json(obj, columns=None):
    """The DataFrame of :func:`frame_to_json`; ``ValueError`` when ``obj`` is not such a table
    (or its columns are not ``columns``)."""
    if not isinstance(obj, dict) or set(obj) != {"columns", "dtypes", "data"}:
        raise ValueError("not a stored table")
    names, dtypes, data = obj["columns"], obj["dtypes"], obj["data"]
    if not (isinstance(names, list) and isinstance(dtypes, list) and isinstance(data, list)
            and len(names) == len(dtypes) == len(data)):
        raise ValueError("malformed table")
    if columns is not None and names != list(columns):
        raise ValueError(f"unexpected columns {names}")
    lengths = {len(v) if isinstance(v, list) else -1 for v in data}
    if len(lengths) > 1 or -1 in lengths:
        raise ValueError("columns of different lengths")
    out = {}
    for name, dtype, values in zip(names, dtypes, data):
        if dtype not in FRAME_DTYPES:
            raise ValueError(f"column {name!r}: dtype {dtype!r} is not allowed")
        if dtype in TEXT_DTYPES:
            if not all(isinstance(v, str) for v in values):
                raise ValueError(f"column {name!r}: text column with non-text values")
            out[name] = pd.Series(values, dtype=dtype)
        else:
            if not all(isinstance(v, (int, float)) for v in values):
                raise ValueError(f"column {name!r}: non-numeric values")
            out[name] = pd.Series(np.asarray(values, dtype=dtype), dtype=dtype)
    return pd.DataFrame(out, columns=names)


def frame_to_csv_bytes(df):
    """The bytes of ``df.to_csv(index=False)``, gzip-compressed."""
    import io

    buffer = io.BytesIO()
    df.to_csv(buffer, index=False, compression={"method": "gzip", "mtime": 0})
    return buffer.getvalue()


def frame_from_csv_bytes(data):
    """The DataFrame of :func:`frame_to_csv_bytes`."""
    import io

    return pd.read_csv(io.BytesIO(data), compression="gzip")


def _is_link(path):
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


class ResultsFolder:
    """A directory skct writes into without following any symbolic link inside it.

    Parameters
    ----------
    root : str or path-like
        The folder (created when missing). It must not itself be a symbolic link.
    """

    def __init__(self, root):
        root = Path(root)
        if _is_link(root):
            raise ValueError(f"Results folder '{root}' is a symbolic link; skct writes results "
                             "only into real directories.")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def path(self, rel):
        """``root / rel`` after checking that ``rel`` stays inside the folder."""
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ValueError(f"{rel!r} is not a path inside the results folder.")
        return self.root.joinpath(*parts)

    def _check_parents(self, rel):
        """Refuse a link among the directories between the root and ``rel``."""
        current = self.root
        for part in PurePosixPath(rel).parts[:-1]:
            current = current / part
            if _is_link(current):
                raise ValueError(f"'{current}' is a symbolic link; skct does not write, read or "
                                 "delete through links in a results folder.")

    def mkdir(self, rel):
        """Create the directory ``rel`` (and its parents) as real directories."""
        self._check_parents(f"{rel}/x")
        path = self.path(rel)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_bytes(self, rel, data):
        """Write ``data`` to ``rel`` atomically (temporary file, then rename over the name)."""
        path = self.path(rel)
        parent = PurePosixPath(rel).parent
        if str(parent) != ".":
            self.mkdir(str(parent))
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # renames over a link at `path`; never writes through it
        except BaseException:
            if _is_link(tmp) or tmp.exists():
                tmp.unlink()
            raise
        return path

    def write_json(self, rel, obj):
        """Write ``jsonable(obj)`` as indented JSON."""
        text = json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n"
        return self.write_bytes(rel, text.encode("utf-8"))

    def read_bytes(self, rel):
        """The bytes of the regular file ``rel``; None when missing, a link or not a file."""
        self._check_parents(rel)
        path = self.path(rel)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            return fh.read()

    def read_json(self, rel):
        """The parsed JSON of ``rel``, or None when it is missing or not JSON."""
        data = self.read_bytes(rel)
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def is_link(self, rel):
        """Whether ``rel`` is a symbolic link."""
        return _is_link(self.path(rel))

    def exists(self, rel):
        """Whether something (a file, directory or link) is at ``rel``."""
        return _is_link(self.path(rel)) or self.path(rel).exists()

    def list(self, rel, pattern="*"):
        """Names in the directory ``rel`` matching ``pattern`` (links included, not followed)."""
        self._check_parents(f"{rel}/x")
        path = self.path(rel)
        if _is_link(path) or not path.is_dir():
            return []
        return sorted(p.name for p in path.glob(pattern))

    def remove(self, rel):
        """Delete the file, link or directory tree ``rel``; links are removed, not followed."""
        self._check_parents(rel)
        _remove(self.path(rel))


def _remove(path):
    if _is_link(path) or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()
