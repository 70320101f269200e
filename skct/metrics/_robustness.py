"""Adversarial robustness (FGSM, PGD, accuracy under attack) and protected-feature sensitivity."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._utils import eval_mode, Interval, StrOptions, validate_params
from ._model import (as_logits_fn, checked_forward, cross_entropy, device_dtype, input_grad,
                     predict_logits, to_tensor, torch_generator)
from ._validation import as_indices, check_2d, check_bounds, check_n_classes

__all__ = ["fgsm", "pgd", "adversarial_accuracy", "protected_feature_sensitivity"]


def _row_bounds(x, lower, upper):
    """Per-row domain [n, d] widened to contain the clean points x [n, d] (tensors)."""
    return torch.minimum(lower, x), torch.maximum(upper, x)


def _fgsm_step(fn, x, target, eps, lo, hi):
    """x + eps * sign(grad_x CE(f(x), y)), clipped to [lo, hi]: all [n, d]."""
    grad = input_grad(fn, x, target, cross_entropy)
    return torch.clamp(x + eps * grad.sign(), lo, hi)


def _pgd_attack(fn, x, target, eps, lo, hi, *, n_steps, step_size, random_start, generator):
    """L-inf PGD: x [n, d] -> adversarial examples [n, d] with ||x_adv - x||_inf <= eps.

    x_0 = clip(x + U[-eps, eps]) (or x); then n_steps times
    x_{k+1} = clip(x + clamp(x_k + step_size * sign(grad CE) - x, -eps, eps), lo, hi).
    """
    x_adv = x
    if random_start and eps > 0:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x_adv = torch.clamp(x + eps * (2.0 * u - 1.0), lo, hi)
    for _ in range(n_steps):
        grad = input_grad(fn, x_adv, target, cross_entropy)
        step = x_adv + step_size * grad.sign()
        x_adv = torch.clamp(x + torch.clamp(step - x, -eps, eps), lo, hi)
    return x_adv.detach()


def _prepare_attack(model, X, y, lower, upper):
    """Checked model, tensors x [n, d], target [n] and per-row domain [n, d]."""
    fn = as_logits_fn(model)
    X = check_2d(X, "X")
    n, d = X.shape
    y = as_indices(y, "y", n, "X")
    lower, upper = check_bounds(lower, upper, d)
    device, dtype = device_dtype(fn)
    x = to_tensor(X, device, dtype)
    n_classes = predict_logits(fn, X[:1]).shape[1]
    check_n_classes(y, "y", n_classes)
    target = torch.as_tensor(y, device=device)
    lo, hi = _row_bounds(x, to_tensor(lower, device, dtype), to_tensor(upper, device, dtype))
    return fn, x, target, lo, hi


_ATTACK_PARAMS = {
    "model": "no_validation", "X": ["array-like"], "y": ["array-like"],
    "eps": [Interval(numbers.Real, 0, None, closed="left")],
    "lower": ["array-like", numbers.Real, None], "upper": ["array-like", numbers.Real, None],
}


@validate_params(_ATTACK_PARAMS, prefer_skip_nested_validation=True)
def fgsm(model, X, y, eps, *, lower=None, upper=None):
    """Fast gradient sign method (Goodfellow et al., 2015).

    ``x_adv = clip(x + eps * sign(grad_x CE(logits(x), y)), lower, upper)``, all rows at once.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Clean inputs.
    y : array-like of shape (n,)
        True class indices.
    eps : float >= 0
        L-infinity size of the perturbation.
    lower, upper : float, array-like of shape (d,) or None, default=None
        Domain bounds (None: unbounded). A row outside the domain keeps its own values as the
        bound, so that clipping never moves it further than ``eps``.

    Returns
    -------
    ndarray of shape (n, d)
        Adversarial examples (float32, or the model's floating dtype).

    Examples
    --------
    >>> import torch
    >>> from skct.metrics import fgsm
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    >>> fgsm(model, [[0.0, 0.0]], [0], 0.1)  # moves against class 0: sign(w1 - w0)
    array([[-0.1,  0.1]], dtype=float32)
    """
    fn, x, target, lo, hi = _prepare_attack(model, X, y, lower, upper)
    with eval_mode(fn), torch.enable_grad():
        x_adv = _fgsm_step(fn, x, target, float(eps), lo, hi)
    return x_adv.detach().cpu().numpy()


@validate_params(
    {**_ATTACK_PARAMS,
     "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
     "step_size": [Interval(numbers.Real, 0, None, closed="left")],
     "random_start": ["boolean"], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def pgd(model, X, y, eps, *, n_steps=40, step_size=0.01, random_start=True, lower=None,
        upper=None, random_state=None):
    """Projected gradient descent attack in the L-infinity ball (Madry et al., 2018).

    Starting from ``x_0 = clip(x + u)``, ``u ~ U[-eps, eps]^d`` (or ``x_0 = x`` without
    ``random_start``), ``n_steps`` times::

        x_{k+1} = clip(x + clamp(x_k + step_size * sign(grad_x CE(logits(x_k), y)) - x,
                                 -eps, eps), lower, upper)

    so every iterate stays in ``{x' : ||x' - x||_inf <= eps}`` and in the domain. All rows are
    attacked at once.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Clean inputs.
    y : array-like of shape (n,)
        True class indices.
    eps : float >= 0
        Radius of the L-infinity ball.
    n_steps : int, default=40
        Number of signed-gradient steps.
    step_size : float, default=0.01
        Size of each step.
    random_start : bool, default=True
        Start at a uniform random point of the ball.
    lower, upper : float, array-like of shape (d,) or None, default=None
        Domain bounds (None: unbounded). A row outside the domain keeps its own values as the
        bound, so the ball constraint always holds.
    random_state : int, RandomState instance or None, default=None
        Seeds the random start.

    Returns
    -------
    ndarray of shape (n, d)
        Adversarial examples.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import pgd
    >>> model = torch.nn.Linear(2, 2)
    >>> X = np.zeros((3, 2))
    >>> X_adv = pgd(model, X, [0, 1, 0], 0.05, random_state=0)
    >>> bool(np.abs(X_adv - X).max() <= 0.05 + 1e-7)
    True
    """
    fn, x, target, lo, hi = _prepare_attack(model, X, y, lower, upper)
    gen = torch_generator(random_state, x.device)
    with eval_mode(fn), torch.enable_grad():
        x_adv = _pgd_attack(fn, x, target, float(eps), lo, hi, n_steps=n_steps,
                            step_size=step_size, random_start=random_start, generator=gen)
    return x_adv.cpu().numpy()


@validate_params(
    {"model": "no_validation", "X": ["array-like"], "y": ["array-like"],
     "attack": [StrOptions({"fgsm", "pgd"})],
     "epsilons": ["array-like", Interval(numbers.Real, 0, None, closed="left"), None],
     "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
     "step_size": [Interval(numbers.Real, 0, None, closed="left")],
     "random_start": ["boolean"],
     "lower": ["array-like", numbers.Real, None], "upper": ["array-like", numbers.Real, None],
     "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def adversarial_accuracy(model, X, y, *, attack="fgsm", epsilons=None, n_steps=40,
                         step_size=0.01, random_start=True, lower=None, upper=None,
                         random_state=None):
    """Accuracy of the model on adversarially perturbed inputs, for a range of budgets.

    ``acc(eps) = (1/n) * sum_i 1[argmax logits(x_adv_i(eps)) == y_i]`` where ``x_adv(eps)`` is
    the :func:`fgsm` or :func:`pgd` attack of L-infinity size ``eps`` on the cross-entropy with
    the true class. ``acc(0)`` is the clean accuracy.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Clean inputs.
    y : array-like of shape (n,)
        True class indices.
    attack : {"fgsm", "pgd"}, default="fgsm"
        The attack.
    epsilons : array-like of float >= 0 or None, default=None
        Budgets; None means ``np.linspace(0, 0.1, 10)``.
    n_steps, step_size, random_start : see :func:`pgd` (ignored by FGSM)
    lower, upper : float, array-like of shape (d,) or None, default=None
        Domain bounds.
    random_state : int, RandomState instance or None, default=None
        Seeds PGD's random starts.

    Returns
    -------
    dict
        ``{"epsilon": ndarray (k,), "accuracy": ndarray (k,)}``; ``pandas.DataFrame(result)``
        makes a table of it.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import adversarial_accuracy
    >>> model = torch.nn.Linear(1, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    >>> res = adversarial_accuracy(model, [[0.5], [-0.05]], [1, 0], epsilons=[0.0, 0.1, 1.0])
    >>> res["accuracy"]
    array([1. , 0.5, 0. ])
    """
    eps_values = (np.linspace(0.0, 0.1, 10) if epsilons is None
                  else np.asarray(epsilons, dtype=np.float64).ravel())
    if eps_values.size == 0:
        raise ValueError("epsilons is empty.")
    if not np.isfinite(eps_values).all() or (eps_values < 0).any():
        raise ValueError("epsilons must be finite and >= 0.")
    fn, x, target, lo, hi = _prepare_attack(model, X, y, lower, upper)
    gen = torch_generator(random_state, x.device)
    accuracy = np.empty(eps_values.size)
    with eval_mode(fn):
        for k, eps in enumerate(eps_values):
            with torch.enable_grad():
                if attack == "fgsm":
                    x_adv = _fgsm_step(fn, x, target, float(eps), lo, hi)
                else:
                    x_adv = _pgd_attack(fn, x, target, float(eps), lo, hi, n_steps=n_steps,
                                        step_size=step_size, random_start=random_start,
                                        generator=gen)
            with torch.no_grad():
                pred = checked_forward(fn, x_adv.detach()).argmax(dim=1)
            accuracy[k] = float((pred == target).double().mean())
    return {"epsilon": eps_values, "accuracy": accuracy}


# -- protected-feature sensitivity -----------------------------------------------------------
#: Normalisations of the mean attribution vector ``g`` (one per round) across its features.
#: They follow the reference implementation of the counterfactual training paper,
#: ``paper/experiments/run_integrated_gradients.jl`` of
#: github.com/JuliaTrustworthyAI/CounterfactualTraining.jl: ``|g| / (max g - min g)`` for
#: 2-D data, ``(g - min g) / (max g - min g)`` otherwise (its appendix, "Integrated
#: Gradients"); ``"paper"`` picks between the two by the number of features as it does.
NORMALIZATIONS = ("range", "minmax", "paper")
#: Most interpolation points x features captum holds at once (float32: 128 MiB).
_IG_POINTS = 2 ** 25


def _check_features(features, d):
    """Protected column indices in [0, d) (negative ones count from the end)."""
    feats = np.asarray(features).ravel()
    if feats.size == 0:
        raise ValueError("features is empty; give the indices of the protected features.")
    if feats.dtype.kind not in "iu":
        raise ValueError(f"features must hold integer column indices, got dtype {feats.dtype}.")
    if (feats < -d).any() or (feats >= d).any():
        raise ValueError(f"features holds indices out of range for {d} features: "
                         f"{feats[(feats < -d) | (feats >= d)].tolist()}.")
    return feats % d


def _baseline_bounds(baseline, X):
    """Per-feature ``(low, high)`` [d] of the uniform baseline."""
    d = X.shape[1]
    if isinstance(baseline, str):  # "data_range"
        return X.min(axis=0), X.max(axis=0)
    try:
        low, high = (np.broadcast_to(np.asarray(v, dtype=np.float64), (d,)) for v in baseline)
    except (TypeError, ValueError) as exc:
        raise ValueError("baseline must be 'data_range' or a pair (low, high) of floats or "
                         f"arrays of shape ({d},).") from exc
    if not (np.isfinite(low).all() and np.isfinite(high).all()) or (low > high).any():
        raise ValueError("baseline (low, high) must be finite with low <= high.")
    return low, high


def _round_weights(n, n_rounds, round_size, rng):
    """[n_rounds, n] weights: share of each row in a round of ``round_size`` draws (with
    replacement), so that ``weights @ values`` is the mean of each round."""
    idx = rng.randint(0, n, size=(n_rounds, round_size))  # [R, m]
    flat = (idx + n * np.arange(n_rounds)[:, None]).ravel()
    return np.bincount(flat, minlength=n_rounds * n).reshape(n_rounds, n) / round_size


def _normalize_rounds(g, how):
    """Round means g [R, d] normalised across the features of each round -> [R, d]."""
    if how == "paper":
        how = "range" if g.shape[1] == 2 else "minmax"
    lo, hi = g.min(axis=1, keepdims=True), g.max(axis=1, keepdims=True)
    top = np.abs(g) if how == "range" else g - lo
    span = hi - lo
    # every feature with the same attribution: no relative contribution, 0 by convention
    return np.divide(top, span, out=np.zeros_like(g), where=span > 0)


def _targets(fn, X, target, n):
    """Class index [n] whose logit is attributed: ``target`` or the predicted class."""
    logits = predict_logits(fn, X)  # [n, C]
    if target is None:
        t = logits.argmax(dim=1).cpu().numpy()
    elif isinstance(target, numbers.Integral):
        t = np.full(n, int(target))
    else:
        t = as_indices(target, "target", n, "X")
    check_n_classes(t, "target", logits.shape[1])
    return t


@validate_params(
    {"model": "no_validation", "X": ["array-like"], "features": ["array-like"],
     "target": [None, numbers.Integral, "array-like"],
     "n_steps": [Interval(numbers.Integral, 1, None, closed="left")],
     "per_feature": ["boolean"], "normalize": [StrOptions(set(NORMALIZATIONS)), None],
     "baseline": [StrOptions({"data_range"}), "array-like"],
     "n_rounds": [Interval(numbers.Integral, 1, None, closed="left"), None],
     "round_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
     "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def protected_feature_sensitivity(model, X, *, features, target=None, n_steps=50,
                                  per_feature=False, normalize=None, baseline="data_range",
                                  n_rounds=None, round_size=None, random_state=None):
    """Integrated-gradients attribution of protected features, absolute or normalised.

    Integrated gradients (Sundararajan et al., 2017) of the logit ``f_t`` of class ``t``::

        IG_j(x) = (x_j - b_j) * int_0^1 d f_t(b + a (x - b)) / d x_j  da

    with a random baseline ``b`` drawn per row uniformly, by default in the per-feature range
    of ``X`` (``b_j ~ U[min_i X_ij, max_i X_ij]``), and ``t`` the predicted class (or
    ``target``). Without ``normalize`` the sensitivity is the mean absolute attribution
    ``(1/(n |P|)) * sum_i sum_{j in P} |IG_j(x_i)|`` over the protected features ``P``; it
    grows with the scale of the logits, so it compares models of similar scale only.

    With ``normalize`` the signed attributions are first averaged over the rows,
    ``g_j = (1/n) sum_i IG_j(x_i)``, then normalised across the features, and the sensitivity
    is the mean of the normalised ``g`` over ``P``:

    - ``"range"``: ``|g_j| / (max_k g_k - min_k g_k)``;
    - ``"minmax"``: ``(g_j - min_k g_k) / (max_k g_k - min_k g_k)``, in [0, 1];
    - ``"paper"``: ``"range"`` for 2-D data, ``"minmax"`` otherwise.

    This is the relative contribution of the protected features compared with the others,
    as in the counterfactual training paper (Altmeyer et al.): a model trained to keep
    protected features immutable in its counterfactuals should also rely less on them. The
    paper computes it in bootstrap rounds (``n_rounds=100``, ``round_size=2500``, a baseline
    ``U(-1, 1)``, i.e. ``baseline=(-1, 1)``, and the true labels as ``target``) and reports
    the median and percentile interval over the rounds.

    Needs captum (``pip install skct[attribution]``).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor [n, d] to logits [n, n_classes].
    X : array-like of shape (n, d)
        Inputs to explain.
    features : array-like of int
        Column indices of the protected features (negative indices count from the end).
    target : int, array-like of shape (n,) or None, default=None
        Class index whose logit is attributed (one for all rows, or one per row); None: the
        predicted class of each row.
    n_steps : int, default=50
        Number of points of the path integral (captum's Gauss-Legendre rule).
    per_feature : bool, default=False
        Return the sensitivity of each protected feature (in the order given) instead of
        their mean.
    normalize : {"range", "minmax", "paper"} or None, default=None
        Normalise the mean signed attribution across features (see above); None: the mean
        absolute attribution.
    baseline : "data_range" or (low, high), default="data_range"
        Distribution of the baseline: uniform in the per-feature range of ``X``, or uniform
        in ``[low, high]`` (floats, or arrays of shape (d,)).
    n_rounds : int or None, default=None
        Bootstrap rounds: the figure is computed ``n_rounds`` times, each on ``round_size``
        rows drawn with replacement (the attributions are computed once per row). None: once,
        on all rows.
    round_size : int or None, default=None
        Rows drawn per round (None: ``n``). Ignored without ``n_rounds``.
    random_state : int, RandomState instance or None, default=None
        Seeds the baselines and the rounds.

    Returns
    -------
    float or ndarray
        A float, or shape (len(features),) with ``per_feature``; with ``n_rounds``, one value
        per round: shape (n_rounds,), or (n_rounds, len(features)) with ``per_feature``.
        Lower means a model less sensitive to the protected features.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skct.metrics import protected_feature_sensitivity
    >>> model = torch.nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [-1.0, 0.0, -0.5]]))
    >>> X = np.random.default_rng(0).normal(size=(10, 3))
    >>> protected_feature_sensitivity(model, X, features=[1], random_state=0)  # unused feature
    0.0
    >>> s = protected_feature_sensitivity(model, X, features=[1], normalize="minmax",
    ...                                   n_rounds=20, random_state=0)
    >>> s.shape, bool(((s >= 0) & (s <= 1)).all())
    ((20,), True)
    """
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:
        raise ImportError(
            "protected_feature_sensitivity needs captum; install it with "
            "`pip install skct[attribution]` (or `pip install captum`)."
        ) from exc
    fn = as_logits_fn(model)
    X = check_2d(X, "X")
    n, d = X.shape
    feats = _check_features(features, d)
    t = _targets(fn, X, target, n)

    rng = check_random_state(random_state)
    lo, hi = _baseline_bounds(baseline, X)
    b = lo + (hi - lo) * rng.random_sample((n, d))  # [n, d]
    device, dtype = device_dtype(fn)
    ig = IntegratedGradients(lambda inp: checked_forward(fn, inp))
    x, b, t = to_tensor(X, device, dtype), to_tensor(b, device, dtype), torch.as_tensor(t)
    # captum evaluates rows x steps points at once: chunk the rows to bound that batch
    chunk = max(1, _IG_POINTS // (n_steps * d))
    with eval_mode(fn):
        attr = torch.cat([
            ig.attribute(x[i:i + chunk], baselines=b[i:i + chunk],
                         target=t[i:i + chunk].to(device), n_steps=n_steps).detach()
            for i in range(0, n, chunk)])  # [n, d]
    if normalize is None and n_rounds is None:
        scores = attr.abs()[:, torch.as_tensor(feats, device=device)].mean(dim=0)
        scores = scores.double().cpu().numpy()  # [len(features)]
        return scores if per_feature else float(scores.mean())
    values = attr.double().cpu().numpy()  # [n, d]
    if normalize is None:
        values = np.abs(values)
    weights = (np.full((1, n), 1.0 / n) if n_rounds is None
               else _round_weights(n, n_rounds, round_size or n, rng))  # [R, n]
    g = weights @ values  # [R, d]: mean attribution of each round
    if normalize is not None:
        g = _normalize_rounds(g, normalize)
    scores = g[:, feats]  # [R, len(features)]
    if not per_feature:
        scores = scores.mean(axis=1)  # [R]
    if n_rounds is None:
        return scores[0] if per_feature else float(scores[0])
    return scores
