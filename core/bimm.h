/* bimm: the batch-invariant matrix product of generation: out (B, Np) += x (B, K) . P, where P
 * (K, Np) is a weight matrix packed once (bimm_pack) into panels of BIMM_NR columns.
 * Each out[b][q] is its starting value followed by the fused multiply-adds x[b][k] * P[k][q] for
 * k = 0, 1, ..., K-1 in that order, each rounded once. Its bits therefore depend on that row of x
 * and that column of P and on nothing else: not on B, on which rows share a register block, on
 * how threads split the columns, nor on the CPU (the AVX2+FMA kernel and the portable one give the
 * same bits; simd.h picks one). That is what lets a stream give the same text alone or in a
 * batch of 64, on any machine.
 * Training uses it too, for the LSTM's per-step recurrent products (lstm.c): a few rows by a
 * weight matrix packed once per batch, where OpenBLAS spends much of each call packing. */
#ifndef CORE_BIMM_H
#define CORE_BIMM_H

#include <stddef.h>

#define BIMM_NR 16 /* columns per panel: two 8-float vectors */

typedef struct bimm_matrix {
    int K;         /* reduction length */
    int Np;        /* packed columns, a multiple of BIMM_NR */
    float *panels; /* (Np / BIMM_NR, K, BIMM_NR), 64-byte aligned */
} bimm_matrix;

/* Packs P (K, Np): its column q is row src[q] of the source matrix (-1: a column of zeros), and
 * the source matrix is n_parts row-major blocks side by side along K: part i has K_part[i]
 * columns and row stride K_part[i] (so [W_ih | W_hh] packs as one K = in + H product).
 * Np must be a multiple of BIMM_NR. CORE_ENOMEM on failure, p untouched. */
int bimm_pack(bimm_matrix *p, int Np, const int *src, int n_parts, const float *const *part,
              const int *K_part);
/* Allocates P (K, Np) for the fills below, which set every element. CORE_ENOMEM on failure. */
int bimm_alloc(bimm_matrix *p, int K, int Np);
/* P = W^T: column q of P is row q of W, for q < Np (rows of K floats, ldw apart). */
void bimm_fill_transposed(bimm_matrix *p, const float *W, size_t ldw);
/* P = W: row k of P is row k of W, for k < K (rows of Np floats, ldw apart). */
void bimm_fill(bimm_matrix *p, const float *W, size_t ldw);
/* Frees the panels; safe on a zeroed matrix. */
void bimm_free(bimm_matrix *p);

/* out[b][q] += sum_k x[b][k] P[k][q], in the fixed order above, for rows b < B and columns
 * q0 <= q < q1 (both multiples of BIMM_NR). out rows are ldo floats apart, x rows ldx apart.
 * Thread-safe on disjoint column ranges. */
void bimm_run(float *out, size_t ldo, const float *x, size_t ldx, const bimm_matrix *p, int B,
              int q0, int q1);

/* "avx2" or "portable": the kernel bimm_run uses, from simd_level() (simd.h). */
const char *bimm_impl_name(void);
/* 1 where bimm_run has a vector kernel; the portable one is scalar, slower than OpenBLAS. */
int bimm_vectorised(void);

/* The naive reference, for tests: the same sums as bimm_run over an unpacked P (K, N) row-major,
 * written as the definition (one fmaf chain per output). */
void bimm_naive(float *out, size_t ldo, const float *x, size_t ldx, const float *P, int N, int K,
                int B);

#endif
