"""Plots of a run: robustness curves and counterfactuals (decision surface or images)."""

from __future__ import annotations

import io

import numpy as np

from .._utils import derive_seed
from ..explain import CounterfactualExplainer
from ..search.generators import ECCoGenerator
from ._data import constraints_for
from ._settings import EXPERIMENTS, MODEL_NAMES, MODELS

__all__ = []


def _model_experiment(model):
    """The experiment whose test-time settings a model's pictures use."""
    return "mutability" if model == EXPERIMENTS["mutability"]["ct_model"] else "single"


def _png(fig, dpi):
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    return buffer.getvalue()


def make_plots(data, models, robustness, cfg, log):
    """Draw the PNG plots: ``(made, files)`` with ``made`` {name: path in the results folder,
    or ``"failed: ..."``} and ``files`` {path: PNG bytes}. A failing plot never stops a run."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        log(f"plots skipped: {exc}")
        return {"error": str(exc)}, {}
    made, files = {}, {}
    try:
        fig = _robustness_figure(plt, data, robustness)
        files["plots/robustness.png"] = _png(fig, 110)
        plt.close(fig)
        made["robustness"] = "plots/robustness.png"
    except Exception as exc:  # a failing plot must not lose a long run
        made["robustness"] = f"failed: {exc!r}"
    try:
        for name, fig, dpi in _counterfactual_figures(plt, data, models, cfg):
            path = f"plots/{name}.png"
            files[path] = _png(fig, dpi)
            plt.close(fig)
            made[name] = path
    except Exception as exc:
        made["counterfactuals"] = f"failed: {exc!r}"
    return made, files


def _robustness_figure(plt, data, robustness):
    from ..plotting import RobustnessCurveDisplay

    label = {m: MODELS[m]["label"] for m in MODEL_NAMES}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, attack in zip(axes, ("fgsm", "pgd")):
        eps = robustness["baseline"][attack]["epsilon"]
        acc = {label[m]: robustness[m][attack]["accuracy"] for m in MODEL_NAMES}
        RobustnessCurveDisplay(eps, acc, attack=attack).plot(
            ax=ax, name=f"{data.info['dataset']}: {attack.upper()}")
    fig.tight_layout()
    return fig


def _setting(data, model, cfg):
    """Constraints, tau and caption of a model's pictures (its experiment's test settings)."""
    exp = _model_experiment(model)
    protect = EXPERIMENTS[exp]["constrained"]
    tau = cfg["decision_threshold"][exp]
    name = (f"{MODELS[model]['label']} ({exp}: tau {tau:g}"
            + (", x0 immutable)" if protect else ")"))
    widen = (cfg.get("protocol") or {}).get("domain", "skct") == "skct"
    return constraints_for(data, protect=protect, widen_bounds=widen), tau, name


def _counterfactual_figures(plt, data, models, cfg):
    """Yield ``(name, figure, dpi)``: the decision surface of the 2D sets, MNIST's images."""
    from ..plotting import CounterfactualDisplay, ImageCounterfactualDisplay

    gen = ECCoGenerator(step_size=cfg["step_size"], lambda_cost=cfg["lambda_cost"],
                        lambda_energy=5.0, one_hot=cfg.get("one_hot", "accumulate"))
    if data.X_train.shape[1] == 2:
        fig, axes = plt.subplots(1, len(MODEL_NAMES), figsize=(5.5 * len(MODEL_NAMES), 4.5))
        rng = np.random.default_rng(derive_seed(cfg["random_state"], "plot"))
        show = rng.choice(len(data.X_test), size=min(8, len(data.X_test)), replace=False)
        for ax, m in zip(axes, MODEL_NAMES):
            cons, tau, name = _setting(data, m, cfg)
            CounterfactualDisplay.from_estimator(
                models[m], data.X_test, data.y_test, X_explain=data.X_test[show],
                generator=gen, target="opposite", constraints=cons,
                decision_threshold=tau, max_iter=cfg["max_iter"],
                grid_resolution=120, random_state=0, ax=ax, name=name)
        fig.tight_layout()
        yield "counterfactuals", fig, 110
    elif data.image_shape is not None:
        first = [int(np.flatnonzero(data.y_test == c)[0]) for c in range(2)]
        for m in MODEL_NAMES:
            cons, tau, name = _setting(data, m, cfg)
            explainer = CounterfactualExplainer(
                models[m], generator=gen, constraints=cons, decision_threshold=tau,
                max_iter=cfg["max_iter"], prefit=True, cost="l1", sparsify_changes=False,
                random_state=0).fit(data.X_train)
            disp = ImageCounterfactualDisplay.from_explainer(
                explainer, data.X_test[first], image_shape=data.image_shape,
                name=f"MNIST, {name}: ECCo counterfactuals")
            yield f"counterfactuals_{m}", disp.figure_, 90
