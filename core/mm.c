/* mm: row-major sgemm through OpenBLAS, and the triple loop it must agree with. */
#include "mm.h"

#include <cblas.h>
#include <stddef.h>

void mm(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, float beta)
{
    if (M == 0 || N == 0)
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, 1.0f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
}

void mm_set_threads(int n) { openblas_set_num_threads(n); }

void mm_naive(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb,
              float beta)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                float b = tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * N + j];
            *c = (float)acc + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}
