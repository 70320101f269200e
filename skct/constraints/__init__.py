"""Actionability constraints: which features may change, in which direction, within which domain.

- :class:`ActionabilityConstraints` (``_actionability``): the user-facing transformer that
  resolves constraints written by raw column name against the model's input columns.
- :class:`TorchConstraints` (``_tensors``): the fitted constraints as tensors, read by the
  search's projection kernel and by the training loss.
"""

from ._actionability import ActionabilityConstraints
from ._tensors import MUTABILITY_WORDS, TorchConstraints

__all__ = ["ActionabilityConstraints", "TorchConstraints", "MUTABILITY_WORDS"]
