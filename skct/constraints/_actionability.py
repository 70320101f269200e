"""Actionability constraints: which features may change, in which direction, within which domain.

The public :class:`ActionabilityConstraints` is a scikit-learn transformer that resolves a
user's constraints (written once, by raw column name) against the columns a model actually
sees, possibly after a ``ColumnTransformer``. :meth:`ActionabilityConstraints.to_torch` hands
the fitted constraints to the search and the training loss as a ``TorchConstraints``.
"""

from __future__ import annotations

import numbers
import re
import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._tensors import MUTABILITY_WORDS, TorchConstraints

__all__ = ["ActionabilityConstraints"]


def _feature_label(names, j):
    return repr(str(names[j])) if names is not None else f"index {j}"


def _resolve_feature(key, names, n_features, param):
    """Resolve one user key to a list of column indices.

    Integers index columns directly. Strings match a column name exactly, then a
    ``ColumnTransformer`` output name ``"<transformer>__<key>"``, then a one-hot group
    ``"[<transformer>__]<key>_<level>"``. Returns ``(indices, is_group)``.
    """
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if not -n_features <= key < n_features:
            raise ValueError(
                f"{param}: feature index {key} is out of range for {n_features} features."
            )
        return [int(key) % n_features], False
    if not isinstance(key, str):
        raise TypeError(f"{param}: features are named by str or int, got {key!r}.")
    if names is None:
        raise ValueError(
            f"{param}: feature {key!r} is given by name but the data passed to fit has no "
            "feature names (pass a pandas DataFrame or use integer indices)."
        )
    names = [str(n) for n in names]
    if key in names:
        return [names.index(key)], False
    suffix = [j for j, n in enumerate(names) if n.split("__", 1)[-1] == key]
    if len(suffix) == 1:
        return suffix, False
    if len(suffix) > 1:
        raise ValueError(
            f"{param}: feature {key!r} is ambiguous, it matches columns "
            f"{[names[j] for j in suffix]}; use the full column name."
        )
    pattern = re.compile(r"^(?:(.+?)__)?" + re.escape(key) + r"_.+$")
    group = [j for j, n in enumerate(names) if pattern.match(n)]
    if group:
        prefixes = {pattern.match(names[j]).group(1) for j in group}
        if len(prefixes) > 1:
            raise ValueError(
                f"{param}: feature {key!r} matches one-hot columns of several transformers "
                f"{sorted(p for p in prefixes if p)}; use the full column names."
            )
        return group, True
    shown = names if len(names) <= 12 else names[:12] + ["..."]
    raise ValueError(f"{param}: unknown feature {key!r}; the data has columns {shown}.")


class ActionabilityConstraints(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Mutability, domain bounds and one-hot groups of the features a model sees.

    A counterfactual explanation is only useful if a person can act on it. This transformer
    records, per feature, whether it may change ("both"), only go up ("increase"), only go down
    ("decrease") or never change ("none"), the domain ``[lower, upper]`` it must stay in, and
    which one-hot columns encode one categorical feature. Search engines and the counterfactual
    training loss read the fitted attributes; ``transform`` clips data into the domain.

    Parameters
    ----------
    mutability : dict or None, default=None
        Maps a feature (column name or integer index) to ``"none"``, ``"increase"``,
        ``"decrease"`` or ``"both"``. Unlisted features are ``"both"``. Names also resolve through
        ``ColumnTransformer`` output names: ``"age"`` finds ``"num__age"``, and ``"sex"`` finds
        the one-hot group ``"cat__sex_*"`` (which then becomes a categorical group). A one-hot
        group may only be ``"none"`` or ``"both"``.
    bounds : "auto", None or dict, default="auto"
        ``"auto"`` infers per feature ``[min(mu - n_sigma*sigma, min x), max(mu + n_sigma*sigma,
        max x)]`` on the fit data; ``None`` leaves every feature unbounded; a dict maps features
        to explicit ``(low, high)`` pairs (``None`` for one side means unbounded) and the other
        features get ``"auto"`` bounds. Columns of one-hot groups are always bounded by ``[0, 1]``.
    n_sigma : float, default=3.0
        Width of the ``"auto"`` domain in standard deviations.
    categorical : list of lists, or None, default=None
        Groups of one-hot columns (names or indices) that encode one categorical feature. A
        counterfactual always has exactly one active level per group, and an immutable group
        never changes. A single raw name (e.g. ``"sex"``) stands for its one-hot group.

    Attributes
    ----------
    lower_, upper_ : ndarray of shape (n_features,)
        Domain bounds (``-inf``/``inf`` where unbounded).
    mutability_ : ndarray of str, shape (n_features,)
        Mutability word per column.
    categorical_groups_ : list of ndarray of int
        Column indices of each one-hot group.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string column names.

    Notes
    -----
    Factuals that lie outside the domain are not moved into it by the search: the domain is
    widened per row to contain the factual, so that an immutable feature never changes and an
    "increase" feature never decreases even then.

    Examples
    --------
    >>> import pandas as pd
    >>> from skct import ActionabilityConstraints
    >>> X = pd.DataFrame({"age": [20.0, 40.0, 60.0], "debt": [1.0, 5.0, 3.0]})
    >>> c = ActionabilityConstraints(mutability={"age": "none", "debt": "decrease"}).fit(X)
    >>> c.mutability_.tolist()
    ['none', 'decrease']
    >>> bool(c.lower_[1] <= 1.0 and c.upper_[1] >= 5.0)
    True
    """

    _parameter_constraints = {
        "mutability": [dict, None],
        "bounds": [StrOptions({"auto"}), dict, None],
        "n_sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "categorical": [list, tuple, None],
    }

    def __init__(self, *, mutability=None, bounds="auto", n_sigma=3.0, categorical=None):
        self.mutability = mutability
        self.bounds = bounds
        self.n_sigma = n_sigma
        self.categorical = categorical

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Resolve feature names and learn the domain from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric data in the space the model sees (after preprocessing).
        y : ignored

        Returns
        -------
        self : ActionabilityConstraints
        """
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        n_features = X.shape[1]
        names = getattr(self, "feature_names_in_", None)

        groups = []
        for g in self.categorical or []:
            members = [g] if isinstance(g, (str, numbers.Integral)) else list(g)
            idx = []
            for key in members:
                idx.extend(_resolve_feature(key, names, n_features, "categorical")[0])
            if len(idx) < 2:
                raise ValueError(
                    f"categorical: group {g!r} resolves to {len(idx)} column(s); "
                    "a one-hot group needs at least two columns."
                )
            idx = sorted(set(idx))
            if idx not in groups:  # the same group given twice (e.g. by name and by index)
                groups.append(idx)

        mut = np.full(n_features, "both", dtype=object)
        for key, word in (self.mutability or {}).items():
            if word not in MUTABILITY_WORDS:
                raise ValueError(
                    f"mutability: {word!r} for feature {key!r} is not one of "
                    f"{sorted(MUTABILITY_WORDS)}."
                )
            idx, is_group = _resolve_feature(key, names, n_features, "mutability")
            if is_group:
                if word in ("increase", "decrease"):
                    raise ValueError(
                        f"mutability: feature {key!r} is a one-hot group; it can only be "
                        f"'none' or 'both', not {word!r}."
                    )
                if sorted(idx) not in groups:
                    groups.append(sorted(idx))
            mut[idx] = word
        self._check_disjoint(groups, names)
        for g in groups:
            words = set(mut[g])
            if len(words) > 1:
                raise ValueError(
                    f"mutability: the one-hot group {[_feature_label(names, j) for j in g]} "
                    f"has mixed mutability {sorted(words)}; give the group one word."
                )
            if words & {"increase", "decrease"}:
                raise ValueError(
                    "mutability: one-hot columns can only be 'none' or 'both', got "
                    f"{sorted(words)} for {[_feature_label(names, j) for j in g]}."
                )

        lower, upper = self._fit_bounds(X, names)
        for g in groups:  # one-hot columns live in [0, 1], whatever ``bounds`` says
            lower[g] = 0.0
            upper[g] = 1.0
        self.lower_ = lower
        self.upper_ = upper
        self.mutability_ = mut.astype(str)
        self.categorical_groups_ = [np.asarray(g, dtype=np.intp) for g in groups]
        return self

    @staticmethod
    def _check_disjoint(groups, names):
        seen = {}
        for gi, g in enumerate(groups):
            for j in g:
                if j in seen and seen[j] != gi:
                    raise ValueError(
                        f"categorical: column {_feature_label(names, j)} belongs to two "
                        "one-hot groups."
                    )
                seen[j] = gi

    def _fit_bounds(self, X, names):
        n_features = X.shape[1]
        if self.bounds is None:
            return np.full(n_features, -np.inf), np.full(n_features, np.inf)
        mu, sd = X.mean(axis=0), X.std(axis=0)
        lower = np.minimum(mu - self.n_sigma * sd, X.min(axis=0))
        upper = np.maximum(mu + self.n_sigma * sd, X.max(axis=0))
        if isinstance(self.bounds, dict):
            for key, pair in self.bounds.items():
                try:
                    low, high = pair
                except (TypeError, ValueError):
                    raise ValueError(
                        f"bounds: feature {key!r} needs a (low, high) pair, got {pair!r}."
                    ) from None
                low = -np.inf if low is None else float(low)
                high = np.inf if high is None else float(high)
                if np.isnan(low) or np.isnan(high) or low > high:
                    raise ValueError(
                        f"bounds: feature {key!r} has low={low} > high={high} (or NaN)."
                    )
                idx, _ = _resolve_feature(key, names, n_features, "bounds")
                lower[idx], upper[idx] = low, high
        return lower, upper

    def transform(self, X):
        """Clip ``X`` into the learned domain (a copy; ``X`` is not modified).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_clipped : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        return np.clip(X, self.lower_, self.upper_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    # -- torch side ------------------------------------------------------------------------
    def to_torch(self, dtype=torch.float32, device="cpu"):
        """Return the fitted constraints as tensors for the search (see ``TorchConstraints``)."""
        check_is_fitted(self)
        return TorchConstraints.from_arrays(
            self.lower_, self.upper_, self.mutability_, self.categorical_groups_,
            dtype=dtype, device=device,
        )
