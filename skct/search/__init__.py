"""The batched counterfactual search: engine, projection kernel and generators.

- ``_engine``: :func:`search` runs all rows at once with a per-row convergence mask and returns
  a :class:`SearchResult`.
- ``_projection``: the kernel applied after every step (mutability masks, domain clipping,
  one-hot hardening, rounding of integer columns, the limit on changed features).
- ``_sparsify``: :func:`sparsify` reverts the changes a counterfactual does not need.
- ``_diversity``: :class:`DiverseGenerator`, several diverse counterfactuals per factual in
  one search.
- ``_gradient_free``: :func:`gradient_free_search` and :class:`GradientFreeGenerator`, the
  search from class probabilities only (any classifier with ``predict_proba``); its steps
  (candidate space, seeds, rings, generations) are in ``_gf_steps``.
- :mod:`skct.search.generators`: the objectives and search spaces (Generic, ECCo, ECCCo,
  REVISE, or your own ``BaseGenerator``).
- the fast path, which :func:`search` uses where it reproduces the engine (see
  ``skct.search._compiled``): ``_compiled`` (dispatch and the step loop), ``_compiled_plan``
  (a model read as a chain of layers), ``_compiled_steps`` and ``_compiled_fused`` (the
  steps), ``_native_search`` (the whole search of a chain of layers in one C call),
  ``_fast_kernels`` and ``_native_harden`` (C loops of the steps and of the group hardening),
  ``_modes`` (``SKCT_COMPILED_SEARCH`` and the switch that allows native code).
"""

from ._engine import SearchPath, SearchResult, search
from ._projection import (
    feature_changes,
    harden,
    harden_groups,
    limit_changes,
    mask_step,
    project,
    round_to_grid,
    straight_through_harden,
)
from ._sparsify import sparsify
from ._diversity import DIVERSITY_STRATEGIES, DiverseGenerator
from . import generators  # noqa: F401  (first: it registers the gradient-free generator)
from ._gradient_free import GradientFreeGenerator, ProbaLogits, gradient_free_search

__all__ = ["SearchResult", "SearchPath", "search", "mask_step", "project",
           "straight_through_harden", "harden_groups", "round_to_grid", "limit_changes",
           "feature_changes", "harden", "sparsify", "GradientFreeGenerator", "ProbaLogits",
           "gradient_free_search", "DiverseGenerator", "DIVERSITY_STRATEGIES"]
