"""The whole fast search of a chain of layers in one native call (float32).

For the commonest model of all, ``Linear -> ReLU -> ... -> Linear(C)`` (LeakyReLU, Tanh and
Sigmoid too, and linear layers with nothing between them; skct's own MLP), the chain step of
:mod:`skct.search._compiled` still pays, at every one of the T steps, a pass over memory for
each elementwise operation between torch's matrix products, and a Python call per operation.
Here the search runs as one C function over a stream of rows:

- a *tile* of a few rows (8 with AVX-512, 3 otherwise) goes through the whole step at once:
  forward pass with the bias and activation applied to the matrix product's accumulators
  while they are still in registers, the head (for two classes from ``d = a . (w1 - w0)``
  alone; for more, the logits' log-sum-exp and softmax gradient), the convergence test and
  nascent iterate, the backward pass with the activation derivative applied the same way,
  and the masked, clamped and projected update. A tile's activations never leave the L1
  cache;
- each row leaves its tile as soon as it converges (or after T steps) and the next row of
  the stream takes its place at step 0, so the work is exactly the rows' own steps: no padding
  of finished rows, no compaction, no per-step bookkeeping in Python;
- the matrix products are small register-blocked kernels written with GCC vector extensions
  (AVX-512 or AVX2 from ``-march=native``); the weights are copied once per call into padded,
  aligned panels. Tanh and Sigmoid use vectorised Cephes ``expf``/``tanhf`` (about 1 ulp from
  torch's).

It computes what the chain step computes (:func:`skct.search._compiled_steps.make_native_step`)
with the same per-row rule, up to float rounding (fused multiply-adds, another summation
order). ``run`` splits the rows between ``torch.get_num_threads()`` Python threads (a ctypes
call releases the GIL). :func:`applies` says which plans it takes; every other search keeps
the chain or autograd step.
"""

from __future__ import annotations

import ctypes

from .._utils._native import NativeLibrary

__all__ = ["applies", "library", "status", "run", "SOURCE", "declare"]

#: SOURCE (the C code) and declare (its ctypes signatures) are public for tools that build it
#: elsewhere (the benchmark times a cold build with them).

#: Activation codes of the C function (after a hidden linear layer).
_ACTS = {None: 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}

#: Most linear layers (and widest layer) the C function takes.
MAX_LAYERS = 16
MAX_WIDTH = 4096

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef VW
#if defined(__AVX512F__)
#define VW 16   /* floats per vector */
#define TR 8    /* rows per tile */
#define NV 3    /* vectors per column block of the matrix kernels */
#else
#define VW 8
#define TR 3
#define NV 4
#endif
#endif
#define MAXL 16

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

static inline int64_t pad(int64_t n) { return (n + VW - 1) / VW * VW; }
/* blend, and NaN in, NaN out maximum/minimum (as torch.maximum/minimum): a NaN a is kept, a
   NaN b fails a > b */
static inline vf sel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
static inline vf vmaxn(vf a, vf b) { return sel((a > b) | (a != a), a, b); }
static inline vf vminn(vf a, vf b) { return sel((a < b) | (a != a), a, b); }

/* half vectors: with 16-float vectors, a width that is 8 past a multiple of 16 ends in one
   8-float vector (layer outputs are padded to 8 floats, row strides to 16) */
#if VW == 16
#define HW 8
#else
#define HW VW
#endif
typedef float vh __attribute__((vector_size(HW * 4)));
typedef int32_t vhi __attribute__((vector_size(HW * 4)));
static inline int64_t pad_out(int64_t n) { return (n + HW - 1) / HW * HW; }

/* exp, tanh and the logistic function of a vector (types VT, MT; NAME the suffix): Cephes'
   expf (range reduction by ln 2, degree-5 polynomial; about 1 ulp; below -87.3 it returns
   the smallest normal's neighbourhood instead of denormals) and tanhf (its odd polynomial
   below |x| = 0.625, 1 - 2 / (exp(2|x|) + 1) above). NaN in, NaN out. */
#define VMATH(VT, MT, NAME)                                                                 \
static inline VT vexp_##NAME(VT x) {                                                        \
  const VT z = (VT){0};                                                                     \
  MT nan = x != x;                                                                          \
  x = (VT)(((MT)x & ~(x > z + 88.3762626647949f)) | ((MT)(z + 88.3762626647949f)          \
          & (x > z + 88.3762626647949f)));                                                  \
  x = (VT)(((MT)x & ~(x < z - 87.3365478515625f)) | ((MT)(z - 87.3365478515625f)          \
          & (x < z - 87.3365478515625f)));                                                  \
  VT fx = x * 1.44269504088896341f;                                                         \
  fx = fx + (VT)(((MT)(z + 0.5f) & (fx >= z)) | ((MT)(z - 0.5f) & ~(fx >= z)));            \
  MT n = __builtin_convertvector(fx, MT);                                                   \
  VT nf = __builtin_convertvector(n, VT);                                                   \
  VT r = x - nf * 0.693359375f + nf * 2.12194440e-4f;                                       \
  VT y = z + 1.9875691500E-4f;                                                              \
  y = y * r + 1.3981999507E-3f; y = y * r + 8.3334519073E-3f;                               \
  y = y * r + 4.1665795894E-2f; y = y * r + 1.6666665459E-1f;                               \
  y = y * r + 5.0000001201E-1f;                                                             \
  y = y * (r * r) + r + 1.0f;                                                               \
  VT e = (VT)((n + 127) << 23);                                                             \
  y = y * e;                                                                                \
  return (VT)(((MT)y & ~nan) | ((MT)(z + __builtin_nanf("")) & nan));                      \
}                                                                                           \
static inline VT vtanh_##NAME(VT x) {                                                       \
  const VT z = (VT){0};                                                                     \
  MT neg = x < z;                                                                           \
  VT ax = (VT)((MT)x & ~neg) + (VT)((MT)(z - x) & neg);                                     \
  VT big = 1.0f - 2.0f / (vexp_##NAME(ax + ax) + 1.0f);                                     \
  big = (VT)(((MT)big & ~neg) | ((MT)(z - big) & neg));                                     \
  VT x2 = x * x;                                                                            \
  VT small = ((((-5.70498872745E-3f * x2 + 2.06390887954E-2f) * x2 - 5.37397155531E-2f)   \
               * x2 + 1.33314422036E-1f) * x2 - 3.33332819422E-1f) * x2 * x + x;           \
  MT is_small = ax < z + 0.625f;                                                            \
  return (VT)(((MT)small & is_small) | ((MT)big & ~is_small));                              \
}                                                                                           \
static inline VT vsigm_##NAME(VT x) { return 1.0f / (1.0f + vexp_##NAME(-x)); }
VMATH(vf, vi, f)
VMATH(vh, vhi, h)

/* the epilogue of one accumulator c (vector type VT, mask type MT, math suffix NM): mode 0
   none, forward 1 relu, 2 leaky (slope), 5 tanh, 6 sigmoid; backward, s the saved layer
   output at SP: 3 times relu'(s), 4 times leaky'(s), 7 times 1 - s^2, 8 times s (1 - s) */
#define EPILOGUE(VT, MT, NM, c, SP)                                                         \
  do {                                                                                      \
    const VT z_ = (VT){0}, o_ = z_ + 1.0f, l_ = z_ + slope;                                 \
    if (mode == 1) { c = (VT)((MT)c & ~(c <= z_)); }                                        \
    else if (mode == 2) { MT m_ = c > z_; c = c * (VT)(((MT)o_ & m_) | ((MT)l_ & ~m_)); }   \
    else if (mode == 5) { c = vtanh_##NM(c); }                                              \
    else if (mode == 6) { c = vsigm_##NM(c); }                                              \
    else if (mode == 3 || mode == 4) {                                                      \
      MT m_ = *(const VT*)(SP) > z_;                                                        \
      c = mode == 3 ? (VT)((MT)c & m_) : c * (VT)(((MT)o_ & m_) | ((MT)l_ & ~m_));          \
    } else if (mode == 7) {                                                                 \
      VT s_ = *(const VT*)(SP);                                                             \
      c = c * (1.0f - s_ * s_);                                                             \
    } else if (mode == 8) {                                                                 \
      VT s_ = *(const VT*)(SP);                                                             \
      c = c * (1.0f - s_) * s_;                                                             \
    }                                                                                       \
  } while (0)

/* epilogue modes of an activation code (0 none, 1 relu, 2 leaky, 3 tanh, 4 sigmoid) */
static const int FWD_MODE[5] = {0, 1, 2, 5, 6};
static const int BWD_MODE[5] = {0, 3, 4, 7, 8};

/* C[TR][NB*VW (+ HW if H)] = bias + A[TR][K] . B[K][.] (A row stride lda, B row stride ldb),
   then the epilogue (S[TR][.], stride lds: the saved layer output for modes 3 and 4) */
#define KERNEL(NB, H)                                                                       \
static inline void kern##NB##_##H(int64_t K, const float* restrict A, int64_t lda,         \
                                  const float* restrict B, int64_t ldb,                    \
                                  const float* restrict bias, float* restrict C,           \
                                  int64_t ldc, int mode, float slope,                      \
                                  const float* restrict S, int64_t lds) {                  \
  vf acc[TR][NB + 1];                                                                       \
  vh acch[TR];                                                                              \
  _Pragma("GCC unroll 8") for (int r = 0; r < TR; r++) {                                    \
    _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++)                                    \
      acc[r][v] = bias ? *(const vf*)(bias + v * VW) : (vf){0};                             \
    if (H) acch[r] = bias ? *(const vh*)(bias + NB * VW) : (vh){0};                         \
  }                                                                                         \
  for (int64_t k = 0; k < K; k++) {                                                         \
    vf b[NB + 1];                                                                           \
    vh bh = (vh){0};                                                                        \
    _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++)                                    \
      b[v] = *(const vf*)(B + k * ldb + v * VW);                                            \
    if (H) bh = *(const vh*)(B + k * ldb + NB * VW);                                        \
    _Pragma("GCC unroll 8") for (int r = 0; r < TR; r++) {                                  \
      float a = A[r * lda + k];                                                             \
      _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++) acc[r][v] += a * b[v];           \
      if (H) acch[r] += a * bh;                                                             \
    }                                                                                       \
  }                                                                                         \
  _Pragma("GCC unroll 8") for (int r = 0; r < TR; r++) {                                    \
    _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++) {                                  \
      vf c = acc[r][v];                                                                     \
      EPILOGUE(vf, vi, f, c, S + r * lds + v * VW);                                            \
      *(vf*)(C + r * ldc + v * VW) = c;                                                     \
    }                                                                                       \
    if (H) {                                                                                \
      vh c = acch[r];                                                                       \
      EPILOGUE(vh, vhi, h, c, S + r * lds + NB * VW);                                          \
      *(vh*)(C + r * ldc + NB * VW) = c;                                                    \
    }                                                                                       \
  }                                                                                         \
}
KERNEL(1, 0)
KERNEL(2, 0)
KERNEL(3, 0)
KERNEL(4, 0)
#if VW == 16
KERNEL(0, 1)
KERNEL(1, 1)
KERNEL(2, 1)
KERNEL(3, 1)
#endif

/* the width O (a multiple of HW) in column blocks of NV vectors, the last one with the half
   vector where O ends in one */
static void gemm(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 int64_t O, const float* bias, float* C, int64_t ldc, int mode, float slope,
                 const float* S, int64_t lds) {
  int64_t full = O / VW, half = O % VW != 0;
  for (int64_t v0 = 0; v0 < full || (half && v0 == full); v0 += NV) {
    int64_t nb = full - v0 > NV ? NV : full - v0, c0 = v0 * VW;
    int h = half && v0 + nb == full && nb < NV;  /* the half vector rides in this block */
    const float* bb = bias ? bias + c0 : NULL;
    const float* ss = S ? S + c0 : NULL;
#define CALL(NB, H) kern##NB##_##H(K, A, lda, B + c0, ldb, bb, C + c0, ldc, mode, slope, ss, lds)
    if (!h) {
      switch (nb) {
        case 4: CALL(4, 0); break;
        case 3: CALL(3, 0); break;
        case 2: CALL(2, 0); break;
        default: CALL(1, 0); break;
      }
    }
#if VW == 16
    else {
      switch (nb) {
        case 3: CALL(3, 1); break;
        case 2: CALL(2, 1); break;
        case 1: CALL(1, 1); break;
        default: CALL(0, 1); break;
      }
    }
#endif
#undef CALL
    if (h) break;
  }
}

static inline float dotp(const float* a, const float* b, int64_t n) {
  vf s = (vf){0};
  for (int64_t j = 0; j < n; j += VW) s += *(const vf*)(a + j) * *(const vf*)(b + j);
  float t = 0;
  for (int j = 0; j < VW; j++) t += s[j];
  return t;
}


/* The search of rows [0, N) (row-major x0 [N, D], target [N] in [0, dims[L]) ).
   L linear layers, dims[0..L] (two classes: the head from d = z1 - z0; more: softmax),
   W[l] [dims[l+1], dims[l]] row-major, bias[l] (NULL: none), act[l] (l < L - 1) the
   activation after layer l (0 none, 1 relu, 2 leaky, 3 tanh, 4 sigmoid), slope[l]. sc: step size,
   lambda_cost, reg strength, epsilon (< 0: no nascent), threshold;
   w_e [T + 1] the ECCo energy weight per step (NULL: Generic). Constraints (project != 0):
   slo, shi, mut (int8), lower, upper [D]; cw [D] cost weights (NULL: 1).
   Outputs: x_cf, nascent [N, D], proba [N], converged [N] (uint8), n_iter [N] (int64); with
   hist (else NULL), iterate t of row i goes to row hoff[i] + t of hist [., D].
   Returns 0, or -1 when memory is short. */
int skct_relu_search(int64_t N, int64_t D, const float* x0, const int64_t* target, int64_t L,
                     const int64_t* dims, const float* const* W, const float* const* bias,
                     const int32_t* act, const float* slope, int64_t T, const float* sc,
                     const float* w_e, int project, const float* slo, const float* shi,
                     const int8_t* mut, const float* lower, const float* upper,
                     const float* cw, float* x_cf, float* nascent, float* proba,
                     uint8_t* converged, int64_t* n_iter, float* hist, const int64_t* hoff) {
  if (L < 1 || L > MAXL) return -2;
  int64_t P[MAXL + 1];
  for (int64_t l = 0; l <= L; l++) P[l] = pad(dims[l]);
  const int64_t H = dims[L - 1], PH = P[L - 1], PD = P[0], C = dims[L], PC = P[L];
  const int binary = C == 2;
  const int64_t n_panels = binary ? L - 1 : L;  /* layers run as matrix products */
  /* sizes in floats */
  int64_t n_w = 0, n_a = 0, wmax = 0;
  for (int64_t l = 0; l < n_panels; l++) {
    n_w += dims[l] * P[l + 1] + dims[l + 1] * P[l] + P[l + 1];
    n_a += TR * P[l + 1];
  }
  for (int64_t l = 0; l < L; l++) wmax = P[l] > wmax ? P[l] : wmax;
  int64_t total = n_w + n_a + 3 * PH + 6 * PD + 4 * TR * PD + 2 * TR * wmax + 64;
  if (!binary) total += TR * PC;  /* the logits' gradient */
  float* mem = aligned_alloc(64, (size_t)(total * 4 + 63) / 64 * 64);
  if (!mem) return -1;
  memset(mem, 0, (size_t)total * 4);
  float* p = mem;
#define TAKE(n) (p += (n), p - (n))
  float *WT[MAXL], *WB[MAXL], *BI[MAXL], *A[MAXL + 1];
  for (int64_t l = 0; l < n_panels; l++) {
    int64_t I = dims[l], O = dims[l + 1];
    WT[l] = TAKE(I * P[l + 1]);  /* forward panel: W^T [I][P(O)] */
    WB[l] = TAKE(O * P[l]);      /* backward panel: W [O][P(I)] */
    BI[l] = TAKE(P[l + 1]);
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < I; i++) {
        WT[l][i * P[l + 1] + o] = W[l][o * I + i];
        WB[l][o * P[l] + i] = W[l][o * I + i];
      }
    if (bias[l]) memcpy(BI[l], bias[l], (size_t)O * 4);
    A[l + 1] = TAKE(TR * P[l + 1]);
  }
  /* head: v = w1 - w0, w0, w1 */
  float *hv = TAKE(PH), *h0 = TAKE(PH), *h1 = TAKE(PH);
  const float* Wh = W[L - 1];
  for (int64_t j = 0; j < H; j++) { h0[j] = Wh[j]; h1[j] = Wh[H + j]; hv[j] = Wh[H + j] - Wh[j]; }
  float b1 = bias[L - 1] ? bias[L - 1][1] : 0.0f;
  float db = bias[L - 1] ? bias[L - 1][1] - bias[L - 1][0] : 0.0f;
  /* per-feature parameters, padded (padding: no cost, no clamp, free) */
  float *flam = TAKE(PD), *fslo = TAKE(PD), *fshi = TAKE(PD), *flo = TAKE(PD);
  float *fup = TAKE(PD), *fmut = TAKE(PD);
  for (int64_t j = 0; j < PD; j++) {
    int in = j < D;
    flam[j] = in ? sc[1] * (cw ? cw[j] : 1.0f) : 0.0f;
    fslo[j] = in && project ? slo[j] : -INFINITY;
    fshi[j] = in && project ? shi[j] : INFINITY;
    flo[j] = in && project ? lower[j] : -INFINITY;
    fup[j] = in && project ? upper[j] : INFINITY;
    fmut[j] = in && project ? (float)mut[j] : 3.0f;
  }
  float *X = TAKE(TR * PD), *X0 = TAKE(TR * PD), *NAS = TAKE(TR * PD), *GX = TAKE(TR * PD);
  float *G1 = TAKE(TR * wmax), *G2 = TAKE(TR * wmax);
  float* GZ = binary ? NULL : TAKE(TR * PC);
  A[0] = X;
#undef TAKE
  const float step = sc[0], reg = sc[2], eps = sc[3], thr = sc[4];
  const int use_eps = eps >= 0;
  int64_t row[TR], t_of[TR], cls[TR];
  int64_t next = 0;
  /* fill slot r with the next row (or leave it empty: row -1, zeros) */
#define REFILL(r)                                                                       \
  do {                                                                                  \
    float* xr = X + (r) * PD;                                                           \
    if (next < N) {                                                                     \
      row[r] = next; t_of[r] = 0; cls[r] = target[next];                                \
      memcpy(xr, x0 + next * D, (size_t)D * 4);                                         \
      next++;                                                                           \
    } else {                                                                            \
      row[r] = -1; t_of[r] = 0; cls[r] = 0;                                             \
      memset(xr, 0, (size_t)D * 4);                                                     \
    }                                                                                   \
    memcpy(X0 + (r) * PD, xr, (size_t)D * 4);                                           \
    memcpy(NAS + (r) * PD, xr, (size_t)D * 4);                                          \
  } while (0)
  for (int r = 0; r < TR; r++) REFILL(r);
  float alpha[TR], beta[TR];
  int leave[TR];
  for (;;) {
    int busy = 0;
    for (int r = 0; r < TR; r++) busy |= row[r] >= 0;
    if (!busy) break;
    /* forward through the hidden layers (and the head, when it has more than two classes) */
    for (int64_t l = 0; l < n_panels; l++)
      gemm(dims[l], A[l], P[l], WT[l], P[l + 1], pad_out(dims[l + 1]), BI[l], A[l + 1], P[l + 1],
           l + 1 < L ? FWD_MODE[act[l]] : 0, l + 1 < L ? slope[l] : 0.0f, NULL, 0);
    const float* a = A[L - 1];
    /* head, test, nascent, the head's gradient */
    for (int r = 0; r < TR; r++) {
      leave[r] = 0;
      alpha[r] = beta[r] = 0.0f;
      if (row[r] < 0) continue;
      int64_t t = t_of[r];
      float d = 0.0f, lse = 0.0f, pt, s1 = 0.0f;
      const float* z = binary ? NULL : A[L] + r * PC;
      if (binary) {  /* p1 = sigmoid(d) and p0 = 1 - p1 = e p1, e = exp(-d): one exp */
        d = dotp(a + r * PH, hv, PH) + db;
        float e = expf(-d);
        s1 = 1.0f / (1.0f + e);
        pt = cls[r] == 1 ? s1 : (isinf(e) ? 1.0f : e * s1);
      } else {  /* log-sum-exp of the logits, p(target) = exp(z_t - lse) */
        float m = z[0], se = 0.0f;
        for (int64_t c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
        for (int64_t c = 0; c < C; c++) se += expf(z[c] - m);
        lse = m + logf(se);
        pt = expf(z[cls[r]] - lse);
      }
      float* xr = X + r * PD;
      const float* x0r = X0 + r * PD;
      if (hist) memcpy(hist + (hoff[row[r]] + t) * D, xr, (size_t)D * 4);
      if (use_eps) {
        float m = 0.0f;
        for (int64_t j = 0; j < D; j++) { float e = fabsf(xr[j] - x0r[j]); m = e > m ? e : m; }
        if (m <= eps) memcpy(NAS + r * PD, xr, (size_t)D * 4);
      }
      int done = pt >= thr;
      if (done || t == T) {
        int64_t i = row[r];
        memcpy(x_cf + i * D, xr, (size_t)D * 4);
        memcpy(nascent + i * D, NAS + r * PD, (size_t)D * 4);
        proba[i] = pt; converged[i] = (uint8_t)done; n_iter[i] = t;
        leave[r] = 1;
        if (!binary) memset(GZ + r * PC, 0, (size_t)PC * 4);
        continue;
      }
      if (!binary) {  /* softmax - one-hot, and ECCo's energy term at the target's logit */
        float* gz = GZ + r * PC;
        for (int64_t c = 0; c < C; c++) gz[c] = expf(z[c] - lse) - (c == cls[r] ? 1.0f : 0.0f);
        if (w_e) gz[cls[r]] -= w_e[t] * (1 - 2 * reg * z[cls[r]]);
        continue;
      }
      int y1 = cls[r] == 1;
      float al = s1 - (y1 ? 1.0f : 0.0f), be = 0.0f;
      if (w_e) {
        float z1 = dotp(a + r * PH, h1, PH) + b1;
        float zt = y1 ? z1 : z1 - d;
        float coef = w_e[t] * (1 - 2 * reg * zt);
        if (y1) al -= coef;
        be = -coef;
      }
      alpha[r] = al; beta[r] = be;
    }
    /* gradient at the head's input, times the derivative of the activation before it */
    if (!binary) {
      int am = L >= 2 ? act[L - 2] : 0;
      gemm(C, GZ, PC, WB[L - 1], PH, pad_out(H), NULL, G1, PH, BWD_MODE[am],
           L >= 2 ? slope[L - 2] : 0.0f, a, PH);
    } else {
      int am = L >= 2 ? act[L - 2] : 0;
      const vf zero = (vf){0}, one = zero + 1.0f, sl = zero + (L >= 2 ? slope[L - 2] : 0.0f);
      for (int r = 0; r < TR; r++) {
        float* g = G1 + r * PH;
        const float* ar = a + r * PH;
        const vf al = zero + alpha[r], be = zero + beta[r];
        for (int64_t j = 0; j < PH; j += VW) {
          vf v = al * *(const vf*)(hv + j);
          if (w_e) v += be * *(const vf*)(h0 + j);
          if (am == 1 || am == 2) {
            vi m = *(const vf*)(ar + j) > zero;
            v = am == 1 ? (vf)((vi)v & m) : v * sel(m, one, sl);
          } else if (am == 3) {
            vf s_ = *(const vf*)(ar + j);
            v = v * (1.0f - s_ * s_);
          } else if (am == 4) {
            vf s_ = *(const vf*)(ar + j);
            v = v * (1.0f - s_) * s_;
          }
          *(vf*)(g + j) = v;
        }
      }
    }
    /* backward through the hidden layers: g at a_l = (g at a_{l+1}) W_l, times act'(a_l) */
    float *gin = G1, *gout = G2;
    for (int64_t l = L - 2; l >= 0; l--) {
      if (l == 0) {
        gemm(dims[1], gin, P[1], WB[0], P[0], pad_out(D), NULL, GX, PD, 0, 0.0f, NULL, 0);
      } else {
        int m = BWD_MODE[act[l - 1]];
        gemm(dims[l + 1], gin, P[l + 1], WB[l], P[l], pad_out(dims[l]), NULL, gout, P[l], m,
             slope[l - 1], A[l], P[l]);
        float* tmp = gin; gin = gout; gout = tmp;
      }
    }
    if (L == 1) memcpy(GX, G1, (size_t)TR * PD * 4);
    /* update: L1 subgradient, step, clamp and projection (mutability, widened bounds) */
    for (int r = 0; r < TR; r++) {
      if (row[r] < 0) continue;
      if (leave[r]) { REFILL(r); continue; }
      float* xr = X + r * PD;
      const float* x0r = X0 + r * PD;
      const float* gr = GX + r * PD;
      const vf zero = (vf){0}, one = zero + 1.0f, nstep = zero - step;
      for (int64_t j = 0; j < PD; j += VW) {
        vf xj = *(const vf*)(xr + j), rj = *(const vf*)(x0r + j), diff = xj - rj;
        vf sg = (vf)((vi)one & (diff > zero)) - (vf)((vi)one & (diff < zero));
        vf s = nstep * (*(const vf*)(gr + j) + *(const vf*)(flam + j) * sg);
        if (project) {
          s = vminn(vmaxn(s, *(const vf*)(fslo + j)), *(const vf*)(fshi + j));
          vf xn = xj + s, m = *(const vf*)(fmut + j);
          xn = sel(m == one, vmaxn(xn, rj), xn);
          xn = sel(m == one + one, vminn(xn, rj), xn);
          xn = sel(m == zero, rj, xn);
          xn = vminn(xn, vmaxn(*(const vf*)(fup + j), rj));
          *(vf*)(xr + j) = vmaxn(xn, vminn(*(const vf*)(flo + j), rj));
        } else {
          *(vf*)(xr + j) = xj + s;
        }
      }
      t_of[r]++;
    }
  }
#undef REFILL
  free(mem);
  return 0;
}
"""


def declare(lib):
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    fn = lib.skct_relu_search
    fn.argtypes = [i64, i64, ptr, ptr, i64, ptr, ptr, ptr, ptr, ptr, i64, ptr, ptr, c_int,
                   ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr]
    fn.restype = c_int


_LIBRARY = NativeLibrary("skct_relu_search", lambda: SOURCE, declare)


def library():
    """The loaded search (built on first use), or None where it cannot be built."""
    return _LIBRARY.get()


def status():
    """How the search was obtained ("loaded <path>") or why not (a short sentence)."""
    return _LIBRARY.status


def applies(layers, dtype):
    """Whether :func:`run` takes a plan key's layers: float32, linear layers with at most one
    ReLU, LeakyReLU (slope >= 0), Tanh or Sigmoid between two of them, a linear head of two or
    more classes."""
    import torch

    if dtype != torch.float32 or not layers or layers[0][0] != "linear":
        return False
    if layers[-1][0] != "linear" or layers[-1][2] < 2:
        return False
    n_lin, prev = 0, None
    for layer in layers:
        if layer[0] == "linear":
            n_lin += 1
            if layer[1] > MAX_WIDTH or layer[2] > MAX_WIDTH:
                return False
        else:
            if prev != "linear" or layer[1] not in _ACTS:
                return False
            if layer[1] == "leaky_relu" and not layer[2] >= 0:
                return False
        prev = layer[0]
    return n_lin <= MAX_LAYERS


def _ptr(t):
    return None if t is None else t.data_ptr()


def run(lib, layers, params, x, target, objective, constraints, cost_weight, threshold,
        max_iter, epsilon, w_energy, n_threads=1, hist=None, hist_offset=None):
    """The search of x [N, D] (float32, contiguous) toward ``target`` [N] (long, classes of
    the model's head).

    ``layers`` is the plan key, ``params`` the current weights and biases of its linear
    layers (:func:`skct.search._compiled_plan.plan_tensors`), ``objective`` the generator's
    (step size, lambda_cost, lambda_energy, reg strength), ``w_energy`` the ECCo energy weight
    per step [T + 1] (None for Generic), ``constraints`` TorchConstraints or None (None or
    trivial: no projection). Returns (x_cf, converged, n_iter, proba, nascent).

    With ``hist`` [S, D] and ``hist_offset`` [N] (long), iterate t of row i is written to row
    ``hist_offset[i] + t`` of ``hist`` (``S >= sum(n_iter + 1)``: from an earlier run, whose
    results this one repeats exactly, since no row's arithmetic depends on the others).
    """
    import torch

    n, d = x.shape
    lins = [layer for layer in layers if layer[0] == "linear"]
    weights, biases, k = [], [], 0
    for layer in lins:
        weights.append(params[k].contiguous())
        biases.append(params[k + 1].contiguous() if layer[3] else None)
        k += 2 if layer[3] else 1
    acts, slopes = [], []
    for i, layer in enumerate(layers):
        if layer[0] == "linear" and i + 1 < len(layers) and len(acts) < len(lins) - 1:
            nxt = layers[i + 1]
            acts.append(_ACTS[nxt[1]] if nxt[0] == "act" else 0)
            slopes.append(nxt[2] if nxt[0] == "act" else 0.0)
    n_lin = len(lins)
    dims = torch.tensor([lins[0][1]] + [layer[2] for layer in lins], dtype=torch.int64)
    w_ptrs = (ctypes.c_void_p * n_lin)(*[w.data_ptr() for w in weights])
    b_ptrs = (ctypes.c_void_p * n_lin)(*[_ptr(b) for b in biases])
    act_t = torch.tensor(acts or [0], dtype=torch.int32)
    slope_t = torch.tensor(slopes or [0.0], dtype=torch.float32)
    step_size, lam, _, reg = objective
    eps = -1.0 if epsilon is None else float(epsilon)
    sc = torch.tensor([step_size, lam, reg, eps, float(threshold)], dtype=torch.float32)
    w_e = None if w_energy is None else torch.tensor(w_energy, dtype=torch.float32)
    project = constraints is not None and not constraints.is_trivial
    f32 = torch.float32
    cons = (None,) * 5
    if project:
        c = constraints
        cons = (c.step_lower.to(f32).contiguous(), c.step_upper.to(f32).contiguous(),
                c.mut.to(torch.int8).contiguous(), c.lower.to(f32).contiguous(),
                c.upper.to(f32).contiguous())
    cw = None if cost_weight is None else cost_weight.to(f32).contiguous()
    x = x.contiguous()
    target = target.contiguous()
    x_cf, nascent = torch.empty_like(x), torch.empty_like(x)
    proba = torch.empty(n, dtype=f32)
    converged = torch.empty(n, dtype=torch.bool)
    n_iter = torch.empty(n, dtype=torch.int64)

    def part(lo, hi):
        def rows(t):
            return t[lo:hi].data_ptr()
        return lib.skct_relu_search(
            hi - lo, d, rows(x), rows(target), n_lin, dims.data_ptr(), w_ptrs, b_ptrs,
            act_t.data_ptr(), slope_t.data_ptr(), int(max_iter), sc.data_ptr(), _ptr(w_e),
            int(project), *[_ptr(t) for t in cons], _ptr(cw), rows(x_cf), rows(nascent),
            rows(proba), rows(converged), rows(n_iter), _ptr(hist),
            None if hist_offset is None else rows(hist_offset))

    n_threads = max(1, min(int(n_threads), n // 64))
    bounds = [n * i // n_threads for i in range(n_threads + 1)]
    if n_threads == 1:
        codes = [part(0, n)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_threads) as pool:
            codes = list(pool.map(part, bounds[:-1], bounds[1:]))
    if any(codes):
        raise MemoryError("skct: the native search could not allocate its working memory.")
    return x_cf, converged, n_iter, proba, nascent
