/* simd: the CPU's level from cpuid (through GCC's builtins), capped once by LSTMGEN_SIMD. */
#include "simd.h"

#include <stdlib.h>
#include <string.h>

static int level; /* 0 until decided */

static int cpu_level(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return SIMD_AVX2;
#endif
    return SIMD_BASELINE;
}

int simd_parse(const char *name)
{
    static const char *const names[] = {"baseline", "avx2", "avx512"};
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, names[i]) == 0)
            return i + 1;
    return 0;
}

const char *simd_name(int l)
{
    return l == SIMD_BASELINE ? "baseline" : l == SIMD_AVX2 ? "avx2" : l == SIMD_AVX512 ? "avx512"
                                                                                         : NULL;
}

int simd_cap(int cap)
{
    int l = cpu_level();
    if (cap >= SIMD_BASELINE && cap < l)
        l = cap;
    __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    return l;
}

int simd_level(void)
{
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    return l ? l : simd_cap(simd_parse(getenv("LSTMGEN_SIMD")));
}
