/* mm: row-major sgemm through OpenBLAS, and the triple loop it must agree with. */
#include "mm.h"

#include "simd.h"

#include <cblas.h>
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

void mm(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, float beta)
{
    if (M == 0 || N == 0)
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, 1.0f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
}

void mm_set_threads(int n) { openblas_set_num_threads(n); }

void mm_choose_blas_kernels(char **argv)
{
    static const char *const avx2_cores[] = {"haswell", "zen", "skylakex", "cooperlake",
                                             "sapphirerapids"};
    int level = simd_level();
    if (getenv("OPENBLAS_CORETYPE") || level < SIMD_AVX2)
        return;
    const char *chosen = mm_blas_core();
    for (size_t i = 0; i < sizeof avx2_cores / sizeof *avx2_cores; i++)
        if (strcasecmp(chosen, avx2_cores[i]) == 0)
            return;
    int skylakex = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    skylakex = level >= SIMD_AVX512 && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
    if (setenv("OPENBLAS_CORETYPE", skylakex ? "SkylakeX" : "Haswell", 1) == 0)
        execv("/proc/self/exe", argv);
}

const char *mm_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

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
