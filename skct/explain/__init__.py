"""Counterfactual explanations for fitted classifiers.

- ``_adapter``: :class:`ModelAdapter` splits a fitted estimator into invertible preprocessing and
  a torch logits module (the user's columns <-> the model's input space).
- ``_explainer``: :class:`CounterfactualExplainer`, the scikit-learn transformer users call.
"""

from ._adapter import ModelAdapter, as_model_adapter, to_logits_module
from ._explainer import CounterfactualExplainer
from ._result import CounterfactualPath, CounterfactualResult, resolve_targets

__all__ = ["CounterfactualExplainer", "CounterfactualResult", "CounterfactualPath",
           "resolve_targets", "ModelAdapter", "as_model_adapter", "to_logits_module"]
