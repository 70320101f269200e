"""CounterfactualTrainedClassifier: a scikit-learn classifier trained with counterfactuals."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring
from skorch.dataset import unpack_data
from torch import nn

from .._config import torch_threads
from ..constraints import ActionabilityConstraints
from ..search.generators import BaseGenerator, resolve_generator
from ..losses import adversarial_loss, contrastive_divergence, energy_ridge, protect
from ..search import search

__all__ = ["CounterfactualTrainedClassifier", "MLP"]

#: Prefixes routed to the inner skorch net (skorch's double-underscore convention).
_ROUTED_PREFIXES = ("module__", "optimizer__", "criterion__", "iterator_train__",
                    "iterator_valid__", "callbacks__", "dataset__")

#: Consecutive non-finite losses after which training stops.
_MAX_NONFINITE = 10


class MLP(nn.Module):
    """Multi-layer perceptron returning logits: D -> hidden... -> C, ReLU between layers.

    ``hidden_layer_sizes=()`` gives a linear model.
    """

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(32,)):
        super().__init__()
        layers, width = [], n_features
        for h in hidden_layer_sizes:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, X):
        return self.net(X)


class _CounterfactualNet(NeuralNet):
    """skorch net whose training loss adds the counterfactual training terms.

    Only documented hooks are overridden: ``on_epoch_begin`` (reset per-epoch state),
    ``on_batch_begin`` (one batched counterfactual search at the epoch's first training batch;
    which chunk of counterfactuals a batch uses) and ``train_step_single`` (the loss). The owner ``CounterfactualTrainedClassifier`` sets the
    private ``_ct`` state before fitting.
    """

    def get_default_callbacks(self):
        extra = [(f"train_{k}", PassthroughScoring(name=f"train_{k}", on_train=True))
                 for k in ("ce", "div", "reg", "adv")]
        base = list(super().get_default_callbacks())
        return base[:-1] + extra + base[-1:]  # keep PrintLog last

    # -- per epoch: generate counterfactuals ----------------------------------------------
    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        ct = self._ct
        if ct["epoch"] == 0:
            _restrict_to_training_rows(ct, dataset_train)
        ct["batch"] = -1
        ct["cfs"] = None
        epoch, ct["epoch"] = ct["epoch"], ct["epoch"] + 1  # 0-based epoch of this fit
        ct["generate"] = ct["active"] and epoch >= ct["burn_in_epochs"]
        self.history.record("cf_valid", float("nan"))

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        super().on_batch_begin(net, batch=batch, training=training, **kwargs)
        if not training:
            return
        ct = self._ct
        ct["batch"] += 1
        if ct["batch"] == 0 and ct["generate"]:
            # one batched search per epoch, run here (not in on_epoch_begin) so that skorch's
            # epoch timer, which starts after the net's own on_epoch_begin, includes it
            start = time.perf_counter()
            ct["cfs"] = _generate(self, ct)
            self.history.record("cf_valid", ct["cfs"]["valid_share"])
            self.history.record("cf_steps", ct["cfs"]["steps"])
            self.history.record("cf_time", time.perf_counter() - start)

    # -- per batch: the loss ----------------------------------------------------------------
    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        ce = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss = ce
        terms = _ct_terms(self, self._ct)
        if terms is not None:
            div, reg, adv = terms
            ct = self._ct
            loss = ce + ct["lambda_div"] * div + ct["lambda_reg"] * reg + ct["lambda_adv"] * adv
            self.history.record_batch("train_div", div.item())
            self.history.record_batch("train_reg", reg.item())
            self.history.record_batch("train_adv", adv.item())
        else:
            for k in ("div", "reg", "adv"):
                self.history.record_batch(f"train_{k}", 0.0)
        self.history.record_batch("train_ce", ce.item())
        if not torch.isfinite(loss):
            self._ct["nonfinite"] += 1
            if self._ct["nonfinite"] >= _MAX_NONFINITE:
                raise FloatingPointError(
                    f"The training loss was non-finite in {_MAX_NONFINITE} consecutive batches "
                    "(energies grew without bound). Raise lambda_reg (it keeps energies "
                    "bounded), lower lr or lambda_div."
                )
            warnings.warn("Non-finite training loss: this update was skipped.", RuntimeWarning,
                          stacklevel=2)
            return {"loss": loss.detach(), "y_pred": y_pred}
        self._ct["nonfinite"] = 0
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


def _restrict_to_training_rows(ct, dataset_train):
    """With a ``train_split``, draw factuals and x+ from the training rows only."""
    indices = getattr(dataset_train, "indices", None)  # a torch Subset from skorch's split
    if indices is None or len(indices) == ct["X"].shape[0]:
        return
    rows = torch.as_tensor(np.asarray(indices), device=ct["X"].device)
    ct["X"], ct["y"] = ct["X"][rows], ct["y"][rows]
    y = ct["y"].cpu().numpy()
    ct["class_index"] = [np.flatnonzero(y == c) if (y == c).any() else ci
                         for c, ci in enumerate(ct["class_index"])]


def _generate(net, ct):
    """One batched counterfactual search with the current model (no parameter gradients)."""
    X, y = ct["X"], ct["y"]  # [N, D], [N]
    rng = ct["rng"]
    n = X.shape[0]
    m = min(ct["n_counterfactuals"], n)
    idx = torch.as_tensor(rng.choice(n, size=m, replace=False), device=X.device)
    x = X[idx]  # [M, D]
    module = net.module_
    with torch.no_grad():
        was_training = module.training
        module.eval()
        pred = module(x).argmax(dim=1)  # [M]
        module.train(was_training)
    n_classes = ct["n_classes"]
    offset = torch.as_tensor(rng.randint(1, n_classes, size=m), device=X.device)
    target = (pred + offset) % n_classes  # uniform among classes other than the predicted one
    if ct["generator"].requires_calibration:  # e.g. ECCCo: conformal threshold of this model
        ct["generator"].calibrate(module, X, y)
    res = search(module, x, target, ct["generator"], ct["constraints"],
                 decision_threshold=ct["decision_threshold"], max_iter=ct["max_iter_cf"],
                 epsilon=ct["epsilon"])
    # x+: one random training row of the target class for every counterfactual
    target_np = target.cpu().numpy()
    plus_idx = np.empty(m, dtype=np.int64)
    for c in range(n_classes):  # loop over classes, not rows
        rows = np.flatnonzero(target_np == c)
        if rows.size:
            plus_idx[rows] = rng.choice(ct["class_index"][c], size=rows.size)
    x_plus = X[torch.as_tensor(plus_idx, device=X.device)]  # [M, D]
    x_cf = torch.where(res.converged[:, None], res.counterfactuals, x_plus)  # failed: x' := x+
    if ct["protect_immutable"]:
        x_plus = protect(x_plus, x_cf, ct["constraints"].mut)
    n_batches = max(1, -(-n // ct["batch_size"]))
    return {
        "x_cf": x_cf.detach(), "x_plus": x_plus.detach(), "target": target,
        "x_adv": res.nascent.detach(), "y_adv": y[idx],
        "chunks": torch.arange(m, device=X.device).tensor_split(n_batches),
        "valid_share": float(res.converged.float().mean()) if m else float("nan"),
        "steps": res.total_steps,
    }


def _ct_terms(net, ct):
    """Mean div, ridge and adversarial loss of the current batch's chunk (or None)."""
    cfs = ct["cfs"]
    if cfs is None:
        return None
    b = ct["batch"]
    chunks = cfs["chunks"]
    if b < 0 or b >= len(chunks) or chunks[b].numel() == 0:
        return None
    sel = chunks[b]
    target = cfs["target"][sel]
    k = sel.numel()
    # one forward for x+, x' and x_adv together
    both = torch.cat([cfs["x_plus"][sel], cfs["x_cf"][sel], cfs["x_adv"][sel]])  # [3K, D]
    logits = net.infer(both)  # [3K, C]
    lp, lc, la = logits[:k], logits[k:2 * k], logits[2 * k:]
    div = contrastive_divergence(lp, lc, target).mean()
    reg = energy_ridge(lp, lc, target).mean()
    adv = adversarial_loss(la, cfs["y_adv"][sel]).mean()
    return div, reg, adv


class CounterfactualTrainedClassifier(ClassifierMixin, BaseEstimator):
    """Neural network classifier trained with counterfactual training (CT).

    Minimises, per batch,
    ``CE(M(x), y) + lambda_div * mean(div) + lambda_reg * mean(ridge) + lambda_adv * mean(adv)``
    with ``E(x, y) = -logit_y(x)``, ``div = E(x+, y+) - E(x', y+)``,
    ``ridge = E(x+, y+)**2 + E(x', y+)**2`` and ``adv = CE(M(x_AE), y)``:

    - at the start of each epoch after the burn-in, ``n_counterfactuals`` training rows are drawn
      without replacement; each gets a target ``y+`` drawn uniformly from the classes other than
      its *predicted* class, and one batched search (``generator``, at most ``max_iter_cf``
      steps, stopping per row at ``p(y+|x') >= decision_threshold``) generates all
      counterfactuals ``x'`` with the current model. They are constants for the parameter
      gradient and are split into contiguous chunks, one per training batch of the epoch.
    - ``x+`` is a random training row of class ``y+``. A search that did not converge uses
      ``x' := x+`` (its div is 0; the ridge term still counts).
    - protected features (``protect_immutable=True``): for each feature d, ``x+[d] := x'[d]``
      when d is immutable, or may only increase and ``x'[d] > x+[d]``, or may only decrease and
      ``x'[d] < x+[d]``, so the model is not asked to make counterfactuals move along directions
      a person cannot act on (Proposition 3.1 of the paper).
    - ``x_AE`` is the last search iterate with ``||x_AE - x||_inf <= epsilon`` (the factual if
      none): a nascent counterfactual used as an adversarial example with the factual's label.

    With ``lambda_div = lambda_adv = lambda_reg = 0`` no counterfactual is generated and
    training is exactly conventional training with the same seed (the baseline).

    Parameters
    ----------
    module : torch.nn.Module class or instance, or None, default=None
        Network returning logits [n, n_classes]. None builds :class:`MLP` with
        ``hidden_layer_sizes`` sized from the data. Its constructor arguments are given with the
        ``module__`` prefix (e.g. ``module__n_channels=1``).
    hidden_layer_sizes : tuple of int, default=(32,)
        Hidden layers of the default MLP (``()`` for a linear model).
    lambda_div, lambda_adv, lambda_reg : float >= 0, default=0.5, 0.25, 0.1
        Weights of the contrastive divergence, adversarial and ridge terms.
    epsilon : float > 0, default=0.3
        L-infinity radius of the nascent adversarial example.
    generator : {"ecco", "generic", "eccco", "revise"} or BaseGenerator, default="ecco"
        Counterfactual generator used during training (ECCo: SGD step 0.25,
        ``lambda_cost=0.001``, ``lambda_energy=5.0``; ECCCo is re-calibrated on the training
        data with the current model before each epoch's search).
    decision_threshold : float in (0, 1), default=0.75
        tau: a search stops for a row once ``p(y+|x') >= tau``.
    max_iter_cf : int >= 1, default=30
        T: maximum search steps.
    n_counterfactuals : int >= 1, default=1000
        Counterfactuals generated per epoch (capped at the training set size).
    burn_in : float in [0, 1), default=0.0
        Fraction of ``max_epochs`` trained conventionally before CT starts.
    protect_immutable : bool, default=True
        Apply the protection rule above (switch off for ablations).
    constraints : ActionabilityConstraints or None, default=None
        Mutability and domain used in the search and by the protection rule (fitted on the
        training data; names need a DataFrame, e.g. ``pipe.set_output(transform="pandas")``).
        None means ``ActionabilityConstraints()``: all features mutable, ``"auto"`` bounds.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-3
    max_epochs : int, default=100
    batch_size : int, default=128
    train_split : callable or None, default=None
        skorch's validation split. None (default) trains on all data: unlike skorch's
        ``NeuralNetClassifier``, no 20% is silently held out.
    callbacks : list or None, default=None
        Extra skorch callbacks.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``.
    verbose : int, default=0
        1 prints skorch's epoch table with the loss components and the share of valid
        counterfactuals.
    device : str, default="cpu"
        "cpu" or "cuda".
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order, counterfactual sampling and targets.
    **kwargs
        Parameters routed to the inner skorch net with the prefixes ``module__``,
        ``optimizer__``, ``criterion__``, ``iterator_train__``, ``iterator_valid__``,
        ``callbacks__`` and ``dataset__``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    net_ : skorch.NeuralNet
        The fitted inner net (its ``history`` holds ``train_loss``, ``train_ce``,
        ``train_div``, ``train_reg``, ``train_adv`` and ``cf_valid`` per epoch).
    history_ : skorch.History
        Alias of ``net_.history``.
    constraints_ : ActionabilityConstraints
    generator_ : BaseGenerator
    logits_module_ : torch.nn.Module
        The trained network (returns logits).

    Examples
    --------
    >>> import numpy as np
    >>> from skct import CounterfactualTrainedClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(100, 2) - 2, rng.randn(100, 2) + 2].astype("float32")
    >>> y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    >>> clf = CounterfactualTrainedClassifier(max_epochs=10, n_counterfactuals=50,
    ...                                       random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> "train_div" in clf.history_[-1]
    True
    """

    _parameter_constraints = {
        "module": [None, type, nn.Module],
        "hidden_layer_sizes": [tuple, list],
        "lambda_div": [Interval(numbers.Real, 0, None, closed="left")],
        "lambda_adv": [Interval(numbers.Real, 0, None, closed="left")],
        "lambda_reg": [Interval(numbers.Real, 0, None, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "generator": [StrOptions({"generic", "ecco", "eccco", "revise"}), BaseGenerator],
        "decision_threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter_cf": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_counterfactuals": [Interval(numbers.Integral, 1, None, closed="left")],
        "burn_in": [Interval(numbers.Real, 0, 1, closed="left")],
        "protect_immutable": ["boolean"],
        "constraints": [ActionabilityConstraints, None],
        "optimizer": [type],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "train_split": [callable, None],
        "callbacks": [list, None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(self, module=None, *, hidden_layer_sizes=(32,), lambda_div=0.5,
                 lambda_adv=0.25, lambda_reg=0.1, epsilon=0.3, generator="ecco",
                 decision_threshold=0.75, max_iter_cf=30, n_counterfactuals=1000, burn_in=0.0,
                 protect_immutable=True, constraints=None, optimizer=torch.optim.Adam, lr=1e-3,
                 max_epochs=100, batch_size=128, train_split=None, callbacks=None,
                 warm_start=False, verbose=0, device="cpu", random_state=None, **kwargs):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lambda_div = lambda_div
        self.lambda_adv = lambda_adv
        self.lambda_reg = lambda_reg
        self.epsilon = epsilon
        self.generator = generator
        self.decision_threshold = decision_threshold
        self.max_iter_cf = max_iter_cf
        self.n_counterfactuals = n_counterfactuals
        self.burn_in = burn_in
        self.protect_immutable = protect_immutable
        self.constraints = constraints
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.train_split = train_split
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        vars(self).update(kwargs)

    # -- params with skorch-style routing -------------------------------------------------
    def _routed_params(self):
        """Extra keyword parameters given to ``__init__``/``set_params`` (not fitted state)."""
        names = set(self._get_param_names())
        return {k: v for k, v in vars(self).items()
                if k not in names and not k.startswith("_") and not k.endswith("_")}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        names = set(self._get_param_names())
        extra = {k: v for k, v in params.items()
                 if k.startswith(_ROUTED_PREFIXES) or (k not in names and k in vars(self))}
        vars(self).update(extra)
        rest = {k: v for k, v in params.items() if k not in extra}
        if rest:
            super().set_params(**rest)
        return self

    def _check_routed(self):
        for k in self._routed_params():
            if not k.startswith(_ROUTED_PREFIXES):
                raise ValueError(
                    f"Unknown parameter {k!r} of CounterfactualTrainedClassifier: extra "
                    f"parameters must start with one of {list(_ROUTED_PREFIXES)}."
                )

    # -- fitting --------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Train the network with counterfactual training.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric training data (float64 in, float32 inside).
        y : array-like of shape (n_samples,)
            Class labels of any type.

        Returns
        -------
        self : CounterfactualTrainedClassifier
        """
        self._check_routed()
        warm = self.warm_start and hasattr(self, "net_")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=not warm)
        check_classification_targets(y)
        if warm:
            y_enc = self._encode_labels(y)
        else:
            self._label_encoder = LabelEncoder().fit(y)
            self.classes_ = self._label_encoder.classes_
            y_enc = self._label_encoder.transform(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"CounterfactualTrainedClassifier needs at least two classes; y has one class "
                f"({self.classes_[0]!r})."
            )
        X32 = np.array(X, dtype=np.float32, copy=True)
        y64 = np.asarray(y_enc, dtype=np.int64)

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        with torch.random.fork_rng(devices=[]), torch_threads():
            torch.manual_seed(seed)
            if not warm:
                self.constraints_ = self._fit_constraints(X32)
                self.generator_ = resolve_generator(self.generator)
                if "random_state" in self.generator_.get_params() and \
                        self.generator_.random_state is None:
                    self.generator_.set_params(random_state=seed)
                self.generator_.fit(X32)
                self.net_ = self._build_net(X32.shape[1], len(self.classes_))
            net = self.net_
            net._ct = self._ct_state(X32, y64, rng, net)
            try:
                if warm:
                    net.partial_fit(X32, y64)
                else:
                    net.fit(X32, y64)
            finally:
                net._ct = None
        self.n_iter_ = len(net.history)
        return self

    def _fit_constraints(self, X32):
        c = clone(self.constraints) if self.constraints is not None else \
            ActionabilityConstraints()
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            needs_names = any(isinstance(k, str) for k in (c.mutability or {})) or \
                (isinstance(c.bounds, dict) and any(isinstance(k, str) for k in c.bounds))
            if needs_names:
                raise ValueError(
                    "constraints: features are named but X has no column names. Pass a "
                    "DataFrame, or inside a Pipeline call pipe.set_output(transform='pandas') "
                    "so the classifier receives column names (or use integer indices)."
                )
            return c.fit(X32)
        return c.fit(pd.DataFrame(X32, columns=names))

    def _build_net(self, n_features, n_classes):
        routed = self._routed_params()
        if self.module is None:
            module = MLP
            routed = {"module__n_features": n_features, "module__n_classes": n_classes,
                      "module__hidden_layer_sizes": tuple(self.hidden_layer_sizes), **routed}
        else:
            module = self.module
        return _CounterfactualNet(
            module,
            criterion=nn.CrossEntropyLoss,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=self.train_split,
            callbacks=list(self.callbacks) if self.callbacks is not None else None,
            warm_start=self.warm_start,
            verbose=self.verbose,
            device=self.device,
            iterator_train__shuffle=True,
            **routed,
        )

    def _ct_state(self, X32, y64, rng, net):
        device = torch.device(self.device)
        X_t = torch.as_tensor(X32, device=device)
        y_t = torch.as_tensor(y64, device=device)
        n_classes = len(self.classes_)
        active = (self.lambda_div > 0) or (self.lambda_adv > 0) or (self.lambda_reg > 0)
        return {
            "X": X_t, "y": y_t, "rng": rng, "n_classes": n_classes,
            "class_index": [np.flatnonzero(y64 == c) for c in range(n_classes)],
            "generator": self.generator_,
            "constraints": self.constraints_.to_torch(torch.float32, device),
            "decision_threshold": self.decision_threshold, "max_iter_cf": self.max_iter_cf,
            "epsilon": self.epsilon, "n_counterfactuals": self.n_counterfactuals,
            "batch_size": self.batch_size, "protect_immutable": self.protect_immutable,
            "lambda_div": self.lambda_div, "lambda_adv": self.lambda_adv,
            "lambda_reg": self.lambda_reg, "active": active,
            "burn_in_epochs": int(round(self.burn_in * self.max_epochs)),
            "epoch": 0, "batch": -1, "nonfinite": 0, "cfs": None, "generate": False,
        }

    def _encode_labels(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} not seen in the first fit "
                             f"(classes_={self.classes_.tolist()}).")
        return self._label_encoder.transform(y)

    # -- prediction -----------------------------------------------------------------------
    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        X32 = np.array(X, dtype=np.float32, copy=True)
        with torch.no_grad(), torch_threads():
            logits = self.net_.forward(X32, training=False)
        return logits.detach().cpu().double().numpy()

    def decision_function(self, X):
        """Logits (for two classes: logit difference, the score of ``classes_[1]``)."""
        logits = self._logits(X)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels."""
        logits = self._logits(X)
        return self.classes_[logits.argmax(axis=1)]

    # -- fitted helpers -------------------------------------------------------------------
    @property
    def history_(self):
        check_is_fitted(self)
        return self.net_.history

    @property
    def logits_module_(self):
        check_is_fitted(self)
        return self.net_.module_

    @property
    def criterion_(self):
        return nn.CrossEntropyLoss()

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_") and hasattr(self, "classes_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.device != "cpu"
        return tags
