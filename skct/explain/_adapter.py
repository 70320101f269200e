"""Adapters from fitted estimators to what the search needs.

A fitted estimator is split into invertible preprocessing (``Pipeline`` steps before the last)
and a torch-backed classifier (a skorch net or a ``CounterfactualTrainedClassifier``). The
gradient search runs on the classifier's torch module, which must return logits; results go
back to the user's columns through the preprocessing's inverse. For the gradient-free search the
final step may be any classifier with ``predict_proba`` (seen through
:class:`~skct.search.ProbaLogits`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from .._utils._compat import transformer_input_indices
from ..search import ProbaLogits
from ._encoding import encoding_of

__all__ = ["ModelAdapter", "as_model_adapter", "to_logits_module"]


class _LogOfProba(torch.nn.Module):
    """Wraps a module returning probabilities (skorch's NLLLoss default) to return log-probas."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return torch.log(self.module(x).clamp_min(1e-12))


class _BinaryLogit(torch.nn.Module):
    """Turns one logit z (skorch's NeuralNetBinaryClassifier) into two logits [0, z]."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        z = self.module(x).reshape(x.shape[0], -1)[:, :1]
        return torch.cat([torch.zeros_like(z), z], dim=1)


def to_logits_module(final):
    """Return a torch module mapping float inputs [N, D] to class logits [N, C].

    ``final`` is a fitted ``CounterfactualTrainedClassifier``, a skorch net, or a torch module
    (returned as is, assumed to output logits). For skorch classifiers trained with ``NLLLoss``
    (whose module outputs probabilities) the module's output is log-transformed: log-probas are
    logits up to a per-row constant, so class probabilities are unchanged.
    """
    if isinstance(final, torch.nn.Module):
        return final
    if hasattr(final, "logits_module_"):
        return final.logits_module_
    module = getattr(final, "module_", None)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"{type(final).__name__} is not a torch-backed classifier: the gradient "
            "generators need gradients, so the (final) estimator must be a fitted skorch net, "
            "a CounterfactualTrainedClassifier or a torch.nn.Module returning logits; use "
            "generator='gradient_free' for any classifier with predict_proba."
        )
    from skorch import NeuralNetBinaryClassifier

    if isinstance(final, NeuralNetBinaryClassifier):
        return _BinaryLogit(module)
    criterion = getattr(final, "criterion_", None)
    if isinstance(criterion, torch.nn.NLLLoss):
        return _LogOfProba(module)
    return module


# ---------------------------------------------------------------------------------------
# invertible preprocessing
# ---------------------------------------------------------------------------------------


def _check_invertible(step, where):
    if step is None or step == "passthrough":
        return
    if isinstance(step, Pipeline):
        for name, sub in step.steps:
            _check_invertible(sub, f"{where} > {name}")
        return
    if isinstance(step, ColumnTransformer):
        for name, trans, _ in step.transformers_:
            if trans == "drop":
                continue
            _check_invertible(trans, f"{where} > {name}")
        return
    if not hasattr(step, "inverse_transform"):
        raise TypeError(
            f"Preprocessing step {where!r} ({type(step).__name__}) has no inverse_transform: "
            "counterfactuals found in the model's input space could not be mapped back to your "
            "columns. Use invertible steps (StandardScaler, MinMaxScaler, OneHotEncoder, "
            "ColumnTransformer of those)."
        )


def _inverse(step, Z):
    """Inverse of a fitted step on Z (a ColumnTransformer is inverted by the caller)."""
    if step is None or step == "passthrough":
        return Z
    if isinstance(step, Pipeline):
        for _, sub in reversed(step.steps):
            Z = _inverse(sub, Z)
        return Z
    if isinstance(step, ColumnTransformer):
        raise AssertionError("nested ColumnTransformer is handled by _inverse_column_transformer")
    return step.inverse_transform(Z)


def _inverse_column_transformer(ct, Z, X_like):
    """Invert a fitted ColumnTransformer output Z into a new frame with the columns of X_like.

    Values come back as the steps' inverses give them (floats for numbers, levels for
    encoded columns); columns no transformer uses keep X_like's values.
    """
    cols = list(X_like.columns)
    data = {col: X_like[col].to_numpy(copy=True) for col in cols}
    for name, trans, _ in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        sl = ct.output_indices_[name]
        if sl.stop <= sl.start:
            continue
        in_idx = transformer_input_indices(ct, name)
        values = np.asarray(_inverse(trans, Z[:, sl]))
        if values.ndim == 1:
            values = values[:, None]
        for k, j in enumerate(in_idx):
            data[cols[j]] = values[:, k]
    return pd.DataFrame(data, index=X_like.index, columns=X_like.columns)


class ModelAdapter:
    """A fitted estimator seen as (invertible preprocessing, torch logits module).

    Parameters
    ----------
    estimator : fitted estimator
        A torch-backed classifier or a Pipeline ending in one; with ``gradients=False`` any
        classifier with ``predict_proba`` (or a Pipeline ending in one).
    gradients : bool, default=True
        Whether the module must be differentiable. With False, a final step without a torch
        module is evaluated through its ``predict_proba`` (:class:`~skct.search.ProbaLogits`,
        float64 inputs); a torch-backed one still gives its torch module.

    Attributes
    ----------
    module : torch.nn.Module
        Model-space rows [N, D] to logits [N, C].
    differentiable : bool
        Whether ``module`` has gradients (False for a :class:`~skct.search.ProbaLogits`).
    """

    def __init__(self, estimator, *, gradients=True):
        self.estimator = estimator
        if isinstance(estimator, Pipeline):
            self.preprocessor = estimator[:-1] if len(estimator.steps) > 1 else None
            self.final = estimator.steps[-1][1]
        else:
            self.preprocessor = None
            self.final = estimator
        torch_backed = isinstance(self.final, torch.nn.Module) or hasattr(
            self.final, "logits_module_") or isinstance(getattr(self.final, "module_", None),
                                                        torch.nn.Module)
        if torch_backed or gradients:
            self.module = to_logits_module(self.final)  # TypeError naming gradient_free
        elif not hasattr(self.final, "predict_proba"):
            raise TypeError(f"{type(self.final).__name__} has no predict_proba: the "
                            "gradient-free search needs class probabilities.")
        else:
            self.module = ProbaLogits(self.final)
        self.differentiable = getattr(self.module, "differentiable", True)
        if self.preprocessor is not None:
            for name, step in self.preprocessor.steps:
                _check_invertible(step, name)
        classes = getattr(self.final, "classes_", None)
        if classes is None:
            raise TypeError(f"{type(self.final).__name__} has no classes_: is it a classifier?")
        self.classes_ = np.asarray(classes)
        p = next(self.module.parameters(), None)
        if not self.differentiable:  # predict_proba on float64 rows, as the model was fitted
            p = self.module.dtype_marker
        self.device = p.device if p is not None else torch.device("cpu")
        self.dtype = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32

    # -- spaces ----------------------------------------------------------------------------
    def transform(self, X):
        """User space -> model input space as float ndarray."""
        Z = X if self.preprocessor is None else self.preprocessor.transform(X)
        if hasattr(Z, "toarray"):
            Z = Z.toarray()
        Z = np.asarray(Z)
        try:
            Z = Z.astype(np.float64)
        except (TypeError, ValueError):
            bad = ""
            if isinstance(X, pd.DataFrame):
                obj = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
                bad = f" Non-numeric columns: {obj}."
            raise ValueError(
                "X has non-numeric values and the estimator has no fitted encoder for them: "
                "put a OneHotEncoder (e.g. in a ColumnTransformer) before the classifier in a "
                f"Pipeline.{bad}"
            ) from None
        return Z

    def feature_names_model(self, X):
        """Names of the model-space columns (None when unknown)."""
        if self.preprocessor is not None:
            try:
                return np.asarray(self.preprocessor.get_feature_names_out(), dtype=object)
            except (AttributeError, ValueError, TypeError):
                return None
        if isinstance(X, pd.DataFrame):
            return np.asarray(X.columns, dtype=object)
        names = getattr(self.final, "feature_names_in_", None)
        return None if names is None else np.asarray(names, dtype=object)

    def encoding(self, X):
        """The :class:`~skct.constraints.ModelEncoding` of the preprocessing on user rows X."""
        return encoding_of(self.preprocessor, X, names=self.feature_names_model(X))

    def inverse_transform(self, Z, X_like):
        """Model space -> user space, shaped like ``X_like`` (a DataFrame or an ndarray)."""
        if self.preprocessor is None:
            if isinstance(X_like, pd.DataFrame):
                return pd.DataFrame(np.asarray(Z), columns=X_like.columns, index=X_like.index)
            return np.asarray(Z)
        steps = [s for _, s in self.preprocessor.steps]
        is_frame = isinstance(X_like, pd.DataFrame)
        frame = X_like if is_frame else pd.DataFrame(np.asarray(X_like))
        # invert all steps but a ColumnTransformer at the front, which needs the frame
        for step in reversed(steps[1:]):
            Z = _inverse(step, Z)
        first = steps[0]
        if isinstance(first, ColumnTransformer):
            out = _inverse_column_transformer(first, np.asarray(Z), frame)
        else:
            vals = _inverse(first, Z)
            out = pd.DataFrame(np.asarray(vals), columns=frame.columns, index=frame.index)
        if is_frame:
            return out
        return out.to_numpy()

    # -- model -----------------------------------------------------------------------------
    def to_tensor(self, Z):
        return torch.as_tensor(np.asarray(Z), dtype=self.dtype, device=self.device)

    def predict_proba_model(self, Z):
        """Class probabilities of model-space rows (ndarray)."""
        from .._config import torch_threads
        from .._utils import eval_mode

        with torch.no_grad(), eval_mode(self.module), torch_threads():
            logits = self.module(self.to_tensor(Z))
        return torch.softmax(logits, dim=1).cpu().numpy()


def as_model_adapter(estimator, *, gradients=True):
    """``ModelAdapter`` for a fitted estimator (TypeError for non-torch models with
    ``gradients=True``)."""
    return ModelAdapter(estimator, gradients=gradients)
