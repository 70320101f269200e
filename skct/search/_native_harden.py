"""One-hot groups hardened in one native pass over the rows (CPU, float32/float64).

:func:`skct.search._projection.harden_groups` in torch works on the groups padded to the
widest one ([N, G, L]: Adult's 8 groups padded to 41 levels hold 3.3 times its 99 group
columns) with a dozen tensor operations, and took 4.6 ms for 1000 Adult rows: two thirds of
a counterfactual-training search there. This C loop does the same per row and group (the
immutable groups copied from the factual, a group equal to the factual's kept as it is, the
others set to one-hot at their first largest level, or to all zeros where the implicit
dropped level, ``1 - sum``, is strictly larger) in about 1% of that time.

The result is the torch code's bit for bit, except where the implicit level ties the largest
explicit one to within the rounding of its sum (the C sum adds the columns in order). NaN is
treated as torch's ``argmax`` does: the largest value, the first NaN winning. Used only
where :func:`skct.search._modes.native_allowed` (so ``fast_search=False`` keeps the torch
code of the eager engine) and the library builds (:class:`skct._utils._native.NativeLibrary`).
"""

from __future__ import annotations

import ctypes
import weakref

import torch

from .._utils._native import NativeLibrary
from . import _modes

__all__ = ["library", "status", "applies", "harden_groups", "SOURCE", "declare"]

_NO_COLUMNS = torch.zeros(0, dtype=torch.int64)  # no immutable group columns

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

#define HARDEN(REAL, SUF)                                                                  \
void skct_harden_groups_##SUF(int64_t N, int64_t D, const REAL* x, int64_t sx0, int64_t sx1, \
                              const REAL* ref, int64_t sr0, int64_t sr1, REAL* out,        \
                              int64_t n_imm, const int64_t* imm, int64_t G,                \
                              const int64_t* gptr, const int64_t* gcol,                    \
                              const uint8_t* gdrop) {                                      \
  /* out [N, D] (row-major) = x (element strides sx0, sx1) with: imm columns from ref      \
     (strides sr0, sr1); per group g (columns gcol[gptr[g] .. gptr[g + 1]) in level order): \
     ref's columns where they all equal x's (ref NULL: never), else one-hot at the first   \
     largest level (NaN largest), or all zeros where gdrop[g] and 1 - sum is strictly      \
     larger (or NaN while the largest is not) */                                           \
  for (int64_t i = 0; i < N; i++) {                                                        \
    const REAL* xr = x + i * sx0;                                                          \
    const REAL* rr = ref ? ref + i * sr0 : NULL;                                           \
    REAL* o = out + i * D;                                                                 \
    if (sx1 == 1) memcpy(o, xr, (size_t)D * sizeof(REAL));                                 \
    else for (int64_t j = 0; j < D; j++) o[j] = xr[j * sx1];                               \
    for (int64_t k = 0; k < n_imm; k++) o[imm[k]] = rr[imm[k] * sr1];                      \
    for (int64_t g = 0; g < G; g++) {                                                      \
      const int64_t* cols = gcol + gptr[g];                                                \
      int64_t L = gptr[g + 1] - gptr[g];                                                   \
      if (L <= 0) continue;                                                                \
      if (rr) {                                                                            \
        int same = 1;                                                                      \
        for (int64_t j = 0; j < L && same; j++) same = o[cols[j]] == rr[cols[j] * sr1];    \
        if (same) {                                                                        \
          for (int64_t j = 0; j < L; j++) o[cols[j]] = rr[cols[j] * sr1];                  \
          continue;                                                                        \
        }                                                                                  \
      }                                                                                    \
      int64_t best = 0;                                                                    \
      REAL bv = o[cols[0]], sum = 0;                                                       \
      for (int64_t j = 0; j < L; j++) {                                                    \
        REAL v = o[cols[j]];                                                               \
        sum += v;                                                                          \
        if (j > 0 && !isnan(bv) && (isnan(v) || v > bv)) { best = j; bv = v; }             \
      }                                                                                    \
      if (gdrop[g]) {                                                                      \
        REAL implicit = (REAL)1 - sum;                                                     \
        if (!isnan(bv) && (isnan(implicit) || implicit > bv)) best = L;                    \
      }                                                                                    \
      for (int64_t j = 0; j < L; j++) o[cols[j]] = j == best ? (REAL)1 : (REAL)0;          \
    }                                                                                      \
  }                                                                                        \
}
HARDEN(float, f32)
HARDEN(double, f64)
"""


def declare(lib):
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for suf in ("f32", "f64"):
        getattr(lib, f"skct_harden_groups_{suf}").argtypes = [
            i64, i64, ptr, i64, i64, ptr, i64, i64, ptr, i64, ptr, i64, ptr, ptr, ptr]


_LIBRARY = NativeLibrary("skct_harden", lambda: SOURCE, declare)


def library():
    """The loaded library (built on first use), or None where it cannot be built."""
    return _LIBRARY.get()


def status():
    """How the library was obtained ("loaded <path>") or why not (a short sentence)."""
    return _LIBRARY.status


def applies(x, x_ref):
    """Whether :func:`harden_groups` may run on x [N, D] (and x_ref, or None)."""
    if not _modes.native_allowed() or x.device.type != "cpu" or x.requires_grad:
        return False
    if x.dtype not in (torch.float32, torch.float64) or x.ndim != 2:
        return False
    if x_ref is not None and (x_ref.dtype != x.dtype or x_ref.device != x.device
                              or x_ref.shape != x.shape or x_ref.requires_grad):
        return False
    return library() is not None


#: The layout of the last few group tables: id(group_index) -> (weak reference to it, the
#: tensors it went with, then what the C function takes: columns, offsets, immutable
#: columns, dropped-level flags). A search hardens with the same tables at every step.
_LAYOUTS = {}


def _layout(gi, gm, drop, imm):
    """(columns of each group in level order [K], group offsets [G + 1], immutable columns,
    dropped flags as bytes), cached per group table."""
    hit = _LAYOUTS.get(id(gi))
    if hit is not None and hit[0]() is gi and hit[1] == (id(gm), id(drop), id(imm)):
        return hit[2]
    counts = gm.sum(dim=1)  # [G]
    ptr = torch.zeros(gi.shape[0] + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(counts, 0)
    out = (gi[gm].to(torch.int64).contiguous(), ptr, imm.to(torch.int64).contiguous(),
           drop.to(torch.uint8).contiguous())
    if len(_LAYOUTS) >= 16:
        _LAYOUTS.clear()
    # (the tensors themselves are kept too, so that their ids cannot be reused meanwhile)
    _LAYOUTS[id(gi)] = (weakref.ref(gi), (id(gm), id(drop), id(imm)), out, (gm, drop, imm))
    return out


def harden_groups(lib, x, c, x_ref=None):
    """:func:`skct.search._projection.harden_groups` (same arguments) in one native pass."""
    if x_ref is None:  # every group hardened, immutable ones too
        gi, gm, drop = c.group_index, c.group_mask, c.group_has_dropped
        imm = _NO_COLUMNS
    else:
        gi, gm = c.mutable_group_index, c.mutable_group_mask
        drop, imm = c.mutable_group_has_dropped, c.immutable_group_columns
    cols, ptr, imm, drop = _layout(gi, gm, drop, imm)
    out = torch.empty(x.shape, dtype=x.dtype)
    n, d = x.shape
    sr = (0, 0) if x_ref is None else x_ref.stride()
    fn = getattr(lib, f"skct_harden_groups_{'f32' if x.element_size() == 4 else 'f64'}")
    fn(n, d, x.data_ptr(), *x.stride(), None if x_ref is None else x_ref.data_ptr(), *sr,
       out.data_ptr(), imm.numel(), imm.data_ptr(), gi.shape[0], ptr.data_ptr(),
       cols.data_ptr(), drop.data_ptr())
    return out
