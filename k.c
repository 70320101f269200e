
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef VW
#if defined(__AVX512F__)
#define VW 16   /* floats per vector */
#define TR 6    /* rows per tile */
#define NV 4    /* vectors per column block of the matrix kernels */
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
static inline float maxn(float a, float b) { return (a > b || isnan(a)) ? a : b; }
static inline float minn(float a, float b) { return (a < b || isnan(a)) ? a : b; }

/* C[TR][nb*VW] = bias + A[TR][K] . B[K][nb*VW] (A row stride lda, B row stride ldb), then
   the epilogue: mode 0 none, 1 relu, 2 leaky (slope), 3 times relu'(S), 4 times leaky'(S),
   with S[TR][.] (stride lds) the saved layer output. */
#define KERNEL(NB)                                                                          \
static inline void kern##NB(int64_t K, const float* restrict A, int64_t lda,               \
                            const float* restrict B, int64_t ldb, const float* restrict bias, \
                            float* restrict C, int64_t ldc, int mode, float slope,         \
                            const float* restrict S, int64_t lds) {                        \
  vf acc[TR][NB];                                                                           \
  _Pragma("GCC unroll 8") for (int r = 0; r < TR; r++)                                      \
    _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++)                                    \
      acc[r][v] = bias ? *(const vf*)(bias + v * VW) : (vf){0};                             \
  for (int64_t k = 0; k < K; k++) {                                                         \
    vf b[NB];                                                                               \
    _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++) b[v] = *(const vf*)(B + k * ldb + v * VW); \
    _Pragma("GCC unroll 8") for (int r = 0; r < TR; r++) {                                  \
      float a = A[r * lda + k];                                                             \
      _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++) acc[r][v] += a * b[v];           \
    }                                                                                       \
  }                                                                                         \
  const vf zero = (vf){0}, one = zero + 1.0f, sl = zero + slope;                            \
  _Pragma("GCC unroll 8") for (int r = 0; r < TR; r++)                                      \
    _Pragma("GCC unroll 8") for (int v = 0; v < NB; v++) {                                  \
      vf c = acc[r][v];                                                                     \
      if (mode == 1) { c = (vf)((vi)c & ~(c <= zero)); }                                    \
      else if (mode == 2) { vi m = c > zero; c = c * (vf)(((vi)one & m) | ((vi)sl & ~m)); } \
      else if (mode >= 3) {                                                                 \
        vf s = *(const vf*)(S + r * lds + v * VW);                                          \
        vi m = s > zero;                                                                    \
        c = mode == 3 ? (vf)((vi)c & m) : c * (vf)(((vi)one & m) | ((vi)sl & ~m));          \
      }                                                                                     \
      *(vf*)(C + r * ldc + v * VW) = c;                                                     \
    }                                                                                       \
}
KERNEL(1)
KERNEL(2)
KERNEL(3)
KERNEL(4)

/* the whole width O (a multiple of VW) in column blocks of NV vectors */
static void gemm(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 int64_t O, const float* bias, float* C, int64_t ldc, int mode, float slope,
                 const float* S, int64_t lds) {
  for (int64_t c0 = 0; c0 < O; c0 += NV * VW) {
    int64_t nb = (O - c0) / VW;
    nb = nb > NV ? NV : nb;
    const float* bb = bias ? bias + c0 : NULL;
    const float* ss = S ? S + c0 : NULL;
    switch (nb) {
      case 4: kern4(K, A, lda, B + c0, ldb, bb, C + c0, ldc, mode, slope, ss, lds); break;
      case 3: kern3(K, A, lda, B + c0, ldb, bb, C + c0, ldc, mode, slope, ss, lds); break;
      case 2: kern2(K, A, lda, B + c0, ldb, bb, C + c0, ldc, mode, slope, ss, lds); break;
      default: kern1(K, A, lda, B + c0, ldb, bb, C + c0, ldc, mode, slope, ss, lds); break;
    }
  }
}

static inline float dotp(const float* a, const float* b, int64_t n) {
  vf s = (vf){0};
  for (int64_t j = 0; j < n; j += VW) s += *(const vf*)(a + j) * *(const vf*)(b + j);
  float t = 0;
  for (int j = 0; j < VW; j++) t += s[j];
  return t;
}

static inline float sigm(float z) { return 1.0f / (1.0f + expf(-z)); }

/* The search of rows [0, N) (row-major x0 [N, D], target [N] in {0, 1}).
   L linear layers, dims[0..L] (dims[L] == 2), W[l] [dims[l+1], dims[l]] row-major, bias[l]
   (NULL: none), act[l] (l < L - 1) the activation after layer l (0 none, 1 relu, 2 leaky),
   slope[l]. sc: step size, lambda_cost, reg strength, epsilon (< 0: no nascent), threshold;
   w_e [T + 1] the ECCo energy weight per step (NULL: Generic). Constraints (project != 0):
   slo, shi, mut (int8), lower, upper [D]; cw [D] cost weights (NULL: 1).
   Outputs: x_cf, nascent [N, D], proba [N], converged [N] (uint8), n_iter [N] (int64).
   Returns 0, or -1 when memory is short. */
int skct_relu_search(int64_t N, int64_t D, const float* x0, const int64_t* target, int64_t L,
                     const int64_t* dims, const float* const* W, const float* const* bias,
                     const int32_t* act, const float* slope, int64_t T, const float* sc,
                     const float* w_e, int project, const float* slo, const float* shi,
                     const int8_t* mut, const float* lower, const float* upper,
                     const float* cw, float* x_cf, float* nascent, float* proba,
                     uint8_t* converged, int64_t* n_iter) {
  if (L < 1 || L > MAXL) return -2;
  int64_t P[MAXL + 1];
  for (int64_t l = 0; l <= L; l++) P[l] = pad(dims[l]);
  const int64_t H = dims[L - 1], PH = P[L - 1], PD = P[0];
  /* sizes in floats */
  int64_t n_w = 0, n_a = 0, wmax = 0;
  for (int64_t l = 0; l + 1 < L; l++) {
    n_w += dims[l] * P[l + 1] + dims[l + 1] * P[l] + P[l + 1];
    n_a += TR * P[l + 1];
  }
  for (int64_t l = 0; l < L; l++) wmax = P[l] > wmax ? P[l] : wmax;
  int64_t total = n_w + n_a + 3 * PH + 6 * PD + 4 * TR * PD + 2 * TR * wmax + 64;
  float* mem = aligned_alloc(64, (size_t)(total * 4 + 63) / 64 * 64);
  if (!mem) return -1;
  memset(mem, 0, (size_t)total * 4);
  float* p = mem;
#define TAKE(n) (p += (n), p - (n))
  float *WT[MAXL], *WB[MAXL], *BI[MAXL], *A[MAXL + 1];
  for (int64_t l = 0; l + 1 < L; l++) {
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
  float *fcw = TAKE(PD), *fslo = TAKE(PD), *fshi = TAKE(PD), *flo = TAKE(PD), *fup = TAKE(PD);
  int8_t* fmut = (int8_t*)TAKE(PD);
  for (int64_t j = 0; j < PD; j++) {
    int in = j < D;
    fcw[j] = in ? (cw ? cw[j] : 1.0f) : 0.0f;
    fslo[j] = in && project ? slo[j] : -INFINITY;
    fshi[j] = in && project ? shi[j] : INFINITY;
    flo[j] = in && project ? lower[j] : -INFINITY;
    fup[j] = in && project ? upper[j] : INFINITY;
    fmut[j] = in && project ? mut[j] : 3;
  }
  float *X = TAKE(TR * PD), *X0 = TAKE(TR * PD), *NAS = TAKE(TR * PD), *GX = TAKE(TR * PD);
  float *G1 = TAKE(TR * wmax), *G2 = TAKE(TR * wmax);
  A[0] = X;
#undef TAKE
  const float step = sc[0], lam = sc[1], reg = sc[2], eps = sc[3], thr = sc[4];
  const int use_eps = eps >= 0;
  int64_t row[TR], t_of[TR];
  int y1[TR];
  int64_t next = 0;
  /* fill slot r with the next row (or leave it empty: row -1, zeros) */
#define REFILL(r)                                                                       \
  do {                                                                                  \
    float* xr = X + (r) * PD;                                                           \
    if (next < N) {                                                                     \
      row[r] = next; t_of[r] = 0; y1[r] = target[next] == 1;                            \
      memcpy(xr, x0 + next * D, (size_t)D * 4);                                         \
      next++;                                                                           \
    } else {                                                                            \
      row[r] = -1; t_of[r] = 0; y1[r] = 0;                                              \
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
    /* forward through the hidden layers */
    for (int64_t l = 0; l + 1 < L; l++)
      gemm(dims[l], A[l], P[l], WT[l], P[l + 1], P[l + 1], BI[l], A[l + 1], P[l + 1],
           act[l], slope[l], NULL, 0);
    const float* a = A[L - 1];
    /* head, test, nascent, the head's gradient */
    for (int r = 0; r < TR; r++) {
      leave[r] = 0;
      alpha[r] = beta[r] = 0.0f;
      if (row[r] < 0) continue;
      int64_t t = t_of[r];
      float d = dotp(a + r * PH, hv, PH) + db;
      float pt = sigm(y1[r] ? d : -d);
      float* xr = X + r * PD;
      const float* x0r = X0 + r * PD;
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
        continue;
      }
      float al = sigm(d) - (y1[r] ? 1.0f : 0.0f), be = 0.0f;
      if (w_e) {
        float z1 = dotp(a + r * PH, h1, PH) + b1;
        float zt = y1[r] ? z1 : z1 - d;
        float coef = w_e[t] * (1 - 2 * reg * zt);
        if (y1[r]) al -= coef;
        be = -coef;
      }
      alpha[r] = al; beta[r] = be;
    }
    /* gradient at the head's input, times the derivative of the activation before it */
    {
      int am = L >= 2 ? act[L - 2] : 0;
      float sl = L >= 2 ? slope[L - 2] : 0.0f;
      for (int r = 0; r < TR; r++) {
        float* g = G1 + r * PH;
        const float* ar = a + r * PH;
        float al = alpha[r], be = beta[r];
        #pragma omp simd
        for (int64_t j = 0; j < PH; j++) {
          float v = al * hv[j] + be * h0[j];
          g[j] = am == 0 ? v : ar[j] > 0 ? v : am == 1 ? 0.0f : v * sl;
        }
      }
    }
    /* backward through the hidden layers: g at a_l = (g at a_{l+1}) W_l, times act'(a_l) */
    float *gin = G1, *gout = G2;
    for (int64_t l = L - 2; l >= 0; l--) {
      if (l == 0) {
        gemm(dims[1], gin, P[1], WB[0], P[0], P[0], NULL, GX, PD, 0, 0.0f, NULL, 0);
      } else {
        int m = act[l - 1] == 0 ? 0 : act[l - 1] == 1 ? 3 : 4;
        gemm(dims[l + 1], gin, P[l + 1], WB[l], P[l], P[l], NULL, gout, P[l], m,
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
      #pragma omp simd
      for (int64_t j = 0; j < PD; j++) {
        float xj = xr[j], rj = x0r[j], diff = xj - rj;
        float sg = (float)(diff > 0) - (float)(diff < 0);
        float s = -step * (gr[j] + (lam * fcw[j]) * sg);
        s = s < fslo[j] ? fslo[j] : s;
        s = s > fshi[j] ? fshi[j] : s;
        float xn = xj + s;
        int m = fmut[j];
        xn = m == 1 ? maxn(xn, rj) : xn;
        xn = m == 2 ? minn(xn, rj) : xn;
        xn = m == 0 ? rj : xn;
        float hi = maxn(fup[j], rj), lo = minn(flo[j], rj);
        xn = minn(xn, hi);
        xr[j] = maxn(xn, lo);
      }
      t_of[r]++;
    }
  }
#undef REFILL
  free(mem);
  return 0;
}
