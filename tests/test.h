/* test.h: assertions for the unit tests. A failed check prints the expression, both values and
 * file:line, and exits 1, so meson sees every failure (libuv's ASSERT_*). */
#ifndef TESTS_TEST_H
#define TESTS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_FAIL(...)                                                                   \
    do {                                                                                 \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                  \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fprintf(stderr, "\n");                                                           \
        exit(1);                                                                         \
    } while (0)

#define ASSERT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond))                                                                     \
            TEST_FAIL("assertion failed: %s", #cond);                                    \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                              \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_)                                                                    \
            TEST_FAIL("%s == %s failed: %lld != %lld", #a, #b, a_, b_);                  \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                              \
    do {                                                                                 \
        const char *a_ = (a), *b_ = (b);                                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                           \
            TEST_FAIL("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",   \
                      b_ ? b_ : "(null)");                                               \
    } while (0)

/* |a - b| <= tol * max(|b|, tiny): relative closeness. */
#define ASSERT_REL(a, b, tol)                                                            \
    do {                                                                                 \
        double a_ = (double)(a), b_ = (double)(b);                                       \
        double s_ = fabs(b_) > 1e-300 ? fabs(b_) : 1e-300;                               \
        if (!(fabs(a_ - b_) <= (tol) * s_))                                              \
            TEST_FAIL("%s ~ %s failed: %.10g vs %.10g (rel %.3g > %g)", #a, #b, a_, b_,  \
                      fabs(a_ - b_) / s_, (double)(tol));                                \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                                           \
    do {                                                                                 \
        double a_ = (double)(a), b_ = (double)(b);                                       \
        if (!(fabs(a_ - b_) <= (tol)))                                                   \
            TEST_FAIL("%s ~ %s failed: %.10g vs %.10g (diff %.3g > %g)", #a, #b, a_, b_, \
                      fabs(a_ - b_), (double)(tol));                                     \
    } while (0)

#endif
