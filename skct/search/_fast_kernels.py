"""Native loops for the chain step of the fast search: the elementwise work between the GEMMs.

Three small C functions, per dtype (float32, float64), each one pass over its rows:

- ``head2``: the two-class head from its input ``a`` [A, H], ``d = a . (w1 - w0) + db``
  (torch's matrix-vector product) and ``p1 = sigmoid(d)``, ``p(target) = sigmoid(+-d)``
  (torch's vectorised sigmoid): the gradient at ``a`` (``(p1 - y1)(w1 - w0)``, plus the ECCo
  energy term) times the derivative of the activation that produced ``a``, and the
  convergence test of every row;
- ``act_back``: ``g *= act'(saved)`` in place (ReLU, Tanh, Sigmoid, LeakyReLU), the arithmetic
  of ATen's ``threshold_backward``, ``tanh_backward``, ``sigmoid_backward``,
  ``leaky_relu_backward``;
- ``update``: the L1 cost subgradient, the gradient step and the projection of
  :func:`skct.search.mask_step` / :func:`skct.search.project` (mutability, then bounds widened
  to the factual), NaN-propagating like ``torch.maximum``/``torch.minimum``. It works
  feature-major ([D, A] buffers, seen as transposed [A, D] views), so that each feature's
  parameters are scalars of one vectorised loop over the rows and the input gradient comes
  from the faster product ``W^T g^T``.

The matrix products stay with torch (MKL/oneDNN). The source is compiled once per machine
(:class:`skct._utils._native.NativeLibrary`: the system C compiler, a private cache
directory). Without a compiler, or on any failure, :func:`library` returns None and the fast
search uses ATen calls instead (same results up to float rounding).
"""

from __future__ import annotations

import ctypes

from .._utils._native import NativeLibrary, float_variants

__all__ = ["library", "status", "head2", "act_back", "update", "feature_major", "ACT_CODES"]

#: Activation codes of the C functions.
ACT_CODES = {None: 0, "relu": 1, "tanh": 2, "sigmoid": 3, "leaky_relu": 4}

_TEMPLATE = r"""
/* NaN in, NaN out (as torch.maximum/minimum): a NaN a is kept; a NaN b fails a > b */
static inline REAL NAME(maxn)(REAL a, REAL b) { return (a > b || isnan(a)) ? a : b; }
static inline REAL NAME(minn)(REAL a, REAL b) { return (a < b || isnan(a)) ? a : b; }

/* out[j] = act'(s[j]) * val(j) for j < n, one loop per activation so that each vectorises */
#define DACT_LOOP(n, out, s, act, slope, val)                                              \
  switch (act) {                                                                          \
    case 1: _Pragma("omp simd") for (int64_t j = 0; j < n; j++)                           \
      out[j] = s[j] > 0 ? (val) : (REAL)0; break;                                         \
    case 2: _Pragma("omp simd") for (int64_t j = 0; j < n; j++)                           \
      out[j] = (val) * (1 - s[j] * s[j]); break;                                          \
    case 3: _Pragma("omp simd") for (int64_t j = 0; j < n; j++)                           \
      out[j] = (val) * (1 - s[j]) * s[j]; break;                                          \
    case 4: _Pragma("omp simd") for (int64_t j = 0; j < n; j++)                           \
      out[j] = s[j] > 0 ? (val) : (val) * slope; break;                                   \
    default: _Pragma("omp simd") for (int64_t j = 0; j < n; j++) out[j] = (val);          \
  }

int64_t NAME(skct_head2)(int64_t A, int64_t H, const REAL* a, const REAL* s1,
                         const REAL* z1, const REAL* d, const REAL* v, const REAL* y1, int act,
                         REAL slope, const REAL* w0, REAL we, REAL reg, const REAL* p_t,
                         REAL thr, const uint8_t* live, uint8_t* done, uint8_t* fin,
                         uint8_t* live_next, REAL* g) {
  /* per row: s1 = p1 = sigmoid(z1 - z0) and p_t = p(target) (torch's vectorised sigmoid);
     d = z1 - z0 and z1 for ECCo only (z1 NULL otherwise). Writes the gradient at a and the
     convergence test (done = p_t >= thr, fin = live & done, live_next = live & !done);
     returns the number of rows in fin. */
  int64_t n_fin = 0;
  for (int64_t i = 0; i < A; i++) {
    const REAL* ar = a + i * H;
    REAL* gr = g + i * H;
    int t1 = y1[i] > (REAL)0.5;
    REAL alpha = s1[i] - (t1 ? 1 : 0);
    if (z1) {
      REAL zt = t1 ? z1[i] : z1[i] - d[i];
      REAL coef = we * (1 - 2 * reg * zt);
      REAL beta = -coef;
      alpha -= t1 ? coef : 0;
      DACT_LOOP(H, gr, ar, act, slope, alpha * v[j] + beta * w0[j])
    } else {
      DACT_LOOP(H, gr, ar, act, slope, alpha * v[j])
    }
    uint8_t dn = p_t[i] >= thr, lv = live[i] != 0;
    done[i] = dn;
    fin[i] = lv & dn;
    live_next[i] = lv & !dn;
    n_fin += lv & dn;
  }
  return n_fin;
}

void NAME(skct_act_back)(int64_t n, REAL* g, const REAL* s, int act, REAL slope) {
  DACT_LOOP(n, g, s, act, slope, g[j])
}

/* one feature's rows: the step without (free) and with (proj) the projection; separate
   functions so that each loop vectorises on its own */
__attribute__((noinline)) static void NAME(upd_free)(
    int64_t A, const REAL* xj, const REAL* x0j, const REAL* gj, REAL step_size, REAL lam_j,
    const REAL* bj, REAL* o) {
  _Pragma("omp simd")
  for (int64_t i = 0; i < A; i++) {
    REAL diff = xj[i] - x0j[i];
    REAL sg = (REAL)(diff > 0) - (REAL)(diff < 0);
    o[i] = bj[i] + (-step_size * (gj[i] + lam_j * sg));
  }
}

__attribute__((noinline)) static void NAME(upd_proj)(
    int64_t A, const REAL* xj, const REAL* x0j, const REAL* gj, REAL step_size, REAL lam_j,
    REAL lo_step, REAL hi_step, int m, REAL low, REAL up, const REAL* bj, REAL* o) {
  /* (written so that gcc vectorises it: the mutability code m is an invariant int) */
  _Pragma("omp simd")
  for (int64_t i = 0; i < A; i++) {
    REAL diff = xj[i] - x0j[i];
    REAL sg = (REAL)(diff > 0) - (REAL)(diff < 0);
    REAL step = -step_size * (gj[i] + lam_j * sg);
    step = step < lo_step ? lo_step : step;
    step = step > hi_step ? hi_step : step;
    REAL r = x0j[i], xn = bj[i] + step;
    if (m == 1) xn = NAME(maxn)(xn, r);
    if (m == 2) xn = NAME(minn)(xn, r);
    if (m == 0) xn = r;
    REAL hi = NAME(maxn)(up, r), lo = NAME(minn)(low, r);
    xn = NAME(minn)(xn, hi);
    o[i] = NAME(maxn)(xn, lo);
  }
}

void NAME(skct_update)(int64_t A, int64_t D, const REAL* x, const REAL* x0, const REAL* gx,
                       const REAL* cw, REAL step_size, REAL lam, int project,
                       const REAL* slo, const REAL* shi, const int8_t* mut,
                       const REAL* lower, const REAL* upper, const REAL* base, REAL* out) {
  /* feature-major: x, x0, gx, base and out are [D, A] row-major (one row per feature), so
     that the per-feature parameters are scalars of each vectorised loop over the A rows of
     the search. The cost's sign is taken at x, the step moves base (NULL: x itself).
     cw: cost weight per feature (NULL: all 1); project: mask_step then project(hard=False)
     of skct, with the mutability codes (0 none, 1 increase, 2 decrease, 3 both) */
  const REAL* b = base ? base : x;
  for (int64_t j = 0; j < D; j++) {
    REAL lam_j = lam * (cw ? cw[j] : (REAL)1);
    if (project)
      NAME(upd_proj)(A, x + j * A, x0 + j * A, gx + j * A, step_size, lam_j, slo[j], shi[j],
                     mut[j], lower[j], upper[j], b + j * A, out + j * A);
    else
      NAME(upd_free)(A, x + j * A, x0 + j * A, gx + j * A, step_size, lam_j, b + j * A,
                     out + j * A);
  }
}
"""


def _source():
    return float_variants(_TEMPLATE, {"EXP": ("expf", "exp"), "FABS": ("fabsf", "fabs")},
                          undefine=("DACT_LOOP",))


def _declare(lib):
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    for suf, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        head = getattr(lib, f"skct_head2_{suf}")
        head.argtypes = [i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, c_int, real, ptr, real, real,
                         ptr, real, ptr, ptr, ptr, ptr, ptr]
        head.restype = i64
        getattr(lib, f"skct_act_back_{suf}").argtypes = [i64, ptr, ptr, c_int, real]
        getattr(lib, f"skct_update_{suf}").argtypes = [
            i64, i64, ptr, ptr, ptr, ptr, real, real, c_int, ptr, ptr, ptr, ptr, ptr, ptr, ptr]


_LIBRARY = NativeLibrary("skct_search", _source, _declare)


def library():
    """The loaded kernels (built on first use), or None where they cannot be built."""
    return _LIBRARY.get()


def status():
    """How the kernels were obtained ("loaded <path>") or why not (a short sentence)."""
    return _LIBRARY.status


# ---------------------------------------------------------------------------------------------
# wrappers: contiguous CPU tensors of one dtype (float32 or float64), each held by a name for
# the duration of the call; outputs are fresh
# ---------------------------------------------------------------------------------------------
def _suffix(t):
    return "f32" if t.element_size() == 4 else "f64"


def _p(t):
    return None if t is None else t.data_ptr()


def head2(lib, a, d, z1, v, y1, sign, act, slope, w0, w_energy, reg, thr, live, out=None):
    """The two-class head from its input a [A, H] and ``d = z1 - z0`` [A] (``z1`` [A] for
    ECCo, else None), with the convergence test: (p_t, done, fin, live_next, n_fin, g).

    ``sign`` [A] is +1 where the target is class 1, -1 elsewhere; ``g`` (gradient at a) goes
    into ``out`` when given.
    """
    import torch

    n, h = a.shape
    a = a.contiguous()  # the iterate itself when the head is the first layer: feature-major
    s1 = torch.sigmoid(d)  # p1 [A]
    p_t = torch.sigmoid(d * sign)  # p(target) [A]
    g = torch.empty_like(a) if out is None else out
    done, fin, live_next = (torch.empty(n, dtype=torch.bool) for _ in range(3))
    live = live.contiguous()
    n_fin = getattr(lib, f"skct_head2_{_suffix(a)}")(
        n, h, _p(a), _p(s1), _p(z1), _p(d), _p(v), _p(y1), ACT_CODES[act], float(slope),
        _p(w0), float(w_energy), float(reg), _p(p_t), float(thr), _p(live), _p(done), _p(fin),
        _p(live_next), _p(g))
    return p_t, done, fin, live_next, n_fin, g


def act_back(lib, g, saved, act, slope):
    """``g *= act'(saved)`` in place (on a contiguous copy if g is not); returns g."""
    g, saved = g.contiguous(), saved.contiguous()
    fn = getattr(lib, f"skct_act_back_{_suffix(g)}")
    fn(g.numel(), _p(g), _p(saved), ACT_CODES[act], float(slope))
    return g


def feature_major(t):
    """t [A, D] stored feature-major: t itself if it already is, else a transposed copy."""
    return t if t.stride(0) == 1 and t.stride(1) == t.shape[0] else t.t().contiguous().t()


def update(lib, x, x0, gx, cost_weight, step_size, lam, c, out=None, base=None):
    """The projected step from the gradient ``gx`` [A, D] (c: TorchConstraints or None), the
    cost's sign taken at x, moving ``base`` [A, D] (x when None).

    Works feature-major: inputs not stored that way are copied; the result [A, D] is a
    transposed view of a [D, A] buffer (``out`` when given, not one of the inputs).
    """
    import torch

    n, d = x.shape
    # names hold every buffer: a temporary would be freed before the call
    x, x0, gx = feature_major(x), feature_major(x0), feature_major(gx)
    base = None if base is None else feature_major(base)
    out = torch.empty(d, n, dtype=x.dtype) if out is None else out
    cw = None if cost_weight is None else cost_weight.to(x.dtype).contiguous()
    params = (None,) * 5 if c is None else (
        c.step_lower.to(x.dtype).contiguous(), c.step_upper.to(x.dtype).contiguous(),
        c.mut.to(torch.int8).contiguous(), c.lower.to(x.dtype).contiguous(),
        c.upper.to(x.dtype).contiguous())
    getattr(lib, f"skct_update_{_suffix(x)}")(
        n, d, _p(x), _p(x0), _p(gx), _p(cw), float(step_size), float(lam),
        int(c is not None), *[_p(t) for t in params], _p(base), _p(out))
    return out.t()
