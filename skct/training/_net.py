"""The skorch net of counterfactual training: CT parameters, loss terms and random streams."""

from __future__ import annotations

import contextlib
import math
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PassthroughScoring
from skorch.dataset import unpack_data
from skorch.history import History
from skorch.utils import to_tensor
from sklearn.utils import check_random_state
from torch import nn

from .._utils import draw_seed
from ..search._modes import native_allowed
from . import _loss
from ._guard import TrainingGuard, explain_nonfinite
from ._loss import COMPONENTS, component_weights, split_components
from ._log import EpochLog
from ._mlp import glorot_init_
from ._rng import StreamDataLoader, cuda_seeded, stream_as_global
from ._search import CounterfactualSearch
from ._state import FitState

__all__ = ["CounterfactualNet"]

#: History keys of the logged loss components, in the order of ``COMPONENTS``.
_RECORDED = tuple(f"train_{name}" for name in COMPONENTS[:4])

#: Layers whose output for a row depends on the other rows of the call or on random draws:
#: a module with one of them (or any layer keeping running statistics) is never folded.
_ROW_COUPLED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                nn.FeatureAlphaDropout, nn.SyncBatchNorm)


class CounterfactualNet(NeuralNet):
    """skorch net trained with counterfactual training (CT).

    The training loss of a batch is
    ``CE + lambda_div * mean(div) + lambda_reg * mean(ridge) + lambda_adv * mean(adv)`` over
    the chunk of this epoch's counterfactuals assigned to the batch (see
    :class:`~skct.CounterfactualTrainedClassifier`, which builds and fits this net). It uses
    skorch's documented extension points only:

    - the CT settings are ``__init__`` parameters;
    - the callback :class:`~skct.training.CounterfactualSearch` runs each epoch's search;
    - ``get_loss`` adds the CT terms and records ``train_ce``, ``train_div``, ``train_reg`` and
      ``train_adv`` per batch (epoch means in the history);
    - ``train_step_single`` computes the logits of a batch and of its counterfactuals in one
      forward pass (``fold_rows``); with the net's own ``get_loss`` (not overridden) that step
      computes the same loss and records the same components itself, with the loss's
      gradient with respect to the logits (from one native pass where a C compiler is
      available and skct's native-code switches allow it), and runs the backward pass from
      the logits;
    - the callback :class:`~skct.training.TrainingGuard` skips non-finite updates and warns
      about runaway energies;
    - ``initialize_module`` and ``train_step_single`` draw from the fit's own torch generator
      (see :mod:`skct.training._rng`), and the data loaders are
      :class:`~skct.training.StreamDataLoader`, so concurrent fits never share random numbers.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        Returns logits [n, n_classes].
    *args, **kwargs
        skorch's ``NeuralNet`` parameters.
    criterion : default=torch.nn.CrossEntropyLoss
    lambda_div, lambda_adv, lambda_reg : float, default=0.5, 0.25, 0.1
        Weights of the CT terms; all zero means conventional training (no search).
    epsilon : float, default=0.3
        L-infinity radius of the nascent adversarial example.
    generator : BaseGenerator or None, default=None
        Fitted generator of the training-time search (needed when a weight is positive).
    constraints : ActionabilityConstraints or None, default=None
        Fitted constraints of the search and the protection rule (None: unconstrained).
    decision_threshold : float, default=0.75
    max_iter_cf : int, default=30
    n_counterfactuals : int, default=1000
    burn_in : float, default=0.0
        Share of ``max_epochs`` trained conventionally before CT starts.
    protect_immutable : bool, default=True
    weight_init : {"torch", "glorot"}, default="torch"
        "torch": the module's own initialisation. "glorot": after it, every ``nn.Linear`` gets
        Glorot-uniform weights and zero biases (``glorot_init_`` of ``skct.training._mlp``, drawn
        from the fit's stream).
    fold_rows : bool, default=True
        Run a batch's rows and its counterfactual rows (``x_adv``, ``x+``, ``x'``) through the
        module in one forward pass, and one backward. Same results as separate passes up to
        float rounding for a module that treats rows independently; a module with a batch
        normalisation or dropout layer always gets separate passes. Set False for a module
        whose output for a row depends on the other rows of the call.
    random_state : int, RandomState or None, default=None
        Every fit draws a seed from it first (module initialisation, batch order, dropout),
        then the searched rows, their targets and ``x+``.
    train_split : default=None
        No validation split by default (skorch's default holds out 20%).

    Attributes
    ----------
    fit_state_ : FitState or None
        The state of the fit in progress (None outside ``fit``).

    Examples
    --------
    >>> import numpy as np
    >>> from skct.training import MLP, CounterfactualNet
    >>> X = np.random.RandomState(0).randn(64, 2).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> net = CounterfactualNet(MLP, module__n_features=2, module__n_classes=2, lambda_div=0,
    ...                         lambda_adv=0, lambda_reg=0, max_epochs=2, verbose=0,
    ...                         random_state=0).fit(X, y)
    >>> len(net.history), net.fit_state_ is None
    (2, True)
    """

    #: Nets pickled before ``fold_rows`` existed read the default.
    fold_rows = True

    def __init__(self, module, *args, criterion=nn.CrossEntropyLoss, lambda_div=0.5,
                 lambda_adv=0.25, lambda_reg=0.1, epsilon=0.3, generator=None, constraints=None,
                 decision_threshold=0.75, max_iter_cf=30, n_counterfactuals=1000, burn_in=0.0,
                 protect_immutable=True, weight_init="torch", fold_rows=True,
                 random_state=None, iterator_train=StreamDataLoader,
                 iterator_valid=StreamDataLoader, train_split=None, **kwargs):
        super().__init__(module, *args, criterion=criterion, iterator_train=iterator_train,
                         iterator_valid=iterator_valid, train_split=train_split, **kwargs)
        self.lambda_div = lambda_div
        self.lambda_adv = lambda_adv
        self.lambda_reg = lambda_reg
        self.epsilon = epsilon
        self.generator = generator
        self.constraints = constraints
        self.decision_threshold = decision_threshold
        self.max_iter_cf = max_iter_cf
        self.n_counterfactuals = n_counterfactuals
        self.burn_in = burn_in
        self.protect_immutable = protect_immutable
        self.weight_init = weight_init
        self.fold_rows = fold_rows
        self.random_state = random_state
        self.fit_state_ = None

    @property
    def ct_active(self):
        """Whether any CT weight is positive (otherwise no counterfactual is generated)."""
        return self.lambda_div > 0 or self.lambda_adv > 0 or self.lambda_reg > 0

    def get_default_callbacks(self):
        base = [cb for cb in super().get_default_callbacks() if cb[0] != "print_log"]
        components = [(f"train_{k}", PassthroughScoring(name=f"train_{k}", on_train=True))
                      for k in ("ce", "div", "reg", "adv")]
        return base + components + [("counterfactual_search", CounterfactualSearch()),
                                    ("training_guard", TrainingGuard()),
                                    ("print_log", EpochLog())]

    # -- one state and one random stream per fit ---------------------------------------------
    def fit(self, X, y=None, **fit_params):
        with self._fit_scope():
            return super().fit(X, y, **fit_params)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        with self._fit_scope():
            return super().partial_fit(X, y, classes=classes, **fit_params)

    @contextlib.contextmanager
    def _fit_scope(self):
        if self.fit_state_ is not None:  # fit() runs partial_fit(): one fit, one state
            yield
            return
        if self.ct_active and self.generator is None:
            raise ValueError("CounterfactualNet: generator is None but a CT weight is positive; "
                             "pass a fitted generator (e.g. ECCoGenerator().fit(X)).")
        rng = check_random_state(self.random_state)
        seed = draw_seed(rng)
        self.fit_state_ = FitState(seed=seed, rng=rng,
                                   stream=torch.Generator().manual_seed(seed),
                                   native_loss=native_allowed())
        try:
            with cuda_seeded(self.device, seed):
                yield
        finally:
            self.fit_state_ = None

    def initialize_module(self):
        """skorch's module initialisation, drawing from the fit's stream (under a lock).

        With ``weight_init="glorot"`` every ``nn.Linear`` is then re-initialised from the same
        stream (Glorot-uniform weights, zero biases).
        """
        if self.weight_init not in ("torch", "glorot"):
            raise ValueError(f"weight_init must be 'torch' or 'glorot', got {self.weight_init!r}.")
        state = self.fit_state_
        stream = state.stream if state is not None else \
            torch.Generator().manual_seed(draw_seed(check_random_state(self.random_state)))
        with stream_as_global(stream):
            out = super().initialize_module()
        if self.weight_init == "glorot":
            glorot_init_(self.module_, generator=stream)
        return out

    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix in ("iterator_train", "iterator_valid") and self.fit_state_ is not None and \
                getattr(self, prefix) is StreamDataLoader:
            params.setdefault("generator", self.fit_state_.stream)
        return params

    def train_step_single(self, batch, **fit_params):
        """skorch's step; dropout and other draws in it come from the fit's stream.

        In a batch with counterfactuals, the batch's rows and the chunk's ``x_adv``, ``x+``
        and ``x'`` go through the module in one forward pass (and one backward) when
        ``fold_rows`` is True, the module has no batch normalisation or dropout layer and no
        ``fit_params`` are given; ``get_loss`` receives the batch's logits as ``y_pred``.
        """
        state = self.fit_state_
        if state is None:
            return super().train_step_single(batch, **fit_params)
        if state.draws_global.get("train_step") is False:  # no draws: no lock, no context
            return self._train_step(state, batch, fit_params)
        with state.global_draws_from_stream("train_step"):
            return self._train_step(state, batch, fit_params)

    def _train_step(self, state, batch, fit_params):
        rows = _batch_rows(state)
        if rows is None or fit_params or not self._folds(state):
            return super().train_step_single(batch, **fit_params)
        return self._folded_step(batch, rows)

    def _folds(self, state):
        if not self.fold_rows:
            return False
        if state.fold is None:
            state.fold = not any(isinstance(layer, _ROW_COUPLED) or hasattr(layer, "running_mean")
                                 for layer in self.module_.modules())
        return state.fold

    def _folded_step(self, batch, rows):
        """One forward + backward of ``[batch rows; extra]``, ``rows`` the chunk's ``x_adv``,
        ``x+`` and ``x'`` (``extra`` [3K, ...]) and their labels (see train_step_single).

        With the net's own ``get_loss`` and the default criterion, the loss comes with its
        gradient with respect to the logits (``skct.training._loss.ct_terms``) and the
        backward pass starts from the logits: the same gradients, no autograd node for the
        loss. A subclass's ``get_loss`` is called as skorch calls it.
        """
        state = self.fit_state_
        extra = rows[0]
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        if not (isinstance(x, torch.Tensor) and x.dtype == extra.dtype
                and x.shape[1:] == extra.shape[1:]):
            return super().train_step_single(batch)
        logits = self.infer(torch.cat([x, extra]))  # [B + 3K, C]
        y_pred = logits[:x.shape[0]]  # [B, C]
        grad = None
        if type(self).get_loss is _OWN_GET_LOSS and "get_loss" not in self.__dict__:
            loss, grad = self._ct_loss(state, rows, y_pred, yi, Xi, logits)
        else:
            state.folded = (y_pred, logits)
            try:
                loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            finally:
                state.folded = None
        if grad is None:
            loss.backward()
        else:
            logits.backward(grad)
        return {"loss": loss, "y_pred": y_pred}

    # -- the loss ----------------------------------------------------------------------------
    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Cross-entropy, plus the CT terms of this batch's counterfactuals when training.

        All components come from one weighted sum over the rows' logits
        (``skct.training._loss``); with the default criterion and a folded step, the batch's
        cross-entropy is part of it.
        """
        state = self.fit_state_
        rows = _batch_rows(state) if training and state is not None else None
        if rows is None:
            ce = super().get_loss(y_pred, y_true, X=X, training=training)
            if training and state is not None:
                self._record_plain(state, ce)
            return ce
        folded = state.folded
        logits = folded[1] if folded is not None and folded[0] is y_pred else None
        return self._ct_loss(state, rows, y_pred, y_true, X, logits, differentiable=True)[0]

    def _ct_loss(self, state, rows, y_pred, y_true, X, logits=None, differentiable=False):
        """The CT loss of a batch, its components recorded, and the gradient of the loss
        with respect to ``logits`` or None.

        ``logits`` [B + 3K, C]: those of a folded step (None: the chunk's rows go through the
        module here). Unless ``differentiable``, when the batch's cross-entropy is part of the
        weighted sum, the loss is a plain value and the gradient is given (see
        ``skct.training._loss.ct_terms``); otherwise the gradient is None and the loss is
        differentiable.
        """
        if not isinstance(y_true, torch.Tensor) or y_true.device != y_pred.device:
            y_true = to_tensor(y_true, device=self.device)  # the loader's labels, on the CPU
        scored, idx, ce = self._loss_rows(rows, y_pred, y_true, X, logits)
        k = rows[1].shape[0] // 3
        weights = self._loss_weights(state, scored.shape[0] - 3 * k, k, scored)
        grad = None
        if differentiable or ce is not None:
            loss, comps = _loss.ct_loss(scored, idx, weights)
        else:  # scored is logits: the gradient is the folded step's
            loss, comps, grad = _loss.ct_terms(scored, idx, weights, state.native_loss)
        # ce, div, reg, adv, loss: one transfer for all five
        values = [row[0] for row in comps.tolist()]
        if ce is not None:  # the criterion's loss, outside the weighted sum
            loss = ce + loss
            values[0], values[4] = ce.item(), loss.item()
        state.loss_finite = math.isfinite(values[4])
        if not state.loss_finite:  # each component from its own entries only
            own = split_components(weights, _loss.loss_vector(scored.detach(), idx)[0])
            values = own.tolist()
            if ce is not None:
                values[0] = ce.item()
            state.loss_cause = explain_nonfinite(math.isfinite(values[0]), state.input_scale)
        self._record_components(zip(_RECORDED, values))
        return loss, grad

    def _record_plain(self, state, ce):
        """The components of a batch without counterfactuals (CT terms 0)."""
        ce_value = ce.item()
        self._record_components(((_RECORDED[1], 0.0), (_RECORDED[2], 0.0),
                                 (_RECORDED[3], 0.0), (_RECORDED[0], ce_value)))
        # a Python float's test: no tensor op per batch
        state.loss_finite = math.isfinite(ce_value)
        if not state.loss_finite:
            state.loss_cause = explain_nonfinite(False, state.input_scale)

    def _record_components(self, items):
        """``history.record_batch(key, value)`` for each pair, with one look-up of the batch's
        row in a plain :class:`skorch.history.History` (its indexing copies the epoch list)."""
        history = self.history
        if type(history) is History:
            list.__getitem__(history, -1)["batches"][-1].update(items)
            return
        for key, value in items:
            history.record_batch(key, value)

    def _loss_rows(self, rows, y_pred, y_true, X, logits):
        """Logits and labels [R, 1] of the rows of :func:`skct.training._loss.ct_loss`, and
        the criterion's loss when the batch's rows are not among them (``logits``: those of
        a folded step, or None)."""
        state = self.fit_state_
        packed, labels = rows  # [3K, ...], [3K, 1]: x_adv, x+, x' and y_adv, y+, y+
        if logits is not None:  # [B + 3K, C]: the batch's rows, then x_adv, x+, x'
            if state.labels_are_indices and y_true.dtype == torch.int64 and \
                    y_true.dim() == 1 and self._plain_criterion(state):
                return logits, torch.cat([y_true[:, None], labels]), None  # [B + 3K, 1]
            extra = logits[y_pred.shape[0]:]  # [3K, C]
        else:
            extra = self.infer(packed)  # [3K, C]
        return extra, labels, super().get_loss(y_pred, y_true, X=X, training=True)

    def _plain_criterion(self, state):
        """Whether the criterion is the default cross-entropy (checked once per criterion)."""
        criterion = self.criterion_
        if state.plain_criterion is None or state.plain_criterion[0] is not criterion:
            state.plain_criterion = (criterion, _plain_cross_entropy(criterion))
        return state.plain_criterion[1]

    def _loss_weights(self, state, b, k, logits):
        """The fit's cached :class:`~skct.training._loss.LossWeights` of this batch shape."""
        key = (b, k, self.lambda_div, self.lambda_reg, self.lambda_adv, logits.dtype,
               logits.device)
        weights = state.loss_weights.get(key)
        if weights is None:
            weights = state.loss_weights[key] = component_weights(
                b, k, key[2:5], dtype=logits.dtype, device=logits.device)
        return weights

    # -- an interrupted fit says so ----------------------------------------------------------
    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            state = self.fit_state_
            if state is not None and not _raised_by_callback(exc):
                total = epochs if epochs is not None else self.max_epochs
                warnings.warn(
                    f"Training was interrupted (KeyboardInterrupt) after {state.epochs_done} "
                    f"of {total} epochs. The model keeps the weights reached so far, including "
                    "the updates of the unfinished epoch, whose history row is incomplete.",
                    UserWarning, stacklevel=2)
            raise  # skorch ends the fit normally


#: The net's own ``get_loss`` (a subclass's override is called as skorch calls it).
_OWN_GET_LOSS = CounterfactualNet.get_loss


def _raised_by_callback(exc):
    """Whether a callback hook raised the KeyboardInterrupt itself (skorch's EarlyStopping
    stops training that way), rather than the user pressing Ctrl-C."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return isinstance(frame.f_locals.get("self"), Callback) and \
        frame.f_code.co_name.startswith("on_")


def _batch_rows(state):
    """The current training batch's counterfactual rows and labels (see
    ``EpochCounterfactuals.batch_rows``), or None."""
    cfs = state.cfs
    if cfs is None:
        return None
    b = state.batch
    return cfs.batch_rows[b] if 0 <= b < len(cfs.batch_rows) else None


def _plain_cross_entropy(criterion):
    """Whether ``criterion`` is the default ``nn.CrossEntropyLoss()`` (mean over rows)."""
    return type(criterion) is nn.CrossEntropyLoss and criterion.weight is None and \
        criterion.reduction == "mean" and criterion.label_smoothing == 0.0
