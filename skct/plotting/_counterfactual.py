"""CounterfactualDisplay: a 2D model's decision surface, data, counterfactuals, search paths."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._utils import labels_to_indices, safe_indexing as _safe_indexing
from ..explain import ModelAdapter
from ._base import check_matplotlib_support, class_order, literal, pyplot

__all__ = ["CounterfactualDisplay"]


class CounterfactualDisplay:
    """Decision surface of a 2D model with data, counterfactuals and their search paths.

    Use :meth:`from_estimator` or :meth:`from_explainer` to build one; the constructor takes
    what they compute. Everything lives in the model's input space (after a Pipeline's
    preprocessing), which must have exactly two features.

    Parameters
    ----------
    xx, yy : ndarray of shape (grid_resolution, grid_resolution)
        Grid coordinates of the first and second feature (``np.meshgrid``).
    proba : ndarray of shape (grid_resolution, grid_resolution) or \
            (grid_resolution, grid_resolution, n_classes)
        A 2D array is the probability of the second class (binary models); a 3D array holds
        all class probabilities and the surface shows the predicted (argmax) class.
    X : ndarray of shape (n_samples, 2)
        Data points, coloured by ``y``.
    y : array-like of shape (n_samples,)
        Class labels of ``X``. Sorted unique labels give the class order of ``proba``.
    counterfactuals : ndarray of shape (n_explain, 2)
        Counterfactuals, drawn as stars coloured by their target class.
    paths : ndarray of shape (n_steps, n_explain, 2) or list of ndarray of shape (n_i, 2), \
            default=None
        Search paths from each factual (first point) to its counterfactual (last point).
    targets : array-like of shape (n_explain,), default=None
        Target class label of each counterfactual (colours its star).
    feature_names : list of str of length 2, default=None
        Axis labels; None gives ``x0`` and ``x1``.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    contour_ : QuadContourSet
        The filled decision surface.
    boundary_ : QuadContourSet or None
        The decision boundary line (p = 0.5) of a binary model.
    scatter_ : PathCollection
        The data points.
    counterfactuals_ : PathCollection
        The counterfactual stars.
    factuals_ : PathCollection or None
        The start points of the search paths.
    paths_ : list of Line2D
        One search path per counterfactual (empty without paths).

    See Also
    --------
    ImageCounterfactualDisplay : counterfactuals of images.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skct import CounterfactualTrainedClassifier
    >>> from skct.plotting import CounterfactualDisplay
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(50, 2) - 2, rng.randn(50, 2) + 2].astype("float32")
    >>> y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    >>> clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
    ...                                       lr=0.01, max_epochs=20, random_state=0).fit(X, y)
    >>> disp = CounterfactualDisplay.from_estimator(clf, X, y, n_explain=3, random_state=0)
    >>> disp.counterfactuals.shape
    (3, 2)
    >>> len(disp.paths_)
    3
    """

    def __init__(self, xx, yy, proba, X, y, counterfactuals, paths=None, targets=None,
                 feature_names=None):
        self.xx = xx
        self.yy = yy
        self.proba = proba
        self.X = X
        self.y = y
        self.counterfactuals = counterfactuals
        self.paths = paths
        self.targets = targets
        self.feature_names = feature_names

    # -- computing ----------------------------------------------------------------------------
    @classmethod
    def from_estimator(cls, estimator, X, y, *, X_explain=None, n_explain=5, generator="generic",
                       target=None, constraints=None, decision_threshold=0.75, max_iter=100,
                       grid_resolution=200, random_state=None, ax=None, name=None):
        """Explain a few rows of a fitted 2D model and plot them on its decision surface.

        Fits a :class:`~skct.CounterfactualExplainer` (with ``return_path=True``) on ``X`` and
        explains ``X_explain``; see :meth:`from_explainer`.

        Parameters
        ----------
        estimator : fitted estimator
            A torch-backed classifier (:class:`~skct.CounterfactualTrainedClassifier`, skorch
            net) or a Pipeline ending in one, with two features in the model's input space.
        X : array-like or DataFrame of shape (n_samples, n_features)
            Data in the user's columns (reference data of the explainer, and the points drawn).
        y : array-like of shape (n_samples,)
            Class labels of ``X``.
        X_explain : array-like or DataFrame, default=None
            Rows to explain; None draws ``n_explain`` rows of ``X`` (seeded by
            ``random_state``).
        n_explain : int, default=5
            Number of rows drawn when ``X_explain`` is None.
        generator, target, constraints, decision_threshold, max_iter
            Parameters of :class:`~skct.CounterfactualExplainer`.
        grid_resolution : int, default=200
            Grid points per axis of the decision surface.
        random_state : int, RandomState or None, default=None
            Seeds the choice of rows and the explainer.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        name : str, default=None
            Title of the plot (e.g. the model's name).

        Returns
        -------
        display : CounterfactualDisplay
        """
        from ..explain import CounterfactualExplainer

        check_is_fitted(estimator)
        n_model = ModelAdapter(estimator).transform(_safe_indexing(X, [0])).shape[1]
        _check_two_features(n_model)
        explainer = CounterfactualExplainer(
            estimator, generator=generator, target=target, constraints=constraints,
            decision_threshold=decision_threshold, max_iter=max_iter, prefit=True,
            return_path=True, random_state=random_state).fit(X, y)
        return cls.from_explainer(explainer, X, y, X_explain, n_explain=n_explain,
                                  grid_resolution=grid_resolution, random_state=random_state,
                                  ax=ax, name=name)

    @classmethod
    def from_explainer(cls, explainer, X, y, X_explain=None, *, n_explain=5, target=None,
                       grid_resolution=200, random_state=None, ax=None, name=None):
        """Plot the counterfactuals of a fitted explainer on its model's decision surface.

        Parameters
        ----------
        explainer : fitted CounterfactualExplainer
            Its model must have two features in its input space. Search paths are recorded
            whatever its ``return_path`` (the explainer itself is not changed).
        X : array-like or DataFrame of shape (n_samples, n_features)
            Data in the user's columns, drawn coloured by ``y``.
        y : array-like of shape (n_samples,)
            Class labels of ``X``.
        X_explain : array-like or DataFrame, default=None
            Rows to explain; None draws ``n_explain`` rows of ``X``.
        n_explain : int, default=5
            Number of rows drawn when ``X_explain`` is None.
        target : label, array-like, "opposite" or None, default=None
            Overrides the explainer's ``target``.
        grid_resolution : int, default=200
            Grid points per axis of the decision surface.
        random_state : int, RandomState or None, default=None
            Seeds the choice of rows.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        name : str, default=None
            Title of the plot.

        Returns
        -------
        display : CounterfactualDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_explainer")
        check_is_fitted(explainer, "estimator_")
        _check_two_features(explainer.n_features_model_)
        if X_explain is None:
            n = min(int(n_explain), len(y))
            rows = check_random_state(random_state).choice(len(y), size=n, replace=False)
            X_explain = _safe_indexing(X, rows)
        explainer = copy.copy(explainer)  # record paths without touching the caller's object
        explainer.return_path = True
        result = explainer.explain(X_explain, target=target)

        adapter = ModelAdapter(explainer.estimator_)
        Z = adapter.transform(X)
        paths = [_path_to(result.path[: int(k) + 1, i], cf)
                 for i, (k, cf) in enumerate(zip(result.n_iter, result.counterfactuals_model))]
        points = np.vstack([Z, result.counterfactuals_model] + paths)
        lo, hi = points.min(axis=0), points.max(axis=0)
        margin = 0.1 * np.maximum(hi - lo, 1e-3)
        xx, yy = np.meshgrid(np.linspace(lo[0] - margin[0], hi[0] + margin[0], grid_resolution),
                             np.linspace(lo[1] - margin[1], hi[1] + margin[1], grid_resolution))
        proba = adapter.predict_proba_model(np.c_[xx.ravel(), yy.ravel()])
        proba = proba.reshape(*xx.shape, -1)
        if proba.shape[-1] == 2:
            proba = proba[..., 1]
        names = result.feature_names_model
        disp = cls(xx, yy, proba, Z, np.asarray(y), result.counterfactuals_model, paths=paths,
                   targets=result.targets,
                   feature_names=None if names is None else [str(v) for v in names])
        return disp.plot(ax=ax, name=name)

    # -- drawing ------------------------------------------------------------------------------
    def plot(self, ax=None, *, name=None, cmap=None, alpha=0.6):
        """Draw the decision surface, the data, the search paths and the counterfactuals.

        Feature names, class labels and ``name`` are shown as written (a ``$`` is not read as
        mathematics).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        name : str, default=None
            Title of the plot.
        cmap : str or Colormap, default=None
            Colormap of the surface: ``"RdBu_r"`` for a probability surface, ``"tab10"`` for
            the predicted class.
        alpha : float, default=0.6
            Opacity of the surface.

        Returns
        -------
        display : CounterfactualDisplay
        """
        plt = pyplot(f"{type(self).__name__}.plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        y = np.asarray(self.y)
        targets = None if self.targets is None else np.asarray(self.targets)
        classes = class_order(y, targets)
        colors = self._draw_surface(ax, plt, cmap, alpha, len(classes))
        X = np.asarray(self.X)
        point_colors = [colors[i] for i in labels_to_indices(y, classes, "y")]
        self.scatter_ = ax.scatter(X[:, 0], X[:, 1], c=point_colors, s=18, edgecolors="white",
                                   linewidths=0.4, zorder=2)
        self._draw_paths(ax)
        cf = np.asarray(self.counterfactuals).reshape(-1, 2)
        star_colors = ("gold" if targets is None
                       else [colors[i] for i in labels_to_indices(targets, classes, "targets")])
        self.counterfactuals_ = ax.scatter(cf[:, 0], cf[:, 1], marker="*", s=320, c=star_colors,
                                           edgecolors="k", linewidths=1.0, zorder=5)
        names = self.feature_names if self.feature_names is not None else ["x0", "x1"]
        literal(ax.set_xlabel(str(names[0])), ax.set_ylabel(str(names[1])))
        ax.set_xlim(np.min(self.xx), np.max(self.xx))
        ax.set_ylim(np.min(self.yy), np.max(self.yy))
        if name is not None:
            literal(ax.set_title(str(name)))
        self._draw_legend(ax, classes, colors, targets is None)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _draw_surface(self, ax, plt, cmap, alpha, n_labels):
        """The filled surface (and a binary model's boundary); returns one colour per class."""
        proba = np.asarray(self.proba)
        self.boundary_ = None
        if proba.ndim == 2:  # binary: probability of the second class
            cmap = plt.get_cmap(cmap or "RdBu_r")
            self.contour_ = ax.contourf(self.xx, self.yy, proba, levels=np.linspace(0, 1, 11),
                                        cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            self.boundary_ = ax.contour(self.xx, self.yy, proba, levels=[0.5], colors="k",
                                        linewidths=1.0, linestyles="--")
            return [cmap(0.1), cmap(0.9)] + [cmap(0.5)] * max(0, n_labels - 2)
        from matplotlib.colors import ListedColormap

        cmap = plt.get_cmap(cmap or "tab10")  # multiclass: predicted class
        colors = [cmap(i % cmap.N) for i in range(max(proba.shape[-1], n_labels))]
        self.contour_ = ax.contourf(self.xx, self.yy, proba.argmax(axis=-1),
                                    levels=np.arange(proba.shape[-1] + 1) - 0.5,
                                    cmap=ListedColormap(colors[: proba.shape[-1]]),
                                    alpha=alpha * 0.6)
        return colors

    def _draw_paths(self, ax):
        """One line per search path, and a ring at each path's start (its factual)."""
        self.paths_ = []
        self.factuals_ = None
        paths = self.paths
        if paths is None:
            return
        if isinstance(paths, np.ndarray) and paths.ndim == 3:
            paths = [paths[:, i] for i in range(paths.shape[1])]
        for p in paths:
            p = np.asarray(p)
            (line,) = ax.plot(p[:, 0], p[:, 1], "-", color="k", lw=1.2, alpha=0.85,
                              marker=".", markersize=3, zorder=3)
            self.paths_.append(line)
        starts = np.array([np.asarray(p)[0] for p in paths]).reshape(-1, 2)
        self.factuals_ = ax.scatter(starts[:, 0], starts[:, 1], s=60, facecolors="none",
                                    edgecolors="k", linewidths=1.5, zorder=4)

    def _draw_legend(self, ax, classes, colors, gold):
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker="o", color=colors[i], markeredgecolor="white",
                          label=f"class {c}") for i, c in enumerate(classes)]
        if self.paths_:
            handles.append(Line2D([], [], color="k", marker=".", markersize=3,
                                  label="search path"))
            handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none",
                                  markeredgecolor="k", label="factual"))
        handles.append(Line2D([], [], ls="", marker="*", markersize=14,
                              color="gold" if gold else "lightgrey", markeredgecolor="k",
                              label="counterfactual"))
        literal(ax.legend(handles=handles, loc="best", fontsize="small",
                          framealpha=0.85).get_texts())


def _path_to(steps, counterfactual):
    """The search iterates [k, 2], ending at the returned counterfactual [2].

    The explainer may move the last iterate once more (sparsification, rounding to the user's
    columns): that move is the path's last segment.
    """
    if np.array_equal(steps[-1], counterfactual):
        return steps
    return np.vstack([steps, counterfactual[None, :]])


def _check_two_features(n_features):
    if n_features != 2:
        raise ValueError(
            f"CounterfactualDisplay needs exactly 2 features in the model's input space (after "
            f"preprocessing), got {n_features}. Plot a 2D data set, or use "
            "ImageCounterfactualDisplay for images."
        )
