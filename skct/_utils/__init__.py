"""Small helpers shared across skct: torch modes, labels, seeds, parallel work, compatibility."""

from ._compat import (HasMethods, Interval, Options, StrOptions, fit_context, safe_indexing,
                      validate_params)
from ._labels import labels_to_indices, plain
from ._lazy import dense_path_property
from ._rows import RowBlocks
from ._seeding import derive_seed, draw_seed, entropy_from
from ._torch import eval_mode
from ._validation import is_fitted

__all__ = ["eval_mode", "labels_to_indices", "plain", "derive_seed", "draw_seed", "entropy_from",
           "is_fitted", "fit_context", "safe_indexing", "HasMethods", "Interval", "Options",
           "StrOptions", "validate_params", "dense_path_property", "RowBlocks"]
