/* test_sha256: the FIPS 180-2 example vectors, one-shot and streamed in awkward chunk sizes. */
#include "test.h"

#include "sha256.h"

static void expect_hex(const unsigned char digest[SHA256_DIGEST_LEN], const char *want)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(hex, digest);
    ASSERT_EQ_STR(hex, want);
}

static void expect_vector(const char *msg, const char *want)
{
    unsigned char d[SHA256_DIGEST_LEN];
    sha256_digest(d, msg, strlen(msg));
    expect_hex(d, want);
    /* Every split point of the message through the streaming interface gives the same digest. */
    for (size_t cut = 0; cut <= strlen(msg); cut++) {
        sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, msg, cut);
        sha256_update(&c, NULL, 0);
        sha256_update(&c, msg + cut, strlen(msg) - cut);
        sha256_final(&c, d);
        expect_hex(d, want);
    }
}

static void test_million_a(void)
{
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    char *a = malloc(1000000);
    ASSERT(a != NULL);
    memset(a, 'a', 1000000);
    unsigned char d[SHA256_DIGEST_LEN];
    sha256_digest(d, a, 1000000);
    expect_hex(d, want);
    const size_t chunks[] = {1, 3, 55, 56, 63, 64, 65, 127, 1000, 4096};
    for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
        sha256_ctx c;
        sha256_init(&c);
        for (size_t i = 0; i < 1000000; i += chunks[k])
            sha256_update(&c, a + i, 1000000 - i < chunks[k] ? 1000000 - i : chunks[k]);
        sha256_final(&c, d);
        expect_hex(d, want);
    }
    free(a);
}

int main(void)
{
    expect_vector("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_vector("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_vector("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect_vector("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                  "klmnopqrlmnopqrsmnopqrstnopqrstu",
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    test_million_a();
    printf("sha256: all tests passed\n");
    return 0;
}
