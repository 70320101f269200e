"""Actionability constraints: which features may change, in which direction, within which domain.

The public :class:`ActionabilityConstraints` is a scikit-learn transformer that resolves a
user's constraints (written once, by raw column name, in the user's units) against the columns a
model actually sees, possibly after a ``ColumnTransformer``. It learns a
:class:`~skct.constraints.FeatureSchema` of the user's columns (kinds, observed ranges) and
:meth:`ActionabilityConstraints.to_torch` hands the fitted constraints to the search and the
training loss as a ``TorchConstraints``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._utils import fit_context as _fit_context, Interval, StrOptions
from ._domain import model_bounds, model_grid_and_cost, raw_bounds
from ._encoding import ModelEncoding
from ._resolve import feature_label, resolve_feature
from ._schema import FeatureSchema
from ._tensors import MUTABILITY_WORDS, TorchConstraints

__all__ = ["ActionabilityConstraints"]

_SWAP = {"increase": "decrease", "decrease": "increase"}


class ActionabilityConstraints(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Mutability, domain, kinds and one-hot groups of the features a model sees.

    A counterfactual explanation is only useful if a person can act on it. This transformer
    records, per feature, whether it may change ("both"), only go up ("increase"), only go down
    ("decrease") or never change ("none"), the domain ``[lower, upper]`` it must stay in, what
    kind of values it holds (continuous, integer, binary, ordinal, categorical), which one-hot
    columns encode one categorical feature, and how many features may change at once. Search
    engines and the counterfactual training loss read the fitted attributes; ``transform``
    clips data into the domain.

    Fitted by :class:`~skct.CounterfactualExplainer` (and the recourse audit), the constraints
    are written and reported in the user's own columns and units, before the Pipeline's
    preprocessing, and mapped into the model's input space through it. Fitted directly, the
    columns of ``X`` are both the user's and the model's.

    Parameters
    ----------
    mutability : dict or None, default=None
        Maps a feature (column name or integer index) to ``"none"``, ``"increase"``,
        ``"decrease"`` or ``"both"``. Unlisted features are ``"both"``. Names also resolve through
        ``ColumnTransformer`` output names: ``"age"`` finds ``"num__age"``, and ``"sex"`` finds
        the one-hot group ``"cat__sex_*"`` (which then becomes a categorical group). A one-hot
        group may only be ``"none"`` or ``"both"``.
    bounds : "default", "observed", "sigma", "auto", None or dict, default="default"
        The domain, in the user's units. ``"observed"``: the range of the data given to fit
        (never below 0 for a column without negative values). ``"sigma"`` (or ``"auto"``, the
        same rule under its older name): ``[min(mu - n_sigma*sigma, min x), max(mu +
        n_sigma*sigma, max x)]``, the paper's domain, which can reach below 0 for counts.
        ``"default"``: ``"observed"`` when fitted by the explainer or the audit, ``"sigma"``
        when fitted directly (as :class:`~skct.CounterfactualTrainedClassifier` does). ``None``
        leaves every feature unbounded. A dict maps features to explicit ``(low, high)`` pairs
        in the user's units (``None`` for one side means unbounded; bounds outside the data's
        range are allowed), and the other features get the ``"default"`` domain. Columns of
        one-hot groups are always bounded by ``[0, 1]``.
    n_sigma : float, default=3.0
        Width of the ``"sigma"`` domain in standard deviations.
    categorical : list of lists, or None, default=None
        Groups of one-hot columns (names or indices) that encode one categorical feature. A
        counterfactual always has exactly one active level per group, and an immutable group
        never changes. A single raw name (e.g. ``"sex"``) stands for its one-hot group.
        ``OneHotEncoder`` groups of the explainer's Pipeline are found automatically.
    integer : list or None, default=None
        Columns of kind ``"integer"`` (shorthand for ``kinds``); an error if one holds
        fractional values. Kinds are inferred otherwise (see :class:`FeatureSchema`).
    kinds : dict or None, default=None
        Overrides inferred kinds by column: ``{"grade": "ordinal", "zip": "categorical"}``.
    max_changed : int or None, default=None
        At most this many features (user columns; a one-hot group is one) change per row.
    widen_bounds : bool, default=True
        True: the search widens the domain per row to contain the factual (see Notes).
        False: every search iterate is clamped to the domain exactly, so a factual outside it
        is pulled inside, even along an immutable feature or against its direction: the
        bounds win over mutability, as in CounterfactualExplanations.jl, whose
        ``apply_domain_constraints`` clamps every continuous feature to its domain after each
        step. ``transform`` clips the same way either way.

    Attributes
    ----------
    schema_ : FeatureSchema
        Kinds, dtypes, observed ranges and median absolute deviations of the user's columns.
    feature_kinds_ : ndarray of str, shape (n_columns,)
        Kind of each user column.
    lower_, upper_ : ndarray of shape (n_columns,)
        Domain bounds in the user's units (``-inf``/``inf`` where unbounded, NaN for
        non-numeric columns).
    mutability_ : ndarray of str, shape (n_columns,)
        Mutability word per user column.
    cost_scale_ : ndarray of shape (n_columns,)
        The median absolute deviation of each user column (its standard deviation where the
        MAD is 0, 1.0 where both are): the unit of the default recourse cost,
        ``sum_j |x'_j - x_j| / cost_scale_[j]``.
    lower_model_, upper_model_ : ndarray of shape (n_model_columns,)
        The domain in the model's input space.
    mutability_model_ : ndarray of str, shape (n_model_columns,)
        Mutability word per model column.
    categorical_groups_ : list of ndarray of int
        Model column indices of each one-hot group.
    group_has_dropped_ : ndarray of bool
        Per group, whether its all-zero pattern is a level (``OneHotEncoder(drop=...)``).
    feature_id_model_ : ndarray of int, shape (n_model_columns,)
        User column of each model column (the columns of a one-hot group share one).
    grid_scale_model_, grid_offset_model_ : ndarray of shape (n_model_columns,)
        ``user = model * grid_scale + grid_offset`` for columns with integer values in the
        user's units (0 scale: continuous).
    cost_weight_model_ : ndarray of shape (n_model_columns,)
        Weight per model column of the cost in the user's units: ``|scale| / cost_scale_``
        (0.5 per one-hot column, so that a change of category costs 1).
    encoding_ : ModelEncoding
        How the model's columns derive from the user's.
    n_features_model_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string column names.

    Notes
    -----
    With ``widen_bounds=True``, factuals that lie outside the domain are not moved into it by
    the search: the domain is widened per row to contain the factual, so that an immutable
    feature never changes and an "increase" feature never decreases even then. Bounds on an
    immutable feature therefore restrict nothing (a warning says so).

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
    >>> c = ActionabilityConstraints(bounds="observed").fit(X)
    >>> c.lower_.tolist(), c.upper_.tolist(), c.feature_kinds_.tolist()
    ([20.0, 1.0], [60.0, 5.0], ['integer', 'integer'])
    """

    _parameter_constraints = {
        "mutability": [dict, None],
        "bounds": [StrOptions({"default", "observed", "sigma", "auto"}), dict, None],
        "n_sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "categorical": [list, tuple, None],
        "integer": [list, tuple, None],
        "kinds": [dict, None],
        "max_changed": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "widen_bounds": ["boolean"],
    }

    def __init__(self, *, mutability=None, bounds="default", n_sigma=3.0, categorical=None,
                 integer=None, kinds=None, max_changed=None, widen_bounds=True):
        self.mutability = mutability
        self.bounds = bounds
        self.n_sigma = n_sigma
        self.categorical = categorical
        self.integer = integer
        self.kinds = kinds
        self.max_changed = max_changed
        self.widen_bounds = widen_bounds

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, encoding=None, X_model=None):
        """Learn the schema, resolve feature names and learn the domain from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Without ``encoding``: numeric data, both the user's and the model's columns. With
            ``encoding``: the user's raw data (any dtypes).
        y : ignored
        encoding : ModelEncoding or None, default=None
            How the model's columns derive from the columns of ``X`` (the explainer builds it
            from its Pipeline); then the ``"default"`` domain is the observed range.
        X_model : array-like of shape (n_samples, n_features_model), default=None
            ``X`` in the model's input space; required with ``encoding``.

        Returns
        -------
        self : ActionabilityConstraints
        """
        if encoding is None:
            Z = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
            raw = X if isinstance(X, pd.DataFrame) else Z
            encoding = ModelEncoding.identity(Z.shape[1], getattr(self, "feature_names_in_", None))
            self._encoded = False
        else:
            raw, Z = self._check_encoded(X, encoding, X_model)
            self._encoded = True
        self.encoding_ = encoding
        self.schema_ = FeatureSchema.from_data(raw, kinds=self.kinds, integer=self.integer)
        self.n_features_model_ = Z.shape[1]
        groups, dropped, fid = self._fit_groups(encoding)
        mut_model = self._fit_mutability(encoding, groups, fid)
        dropped = dropped + [False] * (len(groups) - len(dropped))  # groups named in mutability
        self._check_groups(groups, mut_model)
        rule = self._rule()
        explicit = self._explicit_bounds(encoding)
        if self._encoded:
            lo_raw, hi_raw = raw_bounds(self.schema_, raw, rule, self.n_sigma, explicit)
        else:  # the user's columns are the model's: explicit bounds map as they are
            lo_raw, hi_raw = raw_bounds(self.schema_, raw, "observed", 0.0, explicit)
        lo_m, hi_m = model_bounds(encoding, Z, lo_raw, hi_raw, rule, self.n_sigma,
                                  set(explicit), groups)
        if not self._encoded:
            lo_raw, hi_raw = lo_m.copy(), hi_m.copy()
        self.lower_model_, self.upper_model_ = lo_m, hi_m
        self.lower_, self.upper_ = lo_raw, hi_raw
        self.mutability_model_ = self._orient(mut_model, encoding).astype(str)
        self.mutability_ = self._raw_mutability(mut_model, fid)
        self._warn_immutable_bounds(explicit)
        self.categorical_groups_ = [np.asarray(g, dtype=np.intp) for g in groups]
        self.group_has_dropped_ = np.asarray(dropped, dtype=bool)
        self.feature_id_model_ = fid
        self.feature_kinds_ = self.schema_.kinds.astype(str)
        self.cost_scale_ = self.schema_.mad
        grid_s, grid_o, weight = model_grid_and_cost(encoding, self.schema_, groups)
        self.grid_scale_model_, self.grid_offset_model_ = grid_s, grid_o
        self.cost_weight_model_ = weight
        return self

    # -- fitting helpers ---------------------------------------------------------------------
    def _check_encoded(self, X, encoding, X_model):
        if not isinstance(encoding, ModelEncoding):
            raise TypeError(f"encoding must be a ModelEncoding, got {type(encoding).__name__}.")
        if X_model is None:
            raise ValueError("X_model (X in the model's input space) is required with an "
                             "encoding.")
        if not isinstance(X, pd.DataFrame):
            X = np.asarray(X)
        validate_data(self, X, skip_check_array=True)
        Z = np.asarray(X_model, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[0] != X.shape[0]:
            raise ValueError(f"X_model has shape {Z.shape}; expected {X.shape[0]} rows.")
        if Z.shape[1] != encoding.n_features_model or X.shape[1] != encoding.n_features_in:
            raise ValueError(
                f"the encoding maps {encoding.n_features_in} user columns to "
                f"{encoding.n_features_model} model columns, but X has {X.shape[1]} and "
                f"X_model {Z.shape[1]}.")
        if not np.isfinite(Z).all():
            raise ValueError("X_model contains NaN or infinity.")
        return X, Z

    def _rule(self):
        """The domain rule of the features without explicit bounds."""
        if self.bounds is None:
            return None
        if isinstance(self.bounds, str) and self.bounds != "default":
            return "sigma" if self.bounds == "auto" else self.bounds
        return "observed" if self._encoded else "sigma"

    def _names_model(self, encoding):
        if not self._encoded:
            return getattr(self, "feature_names_in_", None)
        return encoding.names

    def _resolve(self, key, param, encoding):
        """Model columns of one key, and whether it names a one-hot group."""
        if self._encoded:
            names = getattr(self, "feature_names_in_", None)
            raw = list(names) if names is not None else []
            j = None
            if isinstance(key, str) and key in raw:
                j = raw.index(key)
            elif isinstance(key, numbers.Integral) and not isinstance(key, bool):
                j = resolve_feature(key, None, self.n_features_in_, param)[0][0]
            if j is not None:
                return list(encoding.columns_of(j)), encoding.group_of(j) is not None
        names = self._names_model(encoding)
        return resolve_feature(key, names, self.n_features_model_, param)

    def _fit_groups(self, encoding):
        groups = [sorted(int(j) for j in g) for g in encoding.groups]
        dropped = list(encoding.group_has_dropped)
        fid = encoding.feature_id.copy()
        names = self._names_model(encoding)
        for g in self.categorical or []:
            members = [g] if isinstance(g, (str, numbers.Integral)) else list(g)
            idx = []
            for key in members:
                idx.extend(self._resolve(key, "categorical", encoding)[0])
            seen = set()
            for j in idx:
                if j in seen:
                    raise ValueError(f"categorical: column {feature_label(names, j)} appears "
                                     f"twice in the group {g!r}.")
                seen.add(j)
            idx = sorted(idx)
            if idx in groups:  # the same group given twice, or an encoder's group
                continue
            self._check_new_group(idx, g, groups, encoding, names)
            groups.append(idx)
            dropped.append(False)
            fid[idx] = fid[idx].min()
        return groups, dropped, fid

    def _check_new_group(self, idx, g, groups, encoding, names):
        if len(idx) < 2:
            if len(idx) == 1 and encoding.role[idx[0]] == "code":
                return  # a two-level feature encoded in one column: already binary
            raise ValueError(f"categorical: group {g!r} resolves to {len(idx)} column(s); a "
                             "one-hot group needs at least two columns.")
        encoded = [j for j in idx if encoding.role[j] in ("onehot", "code")]
        if self._encoded and encoded:
            users = sorted({int(encoding.feature_id[j]) for j in idx})
            labels = [str(self.schema_[f].name) if f < len(self.schema_) else f"#{f}"
                      for f in users]
            raise ValueError(
                f"categorical: the group {g!r} mixes columns of the features {labels}, or "
                "part of an encoder's one-hot group; a one-hot group encodes one feature.")
        for other in groups:
            common = sorted(set(other) & set(idx))
            if common:
                raise ValueError(
                    f"categorical: column {feature_label(names, common[0])} belongs to two "
                    "one-hot groups.")
        bad = [j for j in idx if encoding.role[j] != "affine"]
        if bad:
            raise ValueError(
                f"categorical: the group {g!r} has column {feature_label(names, bad[0])}, "
                f"which encodes another feature ({encoding.role[bad[0]]}); a one-hot group's "
                "columns must encode one feature.")

    def _fit_mutability(self, encoding, groups, fid):
        mut = np.full(self.n_features_model_, "both", dtype=object)
        for key, word in (self.mutability or {}).items():
            if word not in MUTABILITY_WORDS:
                raise ValueError(
                    f"mutability: {word!r} for feature {key!r} is not one of "
                    f"{sorted(MUTABILITY_WORDS)}."
                )
            idx, is_group = self._resolve(key, "mutability", encoding)
            if is_group:
                if word in ("increase", "decrease"):
                    raise ValueError(
                        f"mutability: feature {key!r} is a one-hot group; it can only be "
                        f"'none' or 'both', not {word!r}."
                    )
                if sorted(idx) not in groups:
                    self._check_new_group(sorted(idx), key, groups, encoding,
                                          self._names_model(encoding))
                    groups.append(sorted(idx))
                    fid[idx] = fid[idx].min()
            if self._encoded:  # a word applies to the whole user column
                idx = np.flatnonzero(np.isin(fid, fid[idx]))
            mut[idx] = word
        return mut

    def _check_groups(self, groups, mut):
        names = self._names_model(self.encoding_)
        for g in groups:
            words = set(mut[g])
            if len(words) > 1:
                raise ValueError(
                    f"mutability: the one-hot group {[feature_label(names, j) for j in g]} "
                    f"has mixed mutability {sorted(words)}; give the group one word."
                )
            if words & {"increase", "decrease"}:
                raise ValueError(
                    "mutability: one-hot columns can only be 'none' or 'both', got "
                    f"{sorted(words)} for {[feature_label(names, j) for j in g]}."
                )

    @staticmethod
    def _orient(mut, encoding):
        """Directions in the model's space: a decreasing map turns "increase" into "decrease"."""
        out = mut.copy()
        flip = (encoding.scale < 0) & np.isin(encoding.role, ["affine", "code"])
        for j in np.flatnonzero(flip):
            out[j] = _SWAP.get(out[j], out[j])
        return out

    def _raw_mutability(self, mut_model, fid):
        if not self._encoded:
            return mut_model.astype(str)
        out = np.full(self.n_features_in_, "both", dtype=object)
        for j in range(self.n_features_in_):
            cols = np.flatnonzero(fid == j)
            if cols.size:
                out[j] = mut_model[cols[0]]
        return out.astype(str)

    def _explicit_bounds(self, encoding):
        """{user column: (low, high)} of the ``bounds`` dict, checked."""
        if not isinstance(self.bounds, dict):
            return {}
        out = {}
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
            idx, _ = self._resolve(key, "bounds", encoding)
            features = sorted(set(encoding.feature_id[idx].tolist()))
            for j in features:
                self._check_bounded_feature(key, j, encoding)
                out[j] = (low, high)
        return out

    def _check_bounded_feature(self, key, j, encoding):
        if not self._encoded:
            return
        if j >= self.n_features_in_:
            raise ValueError(f"bounds: feature {key!r} is a column that mixes several of your "
                             "columns; bounds apply to your own columns.")
        column = self.schema_[j]
        if not column.numeric:
            raise ValueError(f"bounds: column {column.name!r} is {column.kind} "
                             f"({column.dtype}); bounds apply to numeric columns only.")
        roles = set(encoding.role[encoding.columns_of(j)].tolist())
        if roles & {"other"}:
            raise ValueError(
                f"bounds: column {column.name!r} goes through the preprocessing step "
                f"{str(encoding.where[j])!r}, which skct cannot map column by column (supported: "
                "StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler, passthrough, "
                "OneHotEncoder, OrdinalEncoder); its bounds cannot be put into the model's "
                "input space.")

    def _warn_immutable_bounds(self, explicit):
        """One warning naming every immutable column that was given bounds (not one each).

        Only when the bounds are widened to the factual: otherwise they do restrict.
        """
        if not self.widen_bounds:
            return
        cols = [j for j in explicit if j < len(self.mutability_) and self.mutability_[j] == "none"]
        if not cols:
            return
        shown = [f"{self.schema_[j].name!r} {explicit[j]}" for j in cols[:5]]
        more = f" and {len(cols) - 5} more" if len(cols) > 5 else ""
        warnings.warn(
            f"bounds: the immutable ('none') column(s) {', '.join(shown)}{more} were given "
            "bounds; they restrict nothing, every row keeps its own value (even one outside "
            "them).", UserWarning, stacklevel=4)

    # -- transformer -----------------------------------------------------------------------
    def transform(self, X):
        """Clip the numeric columns of ``X`` into the domain (a copy; ``X`` is not modified).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric data (with an encoding: the user's raw data, any dtypes).

        Returns
        -------
        X_clipped : ndarray of shape (n_samples, n_features), or a DataFrame for raw data
            with non-numeric columns
        """
        check_is_fitted(self)
        numeric = all(c.numeric for c in self.schema_)
        if not getattr(self, "_encoded", False) or numeric:
            X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
            lo = np.where(np.isnan(self.lower_), -np.inf, self.lower_)
            hi = np.where(np.isnan(self.upper_), np.inf, self.upper_)
            return np.clip(X, lo, hi)
        validate_data(self, X, skip_check_array=True, reset=False)
        out = pd.DataFrame(X).copy()
        for j, column in enumerate(self.schema_):
            if column.numeric and not np.isnan(self.lower_[j]):
                col = out.columns[j]
                out[col] = out[col].clip(self.lower_[j], self.upper_[j])
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    # -- torch side ------------------------------------------------------------------------
    def to_torch(self, dtype=torch.float32, device="cpu", *, rounding=False, cost="l1"):
        """Return the fitted constraints as tensors for the search (see ``TorchConstraints``).

        Parameters
        ----------
        dtype, device
            Of the float tensors.
        rounding : bool, default=False
            Round integer, binary and ordinal columns in the user's units during the search
            (the explainer does; the training search of the classifier does not).
        cost : {"l1", "mad"}, default="l1"
            The search's cost term: plain L1 in the model's input space, or L1 in the user's
            units over each column's median absolute deviation (``cost_weight_model_``).

        Returns
        -------
        TorchConstraints
            With ``exact_bounds=not widen_bounds``.
        """
        check_is_fitted(self)
        if cost not in ("l1", "mad"):
            raise ValueError(f"cost: expected 'l1' or 'mad', got {cost!r}.")
        return TorchConstraints.from_arrays(
            self.lower_model_, self.upper_model_, self.mutability_model_,
            self.categorical_groups_, dtype=dtype, device=device,
            feature_id=self.feature_id_model_,
            grid_scale=self.grid_scale_model_ if rounding else None,
            grid_offset=self.grid_offset_model_ if rounding else None,
            cost_weight=self.cost_weight_model_ if cost == "mad" else None,
            max_changed=self.max_changed,
            group_has_dropped=self.group_has_dropped_,
            exact_bounds=not self.widen_bounds,
        )
