/* mathfn: exp, sigmoid and tanh for the gate loops, written as plain arithmetic so the compiler
 * vectorises them (libm's expf is a scalar call). Accurate to a few ulp over the float range. */
#ifndef CORE_MATHFN_H
#define CORE_MATHFN_H

#include <math.h>
#include <stdint.h>

/* The elementwise loops (gates, softmax) are compiled once per SIMD width and picked at run time
 * by simd_level(), so the default build runs on any x86-64, still uses AVX2/AVX-512 where present,
 * and LSTMGEN_SIMD=avx2 runs on an AVX-512 machine what an AVX2-only one would (GCC's
 * target_clones would pick by the CPU alone). A loop is written once as an always-inline
 * NAME_body; MATHFN_COPIES(NAME, params, args) compiles it for each width and
 * MATHFN_RUN(NAME, args) calls the right one. Elementwise, without implicit FMA contraction (C11
 * mode), and with every fused multiply-add written as fmaf (one instruction in the copies, a
 * correctly rounded libm call in the portable body), every copy gives the same bits.
 * The copies run with denormals flushed to zero: a vectorised loop computes both sides of exp's
 * clamp in every lane, and sigmoid's clamped side, 1 / (1 + e^88) = 6e-39, is denormal, which
 * without the flush costs a microcode assist per AVX2 iteration (3x the time, in generation). A
 * value that small is zero to any use, and every run flushes the same way. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include "simd.h"
#include <xmmintrin.h>
#define MATHFN_COPIES(name, params, args)                                                      \
    __attribute__((target("avx512f,fma"))) static void name##_avx512 params { name##_body args; } \
    __attribute__((target("avx2,fma"))) static void name##_avx2 params { name##_body args; }
#define MATHFN_RUN(name, args)                                                                 \
    do {                                                                                       \
        unsigned mathfn_csr_ = _mm_getcsr();                                                   \
        _mm_setcsr(mathfn_csr_ | 0x8040); /* flush-to-zero and denormals-are-zero */           \
        int mathfn_level_ = simd_level();                                                      \
        if (mathfn_level_ >= SIMD_AVX512)                                                      \
            name##_avx512 args;                                                                \
        else if (mathfn_level_ >= SIMD_AVX2)                                                   \
            name##_avx2 args;                                                                  \
        else                                                                                   \
            name##_body args;                                                                  \
        _mm_setcsr(mathfn_csr_);                                                               \
    } while (0)
#else
#define MATHFN_COPIES(name, params, args)
#define MATHFN_RUN(name, args) name##_body args
#endif

/* exp(x) by range reduction x = n ln2 + r, |r| <= ln2/2, and a degree-6 polynomial for exp(r)
 * (Cephes's expf coefficients). Inputs are clamped to [-87, 88], where the result stays normal. */
static inline float mathfn_exp(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest by the 1.5 * 2^23 trick, which vectorises where roundevenf is a call */
    float n = fmaf(x, 1.44269504088896341f, 12582912.0f) - 12582912.0f;
    float r = fmaf(n, -0.693359375f, x); /* ln2 split in two for an exact reduction */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    union { int32_t i; float f; } scale; /* 2^n from its bits; n in [-126, 127] after the clamp */
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}

static inline float mathfn_sigmoid(float x) { return 1.0f / (1.0f + mathfn_exp(-x)); }

/* tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) where that has no cancellation
 * (|x| >= 0.55, so 1 - e >= 2/3); below, the odd Taylor series to x^17, whose truncation error
 * there is under 5e-8 relative. Both branches are computed so the loop stays branch-free. */
static inline float mathfn_tanh(float x)
{
    float a = x < 0 ? -x : x;
    float e = mathfn_exp(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    float s = a * a;
    float p = 5.9002744094558595e-4f;   /* 6404582/10854718875 */
    p = fmaf(p, s, -1.4558343870513183e-3f); /* -929569/638512875 */
    p = fmaf(p, s, 3.5921280365724811e-3f);  /* 21844/6081075 */
    p = fmaf(p, s, -8.8632355299021966e-3f); /* -1382/155925 */
    p = fmaf(p, s, 2.1869488536155203e-2f);  /* 62/2835 */
    p = fmaf(p, s, -5.3968253968253968e-2f); /* -17/315 */
    p = fmaf(p, s, 1.3333333333333333e-1f);  /* 2/15 */
    p = fmaf(p, s, -3.3333333333333333e-1f); /* -1/3 */
    float small = fmaf(a * s, p, a);
    float t = a < 0.55f ? small : big;
    return x < 0 ? -t : t;
}

#endif
