"""What one fit of the counterfactual training net keeps between skorch's hooks."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ._rng import stream_as_global

__all__ = ["EpochCounterfactuals", "FitState"]


@dataclass
class EpochCounterfactuals:
    """One epoch's counterfactuals: constants of the CT loss terms (all tensors detached).

    Attributes
    ----------
    x_cf, x_plus, x_adv : Tensor [M, D]
        Counterfactuals ``x'`` (``x+`` where the search did not converge), real rows ``x+`` of
        the target class (protected) and nascent adversarial examples.
    target, y_adv : Tensor [M] long
        Target class ``y+`` of each counterfactual; the factual's label for ``x_adv``.
    chunks : tuple of Tensor
        Indices into the M counterfactuals used by each training batch of the epoch.
    bounds : tuple of (int, int)
        The same chunks as ``(start, stop)``: batch b uses counterfactuals ``start:stop``.
    packed : Tensor [3M, D]
        ``x_adv``, ``x_plus`` and ``x_cf`` laid out chunk by chunk: the rows of chunk
        ``(start, stop)`` are ``packed[3 * start:3 * stop]`` (its ``x_adv``, then its ``x+``,
        then its ``x'``), the rows the loss adds to the batch's forward pass.
    labels : Tensor [3M, 1] long
        The label each row of ``packed`` is scored with: ``y_adv`` for the ``x_adv`` rows,
        ``target`` for the ``x+`` and ``x'`` rows (same layout as ``packed``).
    batch_rows : tuple of (Tensor [3K, D], Tensor [3K, 1]) or None
        Per training batch, its views of ``packed`` and ``labels`` (None: no counterfactual).
    valid_share : float
        Share of searches that reached the decision threshold.
    steps : int
        Search row-steps computed.
    """

    x_cf: torch.Tensor
    x_plus: torch.Tensor
    x_adv: torch.Tensor
    target: torch.Tensor
    y_adv: torch.Tensor
    chunks: tuple
    valid_share: float
    steps: int
    bounds: tuple = ()
    packed: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    batch_rows: tuple = ()

    def __post_init__(self):
        if self.packed is not None and not self.batch_rows:
            sizes = [3 * (stop - start) for start, stop in self.bounds]
            self.batch_rows = tuple(  # one split call: views, no copy
                rows if size else None for size, rows in
                zip(sizes, zip(self.packed.split(sizes), self.labels.split(sizes))))


@dataclass
class FitState:
    """Per-fit state of :class:`~skct.training.CounterfactualNet` (created by ``fit``, dropped
    when it returns).

    Attributes
    ----------
    seed : int
        Seed of ``stream`` (drawn first from the net's ``random_state``).
    rng : numpy.random.RandomState
        Draws the rows searched, their targets and ``x+`` (the rest of ``random_state``).
    stream : torch.Generator
        Module initialisation, batch order and any dropout.
    draws_global : dict
        Per kind of work (``"train_step"``, ``"search"``): whether it draws from torch's
        global generator (e.g. dropout), found out the first time it runs.
    constraints : TorchConstraints or None
        The net's constraints as tensors (for the search and the protection rule).
    X, y : Tensor [N, D], Tensor [N] or None
        Rows the searches start from and their labels (training rows only).
    class_index : list of ndarray
        Per class, indices into ``X`` of its rows (the ``x+`` candidates).
    input_scale : float
        Largest absolute value in ``X`` (used to explain a non-finite loss).
    epoch, epochs_done, batch : int
        Epochs started and finished in this fit; training batch of the current epoch (-1
        before the first).
    generate : bool
        Whether this epoch's batches add the CT terms.
    cfs : EpochCounterfactuals or None
        This epoch's counterfactuals.
    chunk_layout : tuple or None
        ``((M, n_batches, device), bounds, order)`` of the last epoch's counterfactuals (see
        ``EpochCounterfactuals.bounds``, ``packed`` and ``labels``), reused while M, the number
        of batches and the device stay the same.
    labels_are_indices : bool
        Whether every training label is a class index (>= 0): the batch's cross-entropy can
        then be computed together with the adversarial rows' (see ``CounterfactualNet``).
    fold : bool or None
        Whether the module treats rows independently (no batch normalisation, no dropout), so
        that a batch and its counterfactual rows share one forward pass; None until the first
        batch with counterfactuals.
    folded : tuple or None
        ``(y_pred, logits)`` of the training step in progress when it folded the rows: the
        batch's logits and those of the batch followed by the chunk's ``packed`` rows.
    loss_weights : dict
        Cached weight matrices of the loss components (see ``skct.training._loss``).
    native_loss : bool
        Whether skct's switches let the folded step compute the loss natively (asked once, at
        the start of the fit; see ``skct.training._loss_kernel``).
    plain_criterion : tuple or None
        ``(criterion, whether it is the default cross-entropy)``, checked once per criterion.
    loss_finite : bool
        Whether the last training batch's loss was finite.
    loss_cause : str
        Why it was not (filled by the net's loss).
    nonfinite : int
        Consecutive non-finite training losses.
    first_energy, last_energy : float or None, float
        Root mean square energy of the first and of the last epoch with CT terms.
    energy_warned : bool
        Whether the runaway-energy warning was given in this fit.
    """

    seed: int
    rng: np.random.RandomState
    stream: torch.Generator
    draws_global: dict = field(default_factory=dict)
    constraints: object = None
    X: torch.Tensor | None = None
    y: torch.Tensor | None = None
    class_index: list = field(default_factory=list)
    input_scale: float = 0.0
    epoch: int = 0
    epochs_done: int = 0
    batch: int = -1
    generate: bool = False
    cfs: EpochCounterfactuals | None = None
    chunk_layout: tuple | None = None
    labels_are_indices: bool = False
    fold: bool | None = None
    folded: tuple | None = None
    loss_weights: dict = field(default_factory=dict)
    native_loss: bool = False
    plain_criterion: tuple | None = None
    loss_finite: bool = True
    loss_cause: str = ""
    nonfinite: int = 0
    first_energy: float | None = None
    last_energy: float = 0.0
    energy_warned: bool = False

    @contextlib.contextmanager
    def global_draws_from_stream(self, kind):
        """Run the block with ``stream`` in torch's global generator if it draws from it.

        The first time a kind of work runs it is run that way and checked; later runs of a kind
        that drew nothing (no dropout, a deterministic search) run without the lock.
        """
        draws = self.draws_global.get(kind)
        if draws is False:
            yield
            return
        before = self.stream.get_state()
        with stream_as_global(self.stream):
            yield
        if draws is None:
            self.draws_global[kind] = not torch.equal(before, self.stream.get_state())
