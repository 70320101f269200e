"""The counterfactual training loss of a batch and its gradient in one native pass.

:func:`skct.training._loss.ct_loss` runs, per training batch, some ten small torch kernels
(log-softmax, gathers, the weighted sum ``W @ v``, then in backward the closed-form gradient):
at the sizes of a training batch (tens to hundreds of rows) their fixed costs, not their
arithmetic, set the price. :func:`ct_loss_native` computes the same five components and the
gradient of the loss row with respect to the logits in one C loop over the rows:

    lse_r = m_r + log(sum_j exp(Z[r, j] - m_r))     (m_r = max_j Z[r, j])
    v = [Z[r, idx_r] - lse_r (R), g_r = Z[r, idx_r] (R), g_r ** 2 (R)],   comps = W @ v
    grad[r, j] = a_r * exp(Z[r, j] - m_r) / s_r + [j == idx_r] * (b_r - a_r + 2 c_r g_r)

(``W``, ``a``, ``b - a`` and ``2 c`` of :class:`~skct.training._loss.LossWeights`; the sum
over every entry of ``v`` is dense, as torch's product, so a non-finite entry makes every
component non-finite in both). Results equal the torch path's up to float rounding (the
weighted sum accumulates in double). The source is compiled once per machine
(:class:`skct._utils._native.NativeLibrary`) and obeys the switches of skct's other native
code (:func:`skct.search._modes.native_allowed`): with ``skct.set_config(fast_search=False)``,
``SKCT_FAST_SEARCH=0`` or ``SKCT_COMPILED_SEARCH=aten`` (or ``0``) it is neither built nor
loaded. Then, without a compiler, or for tensors off the CPU, of another dtype than
float32/float64 or not contiguous, :func:`kernel_for` returns None and the torch path runs.
"""

from __future__ import annotations

import ctypes

import torch

from .._utils._native import NativeLibrary, float_variants
from ..search._modes import native_allowed

__all__ = ["library", "status", "kernel_for", "ct_loss_native"]

_TEMPLATE = r"""
int64_t NAME(skct_ct_loss)(int64_t R, int64_t C, const REAL* z, const int64_t* idx,
                           const REAL* W, const REAL* a, const REAL* bma, const REAL* c2,
                           REAL* comps, REAL* grad) {
  /* z, grad [R, C]; idx [R]; W [5, 3R]; a, bma, c2 [R]; comps [5]. Returns -1 (nothing
     written to comps) when an index is out of range, else 0. */
  double acc[5] = {0, 0, 0, 0, 0};
  for (int64_t r = 0; r < R; r++) {
    int64_t t = idx[r];
    if (t < 0 || t >= C) return -1;
    const REAL* zr = z + r * C;
    REAL* gr = grad + r * C;
    REAL m = zr[0];
    for (int64_t j = 1; j < C; j++) m = (zr[j] > m || isnan(zr[j])) ? zr[j] : m;
    REAL s = 0;
    for (int64_t j = 0; j < C; j++) { gr[j] = EXP(zr[j] - m); s += gr[j]; }
    REAL g = zr[t], lp = (g - m) - LOG(s), scale = a[r] / s;
    for (int64_t j = 0; j < C; j++) gr[j] *= scale;
    gr[t] += bma[r] + c2[r] * g;
    double v0 = lp, v1 = g, v2 = (double)(g * g);
    for (int i = 0; i < 5; i++) {
      const REAL* w = W + i * 3 * R + r;
      acc[i] += w[0] * v0 + w[R] * v1 + w[2 * R] * v2;
    }
  }
  for (int i = 0; i < 5; i++) comps[i] = (REAL)acc[i];
  return 0;
}
"""


def _source():
    return float_variants(_TEMPLATE, {"EXP": ("expf", "exp"), "LOG": ("logf", "log")})


def _declare(lib):
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for suf in ("f32", "f64"):
        fn = getattr(lib, f"skct_ct_loss_{suf}")
        fn.argtypes = [i64, i64] + [ptr] * 8
        fn.restype = i64


_LIBRARY = NativeLibrary("skct_ct_loss", _source, _declare)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def library():
    """The loaded kernel library (built on first use), or None where it cannot be built."""
    return _LIBRARY.get()


def status():
    """How the library was obtained ("loaded <path>") or why not (a short sentence)."""
    return _LIBRARY.status


def kernel_for(logits, idx, weights, native=None):
    """The C function for these tensors, or None where the torch path must run.

    ``logits`` [R, C] and the weights' tensors (from
    :func:`~skct.training._loss.component_weights`, which makes them contiguous) must be CPU
    tensors of one dtype (float32 or float64), ``logits`` contiguous, ``idx`` [R, 1] a
    contiguous int64 CPU tensor, and native code must be allowed: ``native`` (None:
    :func:`skct.search._modes.native_allowed`, asked now; a fit asks once).
    """
    W = weights.W
    if not (logits.is_cpu and W.is_cpu and idx.is_cpu and logits.dtype == W.dtype and
            idx.dtype == torch.int64 and logits.is_contiguous() and idx.is_contiguous() and
            logits.dim() == 2 and idx.shape == (logits.shape[0], 1) and
            weights.a.shape[0] == logits.shape[0]):
        return None
    suffix = _SUFFIX.get(logits.dtype)
    if suffix is None or not (native_allowed() if native is None else native):
        return None
    lib = library()
    return None if lib is None else getattr(lib, f"skct_ct_loss_{suffix}")


def ct_loss_native(fn, logits, idx, weights):
    """``(W @ v)`` [5, 1] and the loss row's gradient [R, C] with respect to ``logits``, by
    ``fn`` (from :func:`kernel_for`); None when an index is out of range.

    Examples
    --------
    >>> import torch
    >>> from skct.training._loss import component_weights
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    >>> idx, w = torch.tensor([[0], [0], [1], [1]]), component_weights(1, 1, (1, 1, 1))
    >>> fn = kernel_for(z, idx, w)
    >>> if fn is not None:  # a C compiler is available
    ...     comps, grad = ct_loss_native(fn, z, idx, w)
    ...     print([round(x, 4) for x in comps.flatten().tolist()], tuple(grad.shape))
    ... else:
    ...     print([0.1269, 3.0, 9.0, 1.3133, 13.4402], (4, 2))
    [0.1269, 3.0, 9.0, 1.3133, 13.4402] (4, 2)
    """
    z = logits
    comps = torch.empty(5, 1, dtype=z.dtype)  # ce, div, reg, adv, loss
    grad = torch.empty(z.shape, dtype=z.dtype)  # [R, C]
    w = weights
    if fn(z.shape[0], z.shape[1], z.data_ptr(), idx.data_ptr(), w.W.data_ptr(),
          w.a.data_ptr(), w.b_minus_a.data_ptr(), w.c2.data_ptr(), comps.data_ptr(),
          grad.data_ptr()):
        return None
    return comps, grad
