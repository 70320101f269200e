"""Training: the classifier parameters of the three models, building, fitting and storing them.

Fitted models are stored with :func:`skct.io.save` (``models/<name>.skct``: JSON, numpy arrays
and plain tensors) and read back with :func:`skct.io.load`, which executes no code from the
file. A fit interrupted with Ctrl-C raises ``KeyboardInterrupt`` here, so that an incomplete
model is never recorded as a finished stage.
"""

from __future__ import annotations

import copy
import io
import time
import warnings

import numpy as np
from skorch.callbacks import Callback

from .. import io as skct_io
from ..search.generators import ECCoGenerator
from ..training import CounterfactualTrainedClassifier
from ._data import constraints_for
from ._files import finite_float, jsonable
from ._progress import fmt_time
from ._settings import CT_ONLY, MODELS, REFERENCE_STEP_SIZE, paper_settings
from ._stages import Computed, Unusable

__all__ = []


class EpochProgressCallback(Callback):
    """skorch callback: one progress line every ``every`` epochs."""

    def __init__(self, label="model", every=10):
        self.label = label
        self.every = every

    def on_train_begin(self, net, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        h = net.history[-1]
        epoch = h["epoch"]
        if epoch % self.every == 0 or epoch == net.max_epochs:
            valid = h.get("cf_valid")
            share = "" if valid is None or not np.isfinite(valid) else \
                f", valid counterfactuals {valid:.2f}"
            elapsed = time.perf_counter() - getattr(self, "_start", time.perf_counter())
            loss = h.get("train_loss")
            loss = "n/a" if loss is None else f"{loss:.4f}"
            print(f"    {self.label}: epoch {epoch}/{net.max_epochs}, loss "
                  f"{loss}{share} ({fmt_time(elapsed)})", flush=True)


# --------------------------------------------------------------------------------------------


def model_params(dataset, max_epochs, overrides, protocol=None, model_overrides=None):
    """Classifier parameters (JSON-able) of the baseline and of the two CT models.

    ``protocol`` (``{item: choice}``, see :data:`PROTOCOL_ITEMS`; None: skct's own) sets the
    training-time search step (``train_step``) and the initialisation and batch order
    (``training``); ``model_overrides`` (``{model name: {parameter: value}}``) changes single
    models last, e.g. ``{"ct_mutability": {"lambda_reg": 0.1}}``.
    """
    ct = {"ct_single": paper_settings(dataset, "single"),
          "ct_mutability": paper_settings(dataset, "mutability")}
    protocol = protocol or {}
    if protocol.get("train_step") == "reference":
        for p in ct.values():
            p["generator"]["step_size"] = REFERENCE_STEP_SIZE
    if protocol.get("training") == "reference":
        for p in ct.values():
            p.update(shuffle=False, weight_init="glorot")
    if max_epochs is not None:
        for p in ct.values():
            p["max_epochs"] = int(max_epochs)
    unknown = set(overrides) - set(CounterfactualTrainedClassifier().get_params())
    if unknown:
        raise ValueError(f"Unknown override(s) {sorted(unknown)}: overrides are parameters of "
                         "CounterfactualTrainedClassifier.")
    for key in ("module", "optimizer", "constraints", "callbacks", "random_state"):
        if key in overrides:
            raise ValueError(f"{key!r} cannot be overridden in an experiment.")
    baseline = {k: v for k, v in ct["ct_single"].items() if k not in CT_ONLY}
    for k, v in overrides.items():
        for p in ct.values():
            p[k] = v
        if k not in CT_ONLY:
            baseline[k] = v
    baseline.update(lambda_div=0.0, lambda_adv=0.0, lambda_reg=0.0)
    out = {"baseline": baseline, **ct}
    for name, extra in (model_overrides or {}).items():
        if name not in out:
            raise ValueError(f"model_overrides: unknown model {name!r}; known: {list(out)}.")
        unknown = set(extra) - set(CounterfactualTrainedClassifier().get_params())
        if unknown:
            raise ValueError(f"model_overrides[{name!r}]: unknown parameter(s) "
                             f"{sorted(unknown)}.")
        out[name].update(copy.deepcopy(extra))
    return {k: jsonable(v) for k, v in out.items()}


def build_classifier(params, constraints, random_state, label, verbose):
    kw = dict(params)
    gen = kw.pop("generator", None)
    if isinstance(gen, dict):
        kw["generator"] = ECCoGenerator(**gen)
    elif gen is not None:
        kw["generator"] = gen
    kw["hidden_layer_sizes"] = tuple(kw.get("hidden_layer_sizes", (32,)))
    callbacks = None
    if verbose >= 1:
        every = max(1, int(kw.get("max_epochs", 100)) // 10)
        callbacks = [("progress", EpochProgressCallback(label=label, every=every))]
    return CounterfactualTrainedClassifier(constraints=constraints, random_state=random_state,
                                           callbacks=callbacks, **kw)


def history_summary(clf):
    """The training summary of ``clf.history_``: epochs, last losses, share of valid
    counterfactuals.

    Only complete epochs count: after Ctrl-C the last row may lack its losses, and after no
    finished epoch the history is empty (then ``{"epochs": 0}``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> history_summary(SimpleNamespace(history_=[]))
    {'epochs': 0}
    >>> rows = [{"epoch": 1, "train_loss": 0.5, "cf_valid": 0.25}, {"epoch": 2}]
    >>> history_summary(SimpleNamespace(history_=rows))
    {'epochs': 1, 'train_loss_last': 0.5, 'cf_valid_first': 0.25, 'cf_valid_last': 0.25}
    """
    h = [row for row in (clf.history_ or []) if row.get("train_loss") is not None]
    out = {"epochs": len(h)}
    if not h:
        return out
    last = h[-1]
    out["train_loss_last"] = finite_float(last["train_loss"])
    for key in ("train_ce", "train_div", "train_reg", "train_adv"):
        if key in last:
            out[f"{key}_last"] = finite_float(last[key])
    valid = [e.get("cf_valid") for e in h if e.get("cf_valid") is not None]
    valid = [v for v in valid if np.isfinite(v)]
    if valid:
        out["cf_valid_first"] = finite_float(valid[0])
        out["cf_valid_last"] = finite_float(valid[-1])
    return out


def check_complete(name, clf, caught):
    """Raise ``KeyboardInterrupt`` when the fit of model ``name`` stopped early (Ctrl-C: the
    classifier warns and returns the model trained so far), naming the epochs done."""
    interrupted = any("Training was interrupted" in str(w.message) for w in caught)
    done = history_summary(clf)["epochs"]
    if interrupted or done < clf.max_epochs:
        raise KeyboardInterrupt(f"training {name} after {done} of {clf.max_epochs} epochs")


# --------------------------------------------------------------------------------------------
# Evaluation


def describe_training(name, params):
    """The progress line announcing the training of model ``name``."""
    text = f"train {name}: {params['max_epochs']} epochs, batch size {params['batch_size']}"
    if name == "baseline":
        return text
    return (text + f", {params['n_counterfactuals']} counterfactuals per epoch, lambda_adv "
            f"{params['lambda_adv']}, lambda_reg {params['lambda_reg']}, "
            + ("immutable features protected" if MODELS[name]["protect"]
               else "no mutability constraints"))


def fit_model(name, params, data, random_state, verbose, log, constraints=None):
    """Fit model ``name`` on the training rows: the classifier, its summary and its file.

    Returns a :class:`~skct.experiments._stages.Computed` whose ``value`` is the training
    summary (parameters, protection, history, skipped batches, training accuracy), ``files``
    the classifier stored with :func:`skct.io.save` (``models/<name>.skct``), ``obj`` the
    classifier and ``time_s`` the time of the fit alone. Raises ``KeyboardInterrupt`` when the
    fit was interrupted (nothing is stored then).
    """
    protect = MODELS[name]["protect"]
    if constraints is None:
        constraints = constraints_for(data, protect=protect)
    clf = build_classifier(params, constraints, random_state,
                           MODELS[name]["label"], verbose)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(data.X_train, data.y_train)
    elapsed = time.perf_counter() - start
    check_complete(name, clf, caught)
    n_nonfinite = sum("Non-finite training loss" in str(w.message) for w in caught)
    if n_nonfinite:
        log(f"train {name}: {n_nonfinite} batch(es) skipped for a non-finite loss")
    if verbose >= 1 and clf.callbacks is not None:  # keep model files free of print hooks
        clf.set_params(callbacks=None)
    buffer = io.BytesIO()
    skct_io.save(clf, buffer)
    meta = {"params": params, "protect": protect, "history": history_summary(clf),
            "nonfinite_batches": n_nonfinite,
            "train_accuracy": float((clf.predict(data.X_train) == data.y_train).mean())}
    return Computed(meta, files={model_file(name): buffer.getvalue()}, obj=clf,
                    time_s=elapsed)


def model_file(name):
    """Path of model ``name``'s file in the results folder (a :func:`skct.io.save` file)."""
    return f"models/{name}.skct"


def legacy_model_file(name):
    """Where earlier versions stored model ``name`` as a joblib pickle: never loaded, since
    loading a pickle runs code from the file; the model is retrained instead."""
    return f"models/{name}.pkl"


def load_model(name, files):
    """The classifier stored by :func:`fit_model`, read with :func:`skct.io.load`.

    The stage has already checked the bytes against the digest it recorded; loading them
    executes no code from the file (plain data, allow-listed classes). Raises
    :class:`~skct.experiments._stages.Unusable` (the stage then retrains) when the record
    lists no such file (a record of the former pickle format) or the file is refused.
    """
    data = files.get(model_file(name))
    if data is None:
        raise Unusable(f"its record lists no {model_file(name)}")
    try:
        return skct_io.load(io.BytesIO(data))
    except skct_io.UnsafeFileError as exc:
        raise Unusable(f"{model_file(name)} was refused: {exc}") from None
