"""Plots for counterfactual explanations and counterfactually trained models.

Three scikit-learn style Displays: ``XDisplay.from_*`` computes what is drawn and calls
:meth:`plot`; ``plot`` draws and keeps the matplotlib objects as attributes ending in ``_``
(``ax_``, ``figure_``, and the artists). The constructors take computed arrays only, so a plot
can be redrawn (or restyled) without recomputing anything.

- :class:`CounterfactualDisplay`: 2D data, the model's decision surface, counterfactuals as
  stars and their search paths (Figure 1 of the counterfactual training paper).
- :class:`ImageCounterfactualDisplay`: factual images and their counterfactuals per target class
  (the paper's MNIST figures).
- :class:`RobustnessCurveDisplay`: accuracy under an adversarial attack against its budget
  epsilon, for several models on one axis.

matplotlib is imported only when something is drawn (``pip install skct[plot]``).
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import check_is_fitted

from ..explain import ModelAdapter

__all__ = ["CounterfactualDisplay", "ImageCounterfactualDisplay", "RobustnessCurveDisplay"]


def check_matplotlib_support(caller):
    """Raise an ImportError naming ``caller`` when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{caller} needs matplotlib: pip install matplotlib (or "
                          "skct[plot]).") from exc


def _pyplot(caller):
    check_matplotlib_support(caller)
    import matplotlib.pyplot as plt

    return plt


def _label_index(labels, classes, param):
    """Class indices of ``labels`` in ``classes`` (a dictionary lookup; classes need no order)."""
    lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, lab in enumerate(np.asarray(labels, dtype=object).tolist()):
        lab = lab.item() if hasattr(lab, "item") else lab
        if lab not in lookup:
            raise ValueError(f"{param}: unknown class label {lab!r}; the model's classes are "
                             f"{list(classes)}.")
        out[i] = lookup[lab]
    return out


def _classes(y, targets):
    """Sorted unique labels of ``y`` and ``targets`` (the class order of ``proba``)."""
    if targets is None or np.isin(targets, y).all():
        return np.unique(y)
    return np.unique(np.concatenate([y, targets]))


def _to_numpy(X):
    return X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)


# ---------------------------------------------------------------------------------------------
# 2D decision surface with counterfactuals and their search paths
# ---------------------------------------------------------------------------------------------


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
        paths = [result.path[: int(k) + 1, i] for i, k in enumerate(result.n_iter)]
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
        plt = _pyplot(f"{type(self).__name__}.plot")
        from matplotlib.lines import Line2D

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        y = np.asarray(self.y)
        targets = None if self.targets is None else np.asarray(self.targets)
        classes = _classes(y, targets)
        proba = np.asarray(self.proba)

        self.boundary_ = None
        if proba.ndim == 2:  # binary: probability of the second class
            cmap = plt.get_cmap(cmap or "RdBu_r")
            colors = [cmap(0.1), cmap(0.9)] + [cmap(0.5)] * max(0, len(classes) - 2)
            self.contour_ = ax.contourf(self.xx, self.yy, proba, levels=np.linspace(0, 1, 11),
                                        cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            self.boundary_ = ax.contour(self.xx, self.yy, proba, levels=[0.5], colors="k",
                                        linewidths=1.0, linestyles="--")
        else:  # multiclass: predicted class
            cmap = plt.get_cmap(cmap or "tab10")
            n_classes = max(proba.shape[-1], len(classes))
            colors = [cmap(i % cmap.N) for i in range(n_classes)]
            from matplotlib.colors import ListedColormap

            self.contour_ = ax.contourf(self.xx, self.yy, proba.argmax(axis=-1),
                                        levels=np.arange(proba.shape[-1] + 1) - 0.5,
                                        cmap=ListedColormap(colors[: proba.shape[-1]]),
                                        alpha=alpha * 0.6)
        color_of = {c.item() if hasattr(c, "item") else c: colors[i]
                    for i, c in enumerate(classes)}

        X = np.asarray(self.X)
        point_colors = [color_of[v] for v in y.tolist()]
        self.scatter_ = ax.scatter(X[:, 0], X[:, 1], c=point_colors, s=18, edgecolors="white",
                                   linewidths=0.4, zorder=2)

        self.paths_ = []
        self.factuals_ = None
        paths = self.paths
        if paths is not None:
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

        cf = np.asarray(self.counterfactuals).reshape(-1, 2)
        star_colors = ("gold" if targets is None
                       else [color_of[v] for v in targets.tolist()])
        self.counterfactuals_ = ax.scatter(cf[:, 0], cf[:, 1], marker="*", s=320, c=star_colors,
                                           edgecolors="k", linewidths=1.0, zorder=5)

        names = self.feature_names if self.feature_names is not None else ["x0", "x1"]
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_xlim(np.min(self.xx), np.max(self.xx))
        ax.set_ylim(np.min(self.yy), np.max(self.yy))
        if name is not None:
            ax.set_title(name)
        handles = [Line2D([], [], ls="", marker="o", color=color_of[c.item() if hasattr(
            c, "item") else c], markeredgecolor="white", label=f"class {c}") for c in classes]
        if self.paths_:
            handles.append(Line2D([], [], color="k", marker=".", markersize=3,
                                  label="search path"))
            handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none",
                                  markeredgecolor="k", label="factual"))
        handles.append(Line2D([], [], ls="", marker="*", markersize=14, color="gold"
                              if targets is None else "lightgrey", markeredgecolor="k",
                              label="counterfactual"))
        ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.85)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def _check_two_features(n_features):
    if n_features != 2:
        raise ValueError(
            f"CounterfactualDisplay needs exactly 2 features in the model's input space (after "
            f"preprocessing), got {n_features}. Plot a 2D data set, or use "
            "ImageCounterfactualDisplay for images."
        )


# ---------------------------------------------------------------------------------------------
# image grids
# ---------------------------------------------------------------------------------------------


class ImageCounterfactualDisplay:
    """Grid of factual images and their counterfactuals, one column per target class.

    Row ``i`` shows factual ``i`` in the first column and its counterfactual for each target in
    the following columns (the MNIST figures of the counterfactual training paper).

    Parameters
    ----------
    factuals : ndarray of shape (n_factuals, n_pixels)
        Factual images, flattened.
    counterfactuals : ndarray of shape (n_factuals, n_targets, n_pixels)
        Counterfactual of each factual for each target.
    targets : array-like of shape (n_factuals, n_targets) or (n_targets,)
        Target class label of each counterfactual (one row for all factuals, or one per
        factual).
    image_shape : tuple of int, default=None
        Shape of one image, e.g. ``(28, 28)`` for MNIST or ``(8, 8)`` for sklearn's digits;
        None takes the square image with ``n_pixels`` pixels.
    predicted : array-like of shape (n_factuals,), default=None
        Predicted class label of each factual (shown in brackets in the first column's
        titles).
    valid : ndarray of bool of shape (n_factuals, n_targets), default=None
        Whether each counterfactual reached its target; titles of invalid ones are red.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes of shape (n_factuals, 1 + n_targets)
    figure_ : matplotlib Figure
    images_ : ndarray of AxesImage of shape (n_factuals, 1 + n_targets)

    See Also
    --------
    CounterfactualDisplay : counterfactuals of 2D data.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skct import CounterfactualExplainer, CounterfactualTrainedClassifier
    >>> from skct.plotting import ImageCounterfactualDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 8.0 - 1.0).astype("float32")  # pixels in [-1, 1]
    >>> clf = CounterfactualTrainedClassifier(lambda_div=0, lambda_adv=0, lambda_reg=0,
    ...                                       lr=0.01, max_epochs=5, random_state=0).fit(X, y)
    >>> explainer = CounterfactualExplainer(clf, max_iter=50, random_state=0).fit(X, y)
    >>> disp = ImageCounterfactualDisplay.from_explainer(explainer, X[:2], targets=[3, 8])
    >>> disp.axes_.shape
    (2, 3)
    """

    def __init__(self, factuals, counterfactuals, targets, image_shape=None, predicted=None,
                 valid=None):
        self.factuals = factuals
        self.counterfactuals = counterfactuals
        self.targets = targets
        self.image_shape = image_shape
        self.predicted = predicted
        self.valid = valid

    @classmethod
    def from_explainer(cls, explainer, X_images, *, targets=None, image_shape=None, n_rows=None,
                       axes=None, fig=None, name=None):
        """Explain images toward several target classes and plot the grid.

        Parameters
        ----------
        explainer : fitted CounterfactualExplainer
            Explainer of an image classifier (flattened pixels as features).
        X_images : array-like of shape (n_samples, n_pixels)
            Factual images, flattened, in the user's space.
        targets : array-like of labels, default=None
            Target classes, one column each, for every factual. None: for each factual, every
            class other than its predicted one (``n_classes - 1`` columns).
        image_shape : tuple of int, default=None
            Shape of one image; None takes the square image with ``n_pixels`` pixels
            (``(28, 28)`` for MNIST, ``(8, 8)`` for sklearn's digits).
        n_rows : int, default=None
            Plot only the first ``n_rows`` factuals (None: all).
        axes : ndarray of matplotlib Axes of shape (n_rows, 1 + n_targets), default=None
            Axes to draw on; None makes a new figure.
        fig : matplotlib Figure, default=None
            Figure to draw the grid into when ``axes`` is None.
        name : str, default=None
            Title of the figure.

        Returns
        -------
        display : ImageCounterfactualDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_explainer")
        check_is_fitted(explainer, "estimator_")
        X = _to_numpy(X_images)
        if X.ndim != 2:
            raise ValueError(f"X_images must be 2D (n_images, n_pixels), got shape {X.shape}; "
                             "flatten the images first, e.g. X.reshape(len(X), -1).")
        if n_rows is not None:
            X = X[: int(n_rows)]
        n = X.shape[0]
        adapter = ModelAdapter(explainer.estimator_)
        classes = explainer.classes_
        pred_idx = adapter.predict_proba_model(adapter.transform(X)).argmax(axis=1)
        if targets is None:
            if len(classes) < 2:
                raise ValueError("The model knows only one class; there is no other class to "
                                 "explain toward.")
            idx = np.array([[c for c in range(len(classes)) if c != p] for p in pred_idx])
            target_labels = classes[idx]  # [n, C - 1]
        else:
            labels = np.asarray(targets).reshape(-1)
            _label_index(labels, classes, "targets")  # clear error for unknown labels
            target_labels = np.tile(labels, (n, 1))  # [n, k]
        k = target_labels.shape[1]
        result = explainer.explain(np.repeat(X, k, axis=0), target=target_labels.reshape(-1))
        cf = _to_numpy(result.counterfactuals).reshape(n, k, -1)
        disp = cls(X, cf, target_labels, image_shape=image_shape, predicted=classes[pred_idx],
                   valid=np.asarray(result.valid).reshape(n, k))
        return disp.plot(axes=axes, fig=fig, name=name)

    def plot(self, axes=None, fig=None, *, name=None, cmap="gray", vmin=None, vmax=None):
        """Draw the grid of factuals and counterfactuals.

        Parameters
        ----------
        axes : ndarray of matplotlib Axes of shape (n_factuals, 1 + n_targets), default=None
            Axes to draw on; None makes them (in ``fig`` when given).
        fig : matplotlib Figure, default=None
            Figure to make the grid in when ``axes`` is None; None makes a new figure.
        name : str, default=None
            Title of the figure.
        cmap : str or Colormap, default="gray"
        vmin, vmax : float, default=None
            Colour range shared by all images; None uses the factuals' pixel range
            (counterfactual pixels outside it saturate).

        Returns
        -------
        display : ImageCounterfactualDisplay
        """
        plt = _pyplot(f"{type(self).__name__}.plot")
        factuals = _to_numpy(self.factuals)
        n = factuals.shape[0]
        cf = np.asarray(self.counterfactuals)
        if cf.ndim == 2:
            cf = cf[:, None, :]
        k = cf.shape[1]
        targets = np.asarray(self.targets, dtype=object)
        if targets.ndim == 1:
            targets = np.tile(targets, (n, 1))
        shape = self.image_shape
        if shape is None:
            side = int(round(np.sqrt(factuals.shape[1])))
            if side * side != factuals.shape[1]:
                raise ValueError(f"Images have {factuals.shape[1]} pixels, not a square number: "
                                 "give image_shape.")
            shape = (side, side)
        # the factuals' pixel range: counterfactual pixels outside it saturate
        lo = factuals.min() if vmin is None else vmin
        hi = factuals.max() if vmax is None else vmax

        if axes is None:
            if fig is None:
                fig = plt.figure(figsize=(1.1 * (1 + k), 1.25 * n + (0.4 if name else 0.1)),
                                 layout="constrained")
            axes = fig.subplots(n, 1 + k, squeeze=False)
        axes = np.asarray(axes, dtype=object).reshape(n, 1 + k)
        images = np.empty((n, 1 + k), dtype=object)
        valid = None if self.valid is None else np.asarray(self.valid).reshape(n, k)
        for i in range(n):
            ax = axes[i, 0]
            images[i, 0] = ax.imshow(factuals[i].reshape(shape), cmap=cmap, vmin=lo, vmax=hi)
            title = "factual" if self.predicted is None else \
                f"factual ({np.asarray(self.predicted)[i]})"
            ax.set_title(title, fontsize="small", fontweight="bold")
            for j in range(k):
                ax = axes[i, j + 1]
                images[i, j + 1] = ax.imshow(cf[i, j].reshape(shape), cmap=cmap, vmin=lo,
                                             vmax=hi)
                ok = valid is None or bool(valid[i, j])
                ax.set_title(f"\u2192 {targets[i, j]}", fontsize="small",
                             color="black" if ok else "red")
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        figure = axes[0, 0].figure
        if name is not None:
            figure.suptitle(name)
        self.axes_ = axes
        self.images_ = images
        self.figure_ = figure
        return self


# ---------------------------------------------------------------------------------------------
# robustness curves
# ---------------------------------------------------------------------------------------------


class RobustnessCurveDisplay:
    """Accuracy under an adversarial attack against its L-infinity budget, for several models.

    Parameters
    ----------
    epsilons : ndarray of shape (n_epsilons,)
        Attack budgets (in each model's input space).
    accuracies : dict of str to ndarray of shape (n_epsilons,)
        Accuracy of each model (by name) at each budget.
    attack : str, default="fgsm"
        Name of the attack (shown in the title).

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    lines_ : dict of str to Line2D
        One line per model.

    See Also
    --------
    skct.metrics.adversarial_accuracy : the accuracies drawn here.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skct import CounterfactualTrainedClassifier
    >>> from skct.plotting import RobustnessCurveDisplay
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(50, 2) - 1, rng.randn(50, 2) + 1].astype("float32")
    >>> y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    >>> models = {f"{e} epochs": CounterfactualTrainedClassifier(
    ...     lambda_div=0, lambda_adv=0, lambda_reg=0, lr=0.01, max_epochs=e,
    ...     random_state=0).fit(X, y) for e in (2, 20)}
    >>> disp = RobustnessCurveDisplay.from_estimators(models, X, y, epsilons=[0, 0.5, 1])
    >>> sorted(disp.lines_)
    ['2 epochs', '20 epochs']
    """

    def __init__(self, epsilons, accuracies, attack="fgsm"):
        self.epsilons = epsilons
        self.accuracies = accuracies
        self.attack = attack

    @classmethod
    def from_estimators(cls, estimators, X, y, *, attack="fgsm", epsilons=None, ax=None,
                        name=None, **attack_kwargs):
        """Attack each model at each budget and plot its accuracy curve.

        Parameters
        ----------
        estimators : dict of str to fitted estimator
            Models by name: :class:`~skct.CounterfactualTrainedClassifier`, skorch nets, or
            Pipelines ending in one (the attack runs in the model's input space, after the
            preprocessing).
        X : array-like or DataFrame of shape (n_samples, n_features)
            Clean inputs in the user's columns.
        y : array-like of shape (n_samples,)
            True class labels.
        attack : {"fgsm", "pgd"}, default="fgsm"
            The attack (see :func:`skct.metrics.adversarial_accuracy`).
        epsilons : array-like of float, default=None
            Budgets; None means ``np.linspace(0, 0.1, 10)``.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        name : str, default=None
            Title of the plot; None names the attack.
        **attack_kwargs
            Passed to :func:`skct.metrics.adversarial_accuracy` (``n_steps``, ``step_size``,
            ``lower``, ``upper``, ``random_state``, ...).

        Returns
        -------
        display : RobustnessCurveDisplay
        """
        from ..metrics import adversarial_accuracy

        check_matplotlib_support(f"{cls.__name__}.from_estimators")
        if not isinstance(estimators, dict) or not estimators:
            raise ValueError("estimators must be a non-empty dict {name: fitted estimator}.")
        eps, accuracies = None, {}
        for label, est in estimators.items():
            check_is_fitted(est)
            adapter = ModelAdapter(est)
            target = _label_index(np.asarray(y), adapter.classes_, "y")
            res = adversarial_accuracy(adapter.module, adapter.transform(X), target,
                                       attack=attack, epsilons=epsilons, **attack_kwargs)
            eps = res["epsilon"]
            accuracies[label] = res["accuracy"]
        return cls(eps, accuracies, attack=attack).plot(ax=ax, name=name)

    def plot(self, ax=None, *, name=None):
        """Draw one accuracy curve per model.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        name : str, default=None
            Title of the plot; None names the attack.

        Returns
        -------
        display : RobustnessCurveDisplay
        """
        plt = _pyplot(f"{type(self).__name__}.plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 4))
        eps = np.asarray(self.epsilons, dtype=float)
        self.lines_ = {}
        for label, acc in self.accuracies.items():
            (line,) = ax.plot(eps, np.asarray(acc, dtype=float), marker="o", markersize=4,
                              label=str(label))
            self.lines_[label] = line
        ax.set_xlabel("\u03b5 (L\u221e attack budget)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.set_title(name if name is not None else f"{str(self.attack).upper()} robustness")
        ax.legend(loc="best")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
