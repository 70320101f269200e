"""Faithfulness: distance of counterfactuals to samples from the model's own p(x | y+).

The model read as a joint energy model, ``E(x, y) = -logit_y(x)``, is sampled by stochastic
gradient Langevin dynamics.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._utils import eval_mode, Interval, StrOptions, validate_params
from ..losses import energy
from ._model import as_logits_fn, device_dtype, input_grad, predict_logits, torch_generator
from ._plausibility import mean_l1_to_class
from ._validation import as_indices, check_2d, check_bounds, check_n_classes, reduce_rows

__all__ = ["faithfulness"]


def _sgld(fn, target, x0, *, n_steps, step_size, noise_scale, generator):
    """Improper SGLD on the energy E(x, y) = -logit_y(x), all chains at once.

    target [M] long, x0 [M, D] -> samples [M, D] (detached). Per step:
    ``x <- x - (step_size / 2) * grad_x E(x, y) + noise_scale * N(0, I)``. Run under
    ``torch.enable_grad()`` with the model in eval mode.
    """
    x = x0.detach()
    for _ in range(n_steps):
        grad = input_grad(fn, x, target, energy)  # [M, D]
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x - 0.5 * step_size * grad + noise_scale * noise
    return x.detach()


def _conditional_samples(fn, classes, lower, upper, *, n_samples, n_steps, step_size,
                         noise_scale, init, random_state):
    """SGLD samples from p_theta(x | y) for each class: classes [K] -> ndarray [K, S, D].

    All K * S chains run in one tensor. ``init="uniform"`` starts them uniformly in
    ``[lower, upper]`` (per-feature arrays [D]); ``"normal"`` from N(0, I).
    """
    device, dtype = device_dtype(fn)
    gen = torch_generator(random_state, device)
    k, d = len(classes), lower.shape[0]
    target = torch.as_tensor(np.repeat(classes, n_samples), device=device)  # [K * S]
    if init == "uniform":
        lo = torch.as_tensor(lower, dtype=dtype, device=device)
        hi = torch.as_tensor(upper, dtype=dtype, device=device)
        u = torch.rand((k * n_samples, d), generator=gen, dtype=dtype, device=device)
        x0 = lo + (hi - lo) * u  # [K * S, D]
    else:
        x0 = torch.randn((k * n_samples, d), generator=gen, dtype=dtype, device=device)
    with eval_mode(fn), torch.enable_grad():
        x = _sgld(fn, target, x0, n_steps=n_steps, step_size=step_size,
                  noise_scale=noise_scale, generator=gen)
    return x.reshape(k, n_samples, d).cpu().numpy().astype(np.float64)


@validate_params(
    {"model": "no_validation", "X_cf": ["array-like"], "y_target": ["array-like"],
     "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
     "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
     "step_size": [Interval(numbers.Real, 0, None, closed="left")],
     "noise_scale": [Interval(numbers.Real, 0, None, closed="left")],
     "init": [StrOptions({"uniform", "normal"})],
     "bounds": ["array-like", None],
     "random_state": ["random_state"], "per_row": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def faithfulness(model, X_cf, y_target, *, n_samples=100, n_steps=100, step_size=2.0,
                 noise_scale=0.01, init="uniform", bounds=None, random_state=None,
                 per_row=False):
    """Distance of counterfactuals to samples from the model's own class-conditional p(x | y+).

    The model read as a joint energy model, ``p_theta(x, y) ~ exp(-E(x, y))`` with
    ``E(x, y) = -logit_y(x)``, defines a conditional ``p_theta(x | y)``. For each target class
    present in ``y_target``, ``S = n_samples`` points are drawn from it by (improper) stochastic
    gradient Langevin dynamics, all chains in one batch::

        x_0 ~ U[lower, upper]   (or N(0, I) with init="normal")
        x_{k+1} = x_k - (step_size / 2) * grad_x E(x_k, y) + noise_scale * eps_k,
        eps_k ~ N(0, I),   k = 0 .. n_steps - 1

    Then ``faithfulness_i = (1/S) * sum_s ||x'_i - xhat_s^(y+_i)||_1``, averaged over rows unless
    ``per_row``. Lower means counterfactuals that agree with what the model itself considers
    typical of the target class (the "unfaithfulness" of Altmeyer et al., 2024).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X_cf : array-like of shape (n, d)
        Counterfactuals.
    y_target : array-like of shape (n,)
        Target class indices.
    n_samples : int, default=100
        Samples drawn per target class.
    n_steps : int, default=100
        SGLD steps per chain.
    step_size : float, default=2.0
        ``alpha`` of the update above (the gradient step is ``alpha / 2``).
    noise_scale : float, default=0.01
        Standard deviation ``sigma`` of the Gaussian noise added at each step.
    init : {"uniform", "normal"}, default="uniform"
        Start of the chains: uniform in ``bounds``, or standard normal.
    bounds : tuple (lower, upper) or None, default=None
        Scalars or per-feature arrays for ``init="uniform"``; None uses the per-feature range of
        ``X_cf`` (pass bounds when ``X_cf`` has few rows, e.g. the range of the training data).
        The chains themselves are not clipped.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial points and the noise.
    per_row : bool, default=False
        Return the per-row distances instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        Lower is better.

    Notes
    -----
    The defaults are the sampler of the ECCCo reference implementation: the "improper" SGLD of
    joint energy models (Grathwohl et al., 2020), in which the noise is not tied to the step
    size, with ``step_size = 2`` and ``noise_scale = 0.01`` (so the gradient step is exactly
    ``-grad E``), and 100 steps per chain. Proper SGLD would use noise of standard deviation
    ``sqrt(step_size)``; with the small noise used here the chains behave like noisy gradient
    descent on the energy and collect in its low-energy regions. For a model whose logits grow
    without bound (e.g. a linear model) those regions are at infinity, so the distances grow
    with ``n_steps``: compare models at equal sampler settings.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import faithfulness
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> X_cf = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    >>> value = faithfulness(model, X_cf, [0, 1, 1], n_steps=20, random_state=0)
    >>> bool(np.isfinite(value))
    True
    """
    fn = as_logits_fn(model)
    X_cf = check_2d(X_cf, "X_cf")
    n, d = X_cf.shape
    y = as_indices(y_target, "y_target", n, "X_cf")
    if bounds is None:
        lower, upper = X_cf.min(axis=0).astype(np.float64), X_cf.max(axis=0).astype(np.float64)
    else:
        if len(bounds) != 2:
            raise ValueError("bounds must be a pair (lower, upper).")
        lower, upper = check_bounds(bounds[0], bounds[1], d,
                                    names=("bounds[0] (lower)", "bounds[1] (upper)"))
        if init == "uniform" and not (np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise ValueError("bounds must be finite for init='uniform'.")
    n_classes = predict_logits(fn, X_cf[:1]).shape[1]
    check_n_classes(y, "y_target", n_classes)
    classes = np.unique(y)
    samples = _conditional_samples(fn, classes, lower, upper, n_samples=n_samples,
                                   n_steps=n_steps, step_size=step_size,
                                   noise_scale=noise_scale, init=init,
                                   random_state=random_state)  # [K, S, D]
    if not np.isfinite(samples).all():
        raise ValueError("SGLD diverged (non-finite samples); lower step_size or n_steps.")
    pos = {c: k for k, c in enumerate(classes)}
    dist = mean_l1_to_class(X_cf.astype(np.float64), y, lambda c: samples[pos[c]])
    return reduce_rows(dist, per_row)
