"""Counterfactual training: the classifier, its skorch net, callbacks and per-fit state.

- ``_classifier``: :class:`CounterfactualTrainedClassifier`, the scikit-learn estimator.
- ``_net``: :class:`CounterfactualNet`, the skorch net (CT parameters, loss terms).
- ``_search``: :class:`CounterfactualSearch`, the callback running each epoch's search.
- ``_guard``: :class:`TrainingGuard`, non-finite updates and runaway energies.
- ``_state``: :class:`FitState` and :class:`EpochCounterfactuals`, what a fit keeps.
- ``_rng``: :class:`StreamDataLoader`, :func:`stream_as_global`, :func:`cuda_seeded`: per-fit
  torch streams.
- ``_loss``, ``_loss_kernel``: the CT loss of a batch as one autograd node (a native pass
  computes its components and gradient where a C compiler is available).
- ``_log``: :class:`EpochLog`, the epoch table (plain text unless on a terminal).
- ``_validation``: input checks with messages naming the column and the fix.
- ``_mlp``: :class:`MLP`, the default network.
"""

from ._classifier import CounterfactualTrainedClassifier
from ._guard import TrainingGuard
from ._log import EpochLog
from ._mlp import MLP
from ._net import CounterfactualNet
from ._rng import StreamDataLoader, cuda_seeded, stream_as_global
from ._search import CounterfactualSearch
from ._state import EpochCounterfactuals, FitState

__all__ = ["CounterfactualTrainedClassifier", "CounterfactualNet", "CounterfactualSearch",
           "TrainingGuard", "EpochLog", "FitState", "EpochCounterfactuals", "StreamDataLoader",
           "stream_as_global", "cuda_seeded", "MLP"]
