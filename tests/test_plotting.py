"""Tests of skct.plotting: every display renders with the Agg backend and returns itself."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skct import CounterfactualExplainer, CounterfactualTrainedClassifier  # noqa: E402
from skct.metrics import adversarial_accuracy  # noqa: E402
from skct.plotting import (  # noqa: E402
    CounterfactualDisplay,
    ImageCounterfactualDisplay,
    RobustnessCurveDisplay,
)

BASE = dict(lambda_div=0, lambda_adv=0, lambda_reg=0, lr=0.01, random_state=0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def blobs2d():
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(60, 2) * 0.6 - 1.5, rng.randn(60, 2) * 0.6 + 1.5].astype(np.float32)
    y = np.r_[np.zeros(60), np.ones(60)].astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def clf2d(blobs2d):
    X, y = blobs2d
    return CounterfactualTrainedClassifier(max_epochs=20, **BASE).fit(X, y)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 8.0 - 1.0).astype(np.float32)  # [0, 16] -> [-1, 1]
    clf = CounterfactualTrainedClassifier(max_epochs=10, **BASE).fit(X, y)
    return X, y, clf


# -- CounterfactualDisplay ------------------------------------------------------------------------


def _check_cf_display(disp, n_explain):
    assert isinstance(disp, CounterfactualDisplay)
    assert isinstance(disp.ax_, Axes)
    assert isinstance(disp.figure_, Figure)
    assert disp.ax_.figure is disp.figure_
    assert disp.counterfactuals.shape == (n_explain, 2)
    # one star per counterfactual, at the counterfactuals
    assert disp.counterfactuals_.get_paths()[0] is not None
    np.testing.assert_allclose(disp.counterfactuals_.get_offsets(), disp.counterfactuals)
    assert disp.counterfactuals_ in disp.ax_.collections
    # one search path per counterfactual, from its factual to it
    assert len(disp.paths_) == n_explain
    for line, cf in zip(disp.paths_, disp.counterfactuals):
        assert line in disp.ax_.lines
        xy = line.get_xydata()
        np.testing.assert_allclose(xy[-1], cf)
    np.testing.assert_allclose(disp.factuals_.get_offsets(),
                               [line.get_xydata()[0] for line in disp.paths_])
    assert len(disp.scatter_.get_offsets()) == len(disp.X)
    assert disp.contour_ is not None


def test_counterfactual_display_from_estimator(blobs2d, clf2d):
    X, y = blobs2d
    disp = CounterfactualDisplay.from_estimator(clf2d, X, y, n_explain=4, grid_resolution=50,
                                                random_state=0, name="MLP")
    _check_cf_display(disp, 4)
    assert disp.ax_.get_title() == "MLP"
    assert disp.xx.shape == disp.yy.shape == disp.proba.shape == (50, 50)
    assert ((disp.proba >= 0) & (disp.proba <= 1)).all()
    assert disp.boundary_ is not None
    # the paths really move: at least one counterfactual differs from its factual
    starts = np.array([line.get_xydata()[0] for line in disp.paths_])
    assert np.abs(starts - disp.counterfactuals).max() > 0
    # factuals are rows of X (no preprocessing: model space == data space)
    assert all(np.isclose(X, s, atol=1e-6).all(axis=1).any() for s in starts)
    # the grid covers the data and the counterfactuals
    pts = np.r_[X, disp.counterfactuals]
    assert disp.xx.min() <= pts[:, 0].min() and disp.xx.max() >= pts[:, 0].max()
    assert disp.yy.min() <= pts[:, 1].min() and disp.yy.max() >= pts[:, 1].max()


def test_counterfactual_display_existing_ax_and_x_explain(blobs2d, clf2d):
    X, y = blobs2d
    fig, (ax0, ax1) = plt.subplots(1, 2)
    disp = CounterfactualDisplay.from_estimator(clf2d, X, y, X_explain=X[[0, 1, 70]],
                                                target="opposite", grid_resolution=30,
                                                max_iter=50, ax=ax1)
    assert disp.ax_ is ax1
    assert disp.figure_ is fig
    assert not ax0.collections and not ax0.lines
    _check_cf_display(disp, 3)
    np.testing.assert_array_equal(disp.targets, [1, 1, 0])


def test_counterfactual_display_from_explainer_keeps_explainer(blobs2d, clf2d):
    X, y = blobs2d
    explainer = CounterfactualExplainer(clf2d, target="opposite", max_iter=50,
                                        random_state=0).fit(X, y)
    disp = CounterfactualDisplay.from_explainer(explainer, X, y, X[:3], grid_resolution=30)
    _check_cf_display(disp, 3)
    assert explainer.return_path is False  # the caller's explainer is untouched
    # recomputing by hand from the display's arrays redraws the same plot
    again = CounterfactualDisplay(disp.xx, disp.yy, disp.proba, disp.X, disp.y,
                                  disp.counterfactuals, paths=disp.paths,
                                  targets=disp.targets).plot()
    _check_cf_display(again, 3)
    assert again.ax_ is not disp.ax_


def test_counterfactual_display_pipeline_plots_model_space(blobs2d):
    X, y = blobs2d
    X = pd.DataFrame(X * np.array([100.0, 0.01], dtype=np.float32) + 50,
                     columns=["income", "debt"])
    pipe = make_pipeline(StandardScaler(), CounterfactualTrainedClassifier(max_epochs=10, **BASE))
    pipe.fit(X, y)
    disp = CounterfactualDisplay.from_estimator(pipe, X, y, n_explain=2, grid_resolution=30,
                                                random_state=0)
    _check_cf_display(disp, 2)
    Z = pipe[:-1].transform(X)
    np.testing.assert_allclose(disp.scatter_.get_offsets(), Z, rtol=1e-5, atol=1e-5)
    assert np.abs(disp.counterfactuals).max() < 10  # standardised units, not raw ones
    assert disp.ax_.get_xlabel() == "income" and disp.ax_.get_ylabel() == "debt"


def test_counterfactual_display_multiclass():
    rng = np.random.RandomState(0)
    centers = np.array([[-2, 0], [2, 0], [0, 3]])
    X = np.concatenate([c + 0.5 * rng.randn(40, 2) for c in centers]).astype(np.float32)
    y = np.repeat(["a", "b", "c"], 40)
    clf = CounterfactualTrainedClassifier(max_epochs=15, **BASE).fit(X, y)
    disp = CounterfactualDisplay.from_estimator(clf, X, y, n_explain=3, grid_resolution=30,
                                                random_state=0)
    _check_cf_display(disp, 3)
    assert disp.proba.shape == (30, 30, 3)
    assert disp.boundary_ is None
    labels = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert {"class a", "class b", "class c", "counterfactual"} <= set(labels)


def test_counterfactual_display_needs_two_features(blobs2d):
    X, y = blobs2d
    X3 = np.c_[X, X[:, :1]]
    clf = CounterfactualTrainedClassifier(max_epochs=2, **BASE).fit(X3, y)
    with pytest.raises(ValueError, match="exactly 2 features"):
        CounterfactualDisplay.from_estimator(clf, X3, y)
    explainer = CounterfactualExplainer(clf).fit(X3, y)
    with pytest.raises(ValueError, match="exactly 2 features"):
        CounterfactualDisplay.from_explainer(explainer, X3, y)


# -- ImageCounterfactualDisplay -------------------------------------------------------------------


def test_image_display_default_targets(digits):
    X, y, clf = digits
    explainer = CounterfactualExplainer(clf, max_iter=30, random_state=0).fit(X, y)
    disp = ImageCounterfactualDisplay.from_explainer(explainer, X[:5], n_rows=2, name="digits")
    assert isinstance(disp, ImageCounterfactualDisplay)
    assert isinstance(disp.figure_, Figure)
    assert disp.axes_.shape == (2, 1 + 9)  # every class but the predicted one
    assert all(isinstance(ax, Axes) for ax in disp.axes_.ravel())
    assert len(disp.figure_.axes) == 2 * 10
    assert disp.images_[0, 0].get_array().shape == (8, 8)
    assert disp.counterfactuals.shape == (2, 9, 64)
    pred = clf.predict(X[:2])
    for i in range(2):
        assert pred[i] not in disp.targets[i]
        assert sorted(disp.targets[i].tolist() + [pred[i]]) == list(range(10))
        assert disp.axes_[i, 0].get_title() == f"factual ({pred[i]})"
        assert [ax.get_title() for ax in disp.axes_[i, 1:]] == \
            [f"\u2192 {t}" for t in disp.targets[i]]
    assert disp.figure_._suptitle.get_text() == "digits"


def test_image_display_given_targets_and_axes(digits):
    X, y, clf = digits
    explainer = CounterfactualExplainer(clf, max_iter=30, random_state=0).fit(X, y)
    fig, axes = plt.subplots(3, 3)
    disp = ImageCounterfactualDisplay.from_explainer(explainer, X[:3], targets=[3, 8],
                                                     image_shape=(8, 8), axes=axes)
    assert disp.figure_ is fig
    assert disp.axes_.shape == (3, 3)
    assert disp.axes_[0, 0] is axes[0, 0]
    np.testing.assert_array_equal(disp.targets, [[3, 8]] * 3)
    # the counterfactual images are the explainer's counterfactuals
    res = CounterfactualExplainer(clf, max_iter=30, random_state=0).fit(X, y).explain(
        X[[0]], target=8)
    np.testing.assert_allclose(disp.counterfactuals[0, 1], res.counterfactuals[0], atol=1e-6)
    np.testing.assert_allclose(disp.images_[0, 2].get_array().ravel(), res.counterfactuals[0],
                               atol=1e-6)

    with pytest.raises(ValueError, match="unknown class label"):
        ImageCounterfactualDisplay.from_explainer(explainer, X[:1], targets=[11])


def test_image_display_plot_into_figure():
    rng = np.random.RandomState(0)
    fact = rng.rand(2, 16)
    disp = ImageCounterfactualDisplay(fact, rng.rand(2, 3, 16), ["a", "b", "c"],
                                      valid=np.array([[1, 1, 0], [1, 0, 1]], bool))
    fig = plt.figure()
    assert disp.plot(fig=fig) is disp
    assert disp.figure_ is fig
    assert disp.axes_.shape == (2, 4)
    assert disp.images_[1, 0].get_array().shape == (4, 4)
    assert disp.axes_[0, 3].title.get_color() == "red"
    with pytest.raises(ValueError, match="image_shape"):
        ImageCounterfactualDisplay(rng.rand(1, 10), rng.rand(1, 1, 10), [0]).plot()


# -- RobustnessCurveDisplay -----------------------------------------------------------------------


def test_robustness_curve_from_estimators(blobs2d, clf2d):
    X, y = blobs2d
    pipe = make_pipeline(StandardScaler(),
                         CounterfactualTrainedClassifier(max_epochs=5, **BASE)).fit(X, y)
    eps = [0.0, 0.5, 1.0, 2.0]
    disp = RobustnessCurveDisplay.from_estimators({"mlp": clf2d, "scaled": pipe}, X, y,
                                                  epsilons=eps)
    assert isinstance(disp, RobustnessCurveDisplay)
    assert isinstance(disp.ax_, Axes) and isinstance(disp.figure_, Figure)
    assert len(disp.ax_.get_lines()) == 2
    assert list(disp.lines_) == ["mlp", "scaled"]
    assert [t.get_text() for t in disp.ax_.get_legend().get_texts()] == ["mlp", "scaled"]
    np.testing.assert_allclose(disp.epsilons, eps)
    expected = adversarial_accuracy(clf2d, X, y, epsilons=eps)["accuracy"]
    np.testing.assert_allclose(disp.lines_["mlp"].get_ydata(), expected)
    np.testing.assert_allclose(disp.lines_["mlp"].get_xdata(), eps)
    assert disp.accuracies["mlp"][0] > 0.9  # clean accuracy
    assert disp.accuracies["mlp"][-1] < disp.accuracies["mlp"][0]
    assert "FGSM" in disp.ax_.get_title()


def test_robustness_curve_pgd_labels_and_ax(blobs2d, clf2d):
    X, y = blobs2d
    labels = np.where(y == 1, "yes", "no")
    clf = CounterfactualTrainedClassifier(max_epochs=5, **BASE).fit(X, labels)
    fig, ax = plt.subplots()
    disp = RobustnessCurveDisplay.from_estimators(
        {"conventional": clf}, X, labels, attack="pgd", epsilons=[0.0, 1.0], ax=ax,
        n_steps=5, step_size=0.3, random_state=0, name="PGD on blobs")
    assert disp.ax_ is ax and disp.figure_ is fig
    assert len(ax.get_lines()) == 1
    assert disp.lines_["conventional"].get_label() == "conventional"
    assert ax.get_title() == "PGD on blobs"
    assert disp.attack == "pgd"
    with pytest.raises(ValueError, match="unknown class label"):
        RobustnessCurveDisplay.from_estimators({"m": clf}, X, y)


def test_robustness_curve_skorch_and_plot():
    from skorch import NeuralNetClassifier

    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(40, 2) - 1, rng.randn(40, 2) + 1].astype(np.float32)
    y = np.r_[np.zeros(40), np.ones(40)].astype(np.int64)
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2),
                            torch.nn.Softmax(dim=-1)),
        max_epochs=5, lr=0.1, train_split=None, verbose=0).fit(X, y)
    disp = RobustnessCurveDisplay.from_estimators({"skorch": net}, X, y, epsilons=[0, 0.3])
    assert list(disp.lines_) == ["skorch"]
    manual = RobustnessCurveDisplay([0, 1, 2], {"a": [1, 0.5, 0], "b": [1, 0.9, 0.8]},
                                    attack="pgd").plot()
    assert len(manual.ax_.get_lines()) == 2
    assert manual.ax_.get_title() == "PGD robustness"


# -- user text is shown literally ---------------------------------------------------------------
def _texts(fig):
    from matplotlib.text import Text

    fig.canvas.draw()  # a maths parse error of "$^$" would raise here
    texts = [t for t in fig.findobj(Text) if "$" in t.get_text()]
    assert not any(t.get_parse_math() for t in texts)
    return {t.get_text() for t in texts}


def test_dollar_signs_are_literal_in_every_display():
    xx, yy = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))
    y = np.array(["$x$", "p$^$", "$x$"], dtype=object)
    disp = CounterfactualDisplay(xx, yy, (xx + 1) / 2, np.zeros((3, 2)), y, np.ones((1, 2)),
                                 paths=[np.array([[0.0, 0.0], [1.0, 1.0]])],
                                 targets=np.array(["p$^$"], dtype=object),
                                 feature_names=["a$^$b", "$y$"]).plot(name="m$^$")
    assert {"a$^$b", "$y$", "m$^$", "class $x$", "class p$^$"} <= _texts(disp.figure_)
    images = ImageCounterfactualDisplay(np.zeros((1, 4)), np.zeros((1, 2, 4)), ["$^$", "$b$"],
                                        predicted=["a$^$"]).plot(name="n$^$")
    assert {"\u2192 $^$", "\u2192 $b$", "factual (a$^$)", "n$^$"} <= _texts(images.figure_)
    curves = RobustnessCurveDisplay([0.0, 0.1], {"m$^$": [1.0, 0.5]}).plot(name="t$^$")
    assert {"m$^$", "t$^$"} <= _texts(curves.figure_)
