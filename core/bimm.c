/* bimm: packing, the AVX2+FMA kernel (register blocks of up to 6 rows by 16 columns, as BLIS's
 * Haswell sgemm), the portable kernel and the run-time choice between them. Register blocking
 * changes only which sums run side by side, never the order inside one sum, so every block shape
 * gives the same bits. */
#include "bimm.h"

#include "err.h"
#include "simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BIMM_X86 1
#endif

#define NR BIMM_NR

int bimm_alloc(bimm_matrix *p, int K, int Np)
{
    size_t bytes = (size_t)Np * (size_t)(K ? K : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    float *pan = aligned_alloc(64, bytes);
    if (!pan)
        return CORE_ENOMEM;
    p->K = K;
    p->Np = Np;
    p->panels = pan;
    return 0;
}

int bimm_pack(bimm_matrix *p, int Np, const int *src, int n_parts, const float *const *part,
              const int *K_part)
{
    int K = 0;
    for (int i = 0; i < n_parts; i++)
        K += K_part[i];
    if (bimm_alloc(p, K, Np))
        return CORE_ENOMEM;
    for (int q = 0; q < Np; q++) {
        float *col = p->panels + (size_t)(q / NR) * K * NR + q % NR; /* P[k][q] at col[k * NR] */
        int k = 0;
        for (int i = 0; i < n_parts; i++)
            for (int j = 0; j < K_part[i]; j++, k++)
                col[(size_t)k * NR] =
                    src[q] < 0 ? 0.0f : part[i][(size_t)src[q] * K_part[i] + j];
    }
    return 0;
}

void bimm_fill_transposed(bimm_matrix *p, const float *W, size_t ldw)
{
    int K = p->K;
    for (int q0 = 0; q0 < p->Np; q0 += NR) {
        float *pan = p->panels + (size_t)q0 * K;
        for (int c = 0; c < NR; c++) {
            const float *row = W + (size_t)(q0 + c) * ldw;
            for (int k = 0; k < K; k++)
                pan[(size_t)k * NR + c] = row[k];
        }
    }
}

void bimm_fill(bimm_matrix *p, const float *W, size_t ldw)
{
    int K = p->K;
    for (int q0 = 0; q0 < p->Np; q0 += NR) {
        float *pan = p->panels + (size_t)q0 * K;
        for (int k = 0; k < K; k++)
            memcpy(pan + (size_t)k * NR, W + (size_t)k * ldw + q0, NR * sizeof(float));
    }
}

void bimm_free(bimm_matrix *p)
{
    free(p->panels);
    memset(p, 0, sizeof *p);
}

void bimm_naive(float *out, size_t ldo, const float *x, size_t ldx, const float *P, int N, int K,
                int B)
{
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            float acc = out[(size_t)b * ldo + n];
            for (int k = 0; k < K; k++)
                acc = fmaf(x[(size_t)b * ldx + k], P[(size_t)k * N + n], acc);
            out[(size_t)b * ldo + n] = acc;
        }
}

// ----------------------------------------------------------------------------
// portable kernel: the definition, column by column

static void run_portable(float *out, size_t ldo, const float *x, size_t ldx, const bimm_matrix *p,
                         int B, int q0, int q1)
{
    int K = p->K;
    for (int b = 0; b < B; b++) {
        const float *xr = x + (size_t)b * ldx;
        for (int q = q0; q < q1; q += NR) {
            const float *pan = p->panels + (size_t)(q / NR) * K * NR;
            float *o = out + (size_t)b * ldo + q, acc[NR];
            memcpy(acc, o, sizeof acc);
            for (int k = 0; k < K; k++) /* NR independent sums, each in k order */
                for (int c = 0; c < NR; c++)
                    acc[c] = fmaf(xr[k], pan[(size_t)k * NR + c], acc[c]);
            memcpy(o, acc, sizeof acc);
        }
    }
}

// ----------------------------------------------------------------------------
// AVX2+FMA kernel

#ifdef BIMM_X86
#define AVX2 __attribute__((target("avx2,fma")))

/* MR rows of x by NP panels: MR * NP * 2 accumulators (at most 12 of the 16 ymm registers), each
 * one output's running sum, stepped through k in order. MR and NP are constants at every call, so
 * the loops unroll and the accumulators live in registers. */
static inline __attribute__((always_inline)) AVX2 void
block(float *out, size_t ldo, const float *x, size_t ldx, const float *pan, size_t pstride, int K,
      const int MR, const int NP, const float *prefetch)
{
    __m256 acc[6][6][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 6
        for (int j = 0; j < NP; j++) {
            acc[r][j][0] = _mm256_loadu_ps(out + r * ldo + j * NR);
            acc[r][j][1] = _mm256_loadu_ps(out + r * ldo + j * NR + 8);
        }
    for (int k = 0; k < K; k++) {
        if (prefetch) /* the panels the next block starts on, one cache line each per k */
#pragma GCC unroll 6
            for (int j = 0; j < NP; j++)
                _mm_prefetch((const char *)(prefetch + j * pstride + (size_t)k * NR),
                             _MM_HINT_T1);
#pragma GCC unroll 6
        for (int j = 0; j < NP; j++) {
            __m256 w0 = _mm256_load_ps(pan + j * pstride + (size_t)k * NR);
            __m256 w1 = _mm256_load_ps(pan + j * pstride + (size_t)k * NR + 8);
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
                acc[r][j][0] = _mm256_fmadd_ps(xb, w0, acc[r][j][0]);
                acc[r][j][1] = _mm256_fmadd_ps(xb, w1, acc[r][j][1]);
            }
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 6
        for (int j = 0; j < NP; j++) {
            _mm256_storeu_ps(out + r * ldo + j * NR, acc[r][j][0]);
            _mm256_storeu_ps(out + r * ldo + j * NR + 8, acc[r][j][1]);
        }
}

/* The rows left after the 6-row blocks (1..5), over panels [j, j + NP): few rows take several
 * panels at once so that enough independent sums are in flight to hide the FMA latency. */
static AVX2 void tail_rows(float *out, size_t ldo, const float *x, size_t ldx, const float *pan,
                           size_t pstride, int K, int rows, int np)
{
    int j = 0;
    switch (rows) {
    case 1:
        for (; j + 6 <= np; j += 6)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 1, 6, NULL);
        for (; j < np; j++)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 1, 1, NULL);
        break;
    case 2:
        for (; j + 3 <= np; j += 3)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 2, 3, NULL);
        for (; j < np; j++)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 2, 1, NULL);
        break;
    case 3:
        for (; j + 2 <= np; j += 2)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 3, 2, NULL);
        for (; j < np; j++)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 3, 1, NULL);
        break;
    case 4:
        for (; j < np; j++)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 4, 1, NULL);
        break;
    case 5:
        for (; j < np; j++)
            block(out + j * NR, ldo, x, ldx, pan + j * pstride, pstride, K, 5, 1, NULL);
        break;
    }
}

static AVX2 void run_avx2(float *out, size_t ldo, const float *x, size_t ldx, const bimm_matrix *p,
                          int B, int q0, int q1)
{
    int K = p->K, np = (q1 - q0) / NR;
    size_t pstride = (size_t)K * NR;
    const float *pan = p->panels + (size_t)(q0 / NR) * pstride;
    out += q0;
    int full = B / 6 * 6;
    /* A group of panels stays in L1/L2 while every row block passes over it, so the weights
     * come from memory once per call however large B is. */
    const int group = 6;
    for (int j = 0; j < np; j += group) {
        int g = np - j < group ? np - j : group;
        for (int b = 0; b < full; b += 6)
            for (int jj = j; jj < j + g; jj++)
                block(out + (size_t)b * ldo + jj * NR, ldo, x + (size_t)b * ldx, ldx,
                      pan + jj * pstride, pstride, K, 6, 1,
                      b == 0 && jj + group < np ? pan + (jj + group) * pstride : NULL);
        if (B > full)
            tail_rows(out + (size_t)full * ldo + j * NR, ldo, x + (size_t)full * ldx, ldx,
                      pan + j * pstride, pstride, K, B - full, g);
    }
}
#endif

// ----------------------------------------------------------------------------
// choice

int bimm_vectorised(void)
{
#ifdef BIMM_X86
    return simd_level() >= SIMD_AVX2;
#else
    return 0;
#endif
}

const char *bimm_impl_name(void) { return bimm_vectorised() ? "avx2" : "portable"; }

void bimm_run(float *out, size_t ldo, const float *x, size_t ldx, const bimm_matrix *p, int B,
              int q0, int q1)
{
    if (B <= 0 || q1 <= q0)
        return;
#ifdef BIMM_X86
    if (bimm_vectorised()) {
        run_avx2(out, ldo, x, ldx, p, B, q0, q1);
        return;
    }
#endif
    run_portable(out, ldo, x, ldx, p, B, q0, q1);
}
