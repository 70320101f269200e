"""ImageCounterfactualDisplay: factual images and their counterfactuals, per target class."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._utils import labels_to_indices
from ..explain import ModelAdapter
from ._base import check_matplotlib_support, pyplot, to_numpy

__all__ = ["ImageCounterfactualDisplay"]


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
        X = to_numpy(X_images)
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
            labels_to_indices(labels, classes, "targets")  # clear error for unknown labels
            target_labels = np.tile(labels, (n, 1))  # [n, k]
        k = target_labels.shape[1]
        result = explainer.explain(np.repeat(X, k, axis=0), target=target_labels.reshape(-1))
        cf = to_numpy(result.counterfactuals).reshape(n, k, -1)
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
        plt = pyplot(f"{type(self).__name__}.plot")
        factuals = to_numpy(self.factuals)
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
            ax.set_title(title, fontsize="small", fontweight="bold", parse_math=False)
            for j in range(k):
                ax = axes[i, j + 1]
                images[i, j + 1] = ax.imshow(cf[i, j].reshape(shape), cmap=cmap, vmin=lo,
                                             vmax=hi)
                ok = valid is None or bool(valid[i, j])
                ax.set_title(f"\u2192 {targets[i, j]}", fontsize="small", parse_math=False,
                             color="black" if ok else "red")
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        figure = axes[0, 0].figure
        if name is not None:
            figure.suptitle(str(name), parse_math=False)
        self.axes_ = axes
        self.images_ = images
        self.figure_ = figure
        return self
