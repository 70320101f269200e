"""Actionability constraints: which features may change, in which direction, within which domain.

The public :class:`ActionabilityConstraints` is a scikit-learn transformer that resolves a
user's constraints (written once, by raw column name) against the columns a model actually
sees, possibly after a ``ColumnTransformer``. The private torch helpers below apply the fitted
constraints inside the batched counterfactual search and the training loss.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ActionabilityConstraints", "MUTABILITY_WORDS"]

#: Accepted mutability words and their integer codes used on the torch side.
MUTABILITY_WORDS = {"none": 0, "increase": 1, "decrease": 2, "both": 3}


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


@dataclass
class TorchConstraints:
    """Fitted constraints as tensors. All helpers are batched over rows.

    Attributes
    ----------
    lower, upper : Tensor [D]
    mut : Tensor [D] int8 (0 none, 1 increase, 2 decrease, 3 both)
    group_index : Tensor [G, L] long, padded with 0 where ``group_mask`` is False
    group_mask : Tensor [G, L] bool
    group_mutable : Tensor [G] bool
    step_lower, step_upper : Tensor [D]
        Limits of one search step implied by mutability (0 or +-inf), derived.
    is_trivial, all_mutable : bool
        Derived once, so the search's hot loop can skip work that cannot change anything.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    mut: torch.Tensor
    group_index: torch.Tensor
    group_mask: torch.Tensor
    group_mutable: torch.Tensor
    step_lower: torch.Tensor = field(init=False, repr=False)
    step_upper: torch.Tensor = field(init=False, repr=False)
    is_trivial: bool = field(init=False)
    all_mutable: bool = field(init=False)

    def __post_init__(self):
        inf = torch.full_like(self.lower, float("inf"))
        zero = torch.zeros_like(self.lower)
        self.step_lower = torch.where((self.mut == 0) | (self.mut == 1), zero, -inf)
        self.step_upper = torch.where((self.mut == 0) | (self.mut == 2), zero, inf)
        self.all_mutable = bool((self.mut == 3).all())
        # True when no mask, bound or group applies (the search skips projections)
        self.is_trivial = bool(
            self.all_mutable
            and torch.isinf(self.lower).all()
            and torch.isinf(self.upper).all()
            and self.group_index.shape[0] == 0
        )

    @classmethod
    def from_arrays(cls, lower, upper, mutability, groups, dtype=torch.float32, device="cpu"):
        codes = np.array([MUTABILITY_WORDS[w] for w in mutability], dtype=np.int8)
        n_groups = len(groups)
        width = max((len(g) for g in groups), default=0)
        index = np.zeros((n_groups, width), dtype=np.int64)
        mask = np.zeros((n_groups, width), dtype=bool)
        for i, g in enumerate(groups):
            index[i, : len(g)] = g
            mask[i, : len(g)] = True
        mutable = np.array([codes[g[0]] != 0 for g in groups], dtype=bool)
        return cls(
            lower=torch.as_tensor(np.asarray(lower), dtype=dtype, device=device),
            upper=torch.as_tensor(np.asarray(upper), dtype=dtype, device=device),
            mut=torch.as_tensor(codes, device=device),
            group_index=torch.as_tensor(index, device=device),
            group_mask=torch.as_tensor(mask, device=device),
            group_mutable=torch.as_tensor(mutable, device=device),
        )

    @classmethod
    def unconstrained(cls, n_features, dtype=torch.float32, device="cpu"):
        return cls.from_arrays(
            np.full(n_features, -np.inf), np.full(n_features, np.inf),
            ["both"] * n_features, [], dtype=dtype, device=device,
        )

    @property
    def n_features(self):
        return self.lower.shape[0]

    @property
    def has_groups(self):
        return self.group_index.shape[0] > 0


# ---------------------------------------------------------------------------------------
# Pure tensor helpers (shapes: N rows, D features, G groups, L max group width)
# ---------------------------------------------------------------------------------------


def _apply_mutability(x_new, x_ref, mut):
    """Project ``x_new`` [N, D] onto the changes from ``x_ref`` [N, D] that ``mut`` [D] allows.

    "none" keeps ``x_ref``, "increase" never goes below it, "decrease" never above it.
    """
    out = torch.where(mut == 0, x_ref, x_new)
    out = torch.where(mut == 1, torch.maximum(out, x_ref), out)
    out = torch.where(mut == 2, torch.minimum(out, x_ref), out)
    return out


def _mask_step(step, c: TorchConstraints):
    """Zero the components of a step [N, D] that would violate mutability (per step).

    "none" allows no change, "increase" only positive and "decrease" only negative components:
    one clamp against the limits [D] derived from the mutability codes.
    """
    if c.all_mutable:
        return step
    return torch.clamp(step, c.step_lower, c.step_upper)


def _clip_to_bounds(x, x_ref, lower, upper):
    """Clip x [N, D] to [lower, upper] [D], widened per row to contain the factual x_ref."""
    lo = torch.minimum(lower, x_ref)
    hi = torch.maximum(upper, x_ref)
    return torch.maximum(torch.minimum(x, hi), lo)


def _harden_groups(x, c: TorchConstraints, x_ref=None):
    """Set each mutable one-hot group of x [N, D] to a one-hot vector at its argmax level.

    Immutable groups are copied from ``x_ref`` when given (so they never change).
    """
    if not c.has_groups:
        return x
    vals = x[:, c.group_index]  # [N, G, L]
    vals = vals.masked_fill(~c.group_mask, float("-inf"))
    winner = vals.argmax(dim=-1, keepdim=True)  # [N, G, 1]
    levels = torch.arange(c.group_index.shape[1], device=x.device)  # [L]
    hard = (levels == winner).to(x.dtype)  # [N, G, L]
    if x_ref is not None:
        keep = ~c.group_mutable[None, :, None]  # [1, G, 1]
        hard = torch.where(keep, x_ref[:, c.group_index], hard)
    flat_idx = c.group_index[c.group_mask]  # [K]
    out = x.clone()
    out[:, flat_idx] = hard[:, c.group_mask]
    return out


def project(x, x_ref, c: TorchConstraints, hard=True):
    """Full projection used after every search step.

    Mutability relative to the factual ``x_ref``, then domain bounds (widened per row to contain
    the factual), then one-hot groups hardened (when ``hard``).
    """
    if c.is_trivial:
        return x
    x = _apply_mutability(x, x_ref, c.mut)
    x = _clip_to_bounds(x, x_ref, c.lower, c.upper)
    if hard:
        x = _harden_groups(x, c, x_ref)
    return x


def straight_through_harden(x, x_ref, c: TorchConstraints):
    """Hard one-hot groups in the forward pass, identity gradient in the backward pass."""
    if not c.has_groups:
        return x
    hard = _harden_groups(x.detach(), c, x_ref)
    # hard + (x - x) is exactly ``hard`` in the forward pass; x + (hard - x) is not in floating
    # point (e.g. -0.3 + 1.3 == 0.99999994 in float32) when soft values leave [0, 1].
    return hard + (x - x.detach())


def protect(x_plus, x_cf, mut):
    """The protection rule of counterfactual training, batched over rows.

    For each feature d: ``x_plus[d] := x_cf[d]`` when d is immutable, or d may only increase and
    ``x_cf[d] > x_plus[d]``, or d may only decrease and ``x_cf[d] < x_plus[d]``: moving the
    counterfactual toward ``x_plus`` along d would violate d's mutability, so the contrastive
    divergence must not reward d.

    Parameters
    ----------
    x_plus, x_cf : Tensor [N, D]
    mut : Tensor [D] int8 mutability codes

    Returns
    -------
    Tensor [N, D]
    """
    swap = (mut == 0) | ((mut == 1) & (x_cf > x_plus)) | ((mut == 2) & (x_cf < x_plus))
    return torch.where(swap, x_cf, x_plus)
