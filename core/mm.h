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

/* OpenBLAS picks its kernels once, when it loads, from the CPU's model number, and a CPU newer
 * than the library gets generic ones: Debian 12's OpenBLAS 0.3.21 takes a 2023 Xeon (Emerald
 * Rapids) for a Prescott, whose SSE3 sgemm runs training's weight-gradient product at 20
 * GFLOP/s where its SkylakeX kernel gives 126. Call first thing in main: where the kernels
 * OpenBLAS chose lack the AVX2 the CPU has (simd.h's level) and OPENBLAS_CORETYPE is unset,
 * this sets it (Haswell, or SkylakeX with AVX-512) and runs the program again from the start
 * (execv of /proc/self/exe), so that OpenBLAS loads with those. Returns where there is nothing
 * to do, or if the exec fails. */
void mm_choose_blas_kernels(char **argv);
/* The kernels OpenBLAS runs: its name for the core ("Haswell", "SkylakeX", ...). */
const char *mm_blas_core(void);

void mm_naive(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb,
              float beta);

#endif
