"""CounterfactualExplainer: counterfactual explanations for a fitted classifier."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._config import torch_threads
from .._utils import HasMethods, Interval, StrOptions, derive_seed, entropy_from
from .._utils import fit_context as _fit_context
from .._utils import is_fitted as _is_fitted
from .._utils import RowBlocks, safe_indexing
from ..constraints import ActionabilityConstraints
from ..search import DIVERSITY_STRATEGIES, DiverseGenerator, gradient_free_search, search
from ..search import sparsify
from ..search.generators import BaseGenerator, resolve_generator
from ._adapter import ModelAdapter
from ._repair import changed_features, count_changed, to_user_values
from ._result import (CounterfactualPath, CounterfactualResult, blank_rows, check_finite,
                      order_options, repeat_rows, resolve_targets)

__all__ = ["CounterfactualExplainer", "CounterfactualResult", "resolve_targets",
           "SPARSITY_MARGIN"]

#: With ``sparsify_changes``, the search runs on to ``tau + SPARSITY_MARGIN * (1 - tau)`` (0.9
#: for the default ``tau = 0.75``) before the unneeded changes are reverted down to ``tau``.
SPARSITY_MARGIN = 0.6


class CounterfactualExplainer(MetaEstimatorMixin, TransformerMixin, BaseEstimator):
    """Counterfactual explanations for a classifier or Pipeline.

    For each row x it searches, by batched gradient descent (or, with
    ``generator="gradient_free"``, from the model's class probabilities only), a nearby x'
    that the model assigns to a target class with probability at least
    ``decision_threshold``, while respecting the actionability constraints (mutability,
    domain, kinds, one-hot groups, ``max_changed``).
    For a Pipeline the search runs in the final step's input space and results come back in
    the user's columns, units and dtypes: integer, binary and ordinal columns hold values of
    their kind, every value lies in its domain, unchanged values are returned exactly as given,
    and a row is valid only if the model predicts the target for the row as returned.

    Parameters
    ----------
    estimator : estimator
        A torch-backed classifier (skorch net, :class:`CounterfactualTrainedClassifier`) or a
        Pipeline of invertible preprocessing ending in one; with ``generator="gradient_free"``
        any classifier with ``predict_proba`` (gradient boosting, random forest, linear
        model, ...), in or out of such a Pipeline. Fitted or not (see ``prefit``).
    generator : {"generic", "ecco", "eccco", "revise", "gradient_free"} or BaseGenerator, \
default="generic"
        The counterfactual generator (objective and search space). Names build the generator
        with its defaults (Generic/ECCo/ECCCo: SGD step 0.25, ``lambda_cost=0.001``; ECCo and
        ECCCo: ``lambda_energy=5.0``; ECCCo adds the conformal set-size penalty, calibrated on
        ``fit``'s labelled data; REVISE: step 0.1 in a VAE latent space;
        :class:`~skct.search.GradientFreeGenerator`: seeded by the nearest rows of ``fit``'s
        data that the model assigns to the target class, no gradients needed; it ignores
        ``max_iter`` and ``return_path``, and with it the search runs to
        ``decision_threshold`` itself, not to the sparsity margin).
    target : label, array-like of labels, "opposite" or None, default=None
        Target class: one label for all rows, one per row, the other class of a binary model,
        or None for a random class other than the predicted one (seeded by ``random_state``).
    constraints : ActionabilityConstraints or None, default=None
        Written with the user's column names and in the user's units; learned on ``fit``'s
        raw data (before the Pipeline's preprocessing) and mapped through the preprocessing
        into the model's input columns (one-hot groups of OneHotEncoders, dropped levels
        included, are found automatically). None means ``ActionabilityConstraints()``: every
        feature mutable, within the range observed in ``fit``'s data.
    decision_threshold : float in (0, 1), default=0.75
        A row is done once ``p(target | x') >= decision_threshold``.
    max_iter : int, default=100
        Maximum gradient steps per row.
    prefit : "auto" or bool, default="auto"
        ``"auto"``: use ``estimator`` as is if it is fitted, else fit a clone on ``fit``'s data
        (like ``SelectFromModel``). ``True``: the estimator must already be fitted.
        ``False``: always fit a clone.
    return_path : bool, default=False
        Keep every search iterate in :meth:`explain`'s result (stored compactly, for the
        rows still searching at each step only; ``result.path`` pads it when read).
    cost : {"mad", "l1"}, default="mad"
        The search's cost term. ``"mad"``: L1 in the user's units, each column over its median
        absolute deviation (the usual recourse cost; a change of category costs 1). ``"l1"``:
        plain L1 in the model's input space (the paper's cost).
    sparsify_changes : bool, default=True
        Fewer changes for the same decision: the search runs on to a margin above the
        threshold (``p >= 0.9`` for the default 0.75, see ``SPARSITY_MARGIN``), then changed
        features are reverted to the factual, smallest change first, as long as the
        counterfactual stays valid (:func:`skct.search.sparsify`). ``False`` runs the plain
        search (the paper's protocol).
    invalid : {"nan", "keep"}, default="nan"
        What :meth:`transform` returns for rows without a valid counterfactual: missing values
        in every column (with one warning saying how many), or the search's last iterate.
        :meth:`explain` always returns the last iterate, with ``valid`` False.
    random_state : int, RandomState or None, default=None
        Seeds random targets, the REVISE autoencoder and the starts of ``n_per_row > 1``.
    batch_size : int or None, default=None
        :meth:`explain` and :meth:`transform` process the rows in chunks of this many (the
        preprocessing, the search, the sparsification and the check of the returned rows),
        each chunk's rows written into the result as it is done, so that the memory beyond
        the result is bounded by the chunk, not by ``len(X)``; None is one chunk. The
        results are the same for any value: targets are drawn for all rows first, and every
        row's search, sparsification and check are independent of the other rows' (up to
        float rounding: torch may compute the forward of a row searched alone differently
        from the same row's in a batch). The exception is
        ``generator="gradient_free"``, whose random candidates are drawn per chunk: its
        results depend on ``batch_size`` (each is equally valid and actionable), as do the
        random starts of ``n_per_row > 1``.
    n_per_row : int, default=1
        Counterfactuals per factual (``k``). With ``k > 1`` every factual is searched ``k``
        times in the same batched search, the copies made to differ by ``diversity``, each
        one valid and actionable on its own; :meth:`explain` returns ``N * k`` entries
        (``row_id``: the factual's position, ``rank``: 0 for the best, valid ones first, then
        by cost in the user's units over each column's MAD), ordered by row, then rank;
        :meth:`transform` keeps the best entry of each row.
    diversity : {"starts", "pairwise", "subsets", "disjoint"}, default="pairwise"
        How the ``k`` copies of a factual differ (:class:`~skct.search.DiverseGenerator`):
        copy 0 starts at the factual, as with ``k = 1``; the others start at seeded random
        points of the constrained domain near the factual (``"starts"``), and also push away
        from each other with a pairwise similarity term (``"pairwise"``, DiCE's kernel
        ``1 / (1 + d)``), or may change only a random half of the mutable features each
        (``"subsets"``: more distinct change sets, but many copies cannot reach the
        target), or share out the mutable features, each copy but copy 0 changing only its
        own disjoint random group (``"disjoint"``: distinct change sets by construction; a
        copy whose group cannot reach the target is invalid and ranked last). With
        ``generator="gradient_free"``, ``"subsets"`` and ``"disjoint"`` freeze the same
        features; with ``"starts"`` copy ``j`` searches from the reference rows ranked ``j,
        j + k, ...`` (copy 0 from the nearest), and ``"pairwise"`` also searches a copy that
        repeats an earlier copy's changed features again without them (kept where valid).

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator used for the search.
    constraints_ : ActionabilityConstraints
        The fitted constraints: ``feature_kinds_``, ``lower_``, ``upper_`` and
        ``mutability_`` in the user's columns and units, ``lower_model_``, ``upper_model_`` and
        ``mutability_model_`` in the model's input space.
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
        "generator": [StrOptions({"generic", "ecco", "eccco", "revise", "gradient_free"}),
                      BaseGenerator],
        "target": "no_validation",
        "constraints": [ActionabilityConstraints, None],
        "decision_threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "prefit": [StrOptions({"auto"}), "boolean"],
        "return_path": ["boolean"],
        "cost": [StrOptions({"mad", "l1"})],
        "sparsify_changes": ["boolean"],
        "invalid": [StrOptions({"nan", "keep"})],
        "random_state": ["random_state"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_per_row": [Interval(numbers.Integral, 1, None, closed="left")],
        "diversity": [StrOptions(set(DIVERSITY_STRATEGIES))],
    }

    def __init__(self, estimator, *, generator="generic", target=None, constraints=None,
                 decision_threshold=0.75, max_iter=100, prefit="auto", return_path=False,
                 cost="mad", sparsify_changes=True, invalid="nan", random_state=None,
                 batch_size=None, n_per_row=1, diversity="pairwise"):
        self.estimator = estimator
        self.generator = generator
        self.target = target
        self.constraints = constraints
        self.decision_threshold = decision_threshold
        self.max_iter = max_iter
        self.prefit = prefit
        self.return_path = return_path
        self.cost = cost
        self.sparsify_changes = sparsify_changes
        self.invalid = invalid
        self.random_state = random_state
        self.batch_size = batch_size
        self.n_per_row = n_per_row
        self.diversity = diversity

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
        rs = check_random_state(self.random_state)
        self.generator_ = resolve_generator(self.generator)
        gradient_free = self._gradient_free()
        if self.n_per_row > 1 and self.diversity in ("subsets", "disjoint") and \
                getattr(self.generator_, "latent", False):
            raise ValueError(f"diversity={self.diversity!r} needs an input-space generator; "
                             f"{type(self.generator_).__name__} searches a latent space (use "
                             "diversity='starts' or 'pairwise').")
        if gradient_free and self.return_path:
            raise ValueError("return_path=True needs a gradient generator: the gradient-free "
                             "search has no path of iterates.")
        adapter = ModelAdapter(self.estimator_, gradients=not gradient_free)
        X = self._check_X(X, reset=True)
        Z = adapter.transform(X)
        if not np.isfinite(Z).all():
            raise ValueError("X contains NaN or infinity after preprocessing.")
        constraints = clone(self.constraints) if self.constraints is not None else \
            ActionabilityConstraints()
        # learned on the user's raw columns, mapped through the fitted preprocessing
        self.constraints_ = constraints.fit(X, encoding=adapter.encoding(X), X_model=Z)

        if "random_state" in self.generator_.get_params():
            if self.generator_.random_state is None:
                self.generator_.set_params(random_state=rs.randint(0, 2**31 - 1))
        with torch_threads():
            if gradient_free:  # the reference pool: rows by the class the model gives them
                self.generator_.fit(Z, self._pool_classes(adapter.predict_proba_model(Z)))
            else:
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
        self._torch_constraints = self._to_torch()
        return self

    def _gradient_free(self):
        return bool(getattr(self.generator_, "gradient_free", False))

    def _pool_classes(self, proba):
        """Per reference row, the class the model gives it at ``decision_threshold`` (-1: none).

        A class that no row reaches at the threshold keeps the rows predicted as it.
        """
        pred = proba.argmax(axis=1)
        sure = proba.max(axis=1) >= self.decision_threshold
        out = np.where(sure, pred, -1)
        for k in np.setdiff1d(np.unique(pred), np.unique(out[out >= 0])):
            out[pred == k] = k
        return out

    def _to_torch(self):
        return self.constraints_.to_torch(self.adapter_.dtype, self.adapter_.device,
                                          rounding=True, cost=self.cost)

    def _check_X(self, X, reset):
        if X is None:
            raise ValueError("X is None; expected an array or DataFrame of rows to explain.")
        if not hasattr(X, "shape") or isinstance(X, (list, tuple)):
            X = np.asarray(X)
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2D (n_samples, n_features), got shape {X.shape}. "
                             "Reshape your data: X.reshape(1, -1) for one row.")
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
        else:
            X = np.asarray(X)
        check_finite(X)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but CounterfactualExplainer is "
                             f"expecting {self.n_features_in_} features as input.")
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
            One entry per row, or ``n_per_row`` per row (by row, then rank) with ``row_id``
            and ``rank`` telling which factual each belongs to and its place among them.
        """
        check_is_fitted(self, "estimator_")
        X = self._check_X(X, reset=False)
        n, k = X.shape[0], self.n_per_row
        step = n if self.batch_size is None else self.batch_size
        chunks = [slice(s, min(s + step, n)) for s in range(0, n, step)]
        Z = self._model_space(X) if len(chunks) == 1 else None
        # targets are drawn for all rows at once: the chunking cannot change them
        proba = self._proba(Z, X, chunks)  # [N, C]
        rng = check_random_state(self.random_state)
        spec = self.target if target is None else target
        t_idx = resolve_targets(spec, self.classes_, proba.argmax(axis=1), rng)
        p0 = proba[np.arange(n), t_idx]
        out, path = self._explain_chunks(X, Z, chunks, t_idx, p0)
        t_idx = t_idx if k == 1 else np.repeat(t_idx, k)
        return CounterfactualResult(
            counterfactuals=out["cf"],
            factuals=X.copy() if k == 1 else repeat_rows(X, k),
            targets=self.classes_[t_idx],
            valid=out["valid"],
            converged=out["converged"],
            n_iter=out["n_iter"],
            target_proba=out["p_t"],
            counterfactuals_model=out["Z_ret"],
            factuals_model=out["x"],
            target_index=t_idx,
            feature_names_model=self.adapter_.feature_names_model(X),
            path=path,
            n_changed=out["n_changed"],
            row_id=np.repeat(np.arange(n), k),
            rank=out["rank"] if k > 1 else np.zeros(n, dtype=np.int64),
        )

    def _explain_chunks(self, X, Z, chunks, t_idx, p0):
        """``(outputs of N * k entries named as by _explain_rows, "rank" for k > 1; path)``.

        Every row's search is its own, so chunks give the same rows; each chunk's entries go
        into outputs allocated once, and the chunk is dropped before the next one is searched.
        """
        n, k = X.shape[0], self.n_per_row
        seed = None if k == 1 else derive_seed(entropy_from(self.random_state), "n_per_row")
        blocks, pieces = RowBlocks(n * k), []
        for s in chunks:
            if k == 1:
                part = self._explain_rows(safe_indexing(X, s), Z, t_idx[s], p0[s])
            else:  # k adjacent copies of every factual, searched together
                Zk = None if Z is None else np.repeat(Z, k, axis=0)
                part = self._explain_rows(repeat_rows(safe_indexing(X, s), k), Zk,
                                          np.repeat(t_idx[s], k), np.repeat(p0[s], k),
                                          seed=derive_seed(seed, s.start))
                part = order_options(part, k, self.constraints_.cost_weight_model_)
            piece = part.pop("piece")
            if piece is not None:
                pieces.append((piece[0] + s.start * k, piece[1]))
            blocks.write(s.start * k, **part)
            del part
        index = None  # the counterfactuals' index, as the chunks' frames had it
        if isinstance(X, pd.DataFrame):
            index = X.index if k == 1 else X.index[np.repeat(np.arange(n), k)]
        out = {key: blocks.pop(key, index=index) for key in list(blocks.keys())}
        path = CounterfactualPath(out["x"], self.max_iter + 1) if self.return_path else None
        for rows, piece in pieces:
            path.add(rows, piece)
        return out, path

    def _proba(self, Z, X, chunks):
        """Class probabilities [N, C] of the factuals (chunk by chunk when ``Z`` is None)."""
        if Z is not None:
            return self.adapter_.predict_proba_model(Z)
        blocks = RowBlocks(X.shape[0])  # one [N, C] array, written as the chunks come
        for s in chunks:
            blocks.write(s.start, p=self.adapter_.predict_proba_model(
                self._model_space(safe_indexing(X, s))))
        return blocks.pop("p")

    def _explain_rows(self, X, Z, t_idx, p0, seed=None):
        """Search, return and check the rows of one chunk (``Z``: their model space, or None).

        With ``seed`` (``n_per_row > 1``), the rows are ``n_per_row`` copies of each factual,
        searched by a :class:`~skct.search.DiverseGenerator` seeded by it.

        Returns a dict of per-row arrays (``cf``, ``valid``, ``converged``, ``n_iter``,
        ``p_t``, ``Z_ret``, ``x``, ``n_changed``) and ``piece``: (searched rows, their path)
        or None.
        """
        Z = self._model_space(X) if Z is None else Z
        x = self.adapter_.to_tensor(Z)  # [n, D]
        t = torch.as_tensor(t_idx, device=x.device)
        with torch_threads():
            x_cf, converged, n_iter, piece = self._search(x, t, p0, seed)
        cf, Z_ret, n_changed = self._returned_rows(X, x, x_cf)
        proba_ret = np.asarray(self.estimator_.predict_proba(self._as_fitted(cf)))
        p_t = proba_ret[np.arange(len(t_idx)), t_idx]
        valid = (proba_ret.argmax(axis=1) == t_idx) & (p_t >= self.decision_threshold)
        return dict(cf=cf, valid=valid, converged=converged, n_iter=n_iter, p_t=p_t,
                    Z_ret=Z_ret, x=x.cpu().double().numpy(), n_changed=n_changed, piece=piece)

    def _search(self, x, t, p0, seed=None):
        """The batched search of the rows that need one, then the post-hoc sparsification.

        With ``sparsify_changes``, rows whose factual already reaches the threshold are returned
        as they are (no step), and the search of the others runs on to a margin above it,
        ``tau + SPARSITY_MARGIN * (1 - tau)``, so that :func:`~skct.search.sparsify` has room
        to revert the changes the decision does not need while keeping ``p >= tau``.

        Returns ``(x_cf [N, D] tensor, converged [N], n_iter [N], piece)``; ``piece`` is
        ``(searched rows [A], their search path)`` with ``return_path``, else None.
        """
        tau = self.decision_threshold
        if self._gradient_free():
            return self._search_gradient_free(x, t, p0, seed)
        # without sparsification every row goes through the engine (it decides step 0 itself)
        todo = np.flatnonzero(p0 < tau) if self.sparsify_changes else np.arange(len(p0))
        x_cf, converged, n_iter = _unsearched(x)
        if todo.size == 0:
            return x_cf, converged, n_iter, None
        rows = torch.as_tensor(todo, device=x.device)
        tau_search = tau + SPARSITY_MARGIN * (1 - tau) if self.sparsify_changes else tau
        c = self._torch_constraints
        gen = self.generator_ if seed is None else DiverseGenerator(
            self.generator_, self.n_per_row, self.diversity, random_state=seed).bind(c)
        res = search(self.adapter_.module, x[rows], t[rows], gen, c,
                     decision_threshold=tau_search, max_iter=self.max_iter,
                     return_path=self.return_path)
        found = res.counterfactuals
        if self.sparsify_changes:
            found = sparsify(self.adapter_.module, found, x[rows], t[rows], c, tau)
        x_cf[rows] = found
        converged[todo] = (res.target_proba >= tau).cpu().numpy()
        n_iter[todo] = res.n_iter.cpu().numpy()
        piece = None
        if self.return_path:  # compact when the engine kept it so (read lazily)
            compact = res.compact_path
            piece = (todo, compact if compact is not None else res.path)
        return x_cf, converged, n_iter, piece

    def _search_gradient_free(self, x, t, p0, seed=None):
        """The gradient-free search of the rows below the threshold, then the sparsification.

        With ``seed``, the rows are copies (:meth:`DiverseGenerator.search_options`).
        Returns ``(x_cf [N, D], converged [N], n_iter [N], None)``; ``n_iter`` counts the
        generations run (the generator's ``n_generations``) for the searched rows.
        """
        tau = self.decision_threshold
        todo = np.flatnonzero(p0 < tau)
        x_cf, converged, n_iter = _unsearched(x)
        if todo.size == 0:
            return x_cf, converged, n_iter, None
        rows = torch.as_tensor(todo, device=x.device)
        c, model = self._torch_constraints, self.adapter_.module
        opts = {} if seed is None else DiverseGenerator(  # how the copies differ
            self.generator_, self.n_per_row, self.diversity, random_state=seed
        ).search_options(x.shape[0], c, rows)
        found, proba, _ = gradient_free_search(model, x[rows], t[rows], self.generator_, c,
                                               decision_threshold=tau, **opts)
        if self.sparsify_changes:  # evaluates only: log-probabilities serve as logits
            found, proba = sparsify(model, found, x[rows], t[rows], c, tau, return_proba=True)
        x_cf[rows] = found
        converged[todo] = (proba >= tau).cpu().numpy()
        n_iter[todo] = self.generator_.n_generations
        return x_cf, converged, n_iter, None

    def _returned_rows(self, X, x, x_cf):
        """The search's rows in the user's columns, kinds and dtypes, and in the model's space.

        Returns ``(counterfactuals shaped like X, their model-space image [N, D] in the model's
        precision, number of changed features per row [N])``.
        """
        adapter, c = self.adapter_, self.constraints_
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        Z_cf = x_cf.cpu().double().numpy()
        changed = changed_features(Z_cf != x.cpu().double().numpy(), c.encoding_)  # [N, F]
        cf_raw = adapter.inverse_transform(Z_cf, frame)
        cf = to_user_values(cf_raw, frame, changed, c)
        n_changed = count_changed(cf, frame, c)
        if not isinstance(X, pd.DataFrame):
            cf = cf.to_numpy(dtype=X.dtype if X.dtype.kind in "biuf" else object, copy=True)
        Z_ret = adapter.to_tensor(adapter.transform(cf)).cpu().double().numpy()
        return cf, Z_ret, n_changed

    def _as_fitted(self, cf):
        """``cf`` as the estimator was fitted on it (a bare array when it saw no names)."""
        if isinstance(cf, pd.DataFrame) and self.adapter_.preprocessor is None and \
                not hasattr(self.adapter_.final, "feature_names_in_"):
            return cf.to_numpy()
        return cf

    def transform(self, X):
        """Counterfactuals for the rows of ``X``, in the same columns (pandas in, pandas out).

        Rows without a valid counterfactual are missing values in every column (with one
        warning saying how many), unless ``invalid="keep"``.
        """
        res = self.explain(X)
        best = res.rank == 0  # one entry per row: its best one
        cf = (res.counterfactuals if self.n_per_row == 1
              else safe_indexing(res.counterfactuals, best))
        bad = ~res.valid[best]
        if self.invalid == "keep" or not bad.any():
            return cf
        stopped = ""
        if not self._gradient_free():
            n_stop = int((bad & (np.asarray(res.n_iter)[best] >= self.max_iter)).sum())
            if n_stop:
                stopped = (f" {n_stop} of them stopped at max_iter={self.max_iter} steps "
                           "without reaching the target: a larger max_iter may find theirs.")
        warnings.warn(
            f"{int(bad.sum())} of {len(bad)} rows have no valid counterfactual; they are "
            "missing values (NaN) in every column (invalid='keep' returns the search's last "
            f"iterate instead).{stopped}", UserWarning, stacklevel=2)
        return blank_rows(cf, bad)

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
            self.adapter_ = ModelAdapter(self.estimator_, gradients=not self._gradient_free())
            self._torch_constraints = self._to_torch()


def _unsearched(x):
    """Every row as given, before its search: ``(x_cf [N, D], converged [N], n_iter [N])``
    (rows already at the target need no step: converged, 0 steps)."""
    n = x.shape[0]
    return x.clone(), np.ones(n, dtype=bool), np.zeros(n, dtype=np.int64)
