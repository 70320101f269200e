"""Counterfactual training: the classifier and its skorch net."""

from ._classifier import MLP, CounterfactualTrainedClassifier

__all__ = ["CounterfactualTrainedClassifier", "MLP"]
