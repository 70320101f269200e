"""Where the real data files are read from: ``data_home``, ``$SKCT_DATA_HOME`` or the defaults."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_data_home"]

#: Environment variable that points the loaders at the data directory.
DATA_HOME_ENV = "SKCT_DATA_HOME"


def _default_dirs():
    """Default candidate directories, in search order, without duplicates."""
    candidates = [
        Path.cwd() / ".." / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    out = []
    for d in candidates:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def _candidate_dirs(data_home):
    """Directories to search, in order, and a short label saying where they came from."""
    if data_home is not None:
        if not isinstance(data_home, (str, os.PathLike)):
            raise TypeError(
                f"data_home must be a str, a path-like object or None, got {data_home!r}."
            )
        return [Path(data_home).expanduser().resolve()], "the data_home argument"
    env = os.environ.get(DATA_HOME_ENV, "")
    if env.strip():
        return [Path(env).expanduser().resolve()], f"the {DATA_HOME_ENV} environment variable"
    return _default_dirs(), "the default locations"


def _how_to_point():
    return (
        f"Pass data_home='/path/to/data' to the loader or set the environment variable "
        f"{DATA_HOME_ENV}=/path/to/data (the data sets live in ../shared/data beside the "
        "project; they are not shipped with the package)."
    )


def get_data_home(data_home=None):
    """Resolve the directory the real-data loaders read from.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Explicit data directory. When ``None``, the environment variable ``SKCT_DATA_HOME`` is
        used if set, else the first existing one of ``../shared/data`` (relative to the current
        working directory) and ``shared/data`` beside the repository holding this package.

    Returns
    -------
    path : pathlib.Path
        The resolved directory (absolute).

    Raises
    ------
    FileNotFoundError
        If no candidate directory exists; the message lists the directories tried.

    Examples
    --------
    >>> from skct.datasets import get_data_home
    >>> get_data_home().is_dir()
    True
    """
    dirs, source = _candidate_dirs(data_home)
    for d in dirs:
        if d.is_dir():
            return d
    tried = ", ".join(f"'{d}'" for d in dirs)
    raise FileNotFoundError(
        f"No data directory found: looked in {tried} (from {source}). {_how_to_point()}"
    )


def find_file(filename, data_home):
    """Return the path of ``filename`` in the first candidate directory that holds it."""
    dirs, source = _candidate_dirs(data_home)
    for d in dirs:
        path = d / filename
        if path.is_file():
            return path
    tried = ", ".join(f"'{d}'" for d in dirs)
    raise FileNotFoundError(
        f"Data file '{filename}' not found: looked in {tried} (from {source}). {_how_to_point()}"
    )


# --------------------------------------------------------------------------------------------
# Parameter checks
