/* simd: which vector instructions core's hand-picked kernels use: the best the CPU has, or less
 * when LSTMGEN_SIMD (baseline, avx2 or avx512) or simd_cap says so, so that an AVX-512 machine can
 * measure what an AVX2-only one would do. The batch-invariant product (bimm.c) has an AVX2+FMA
 * kernel and a portable one that give the same bits; the elementwise loops of generation have a
 * clone per level, which also give the same bits (no reductions, no contracted multiply-adds). */
#ifndef CORE_SIMD_H
#define CORE_SIMD_H

enum simd_level {
    SIMD_BASELINE = 1, /* x86-64 SSE2, or any other CPU */
    SIMD_AVX2 = 2,     /* AVX2 with FMA */
    SIMD_AVX512 = 3,   /* AVX-512F */
};

/* The level in use (decided on the first call: the CPU's, capped by LSTMGEN_SIMD). */
int simd_level(void);
/* Caps the level at `level` (never above what the CPU has); returns the level now in use. */
int simd_cap(int level);
/* "baseline", "avx2", "avx512"; NULL for an unknown level. */
const char *simd_name(int level);
/* The level named (as LSTMGEN_SIMD takes it), or 0. */
int simd_parse(const char *name);

#endif
