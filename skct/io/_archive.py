"""The skct.io file: a zip of ``manifest.json``, ``arrays.npz`` and ``tensors.pt``.

- ``manifest.json``: format version, the versions of skct and its libraries, the sha256 of every
  other member, and the object graph as JSON with type tags (see ``_encode``).
- ``arrays.npz``: numpy arrays without Python objects, read with ``allow_pickle=False``.
- ``tensors.pt``: a dict of plain tensors, read with ``torch.load(weights_only=True)``.

Nothing is extracted to disk and no other member is accepted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import sys
import tempfile
import warnings
import zipfile

import numpy as np
import torch

from .._version import __version__
from ._decode import GraphReader, scan
from ._encode import GraphWriter
from ._errors import UnsafeFileError
from ._trusted import SAFE_FUNCTIONS, TrustPolicy, dotted

__all__ = ["save", "load", "get_untrusted_types", "FORMAT_VERSION"]

#: Version of the file layout this skct writes (and the newest it reads).
FORMAT_VERSION = 1
_FORMAT = "skct.io"
_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"
_TENSORS = "tensors.pt"
_DATA_MEMBERS = (_ARRAYS, _TENSORS)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so that saving the same object gives the same bytes


def _versions():
    import sklearn
    import skorch

    return {"skct": __version__, "scikit-learn": sklearn.__version__, "torch": torch.__version__,
            "skorch": skorch.__version__, "numpy": np.__version__,
            "python": ".".join(map(str, sys.version_info[:3]))}


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def save(obj, path):
    """Save a fitted skct object (or a Pipeline holding one) as plain data.

    The file is a zip of JSON, numpy arrays and plain torch tensors: :func:`load` reads it
    without executing code from it. Attributes are stored as pickle would store them, but a
    function, lambda or method anywhere in ``obj`` is refused with the attribute path that
    holds it (code is never stored).

    Parameters
    ----------
    obj : object
        Typically a fitted :class:`~skct.CounterfactualTrainedClassifier`,
        :class:`~skct.CounterfactualExplainer` or a scikit-learn ``Pipeline`` containing them.
    path : str, path-like or binary file object
        Where to write. A path is written through a temporary file in the same folder and
        then renamed, so an existing file is replaced only by a complete one.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        When ``obj`` holds something that is not data (a function, a lambda, an open file, a
        class defined inside a function); the message names the attribute path.

    See Also
    --------
    load : Read the file back.
    get_untrusted_types : The classes a file needs beyond those trusted by default.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skct import CounterfactualTrainedClassifier
    >>> from skct.io import load, save
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(50, 2) - 2, rng.randn(50, 2) + 2]
    >>> y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    >>> clf = CounterfactualTrainedClassifier(max_epochs=5, n_counterfactuals=20,
    ...                                       random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "clf.skct")
    ...     save(clf, path)
    ...     same = load(path)
    >>> bool((same.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    writer = GraphWriter()
    root = writer.encode(obj, "obj")
    blobs = {}
    if writer.arrays:
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **writer.arrays)
        blobs[_ARRAYS] = buf.getvalue()
    if writer.tensors:
        buf = io.BytesIO()
        torch.save(writer.tensors, buf)
        blobs[_TENSORS] = buf.getvalue()
    manifest = {"format": _FORMAT, "format_version": FORMAT_VERSION, "versions": _versions(),
                "members": {name: _sha256(data) for name, data in blobs.items()},
                "root": root}
    text = json.dumps(manifest, allow_nan=False, separators=(",", ":"), ensure_ascii=True)
    blobs = {_MANIFEST: text.encode("utf-8"), **blobs}
    if hasattr(path, "write"):
        _write_zip(path, blobs)
        return
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_zip(f, blobs)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write_zip(f, blobs):
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in blobs.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def _check_member_name(name):
    parts = pathlib.PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or "\\" in name or ".." in parts or ":" in name:
        raise UnsafeFileError(
            f"The file has a member named {name!r}, a path outside the archive (path "
            "traversal). It was not written by skct.io.save; nothing was loaded from it.")
    if name not in (_MANIFEST, *_DATA_MEMBERS):
        raise UnsafeFileError(
            f"The file has an unexpected member {name!r}: skct.io files hold only "
            f"{_MANIFEST}, {_ARRAYS} and {_TENSORS}. It was altered or not written by "
            "skct.io.save; nothing was loaded from it.")


def _read(path):
    """``(manifest, {member: bytes})`` with every member name and checksum verified."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnsafeFileError(f"{path!r} is not a skct.io file (not a zip archive: {exc}).") \
            from None
    with zf:
        names = [info.filename for info in zf.infolist()]
        for name in names:
            _check_member_name(name)
        if len(set(names)) != len(names):
            raise UnsafeFileError("The file holds a member twice; it was altered.")
        if _MANIFEST not in names:
            raise UnsafeFileError(f"The file has no {_MANIFEST}: it is not a skct.io file.")
        blobs = {name: zf.read(name) for name in names}
    manifest = _parse_manifest(blobs.pop(_MANIFEST))
    listed = manifest["members"]
    if set(listed) != set(blobs):
        raise UnsafeFileError(f"The manifest lists the members {sorted(listed)} but the file "
                              f"holds {sorted(blobs)}; it was altered.")
    for name, data in blobs.items():
        if _sha256(data) != listed[name]:
            raise UnsafeFileError(f"Checksum mismatch for {name!r}: the file was modified after "
                                  "skct.io.save wrote it. Nothing was loaded from it.")
    return manifest, blobs


def _reject_constant(name):
    raise UnsafeFileError(f"{_MANIFEST} holds the non-standard JSON constant {name}.")


def _parse_manifest(data):
    try:
        manifest = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UnsafeFileError(f"{_MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise UnsafeFileError(f"{_MANIFEST} does not describe a skct.io file.")
    version = manifest.get("format_version")
    if type(version) is not int:
        raise UnsafeFileError(f"{_MANIFEST} has no valid format_version.")
    if version > FORMAT_VERSION:
        raise UnsafeFileError(f"The file has format version {version}; this skct "
                              f"({__version__}) reads up to {FORMAT_VERSION}. Upgrade skct.")
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in members.items()):
        raise UnsafeFileError(f"{_MANIFEST} has no valid member checksums.")
    if "root" not in manifest:
        raise UnsafeFileError(f"{_MANIFEST} holds no object.")
    return manifest


def _load_arrays(data):
    if data is None:
        return {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UnsafeFileError(f"{_ARRAYS} is not a plain array file (read with "
                              f"allow_pickle=False): {exc}") from None
    if any(a.dtype.hasobject for a in arrays.values()):
        raise UnsafeFileError(f"{_ARRAYS} holds an array of Python objects.")
    return arrays


def _load_tensors(data):
    if data is None:
        return {}
    try:
        tensors = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ...: all refusals
        raise UnsafeFileError(f"{_TENSORS} is not a plain tensor file (refused by "
                              f"torch.load(weights_only=True)): {exc}") from None
    if not isinstance(tensors, dict) or not all(
            isinstance(k, str) and type(v) is torch.Tensor for k, v in tensors.items()):
        raise UnsafeFileError(f"{_TENSORS} must hold a dict of plain tensors.")
    return tensors


def _warn_versions(saved):
    if not isinstance(saved, dict):
        return
    now = _versions()
    differ = [f"{name} {saved[name]} (now {now[name]})" for name in
              ("skct", "scikit-learn", "torch", "skorch") if name in saved and
              saved[name] != now[name]]
    if differ:
        warnings.warn("The file was written with other library versions: " + ", ".join(differ)
                      + ". Loading works on the stored attributes; check the results.",
                      UserWarning, stacklevel=3)


def load(path, *, trusted=None):
    """Load an object saved by :func:`save`, without executing code from the file.

    The file's checksums, member names and type tags are checked first; then the objects are
    rebuilt by ``cls.__new__(cls)`` plus their stored attributes, only for classes on skct's
    allow-list (skct, skorch, ``torch.nn`` modules, ``torch.optim`` optimizers, scikit-learn's
    ``Pipeline``, ``ColumnTransformer`` and invertible scalers and encoders) or in
    ``trusted``. Arrays are read with ``allow_pickle=False`` and tensors with
    ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str, path-like or binary file object
        A file written by :func:`save`.
    trusted : list of class or str, default=None
        Further classes to rebuild, e.g. your own ``torch.nn.Module`` (``trusted=[MyNet]``
        or ``trusted=["mypackage.nets.MyNet"]``). Only trust classes whose code you trust:
        their objects are rebuilt from the file's attributes. See
        :func:`get_untrusted_types`.

    Returns
    -------
    obj : object
        The saved object; predictions, probabilities and counterfactuals are identical to
        those of the object that was saved.

    Raises
    ------
    UntrustedTypeError
        The file needs a class that is not trusted; the message names it and shows how to
        trust it.
    UnsafeFileError
        The file is not a valid skct.io file, or was altered (checksum mismatch, unexpected
        or path-traversing member, unknown type tag, a member that is not plain data).

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
    >>> from skct.io import load, save
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(50, 2) - 2, rng.randn(50, 2) + 2]
    >>> y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    >>> pipe = make_pipeline(StandardScaler(), CounterfactualTrainedClassifier(
    ...     max_epochs=5, n_counterfactuals=20, random_state=0)).fit(X, y)
    >>> explainer = CounterfactualExplainer(pipe, target="opposite", random_state=0).fit(X)
    >>> buf = io.BytesIO()
    >>> save(explainer, buf)
    >>> same = load(io.BytesIO(buf.getvalue()))
    >>> a, b = explainer.explain(X[:5]), same.explain(X[:5])
    >>> bool((a.counterfactuals == b.counterfactuals).all())
    True
    """
    policy = TrustPolicy(trusted)
    manifest, blobs = _read(path)
    try:
        type_names, function_names = scan(manifest["root"])
    except RecursionError:
        raise UnsafeFileError(f"{_MANIFEST} is nested too deeply.") from None
    policy.check(type_names, function_names)
    arrays = _load_arrays(blobs.get(_ARRAYS))
    tensors = _load_tensors(blobs.get(_TENSORS))
    _warn_versions(manifest.get("versions"))
    reader = GraphReader(policy, arrays, tensors)
    try:
        return reader.decode(manifest["root"])
    except UnsafeFileError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError,
            OverflowError, RuntimeError) as exc:
        raise UnsafeFileError(f"The file's contents do not form valid objects: "
                              f"{type(exc).__name__}: {exc}") from exc


def get_untrusted_types(path):
    """The classes and functions a file needs beyond those :func:`load` trusts by default.

    Reads only the manifest (after checking the file's checksums); nothing is rebuilt.

    Parameters
    ----------
    path : str, path-like or binary file object
        A file written by :func:`save`.

    Returns
    -------
    names : list of str
        Dotted names (``"mypackage.nets.MyNet"``), sorted; pass the ones you trust to
        ``load(path, trusted=...)``.

    Examples
    --------
    >>> import io
    >>> from sklearn.preprocessing import FunctionTransformer, StandardScaler
    >>> from skct.io import get_untrusted_types, save
    >>> buf = io.BytesIO()
    >>> save([StandardScaler(), FunctionTransformer()], buf)
    >>> get_untrusted_types(buf)
    ['sklearn.preprocessing._function_transformer.FunctionTransformer']
    """
    manifest, _ = _read(path)
    type_names, function_names = scan(manifest["root"])
    policy = TrustPolicy()
    bad = {n for n in type_names if not policy.is_trusted_type(n)}
    bad |= {n for n in function_names if n not in SAFE_FUNCTIONS}
    return sorted(dotted(n) for n in bad)
