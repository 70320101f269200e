"""The per-epoch counterfactual search of counterfactual training, as a skorch callback."""

from __future__ import annotations

import time

import numpy as np
import torch
from skorch.callbacks import Callback

from .._utils import eval_mode
from ..losses import protect
from ..search import search
from ._state import EpochCounterfactuals

__all__ = ["CounterfactualSearch"]


class CounterfactualSearch(Callback):
    """Generates each epoch's counterfactuals with the current model (one batched search).

    At the epoch's first training batch (so skorch's epoch timer ``dur`` includes it), after
    the burn-in and when a CT weight is positive, ``n_counterfactuals`` training rows are drawn
    without replacement, each gets a target drawn uniformly among the classes other than the
    predicted one, and one search with the net's ``generator`` and ``constraints`` finds all
    counterfactuals. The history records ``cf_valid`` (NaN in epochs without a search),
    ``cf_steps`` and ``cf_time``. The net's loss reads the result from its fit state.

    With a ``train_split``, the searched rows and ``x+`` come from the training rows only.

    Examples
    --------
    >>> from skct.training import CounterfactualNet
    >>> dict(CounterfactualNet(None).get_default_callbacks())["counterfactual_search"]
    <CounterfactualSearch()>
    """

    def __repr__(self):
        return "<CounterfactualSearch()>"

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        state = net.fit_state_
        device = torch.device(net.device)
        state.X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)  # [N, D]
        y64 = np.asarray(y, dtype=np.int64)
        state.y = torch.as_tensor(y64, device=device)  # [N]
        state.class_index = [np.flatnonzero(y64 == c) for c in range(int(y64.max()) + 1)]
        state.input_scale = float(np.abs(X).max()) if np.size(X) else 0.0
        state.labels_are_indices = bool(y64.size) and int(y64.min()) >= 0
        if net.constraints is not None:
            state.constraints = net.constraints.to_torch(torch.float32, device)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        state = net.fit_state_
        if state.epoch == 0:
            _restrict_to_training_rows(state, dataset_train)
        state.batch = -1
        state.cfs = None
        burn_in_epochs = int(round(net.burn_in * net.max_epochs))
        state.generate = net.ct_active and state.epoch >= burn_in_epochs
        state.epoch += 1
        net.history.record("cf_valid", float("nan"))

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        state = net.fit_state_
        state.batch += 1
        if state.batch == 0 and state.generate:
            start = time.perf_counter()
            with state.global_draws_from_stream("search"):
                state.cfs = _generate(net, state)
            net.history.record("cf_valid", state.cfs.valid_share)
            net.history.record("cf_steps", state.cfs.steps)
            net.history.record("cf_time", time.perf_counter() - start)

    def on_epoch_end(self, net, **kwargs):
        net.fit_state_.epochs_done += 1


def _restrict_to_training_rows(state, dataset_train):
    """With a ``train_split``, draw factuals and x+ from the training rows only."""
    indices = getattr(dataset_train, "indices", None)  # a torch Subset from skorch's split
    if indices is None or len(indices) == state.X.shape[0]:
        return
    rows = torch.as_tensor(np.asarray(indices), device=state.X.device)
    state.X, state.y = state.X[rows], state.y[rows]
    y = state.y.cpu().numpy()
    state.class_index = [np.flatnonzero(y == c) if (y == c).any() else ci
                         for c, ci in enumerate(state.class_index)]


def _generate(net, state):
    """One batched counterfactual search with the current model (no parameter gradients)."""
    X, y, rng = state.X, state.y, state.rng  # [N, D], [N]
    n = X.shape[0]
    m = min(net.n_counterfactuals, n)
    idx = torch.as_tensor(rng.choice(n, size=m, replace=False), device=X.device)
    x = X[idx]  # [M, D]
    module = net.module_
    with torch.no_grad(), eval_mode(module):
        logits = module(x)  # [M, C]
    n_classes = logits.shape[1]
    offset = torch.as_tensor(rng.randint(1, n_classes, size=m), device=X.device)
    target = (logits.argmax(dim=1) + offset) % n_classes  # uniform among the other classes
    generator, constraints = net.generator, state.constraints
    if generator.requires_calibration:  # e.g. ECCCo: conformal threshold of this model
        generator.calibrate(module, X, y)
    res = search(module, x, target, generator, constraints,
                 decision_threshold=net.decision_threshold, max_iter=net.max_iter_cf,
                 epsilon=net.epsilon)
    x_plus = X[torch.as_tensor(_draw_plus(state, target, n_classes), device=X.device)]  # [M, D]
    x_cf = torch.where(res.converged[:, None], res.counterfactuals, x_plus)  # failed: x' := x+
    if net.protect_immutable and constraints is not None:
        x_plus = protect(x_plus, x_cf, constraints.mut)
    n_batches = max(1, -(-n // net.batch_size))
    x_cf, x_plus, x_adv = x_cf.detach(), x_plus.detach(), res.nascent.detach()
    y_adv = y[idx]  # [M]
    bounds, order = _chunk_layout(state, m, n_batches, X.device)
    return EpochCounterfactuals(
        x_cf=x_cf, x_plus=x_plus, x_adv=x_adv, target=target, y_adv=y_adv,
        chunks=torch.arange(m, device=X.device).tensor_split(n_batches),
        valid_share=float(res.converged.float().mean()) if m else float("nan"),
        steps=res.total_steps, bounds=bounds,
        packed=torch.cat([x_adv, x_plus, x_cf])[order],  # [3M, D]
        labels=torch.cat([y_adv, target, target])[order][:, None],  # [3M, 1]
    )


def _chunk_layout(state, m, n_batches, device="cpu"):
    """Chunk bounds of ``m`` counterfactuals over ``n_batches`` batches, and the row order that
    lays three stacked [M, ...] parts (``cat([x_adv, x_plus, x_cf])``) out chunk by chunk
    (computed once per fit, the order kept on ``device``).

    The bounds are those of ``torch.arange(m).tensor_split(n_batches)``.
    """
    key = (m, n_batches, torch.device(device))
    if state.chunk_layout is not None and state.chunk_layout[0] == key:
        return state.chunk_layout[1:]
    q, r = divmod(m, n_batches)
    sizes = np.full(n_batches, q, dtype=np.int64)
    sizes[:r] += 1  # tensor_split: the first m % n_batches chunks hold one more row
    stops = np.cumsum(sizes)
    starts = stops - sizes
    bounds = tuple(zip(starts.tolist(), stops.tolist()))
    order = torch.from_numpy(_packing_order(starts, sizes, 3)).to(device)
    state.chunk_layout = (key, bounds, order)
    return state.chunk_layout[1:]


def _packing_order(starts, sizes, parts):
    """Order of the rows of ``parts`` stacked [M, ...] arrays so that chunk c holds rows
    ``starts[c]:starts[c] + sizes[c]`` of each part, part after part."""
    m = int(sizes.sum())
    rows = np.arange(m)
    chunk = np.repeat(np.arange(sizes.size), sizes)  # [M] chunk of each row
    within = rows - starts[chunk]
    order = np.empty(parts * m, dtype=np.int64)
    for part in range(parts):
        order[parts * starts[chunk] + part * sizes[chunk] + within] = part * m + rows
    return order


def _draw_plus(state, target, n_classes):
    """x+ row indices: one random training row of the target class per counterfactual."""
    target_np = target.cpu().numpy()  # [M]
    plus_idx = np.empty(target_np.shape[0], dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    for c in range(n_classes):  # loop over classes, not rows
        rows = np.flatnonzero(target_np == c)
        if rows.size:
            candidates = state.class_index[c] if c < len(state.class_index) else empty
            plus_idx[rows] = state.rng.choice(candidates, size=rows.size)
    return plus_idx
