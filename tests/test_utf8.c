/* test_utf8: strict UTF-8 decoding, offsets of bad bytes, lowercasing and vocabulary encoding. */
#include "test.h"

#include "err.h"
#include "utf8.h"
#include "vocab.h"

static void expect_bad(const char *s, size_t n, size_t want_offset)
{
    uint32_t *cps = NULL;
    size_t len = 0, off = 12345;
    char err[128];
    int rc = utf8_decode(&cps, &len, &off, s, n, err, sizeof err);
    ASSERT_EQ_INT(rc, CORE_EUTF8);
    ASSERT_EQ_INT(off, want_offset);
    ASSERT(strstr(err, "offset") != NULL);
    ASSERT(cps == NULL);
}

static void test_decode_roundtrip(void)
{
    const char *s = "a\xC3\xA9\xE7\xBA\xA2\xF0\x9F\x98\x80z"; /* a é 红 😀 z */
    uint32_t *cps;
    size_t n;
    ASSERT_EQ_INT(utf8_decode(&cps, &n, NULL, s, strlen(s), NULL, 0), 0);
    ASSERT_EQ_INT(n, 5);
    ASSERT_EQ_INT(cps[0], 'a');
    ASSERT_EQ_INT(cps[1], 0xE9);
    ASSERT_EQ_INT(cps[2], 0x7EA2);
    ASSERT_EQ_INT(cps[3], 0x1F600);
    ASSERT_EQ_INT(cps[4], 'z');
    char *back = utf8_encode_all(cps, n);
    ASSERT_EQ_STR(back, s);
    free(back);
    free(cps);
}

static void test_rejects(void)
{
    expect_bad("ab\x80", 3, 2);                  /* lone continuation byte */
    expect_bad("abc\xC0\xAF", 5, 3);             /* overlong '/' */
    expect_bad("\xE0\x80\xAF", 3, 0);            /* overlong 3-byte */
    expect_bad("x\xED\xA0\x80", 4, 1);           /* UTF-16 surrogate U+D800 */
    expect_bad("\xF4\x90\x80\x80", 4, 0);        /* above U+10FFFF */
    expect_bad("ok\xE7\xBA", 4, 2);              /* truncated at the end */
    expect_bad("\xE7\xBA" "a", 3, 0);            /* truncated before ASCII */
    expect_bad("\xFF", 1, 0);
}

static void test_lower(void)
{
    ASSERT_EQ_INT(utf8_lower('A'), 'a');
    ASSERT_EQ_INT(utf8_lower('z'), 'z');
    ASSERT_EQ_INT(utf8_lower(0xC9), 0xE9);   /* É -> é */
    ASSERT_EQ_INT(utf8_lower(0xD7), 0xD7);   /* × unchanged */
    ASSERT_EQ_INT(utf8_lower(0x391), 0x3B1); /* Α -> α */
    ASSERT_EQ_INT(utf8_lower(0x416), 0x436); /* Ж -> ж */
    ASSERT_EQ_INT(utf8_lower(0x7EA2), 0x7EA2);
}

static void test_vocab(void)
{
    const char *s = "\xE7\xBA\xA2\xE6\xA5\xBC\xE6\xA2\xA6 ab\xE7\xBA\xA2"; /* 红楼梦 ab红 */
    uint32_t *cps;
    size_t n;
    ASSERT_EQ_INT(utf8_decode(&cps, &n, NULL, s, strlen(s), NULL, 0), 0);
    vocab v = {0};
    ASSERT_EQ_INT(vocab_build(&v, cps, n, NULL, 0), 0);
    ASSERT_EQ_INT(v.V, 6); /* ' ', a, b, 梦, 楼, 红 */
    for (int i = 1; i < v.V; i++)
        ASSERT(v.chars[i] > v.chars[i - 1]);
    int ids[16];
    size_t k;
    ASSERT_EQ_INT(vocab_encode(ids, &k, NULL, &v, cps, n, 0, NULL, 0), 0);
    ASSERT_EQ_INT(k, n);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(v.chars[ids[i]], cps[i]);
    ASSERT_EQ_INT(vocab_index(&v, 0x7EA2), 5);
    ASSERT_EQ_INT(vocab_index(&v, 'c'), -1);

    uint32_t probe[] = {'a', 'Q', 'b'};
    size_t bad = 99;
    char err[160];
    ASSERT_EQ_INT(vocab_encode(ids, &k, &bad, &v, probe, 3, 0, err, sizeof err), CORE_EVOCAB);
    ASSERT_EQ_INT(bad, 1);
    ASSERT(strstr(err, "'Q'") && strstr(err, "position 1"));
    ASSERT_EQ_INT(vocab_encode(ids, &k, NULL, &v, probe, 3, 1, NULL, 0), 0);
    ASSERT_EQ_INT(k, 2);

    vocab w = {0};
    uint32_t unsorted[] = {'b', 'a'};
    ASSERT_EQ_INT(vocab_init(&w, unsorted, 2, NULL, 0), CORE_EFORMAT);
    ASSERT_EQ_INT(vocab_build(&w, cps, 0, NULL, 0), CORE_EINVAL);
    vocab_deinit(&v);
    free(cps);
}

int main(void)
{
    test_decode_roundtrip();
    test_rejects();
    test_lower();
    test_vocab();
    printf("test_utf8: ok\n");
    return 0;
}
