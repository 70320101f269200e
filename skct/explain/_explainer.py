"""CounterfactualExplainer: counterfactual explanations for a fitted torch-backed classifier."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._config import torch_threads
from .._utils import is_fitted as _is_fitted
from ._adapter import ModelAdapter
from ..constraints import ActionabilityConstraints
from ..search.generators import BaseGenerator, resolve_generator
from ..search import search

__all__ = ["CounterfactualExplainer", "CounterfactualResult", "resolve_targets"]


@dataclass
class CounterfactualResult:
    """Counterfactual explanations for a batch of factuals.

    Attributes
    ----------
    counterfactuals : DataFrame or ndarray
        Counterfactuals in the user's columns (categoricals as categories).
    factuals : DataFrame or ndarray
        The rows that were explained (a copy).
    targets : ndarray
        Target class label per row.
    valid : ndarray of bool
        ``p(target | x') >= decision_threshold`` for the returned counterfactual. Rows whose
        target cannot be reached within the constraints are ``False``.
    converged : ndarray of bool
        Same as ``valid`` (the search stops a row as soon as it is valid).
    n_iter : ndarray of int
        Gradient steps taken per row.
    target_proba : ndarray of float
        ``p(target | x')``.
    counterfactuals_model, factuals_model : ndarray
        The same rows in the model's input space (after preprocessing), as the search saw them
        (float32 values, so an unchanged feature has exactly zero difference).
    target_index : ndarray of int
        Target class index into ``classes_``.
    feature_names_model : ndarray of str or None
        Names of the model-space columns.
    path : ndarray of shape (max_iter + 1, n_rows, n_features_model) or None
        Every search iterate in model space, when requested.
    """

    counterfactuals: object
    factuals: object
    targets: np.ndarray
    valid: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    target_proba: np.ndarray
    counterfactuals_model: np.ndarray
    factuals_model: np.ndarray
    target_index: np.ndarray
    feature_names_model: np.ndarray | None = None
    path: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self):
        n = len(self.valid)
        return (f"CounterfactualResult(n_rows={n}, valid={int(self.valid.sum())}/{n}, "
                f"mean_n_iter={self.n_iter.mean() if n else 0:.1f})")


def resolve_targets(target, classes, predicted_index, rng, param="target"):
    """Target class indices [n] from a user's ``target`` spec.

    ``target`` is a class label, an array of labels (one per row), ``"opposite"`` (binary: the
    class other than the predicted one) or None (a random class other than the predicted one).
    """
    n = len(predicted_index)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(f"{param}: the model knows only one class {list(classes)}; "
                         "there is no other class to explain toward.")
    if target is None:
        offset = rng.randint(1, n_classes, size=n)
        return (predicted_index + offset) % n_classes
    if isinstance(target, str) and target == "opposite":
        if n_classes != 2:
            raise ValueError(f"{param}='opposite' needs a binary classifier; this one has "
                             f"{n_classes} classes {list(classes)}.")
        return 1 - predicted_index
    labels = np.asarray(target, dtype=object if np.asarray(target).dtype.kind in "OUS" else None)
    if labels.ndim == 0:
        labels = np.full(n, labels.item(), dtype=object)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{param}: expected one label or {n} labels (one per row), got an "
                         f"array of shape {labels.shape}.")
    lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    out = np.empty(n, dtype=np.int64)
    for i, lab in enumerate(labels.tolist()):  # labels -> indices (dictionary lookup, not search)
        if lab not in lookup:
            raise ValueError(f"{param}: unknown class label {lab!r}; the model's classes are "
                             f"{list(classes)}.")
        out[i] = lookup[lab]
    return out


class CounterfactualExplainer(MetaEstimatorMixin, TransformerMixin, BaseEstimator):
    """Counterfactual explanations for a torch-backed classifier or Pipeline.

    For each row x it searches, by batched gradient descent, a nearby x' that the model assigns
    to a target class with probability at least ``decision_threshold``, while respecting the
    actionability constraints (mutability, domain bounds, one-hot groups). For a Pipeline the
    search runs in the final step's input space and results come back in the user's columns.

    Parameters
    ----------
    estimator : estimator
        A torch-backed classifier (skorch net, :class:`CounterfactualTrainedClassifier`) or a
        Pipeline of invertible preprocessing ending in one. Fitted or not (see ``prefit``).
    generator : {"generic", "ecco", "eccco", "revise"} or BaseGenerator, default="generic"
        The counterfactual generator (objective and search space). Names build the generator
        with its defaults (Generic/ECCo/ECCCo: SGD step 0.25, ``lambda_cost=0.001``; ECCo and
        ECCCo: ``lambda_energy=5.0``; ECCCo adds the conformal set-size penalty, calibrated on
        ``fit``'s labelled data; REVISE: step 0.1 in a VAE latent space).
    target : label, array-like of labels, "opposite" or None, default=None
        Target class: one label for all rows, one per row, the other class of a binary model,
        or None for a random class other than the predicted one (seeded by ``random_state``).
    constraints : ActionabilityConstraints or None, default=None
        Written with raw column names; resolved against the model's input columns at ``fit``
        (one-hot groups of OneHotEncoders in the Pipeline are found automatically). None means
        ``ActionabilityConstraints()``: every feature mutable, ``"auto"`` domain bounds learned
        on ``fit``'s data. Explicit bounds are in the model's input space (after preprocessing).
    decision_threshold : float in (0, 1), default=0.75
        A row is done once ``p(target | x') >= decision_threshold``.
    max_iter : int, default=100
        Maximum gradient steps per row.
    prefit : "auto" or bool, default="auto"
        ``"auto"``: use ``estimator`` as is if it is fitted, else fit a clone on ``fit``'s data
        (like ``SelectFromModel``). ``True``: the estimator must already be fitted.
        ``False``: always fit a clone.
    return_path : bool, default=False
        Keep every search iterate in :meth:`explain`'s result.
    random_state : int, RandomState or None, default=None
        Seeds random targets and the REVISE autoencoder.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator used for the search.
    constraints_ : ActionabilityConstraints
        Constraints fitted in the model's input space.
    generator_ : BaseGenerator
        The fitted generator.
    adapter_ : ModelAdapter
        The fitted estimator seen as invertible preprocessing plus a torch logits module (the
        seam between the user's columns and the model's input space).
    n_features_model_ : int
        Number of columns in the model's input space.
    classes_ : ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(100, 2) - 2, rng.randn(100, 2) + 2].astype("float32")
    >>> y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    >>> clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
    ...                                       max_epochs=20, random_state=0).fit(X, y)
    >>> explainer = CounterfactualExplainer(clf, target="opposite", random_state=0).fit(X, y)
    >>> result = explainer.explain(X[:5])
    >>> bool(result.valid.all())
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "generator": [StrOptions({"generic", "ecco", "eccco", "revise"}), BaseGenerator],
        "target": "no_validation",
        "constraints": [ActionabilityConstraints, None],
        "decision_threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "prefit": [StrOptions({"auto"}), "boolean"],
        "return_path": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, generator="generic", target=None, constraints=None,
                 decision_threshold=0.75, max_iter=100, prefit="auto", return_path=False,
                 random_state=None):
        self.estimator = estimator
        self.generator = generator
        self.target = target
        self.constraints = constraints
        self.decision_threshold = decision_threshold
        self.max_iter = max_iter
        self.prefit = prefit
        self.return_path = return_path
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the estimator (if needed), the constraints, the generator and the reference data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Reference data in the user's columns (e.g. the training set).
        y : array-like of shape (n_samples,), default=None
            Labels; needed only when the estimator has to be fitted.

        Returns
        -------
        self : CounterfactualExplainer
        """
        fitted = _is_fitted(self.estimator)
        if self.prefit is True and not fitted:
            raise NotFittedError(
                f"prefit=True but the estimator {type(self.estimator).__name__} is not fitted; "
                "fit it first or use prefit='auto'."
            )
        if self.prefit is False or not fitted:
            if y is None:
                raise ValueError("y is required to fit the (unfitted) estimator.")
            self.estimator_ = clone(self.estimator).fit(X, y)
        else:
            self.estimator_ = self.estimator
        adapter = ModelAdapter(self.estimator_)
        X = self._check_X(X, reset=True)
        Z = adapter.transform(X)
        if not np.isfinite(Z).all():
            raise ValueError("X contains NaN or infinity after preprocessing.")
        names = adapter.feature_names_model(X)
        frame = pd.DataFrame(Z, columns=names) if names is not None else Z

        constraints = clone(self.constraints) if self.constraints is not None else \
            ActionabilityConstraints()
        groups = list(constraints.categorical or []) + adapter.onehot_groups()
        if groups:
            constraints.set_params(categorical=groups)
        self.constraints_ = constraints.fit(frame)

        rs = check_random_state(self.random_state)
        self.generator_ = resolve_generator(self.generator)
        if "random_state" in self.generator_.get_params():
            if self.generator_.random_state is None:
                self.generator_.set_params(random_state=rs.randint(0, 2**31 - 1))
        with torch_threads():
            self.generator_.fit(Z.astype(np.float32))
            if self.generator_.requires_calibration:
                if y is None:
                    raise ValueError(
                        f"generator {type(self.generator_).__name__} is calibrated on labelled "
                        "data: pass y to fit."
                    )
                y_idx = resolve_targets(np.asarray(y), adapter.classes_,
                                        np.zeros(len(Z), dtype=np.int64), rs, param="y")
                self.generator_.calibrate(adapter.module, adapter.to_tensor(Z),
                                          torch.as_tensor(y_idx, device=adapter.device))
        self.classes_ = adapter.classes_
        self.n_features_model_ = Z.shape[1]
        self.adapter_ = adapter
        self._torch_constraints = self.constraints_.to_torch(adapter.dtype, adapter.device)
        return self

    def _check_X(self, X, reset):
        if X is None:
            raise ValueError("X is None; expected an array or DataFrame of rows to explain.")
        if not hasattr(X, "shape") or isinstance(X, (list, tuple)):
            X = np.asarray(X)
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2D (n_samples, n_features), got shape {X.shape}.")
        if X.shape[0] == 0:
            raise ValueError("X is empty: found 0 rows; at least 1 is required.")
        if isinstance(X, pd.DataFrame):
            names = np.asarray(X.columns, dtype=object)
            if reset:
                if all(isinstance(c, str) for c in names):
                    self.feature_names_in_ = names
                elif hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif hasattr(self, "feature_names_in_") and not np.array_equal(
                    names, self.feature_names_in_):
                missing = [c for c in self.feature_names_in_ if c not in set(names)]
                raise ValueError(f"X has different columns than at fit; missing: {missing}, "
                                 f"got: {list(names)}.")
            num = X.select_dtypes(include="number")
            if num.shape[1] and not np.isfinite(num.to_numpy(dtype=np.float64)).all():
                bad = [c for c in num.columns if not np.isfinite(num[c].to_numpy(float)).all()]
                raise ValueError(f"X contains NaN or infinity in column(s) {bad}.")
        else:
            X = np.asarray(X)
            if X.dtype.kind in "fiub" and not np.isfinite(X).all():
                raise ValueError("X contains NaN or infinity.")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but CounterfactualExplainer was "
                             f"fitted with {self.n_features_in_} features.")
        return X

    def _model_space(self, X):
        Z = self.adapter_.transform(X)
        if not np.isfinite(Z).all():
            raise ValueError("X contains NaN or infinity after preprocessing.")
        return Z

    def to_model_space(self, X):
        """The rows of ``X`` in the model's input space (after the Pipeline's preprocessing).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows in the user's columns, checked as :meth:`explain` checks them.

        Returns
        -------
        ndarray of shape (n_samples, n_features_model_)
        """
        check_is_fitted(self, "estimator_")
        return self._model_space(self._check_X(X, reset=False))

    def explain(self, X, target=None):
        """Search counterfactuals for every row of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Factuals in the user's columns.
        target : label, array-like, "opposite" or None, default=None
            Overrides the ``target`` parameter for this call.

        Returns
        -------
        CounterfactualResult
        """
        check_is_fitted(self, "estimator_")
        X = self._check_X(X, reset=False)
        adapter = self.adapter_
        Z = self._model_space(X)
        proba = adapter.predict_proba_model(Z)
        rng = check_random_state(self.random_state)
        spec = self.target if target is None else target
        t_idx = resolve_targets(spec, self.classes_, proba.argmax(axis=1), rng)

        x = adapter.to_tensor(Z)
        with torch_threads():
            res = search(adapter.module, x, torch.as_tensor(t_idx, device=x.device),
                         self.generator_, self._torch_constraints,
                         decision_threshold=self.decision_threshold, max_iter=self.max_iter,
                         return_path=self.return_path)
        Z_cf = res.counterfactuals.cpu().double().numpy()
        X_copy = X.copy()
        cf = adapter.inverse_transform(Z_cf, X_copy)
        # values the search did not change come back exactly as given (no float round-trip)
        roundtrip = adapter.inverse_transform(x.cpu().double().numpy(), X_copy)
        cf = _restore_unchanged(cf, roundtrip, X_copy)
        converged = res.converged.cpu().numpy()
        return CounterfactualResult(
            counterfactuals=cf,
            factuals=X_copy,
            targets=self.classes_[t_idx],
            valid=converged.copy(),
            converged=converged,
            n_iter=res.n_iter.cpu().numpy(),
            target_proba=res.target_proba.cpu().double().numpy(),
            counterfactuals_model=Z_cf,
            factuals_model=x.cpu().double().numpy(),
            target_index=t_idx,
            feature_names_model=adapter.feature_names_model(X),
            path=None if res.path is None else res.path.cpu().double().numpy(),
        )

    def transform(self, X):
        """Counterfactuals for the rows of ``X``, in the same columns (pandas in, pandas out)."""
        return self.explain(X).counterfactuals

    def get_feature_names_out(self, input_features=None):
        """Same names as the input (counterfactuals live in the user's columns)."""
        check_is_fitted(self, "estimator_")
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return np.asarray(self.feature_names_in_, dtype=object)
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("adapter_", None)
        state.pop("_torch_constraints", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "estimator_" in state:
            self.adapter_ = ModelAdapter(self.estimator_)
            self._torch_constraints = self.constraints_.to_torch(
                self.adapter_.dtype, self.adapter_.device)


def _restore_unchanged(cf, roundtrip, X):
    """Where ``cf`` equals the factuals' own round-trip, return the user's original values."""
    if isinstance(cf, pd.DataFrame):
        out = cf.copy()
        for col in out.columns:
            same = (cf[col] == roundtrip[col]).to_numpy()
            if same.all():
                out[col] = X[col]
            elif same.any():
                out.loc[same, col] = X.loc[same, col]
        return out
    same = np.asarray(cf == roundtrip)
    out = np.array(cf, copy=True)
    out[same] = np.asarray(X)[same]
    return out
