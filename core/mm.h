/* mm: the one matrix-multiply wrapper (row-major, OpenBLAS sgemm), and a naive reference beside it
 * for tests. C (M, N) = A' B' + beta C, where A' is A (M, K) or, with MM_T, A stored as (K, M)
 * and transposed; likewise B' is B (K, N) or B stored as (N, K). */
#ifndef CORE_MM_H
#define CORE_MM_H

enum { MM_N = 0, MM_T = 1 };

void mm(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, float beta);
/* How many threads OpenBLAS may use inside one call (process-wide). A server running many streams
 * on their own threads wants 1, so concurrent calls do not contend for one BLAS thread pool. */
void mm_set_threads(int n);

void mm_naive(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb,
              float beta);

#endif
