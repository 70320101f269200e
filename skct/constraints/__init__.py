"""Actionability constraints: which features may change, in which direction, within which domain.

- :class:`FeatureSchema` (``_schema``): the kinds, dtypes and observed ranges of the user's
  columns, learned from the raw data.
- :class:`ModelEncoding` (``_encoding``): how the model's input columns derive from the user's
  columns (the fitted preprocessing, column by column).
- :class:`ActionabilityConstraints` (``_actionability``): the user-facing transformer that
  resolves constraints written by raw column name, in the user's units, against the model's
  input columns.
- :class:`TorchConstraints` (``_tensors``): the fitted constraints as tensors, read by the
  search's projection kernel and by the training loss.
"""

from ._actionability import ActionabilityConstraints
from ._encoding import ROLES, ModelEncoding
from ._schema import KINDS, ColumnSchema, FeatureSchema
from ._tensors import MUTABILITY_WORDS, TorchConstraints

__all__ = ["ActionabilityConstraints", "TorchConstraints", "MUTABILITY_WORDS", "FeatureSchema",
           "ColumnSchema", "KINDS", "ModelEncoding", "ROLES"]
