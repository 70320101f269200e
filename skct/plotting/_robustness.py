"""RobustnessCurveDisplay: accuracy under an adversarial attack against its budget."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._utils import labels_to_indices
from ..explain import ModelAdapter
from ._base import check_matplotlib_support, literal, pyplot

__all__ = ["RobustnessCurveDisplay"]


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
            target = labels_to_indices(np.asarray(y), adapter.classes_, "y")
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
        plt = pyplot(f"{type(self).__name__}.plot")
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
        ax.set_title(str(name) if name is not None else f"{str(self.attack).upper()} robustness",
                     parse_math=False)
        literal(ax.legend(loc="best").get_texts())
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
