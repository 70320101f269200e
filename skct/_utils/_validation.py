"""Validation helpers shared across skct."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

__all__ = ["is_fitted"]


def is_fitted(estimator):
    """Whether ``estimator`` is fitted (False, not an error, for objects sklearn cannot check)."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    except TypeError:
        return False
    return True
