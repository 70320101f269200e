"""Saving and loading fitted skct objects as plain data: loading never executes code.

:func:`save` writes a fitted :class:`~skct.CounterfactualTrainedClassifier`,
:class:`~skct.CounterfactualExplainer` or a scikit-learn ``Pipeline`` holding them as a zip of
JSON (the object graph with type tags), numpy arrays and plain torch tensors. :func:`load`
rebuilds it from an explicit allow-list of classes (:data:`DEFAULT_TRUSTED_TYPES` and the
packages in :data:`TRUSTED_PREFIXES`) plus the classes the caller passes in ``trusted``; it
reads arrays with ``allow_pickle=False`` and tensors with ``torch.load(weights_only=True)``,
and verifies every member's sha256 first.

- ``_trusted``: the allow-list, in one place, and how a name becomes a class.
- ``_state``: what an object's state is and how it is put back.
- ``_encode`` / ``_decode``: object graph <-> JSON nodes, arrays and tensors.
- ``_archive``: the zip file, its checksums, :func:`save`, :func:`load`.
"""

from ._archive import FORMAT_VERSION, get_untrusted_types, load, save
from ._errors import UnsafeFileError, UntrustedTypeError
from ._trusted import DEFAULT_TRUSTED_TYPES, SAFE_FUNCTIONS, TRUSTED_PREFIXES

__all__ = ["save", "load", "get_untrusted_types", "UnsafeFileError", "UntrustedTypeError",
           "DEFAULT_TRUSTED_TYPES", "TRUSTED_PREFIXES", "SAFE_FUNCTIONS", "FORMAT_VERSION"]
