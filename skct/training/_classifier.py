"""CounterfactualTrainedClassifier: a scikit-learn classifier trained with counterfactuals."""

from __future__ import annotations

import copy
import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .._utils import draw_seed, eval_mode, fit_context as _fit_context, Interval, StrOptions
from .._config import torch_threads
from ..constraints import ActionabilityConstraints
from ..search.generators import BaseGenerator, resolve_generator
from ._mlp import MLP
from ._net import CounterfactualNet
from ._rng import stream_as_global
from ._validation import check_label_types, check_numeric_input, to_float32

__all__ = ["CounterfactualTrainedClassifier"]

#: Prefixes routed to the inner skorch net (skorch's double-underscore convention).
_ROUTED_PREFIXES = ("module__", "optimizer__", "criterion__", "iterator_train__",
                    "iterator_valid__", "callbacks__", "dataset__")

#: The classifier's parameters that are also parameters of the inner net, read at every fit.
_CT_PARAMS = ("lambda_div", "lambda_adv", "lambda_reg", "epsilon", "decision_threshold",
              "max_iter_cf", "n_counterfactuals", "burn_in", "protect_immutable", "weight_init",
              "fold_rows", "random_state")


def _first_seed(random_state):
    """The seed a net draws first from ``random_state``, without consuming it."""
    return draw_seed(copy.deepcopy(check_random_state(random_state)))


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
    weight_init : {"torch", "glorot"}, default="torch"
        Initial weights. ``"torch"``: each layer's own PyTorch initialisation. ``"glorot"``:
        every ``nn.Linear`` weight drawn Glorot (Xavier) uniform and every bias 0, Flux's
        ``Dense`` default used by the paper's code, seeded by ``random_state``. With a
        ``module`` of your own, ``"glorot"`` re-initialises each of its ``nn.Linear`` layers
        the same way and leaves its other layers as they are.
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
    fold_rows : bool, default=True
        Compute the logits of a training batch and of its counterfactual rows (``x_AE``,
        ``x+``, ``x'``) in one forward pass of the network, and one backward: the same
        results as separate passes up to float rounding, at close to the cost of a
        conventional step for small networks. A network with a batch normalisation or
        dropout layer always gets separate passes; set False for a network whose output for
        one row depends on the other rows of the call.
    constraints : ActionabilityConstraints or None, default=None
        Mutability and domain used in the search and by the protection rule (fitted on the
        training data; names need a DataFrame, e.g. ``pipe.set_output(transform="pandas")``).
        None means ``ActionabilityConstraints()``: all features mutable, ``"auto"`` bounds.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-3
    max_epochs : int, default=100
    batch_size : int, default=128
    shuffle : bool, default=True
        Draw the training batches in a new random order every epoch (seeded by
        ``random_state``). False iterates them in row order every epoch, as
        ``Flux.DataLoader`` does by default in the paper's code; the epoch's counterfactuals
        are still drawn at random.
    train_split : callable or None, default=None
        skorch's validation split. None (default) trains on all data: unlike skorch's
        ``NeuralNetClassifier``, no 20% is silently held out.
    callbacks : list or None, default=None
        Extra skorch callbacks.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``.
    verbose : int, default=0
        1 prints skorch's epoch table with the loss components and the share of valid
        counterfactuals (coloured only on a terminal).
    device : str, default="cpu"
        "cpu" or "cuda".
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order, dropout, counterfactual sampling and targets. Every
        fit draws from its own generators (never from torch's process-wide one), so an int
        gives bit-identical models under every joblib backend, threads included.
    **kwargs
        Parameters routed to the inner skorch net with the prefixes ``module__``,
        ``optimizer__``, ``criterion__``, ``iterator_train__``, ``iterator_valid__``,
        ``callbacks__`` and ``dataset__``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    net_ : CounterfactualNet
        The fitted inner skorch net (its ``history`` holds ``train_loss``, ``train_ce``,
        ``train_div``, ``train_reg``, ``train_adv``, ``cf_valid``, ``cf_steps`` and
        ``cf_time`` per epoch).
    history_ : skorch.History
        Alias of ``net_.history``.
    constraints_ : ActionabilityConstraints
    generator_ : BaseGenerator
    logits_module_ : torch.nn.Module
        The trained network (returns logits).

    Warns
    -----
    RuntimeWarning
        When a batch's loss is non-finite (the update is skipped; ten in a row raise
        ``FloatingPointError``), or when the energies run away (raise ``lambda_reg``).
    UserWarning
        When ``fit`` is interrupted with Ctrl-C: it returns the model trained so far and says
        after how many epochs.

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

    #: Models pickled before ``fold_rows`` existed read the default (clone, get_params, fit).
    fold_rows = True

    _parameter_constraints = {
        "module": [None, type, nn.Module],
        "hidden_layer_sizes": [tuple, list],
        "weight_init": [StrOptions({"torch", "glorot"})],
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
        "fold_rows": ["boolean"],
        "constraints": [ActionabilityConstraints, None],
        "optimizer": [type],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "train_split": [callable, None],
        "callbacks": [list, None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(self, module=None, *, hidden_layer_sizes=(32,), weight_init="torch",
                 lambda_div=0.5, lambda_adv=0.25, lambda_reg=0.1, epsilon=0.3,
                 generator="ecco", decision_threshold=0.75, max_iter_cf=30,
                 n_counterfactuals=1000, burn_in=0.0, protect_immutable=True, fold_rows=True,
                 constraints=None,
                 optimizer=torch.optim.Adam, lr=1e-3, max_epochs=100, batch_size=128,
                 shuffle=True, train_split=None, callbacks=None, warm_start=False, verbose=0,
                 device="cpu", random_state=None, **kwargs):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.weight_init = weight_init
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
        self.fold_rows = fold_rows
        self.constraints = constraints
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
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
            if k == "iterator_train__shuffle":
                raise ValueError("iterator_train__shuffle: set the classifier's own shuffle "
                                 "parameter instead (shuffle=True or False).")

    # -- fitting --------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Train the network with counterfactual training.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric training data (float64 in, float32 inside). Text columns raise an error
            naming them: encode them first (``OneHotEncoder`` in a ``ColumnTransformer``).
        y : array-like of shape (n_samples,)
            Class labels of any one type.

        Returns
        -------
        self : CounterfactualTrainedClassifier
        """
        self._check_routed()
        warm = self.warm_start and hasattr(self, "net_")
        check_numeric_input(X)
        check_label_types(y)
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=not warm)
        check_classification_targets(y)
        y64 = self._fit_labels(y, warm)
        X32 = to_float32(X)
        with torch_threads():
            if warm:
                params = self._net_ct_params()
                # a net pickled before one of these parameters existed: skorch only sets the
                # parameters it holds
                vars(self.net_).update({k: v for k, v in params.items()
                                        if k not in vars(self.net_)})
                self.net_.set_params(**params)
                # read from the net's attributes when the epoch's loader is built (skorch's
                # set_params refuses iterator parameters on an initialised net)
                setattr(self.net_, "iterator_train__shuffle", self.shuffle)
                self.net_.partial_fit(X32, y64)
            else:
                self.constraints_ = self._fit_constraints(X32)
                self.generator_ = self._fit_generator(X32)
                self.net_ = self._build_net(X32.shape[1], len(self.classes_))
                self.net_.fit(X32, y64)
        self.n_iter_ = len(self.net_.history)
        return self

    def _fit_labels(self, y, warm):
        """Class indices of ``y`` (int64), fitting ``classes_`` on the first fit."""
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
        return np.asarray(y_enc, dtype=np.int64)

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

    def _fit_generator(self, X32):
        """The training-time generator, seeded from ``random_state`` and fitted on ``X``.

        A custom generator whose ``fit`` draws from torch's global generator gets the fit's
        seed there, under the lock that keeps concurrent fits apart.
        """
        seed = _first_seed(self.random_state)
        generator = resolve_generator(self.generator)
        if "random_state" in generator.get_params() and generator.random_state is None:
            generator.set_params(random_state=seed)
        with stream_as_global(torch.Generator().manual_seed(seed)):
            return generator.fit(X32)

    def _net_ct_params(self):
        params = {k: getattr(self, k) for k in _CT_PARAMS}
        return {**params, "generator": self.generator_, "constraints": self.constraints_}

    def _build_net(self, n_features, n_classes):
        routed = self._routed_params()
        if self.module is None:
            module = MLP
            routed = {"module__n_features": n_features, "module__n_classes": n_classes,
                      "module__hidden_layer_sizes": tuple(self.hidden_layer_sizes), **routed}
        else:
            module = self.module
        return CounterfactualNet(
            module,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=self.train_split,
            callbacks=list(self.callbacks) if self.callbacks is not None else None,
            warm_start=self.warm_start,
            verbose=self.verbose,
            device=self.device,
            # shuffle=False is the paper's code: Flux.DataLoader((Xtrain, ytrain); batchsize)
            # keeps row order (CounterfactualTraining.jl,
            # paper/experiments/CTExperiments/src/experiment.jl)
            iterator_train__shuffle=self.shuffle,
            **self._net_ct_params(),
            **routed,
        )

    def _encode_labels(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} not seen in the first fit "
                             f"(classes_={self.classes_.tolist()}).")
        return self._label_encoder.transform(y)

    # -- prediction -----------------------------------------------------------------------
    def _logits(self, X):
        check_is_fitted(self)
        check_numeric_input(X)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        X32 = to_float32(X)
        with torch.no_grad(), torch_threads(), eval_mode(self.net_.module_):
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
