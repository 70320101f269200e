"""Validity: does the model assign the counterfactuals to their target class?"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._utils import Interval, validate_params
from ._model import as_logits_fn, predict_logits
from ._validation import as_indices, check_2d, check_n_classes

__all__ = ["validity", "strict_validity"]


def _share(hits, per_row):
    """hits [n] bool -> the indicators as floats (per_row) or their mean (the share)."""
    return hits.astype(np.float64) if per_row else float(np.mean(hits))


@validate_params({"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"],
                  "per_row": ["boolean"]},
                 prefer_skip_nested_validation=True)
def validity(model, X_cf, y_target, *, per_row=False):
    """Share of counterfactuals the model assigns to their target class.

    ``validity = (1/n) * sum_i 1[argmax_c logit_c(x'_i) == y+_i]``; with ``per_row`` the
    indicator of each row (1.0 or 0.0).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals, in the model's input space.
    y_target : array-like of shape (n,)
        Target class index of each row (integers in ``[0, n_classes)``).
    per_row : bool, default=False
        Return the per-row indicators instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        In ``[0, 1]``; higher is better.

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import validity
    >>> model = torch.nn.Linear(1, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]])); _ = model.bias.zero_()
    >>> validity(model, [[2.0], [-1.0]], [1, 1])
    0.5
    >>> validity(model, [[2.0], [-1.0]], [1, 1], per_row=True)
    array([1., 0.])
    """
    fn = as_logits_fn(model)
    X_cf = check_2d(X_cf, "X_cf")
    y = as_indices(y_target, "y_target", X_cf.shape[0], "X_cf")
    logits = predict_logits(fn, X_cf)
    check_n_classes(y, "y_target", logits.shape[1])
    pred = logits.argmax(dim=1).cpu().numpy()
    return _share(pred == y, per_row)


@validate_params(
    {"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"],
     "decision_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
     "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def strict_validity(model, X_cf, y_target, *, decision_threshold=0.75, per_row=False):
    """Share of counterfactuals whose target-class probability reaches the decision threshold.

    ``strict_validity = (1/n) * sum_i 1[softmax(logits(x'_i))_{y+_i} >= tau]``; with
    ``per_row`` the indicator of each row (1.0 or 0.0).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    y_target : array-like of shape (n,)
        Target class indices.
    decision_threshold : float in [0, 1], default=0.75
        The threshold ``tau``.
    per_row : bool, default=False
        Return the per-row indicators instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        In ``[0, 1]``; higher is better.

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import strict_validity
    >>> model = torch.nn.Linear(1, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]])); _ = model.bias.zero_()
    >>> # p(1 | x) = sigmoid(2 x): 0.98 at x = 2, 0.62 at x = 0.25
    >>> strict_validity(model, [[2.0], [0.25]], [1, 1], decision_threshold=0.75)
    0.5
    """
    fn = as_logits_fn(model)
    X_cf = check_2d(X_cf, "X_cf")
    y = as_indices(y_target, "y_target", X_cf.shape[0], "X_cf")
    logits = predict_logits(fn, X_cf)
    check_n_classes(y, "y_target", logits.shape[1])
    target = torch.as_tensor(y, device=logits.device)
    proba = torch.softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)  # [n]
    return _share(proba.cpu().numpy() >= decision_threshold, per_row)
