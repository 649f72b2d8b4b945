/* test_checkpoint: the strict JSON parser, then safetensors checkpoints: bit-exact round trips,
 * the on-disk layout (w_ih_l0 transposed, padding), atomic saves, and rejection of truncated,
 * bit-flipped and hand-edited files with CORE_EFORMAT and a message that says what is wrong. */
#include "test.h"

#include "checkpoint.h"
#include "err.h"
#include "fsutil.h"
#include "json.h"
#include "model.h"
#include "sha256.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSERT_CONTAINS(s, sub)                                                          \
    do {                                                                                 \
        if (!strstr((s), (sub)))                                                         \
            TEST_FAIL("\"%s\" does not contain \"%s\"", (s), (sub));                     \
    } while (0)

// ----------------------------------------------------------------------------
// JSON parser

static json_value *parse_ok(const char *s, size_t n)
{
    json_value *v = NULL;
    char err[200] = "";
    int rc = json_parse(&v, s, n, NULL, err, sizeof err);
    if (rc)
        TEST_FAIL("json_parse(%s) failed: %s", s, err);
    return v;
}

static void parse_bad(const char *s, size_t n, size_t want_offset, const char *want_msg)
{
    json_value *v = (json_value *)&v; /* a sentinel that must survive the failure */
    json_value *before = v;
    size_t off = 999999;
    char err[200] = "";
    int rc = json_parse(&v, s, n, &off, err, sizeof err);
    if (rc != CORE_EFORMAT)
        TEST_FAIL("json_parse(%.*s) returned %d, want CORE_EFORMAT", (int)n, s, rc);
    ASSERT(v == before);
    if (off != want_offset)
        TEST_FAIL("json_parse(%.*s): error offset %zu, want %zu (%s)", (int)n, s, off,
                  want_offset, err);
    ASSERT_CONTAINS(err, want_msg);
}

#define BAD(lit, off, msg) parse_bad(lit, sizeof lit - 1, off, msg)

static void test_json_valid(void)
{
    const char doc[] = " {\"a\": [1, -0, 2.5e3, true, false, null, {}, []],\n\t\"b\\u00e9\": \"x\","
                       " \"big\": 9007199254740993, \"huge\": 99999999999999999999} ";
    json_value *v = parse_ok(doc, sizeof doc - 1);
    ASSERT_EQ_INT(v->type, JSON_OBJECT);
    ASSERT_EQ_INT(v->n, 4);
    ASSERT_EQ_INT(v->offset, 1);
    const json_value *a = json_get(v, "a");
    ASSERT(a && a->type == JSON_ARRAY && a->n == 8);
    ASSERT(a->items[0].is_integer && a->items[0].integer == 1);
    ASSERT(a->items[1].is_integer && a->items[1].integer == 0);
    ASSERT(!a->items[2].is_integer && a->items[2].number == 2500.0);
    ASSERT_EQ_INT(a->items[3].type, JSON_TRUE);
    ASSERT_EQ_INT(a->items[4].type, JSON_FALSE);
    ASSERT_EQ_INT(a->items[5].type, JSON_NULL);
    ASSERT(a->items[6].type == JSON_OBJECT && a->items[6].n == 0);
    ASSERT(a->items[7].type == JSON_ARRAY && a->items[7].n == 0);
    ASSERT_EQ_INT(a->items[2].offset, 15);
    const json_value *b = json_get(v, "b\xc3\xa9"); /* the key's \u00e9 decodes to UTF-8 */
    ASSERT(b && b->type == JSON_STRING);
    ASSERT_EQ_STR(b->str, "x");
    const json_value *big = json_get(v, "big"); /* beyond 2^53: exact only as an integer */
    ASSERT(big->is_integer && big->integer == 9007199254740993LL);
    const json_value *huge = json_get(v, "huge"); /* beyond int64: a number, not an integer */
    ASSERT(huge->type == JSON_NUMBER && !huge->is_integer && huge->number > 9e19);
    ASSERT(json_get(v, "missing") == NULL);
    ASSERT(json_get(a, "a") == NULL);
    json_free(v);
    json_free(NULL);

    const char esc[] = "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u0041\\u00e9\\u7ea2\\ud83d\\ude00 "
                       "raw:\xc3\xa9\xe7\xba\xa2\xf0\x9f\x98\x80 nul:\\u0000.\"";
    v = parse_ok(esc, sizeof esc - 1);
    const char want[] = "q\" b\\ s/ \b\f\n\r\t A\xc3\xa9\xe7\xba\xa2\xf0\x9f\x98\x80 "
                        "raw:\xc3\xa9\xe7\xba\xa2\xf0\x9f\x98\x80 nul:\0.";
    ASSERT_EQ_INT(v->len, sizeof want - 1);
    ASSERT(memcmp(v->str, want, sizeof want) == 0); /* includes the embedded NUL and terminator */
    json_free(v);

    /* Exactly JSON_MAX_DEPTH levels parse; one more is refused below. */
    char deep[2 * JSON_MAX_DEPTH + 2];
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        deep[i] = '[', deep[2 * JSON_MAX_DEPTH - 1 - i] = ']';
    json_free(parse_ok(deep, 2 * JSON_MAX_DEPTH));
}

static void test_json_malformed(void)
{
    BAD("", 0, "unexpected end");
    BAD("  ", 2, "unexpected end");
    BAD("{", 1, "unterminated object");
    BAD("[1,]", 3, "unexpected character");
    BAD("[1 2]", 3, "expected ','");
    BAD("[1", 2, "unterminated array");
    BAD("{\"a\":1,}", 7, "expected a string key");
    BAD("{\"a\" 1}", 5, "expected ':'");
    BAD("{1:2}", 1, "expected a string key");
    BAD("{\"a\":1,\"b\":2,\"a\":3}", 17, "duplicate object key");
    BAD("01", 0, "leading zero");
    BAD("-01", 0, "leading zero");
    BAD("1.", 0, "decimal point");
    BAD(".5", 0, "unexpected character");
    BAD("+1", 0, "unexpected character");
    BAD("1e", 0, "exponent");
    BAD("1e+", 0, "exponent");
    BAD("-", 0, "invalid number");
    BAD("1e999", 0, "out of range");
    BAD("NaN", 0, "unexpected character");
    BAD("Infinity", 0, "unexpected character");
    BAD("tru", 0, "invalid literal");
    BAD("nul", 0, "invalid literal");
    BAD("truex", 4, "after the JSON value");
    BAD("[1] 2", 4, "after the JSON value");
    BAD("\"abc", 0, "unterminated string");
    BAD("\"abc\\\"", 0, "unterminated string");
    BAD("\"a\\xb\"", 2, "invalid escape");
    BAD("\"\\u12\"", 1, "\\u escape");
    BAD("\"\\u12g4\"", 1, "\\u escape");
    BAD("\"\\ud800\"", 1, "high surrogate");
    BAD("\"\\ud800\\u0041\"", 1, "high surrogate");
    BAD("\"ab\\udc00\"", 3, "lone low surrogate");
    BAD("\"a\x01z\"", 2, "control character");
    BAD("\"a\nz\"", 2, "control character");
    BAD("\"\xc3\"", 1, "invalid UTF-8");
    BAD("\"\xed\xa0\x80\"", 1, "invalid UTF-8"); /* a surrogate encoded directly */
    BAD("\"\xc0\xaf\"", 1, "invalid UTF-8");     /* overlong */
    BAD("[1]\0", 3, "after the JSON value");
    char deep[2 * JSON_MAX_DEPTH + 2];
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        deep[i] = '[', deep[2 * JSON_MAX_DEPTH + 1 - i] = ']';
    parse_bad(deep, sizeof deep, JSON_MAX_DEPTH, "nesting too deep");

    /* Every proper prefix of a valid document is invalid, and none reads past its end (ASan). */
    const char doc[] = "{\"k\":[1,-2.5e-3,\"\\ud83d\\ude00\\n\",true,null,{\"x\":false}]}";
    for (size_t n = 0; n < sizeof doc - 1; n++) {
        char *copy = malloc(n ? n : 1); /* exactly n bytes, so an overread is caught */
        ASSERT(copy != NULL);
        memcpy(copy, doc, n);
        json_value *v = NULL;
        ASSERT_EQ_INT(json_parse(&v, copy, n, NULL, NULL, 0), CORE_EFORMAT);
        ASSERT(v == NULL);
        free(copy);
    }
    json_free(parse_ok(doc, sizeof doc - 1));
}

// ----------------------------------------------------------------------------
// fixtures

static char tmpdir[64];

static char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* 8 characters: a control character, '\n', '"', '\\', ASCII, 2-, 3- and 4-byte UTF-8. */
static const uint32_t test_chars[] = {0x01, '\n', '"', '\\', 'a', 0xE9, 0x7EA2, 0x1F600};
#define TEST_V 8

static model *make_model(void)
{
    model_config cfg = {.L = 2, .H = 16, .dropout = 0.3f, .regime = REGIME_SEQUENCE,
                        .maxlen = 40, .step = 3, .seq_len = 50, .lowercase = 1};
    vocab voc = {TEST_V, (uint32_t *)test_chars};
    model *m;
    char err[200];
    ASSERT_EQ_INT(model_new(&m, &cfg, &voc, err, sizeof err), 0);
    ASSERT_EQ_INT(model_init_weights(m, 1234), 0);
    for (size_t i = 0; i < m->n_params; i++) /* make every value distinct, biases included */
        m->params[i] += 1e-3f * (float)(i % 101);
    ASSERT_EQ_INT(model_meta_set(m, "epochs", "10"), 0);
    ASSERT_EQ_INT(model_meta_set(m, "note", "q\" b\\ nl\n tab\t ctl\x01 \xc3\xa9\xe7\xba\xa2"), 0);
    ASSERT_EQ_INT(model_meta_set(m, "hidden", "999"), 0); /* reserved: cfg wins */
    ASSERT_EQ_INT(model_meta_set(m, "optim.beta1", "0.9"), 0);
    ASSERT_EQ_INT(model_meta_set(m, "data_sha256", "bogus"), 0); /* reserved too */
    return m;
}

static void make_extras(ckpt_tensor ex[3], const model *m)
{
    memset(ex, 0, 3 * sizeof *ex);
    snprintf(ex[0].name, CKPT_NAME_MAX, "optim.m");
    ex[0].ndim = 1;
    ex[0].shape[0] = (int64_t)m->n_params;
    snprintf(ex[1].name, CKPT_NAME_MAX, "optim.v");
    ex[1].ndim = 2;
    ex[1].shape[0] = 3, ex[1].shape[1] = 4;
    snprintf(ex[2].name, CKPT_NAME_MAX, "optim.step");
    ex[2].ndim = 1;
    ex[2].shape[0] = 1;
    for (int k = 0; k < 3; k++) {
        size_t n = (size_t)(ex[k].ndim == 1 ? ex[k].shape[0] : ex[k].shape[0] * ex[k].shape[1]);
        ex[k].data = malloc(n * sizeof(float));
        ASSERT(ex[k].data != NULL);
        for (size_t i = 0; i < n; i++)
            ex[k].data[i] = (float)(k + 1) * 0.01f * (float)i - 0.5f;
    }
}

static void free_extras(ckpt_tensor ex[3])
{
    for (int k = 0; k < 3; k++)
        free(ex[k].data);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    ASSERT(buf != NULL);
    ASSERT_EQ_INT(fread(buf, 1, (size_t)size, f), size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ_INT(fwrite(buf, 1, n, f), n);
    ASSERT_EQ_INT(fclose(f), 0);
}

static size_t header_len(const unsigned char *buf)
{
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--)
        N = N << 8 | buf[i];
    return (size_t)N;
}

/* The data_offsets of tensor name, read with our own parser. */
static void tensor_offsets(const unsigned char *buf, const char *name, size_t *begin, size_t *end)
{
    json_value *h = parse_ok((const char *)buf + 8, header_len(buf));
    const json_value *t = json_get(h, name);
    ASSERT(t != NULL);
    const json_value *o = json_get(t, "data_offsets");
    ASSERT(o && o->n == 2);
    *begin = (size_t)o->items[0].integer;
    *end = (size_t)o->items[1].integer;
    json_free(h);
}

static void assert_same_model(const model *a, const model *b)
{
    ASSERT_EQ_INT(a->cfg.L, b->cfg.L);
    ASSERT_EQ_INT(a->cfg.H, b->cfg.H);
    ASSERT(memcmp(&a->cfg.dropout, &b->cfg.dropout, sizeof(float)) == 0);
    ASSERT_EQ_INT(a->cfg.regime, b->cfg.regime);
    ASSERT_EQ_INT(a->cfg.maxlen, b->cfg.maxlen);
    ASSERT_EQ_INT(a->cfg.step, b->cfg.step);
    ASSERT_EQ_INT(a->cfg.seq_len, b->cfg.seq_len);
    ASSERT_EQ_INT(a->cfg.lowercase, b->cfg.lowercase);
    ASSERT_EQ_INT(a->V, b->V);
    ASSERT_EQ_INT(a->voc.V, b->voc.V);
    ASSERT(memcmp(a->voc.chars, b->voc.chars, (size_t)a->V * sizeof(uint32_t)) == 0);
    ASSERT_EQ_INT(a->n_params, b->n_params);
    ASSERT(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    ASSERT_EQ_INT(a->n_meta, b->n_meta);
    for (int i = 0; i < a->n_meta; i++) {
        ASSERT_EQ_STR(a->meta_keys[i], b->meta_keys[i]);
        ASSERT_EQ_STR(a->meta_vals[i], b->meta_vals[i]);
    }
}

static void assert_same_extras(const ckpt_tensor *a, int na, const ckpt_tensor *b, int nb)
{
    ASSERT_EQ_INT(na, nb);
    for (int k = 0; k < na; k++) {
        ASSERT_EQ_STR(a[k].name, b[k].name);
        ASSERT_EQ_INT(a[k].ndim, b[k].ndim);
        size_t n = 1;
        for (int d = 0; d < a[k].ndim; d++) {
            ASSERT_EQ_INT(a[k].shape[d], b[k].shape[d]);
            n *= (size_t)a[k].shape[d];
        }
        ASSERT(memcmp(a[k].data, b[k].data, n * sizeof(float)) == 0);
    }
}

/* Parses n bytes that must be rejected with CORE_EFORMAT, leaving the outputs alone. */
static void expect_reject(const unsigned char *buf, size_t n, const char *want_msg)
{
    model *m = (model *)&m;
    model *before = m;
    ckpt_tensor *ex = (ckpt_tensor *)&ex, *ex_before = ex;
    int n_ex = -7;
    char err[512] = "";
    int rc = checkpoint_parse(&m, &ex, &n_ex, buf, n, err, sizeof err);
    if (rc != CORE_EFORMAT)
        TEST_FAIL("checkpoint_parse returned %d (%s), want CORE_EFORMAT containing \"%s\"", rc,
                  err, want_msg ? want_msg : "");
    ASSERT(m == before && ex == ex_before && n_ex == -7);
    ASSERT(err[0] != '\0');
    if (want_msg)
        ASSERT_CONTAINS(err, want_msg);
}

// ----------------------------------------------------------------------------
// editing files by hand: rewrite the header, re-pad it, and (optionally) re-sign both checksums

static void set_hex_after(unsigned char *hdr, size_t N, const char *key, const char *hex)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    unsigned char *p = memmem(hdr, N, pat, strlen(pat));
    ASSERT(p != NULL);
    memcpy(p + strlen(pat), hex, SHA256_HEX_LEN);
}

/* Recomputes data_sha256 and header_sha256 the way the writer does. */
static void resign(unsigned char *buf, size_t n)
{
    size_t N = header_len(buf);
    unsigned char *hdr = buf + 8, d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1], zeros[SHA256_HEX_LEN + 1];
    sha256_digest(d, buf + 8 + N, n - 8 - N);
    sha256_hex(hex, d);
    set_hex_after(hdr, N, "data_sha256", hex);
    memset(zeros, '0', SHA256_HEX_LEN);
    set_hex_after(hdr, N, "header_sha256", zeros);
    sha256_digest(d, hdr, N);
    sha256_hex(hex, d);
    set_hex_after(hdr, N, "header_sha256", hex);
}

/* A copy of the file with the first occurrence of from in its header replaced by to. */
static unsigned char *edit_header(const unsigned char *buf, size_t n, const char *from,
                                  const char *to, int sign, size_t *out_n)
{
    size_t N = header_len(buf);
    const unsigned char *p = memmem(buf + 8, N, from, strlen(from));
    if (!p)
        TEST_FAIL("header has no \"%s\"", from);
    size_t at = (size_t)(p - buf - 8);
    size_t json_len = N; /* drop the old padding, then pad again */
    while (json_len > 0 && buf[8 + json_len - 1] == ' ')
        json_len--;
    size_t new_len = json_len - strlen(from) + strlen(to);
    size_t N2 = new_len + (8 - (8 + new_len) % 8) % 8;
    size_t n2 = 8 + N2 + (n - 8 - N);
    unsigned char *out = malloc(n2);
    ASSERT(out != NULL);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)N2 >> (8 * i));
    unsigned char *h = out + 8;
    memcpy(h, buf + 8, at);
    memcpy(h + at, to, strlen(to));
    memcpy(h + at + strlen(to), buf + 8 + at + strlen(from), json_len - at - strlen(from));
    memset(h + new_len, ' ', N2 - new_len);
    memcpy(out + 8 + N2, buf + 8 + N, n - 8 - N);
    if (sign)
        resign(out, n2);
    *out_n = n2;
    return out;
}

static void expect_edit_rejected(const unsigned char *buf, size_t n, const char *from,
                                 const char *to, const char *want_msg)
{
    size_t n2;
    unsigned char *b2 = edit_header(buf, n, from, to, 1, &n2);
    expect_reject(b2, n2, want_msg);
    free(b2);
}

// ----------------------------------------------------------------------------
// checkpoint tests

static void test_round_trip(void)
{
    model *m = make_model();
    ckpt_tensor ex[3];
    make_extras(ex, m);
    const char *path = tmp_path("rt.safetensors");
    char err[512] = "";
    int rc = checkpoint_save(path, m, ex, 3, err, sizeof err);
    if (rc)
        TEST_FAIL("save failed: %s", err);

    model *l = NULL;
    ckpt_tensor *lex = NULL;
    int n_lex = 0;
    rc = checkpoint_load(&l, &lex, &n_lex, path, err, sizeof err);
    if (rc)
        TEST_FAIL("load failed: %s", err);
    /* Reserved metadata entries come from cfg and are not saved as free-form metadata. */
    ASSERT_EQ_INT(l->n_meta, 3);
    ASSERT_EQ_STR(model_meta_get(l, "epochs"), "10");
    ASSERT_EQ_STR(model_meta_get(l, "note"), model_meta_get(m, "note"));
    ASSERT_EQ_STR(model_meta_get(l, "optim.beta1"), "0.9");
    ASSERT(model_meta_get(l, "hidden") == NULL);
    ASSERT(model_meta_get(l, "data_sha256") == NULL);
    ASSERT_EQ_STR(l->meta_keys[0], "epochs");
    ASSERT_EQ_STR(l->meta_keys[1], "note");
    ASSERT_EQ_STR(l->meta_keys[2], "optim.beta1");
    model *want = NULL;
    ASSERT_EQ_INT(model_clone(&want, m), 0);
    for (int i = want->n_meta - 1; i >= 0; i--) { /* drop the reserved entries from the copy */
        if (strcmp(want->meta_keys[i], "hidden") == 0 ||
            strcmp(want->meta_keys[i], "data_sha256") == 0) {
            free(want->meta_keys[i]);
            free(want->meta_vals[i]);
            for (int j = i; j + 1 < want->n_meta; j++) {
                want->meta_keys[j] = want->meta_keys[j + 1];
                want->meta_vals[j] = want->meta_vals[j + 1];
            }
            want->n_meta--;
        }
    }
    assert_same_model(l, want);
    assert_same_extras(lex, n_lex, ex, 3);
    checkpoint_extra_free(lex, n_lex);
    model_free(l);

    /* Without an extra array the optimizer state is validated and dropped. */
    l = NULL;
    ASSERT_EQ_INT(checkpoint_load(&l, NULL, NULL, path, err, sizeof err), 0);
    assert_same_model(l, want);
    model_free(l);

    /* A model saved without extras comes back with an empty, freeable extra array. */
    const char *path2 = tmp_path("noextra.safetensors");
    ASSERT_EQ_INT(checkpoint_save(path2, m, NULL, 0, err, sizeof err), 0);
    ASSERT_EQ_INT(checkpoint_load(&l, &lex, &n_lex, path2, err, sizeof err), 0);
    ASSERT_EQ_INT(n_lex, 0);
    assert_same_model(l, want);
    checkpoint_extra_free(lex, n_lex);
    model_free(l);

    /* Window regime, lowercase off, one layer, dropout 0: the other branches of every field. */
    model_config cfg = {.L = 1, .H = 16, .dropout = 0.0f, .regime = REGIME_WINDOW, .maxlen = 7,
                        .step = 1, .seq_len = 1, .lowercase = 0};
    model *m1;
    ASSERT_EQ_INT(model_new(&m1, &cfg, &m->voc, err, sizeof err), 0);
    ASSERT_EQ_INT(model_init_weights(m1, 7), 0);
    ASSERT_EQ_INT(checkpoint_save(path2, m1, NULL, 0, err, sizeof err), 0);
    ASSERT_EQ_INT(checkpoint_load(&l, NULL, NULL, path2, err, sizeof err), 0);
    assert_same_model(l, m1);
    model_free(l);
    model_free(m1);

    model_free(want);
    free_extras(ex);
    model_free(m);
}

static void test_layout(void)
{
    model *m = make_model();
    const char *path = tmp_path("layout.safetensors");
    char err[512] = "";
    ASSERT_EQ_INT(checkpoint_save(path, m, NULL, 0, err, sizeof err), 0);
    size_t n;
    unsigned char *buf = read_all(path, &n);
    size_t N = header_len(buf);
    ASSERT(N <= n - 8);
    ASSERT_EQ_INT((8 + N) % 8, 0);
    ASSERT_EQ_INT(buf[8], '{');
    size_t last = N; /* the JSON ends with '}' and is padded with spaces only */
    while (buf[8 + last - 1] == ' ')
        last--;
    ASSERT_EQ_INT(buf[8 + last - 1], '}');
    ASSERT(N - last < 8);

    /* The header itself: metadata values are strings, and vocab is itself a JSON array. */
    json_value *h = parse_ok((const char *)buf + 8, N);
    const json_value *meta = json_get(h, "__metadata__");
    ASSERT_EQ_STR(json_get(meta, "format")->str, "lstmgen-1");
    ASSERT_EQ_STR(json_get(meta, "lowercase")->str, "true");
    ASSERT_EQ_STR(json_get(meta, "regime")->str, "sequence");
    ASSERT_EQ_STR(json_get(meta, "hidden")->str, "16");
    ASSERT_EQ_STR(json_get(meta, "layers")->str, "2");
    ASSERT_EQ_STR(json_get(meta, "dropout")->str, "0.300000012");
    const json_value *vs = json_get(meta, "vocab");
    json_value *voc = parse_ok(vs->str, vs->len);
    ASSERT_EQ_INT(voc->n, TEST_V);
    ASSERT_EQ_STR(voc->items[0].str, "\x01");
    ASSERT_EQ_STR(voc->items[2].str, "\"");
    ASSERT_EQ_STR(voc->items[3].str, "\\");
    ASSERT_EQ_STR(voc->items[6].str, "\xe7\xba\xa2");
    ASSERT_CONTAINS(vs->str, "\"\\u0001\""); /* control characters escaped as \u00XX */
    ASSERT_CONTAINS(vs->str, "\"\xe7\xba\xa2\""); /* non-ASCII raw */
    json_free(voc);
    const char *order[] = {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                           "lstm.bias_hh_l0",   "lstm.weight_ih_l1", "lstm.weight_hh_l1",
                           "lstm.bias_ih_l1",   "lstm.bias_hh_l1",   "fc.weight",
                           "fc.bias"};
    ASSERT_EQ_INT(h->n, 11);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ_STR(h->keys[i + 1], order[i]);
    const json_value *shape = json_get(json_get(h, "lstm.weight_ih_l0"), "shape");
    ASSERT(shape->n == 2 && shape->items[0].integer == 64 && shape->items[1].integer == TEST_V);
    json_free(h);

    /* w_ih_l0 is (V, 4H) in memory and PyTorch's (4H, V) on disk. */
    int V = m->V, G = 4 * m->cfg.H;
    size_t begin, end;
    tensor_offsets(buf, "lstm.weight_ih_l0", &begin, &end);
    ASSERT_EQ_INT(end - begin, (size_t)G * V * 4);
    const unsigned char *w = buf + 8 + N + begin;
    for (int r = 0; r < G; r++) {
        for (int c = 0; c < V; c++) {
            float got;
            memcpy(&got, w + 4 * ((size_t)r * V + c), 4);
            ASSERT(memcmp(&got, &m->p.w_ih[0][(size_t)c * G + r], 4) == 0);
        }
    }
    /* Everything else is stored as it is in memory. */
    tensor_offsets(buf, "fc.weight", &begin, &end);
    ASSERT(memcmp(buf + 8 + N + begin, m->p.fc_w, (size_t)V * m->cfg.H * 4) == 0);
    tensor_offsets(buf, "lstm.weight_ih_l1", &begin, &end);
    ASSERT(memcmp(buf + 8 + N + begin, m->p.w_ih[1], (size_t)G * m->cfg.H * 4) == 0);
    ASSERT_EQ_INT(n, 8 + N + m->n_params * 4);
    free(buf);
    model_free(m);
}

static int count_temp_files(void)
{
    DIR *d = opendir(tmpdir);
    ASSERT(d != NULL);
    int k = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp."))
            k++;
    closedir(d);
    return k;
}

static void test_atomic_save(void)
{
    model *m = make_model();
    const char *path = tmp_path("atomic.safetensors");
    char err[512] = "";
    for (int i = 0; i < 3; i++) /* overwrites replace the file */
        ASSERT_EQ_INT(checkpoint_save(path, m, NULL, 0, err, sizeof err), 0);
    ASSERT_EQ_INT(count_temp_files(), 0);
    struct stat st;
    ASSERT_EQ_INT(stat(path, &st), 0);
    ASSERT_EQ_INT(st.st_mode & 0777, 0644);

    /* rename() cannot replace a directory: the save fails after writing the temporary file,
     * which must be removed, and the directory stays as it was. */
    const char *dir_path = tmp_path("is_a_dir.safetensors");
    ASSERT_EQ_INT(mkdir(dir_path, 0755), 0);
    int rc = checkpoint_save(dir_path, m, NULL, 0, err, sizeof err);
    ASSERT_EQ_INT(rc, CORE_EIO);
    ASSERT_CONTAINS(err, dir_path);
    ASSERT_EQ_INT(count_temp_files(), 0);
    ASSERT_EQ_INT(stat(dir_path, &st), 0);
    ASSERT(S_ISDIR(st.st_mode));
    ASSERT_EQ_INT(rmdir(dir_path), 0);

    /* A missing directory: CORE_EIO naming the path and errno's message. */
    const char *nowhere = tmp_path("no/such/dir/x.safetensors");
    ASSERT_EQ_INT(checkpoint_save(nowhere, m, NULL, 0, err, sizeof err), CORE_EIO);
    ASSERT_CONTAINS(err, nowhere);
    ASSERT_CONTAINS(err, "No such file or directory");

    /* The old file is intact after the failures. */
    model *l;
    ASSERT_EQ_INT(checkpoint_load(&l, NULL, NULL, path, err, sizeof err), 0);
    ASSERT(memcmp(l->params, m->params, m->n_params * 4) == 0);
    model_free(l);
    ASSERT_EQ_INT(unlink(path), 0);
    model_free(m);
}

/* A sweep removes what a dead writer left, never a live writer's temporary (fs_atomic_open locks
 * it) nor one written more recently than the age asked for. */
static void test_sweep_temporaries(void)
{
    char err[512] = "";
    fs_atomic live;
    ASSERT_EQ_INT(fs_atomic_open(&live, tmp_path("live.safetensors"), err, sizeof err), 0);
    fputs("partial", live.f);
    ASSERT_EQ_INT(fs_remove_temporaries(tmpdir, 0), 0);
    ASSERT_EQ_INT(count_temp_files(), 1);
    fs_atomic_abort(&live);
    FILE *dead = fopen(tmp_path("dead.safetensors.tmp.Ab12Cd"), "w");
    ASSERT(dead != NULL);
    fclose(dead);
    ASSERT_EQ_INT(fs_remove_temporaries(tmpdir, 3600), 0); /* written just now */
    ASSERT_EQ_INT(fs_remove_temporaries(tmpdir, 0), 1);
    ASSERT_EQ_INT(count_temp_files(), 0);
}

static void test_save_refuses(void)
{
    model *m = make_model();
    ckpt_tensor ex[3];
    make_extras(ex, m);
    const char *path = tmp_path("refused.safetensors");
    char err[512] = "";
    snprintf(ex[1].name, CKPT_NAME_MAX, "moments"); /* the loader would call it unknown */
    ASSERT_EQ_INT(checkpoint_save(path, m, ex, 3, err, sizeof err), CORE_EINVAL);
    ASSERT_CONTAINS(err, "optim.");
    snprintf(ex[1].name, CKPT_NAME_MAX, "optim.m");
    ASSERT_EQ_INT(checkpoint_save(path, m, ex, 3, err, sizeof err), CORE_EINVAL);
    ASSERT_CONTAINS(err, "twice");
    snprintf(ex[1].name, CKPT_NAME_MAX, "optim.v");
    ex[1].ndim = 5;
    ASSERT_EQ_INT(checkpoint_save(path, m, ex, 3, err, sizeof err), CORE_EINVAL);
    ex[1].ndim = 2;
    ex[2].data[0] = NAN;
    ASSERT_EQ_INT(checkpoint_save(path, m, ex, 3, err, sizeof err), CORE_ERANGE);
    ASSERT_CONTAINS(err, "optim.step");
    ex[2].data[0] = 0;
    m->p.fc_b[1] = INFINITY;
    ASSERT_EQ_INT(checkpoint_save(path, m, ex, 3, err, sizeof err), CORE_ERANGE);
    ASSERT_CONTAINS(err, "fc.bias");
    ASSERT(access(path, F_OK) != 0);
    ASSERT_EQ_INT(count_temp_files(), 0);
    free_extras(ex);
    model_free(m);
}

/* Saves the test model with extras and returns the file's bytes. */
static unsigned char *saved_file(size_t *n, model **m_out)
{
    model *m = make_model();
    ckpt_tensor ex[3];
    make_extras(ex, m);
    const char *path = tmp_path("corrupt.safetensors");
    char err[512] = "";
    ASSERT_EQ_INT(checkpoint_save(path, m, ex, 3, err, sizeof err), 0);
    unsigned char *buf = read_all(path, n);
    ASSERT_EQ_INT(unlink(path), 0);
    free_extras(ex);
    if (m_out)
        *m_out = m;
    else
        model_free(m);
    return buf;
}

static void test_truncated(void)
{
    size_t n;
    unsigned char *buf = saved_file(&n, NULL);
    for (size_t len = 0; len < n; len++) {
        unsigned char *copy = malloc(len ? len : 1); /* exactly len bytes: ASan sees overreads */
        ASSERT(copy != NULL);
        memcpy(copy, buf, len);
        expect_reject(copy, len, NULL);
        free(copy);
    }
    expect_reject(buf, 7, "too short");
    expect_reject(buf, 100, "header length");
    expect_reject(buf, n - 4, "data section");
    /* Extra bytes after the tensors are not silently ignored either. */
    unsigned char *longer = malloc(n + 4);
    ASSERT(longer != NULL);
    memcpy(longer, buf, n);
    memset(longer + n, 0, 4);
    expect_reject(longer, n + 4, "data section has");
    free(longer);
    free(buf);
}

static void test_bit_flips(void)
{
    model *m;
    size_t n;
    unsigned char *buf = saved_file(&n, &m);
    size_t N = header_len(buf);
    char err[512] = "";

    model *base = NULL;
    ckpt_tensor *bex = NULL;
    int n_bex = 0;
    ASSERT_EQ_INT(checkpoint_parse(&base, &bex, &n_bex, buf, n, err, sizeof err), 0);

    /* Every 7th byte of the data section (so every bit position comes up), then the last byte:
     * the data checksum catches them all. Each parse hashes the whole section, hence the stride. */
    for (size_t i = 8 + N; i < n + 7; i += 7) {
        size_t at = i < n ? i : n - 1;
        buf[at] ^= (unsigned char)(1u << (i % 8));
        expect_reject(buf, n, "data checksum mismatch");
        buf[at] ^= (unsigned char)(1u << (i % 8));
    }

    /* Every bit of the length field and the header: each flip must be rejected, or (in
     * padding, say) load exactly the same model. With header_sha256 none loads at all. */
    int loaded = 0;
    for (size_t i = 0; i < 8 + N; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char)(1u << bit);
            model *l = NULL;
            ckpt_tensor *lex = NULL;
            int n_lex = 0;
            int rc = checkpoint_parse(&l, &lex, &n_lex, buf, n, err, sizeof err);
            if (rc == 0) {
                assert_same_model(l, base);
                assert_same_extras(lex, n_lex, bex, n_bex);
                checkpoint_extra_free(lex, n_lex);
                model_free(l);
                loaded++;
            } else if (rc != CORE_EFORMAT) {
                TEST_FAIL("flip of bit %d of byte %zu: rc %d (%s)", bit, i, rc, err);
            }
            buf[i] ^= (unsigned char)(1u << bit);
        }
    }
    ASSERT_EQ_INT(loaded, 0);

    /* An edit that keeps the JSON valid but is not re-signed fails the header checksum. */
    size_t n2;
    unsigned char *b2 = edit_header(buf, n, "\"epochs\":\"10\"", "\"epochs\":\"11\"", 0, &n2);
    expect_reject(b2, n2, "header checksum mismatch");
    free(b2);
    /* ... and re-signed, it loads, which shows the edit helper itself is sound. */
    b2 = edit_header(buf, n, "\"epochs\":\"10\"", "\"epochs\":\"12345\"", 1, &n2);
    model *l = NULL;
    int rc = checkpoint_parse(&l, NULL, NULL, b2, n2, err, sizeof err);
    if (rc)
        TEST_FAIL("re-signed edit failed to load: %s", err);
    ASSERT_EQ_STR(model_meta_get(l, "epochs"), "12345");
    model_free(l);
    free(b2);

    checkpoint_extra_free(bex, n_bex);
    model_free(base);
    model_free(m);
    free(buf);
}

static void test_bad_headers(void)
{
    size_t n;
    unsigned char *buf = saved_file(&n, NULL);

    /* Shapes: a transposed shape has the right size but is the wrong tensor. */
    expect_edit_rejected(buf, n, "\"shape\":[64,16]", "\"shape\":[16,64]",
                         "lstm.weight_hh_l0 has shape [16, 64]");
    expect_edit_rejected(buf, n, "\"shape\":[64,16]", "\"shape\":[64,17]", "span");
    expect_edit_rejected(buf, n, "\"shape\":[64,16]", "\"shape\":[64,-16]", "non-negative");
    expect_edit_rejected(buf, n, "\"shape\":[64,16]", "\"shape\":[64,16.0]",
                         "non-negative integers");
    expect_edit_rejected(buf, n, "\"shape\":[64,16]", "\"shape\":[1,1,1,64,16]", "at most 4");
    expect_edit_rejected(buf, n, "\"shape\":[64,16]", "\"shape\":\"64x16\"", "not an array");
    expect_edit_rejected(buf, n, "\"shape\":[64,16]",
                         "\"shape\":[4294967296,4294967296,4294967296]", "too large");
    /* Vocabulary: 7 characters left, but the tensors are sized for 8. */
    expect_edit_rejected(buf, n, ",\\\"a\\\"", "",
                         "vocabulary has 7 characters but lstm.weight_ih_l0 has shape [64, 8]");
    expect_edit_rejected(buf, n, "\\\"\xc3\xa9\\\",\\\"\xe7\xba\xa2\\\"",
                         "\\\"\xe7\xba\xa2\\\",\\\"\xc3\xa9\\\"", "not strictly increasing");
    expect_edit_rejected(buf, n, "\\\"a\\\"", "\\\"ab\\\"", "vocab entry 4");
    expect_edit_rejected(buf, n, "\\\"a\\\"", "\\\"\\\"", "vocab entry 4");
    expect_edit_rejected(buf, n, "\"vocab\":\"[", "\"vocab\":\"{", "vocab is not valid JSON");
    expect_edit_rejected(buf, n, "\"vocab\":", "\"vocab_\":", "no \"vocab\"");
    /* Types and names. */
    expect_edit_rejected(buf, n, "\"F32\"", "\"F16\"", "only F32");
    expect_edit_rejected(buf, n, "\"F32\"", "\"BF16\"", "only F32");
    expect_edit_rejected(buf, n, "\"optim.v\"", "\"bogus.v\"", "unknown tensor \"bogus.v\"");
    expect_edit_rejected(buf, n, "\"lstm.bias_hh_l1\"", "\"lstm.bias_hh_l2\"", "unknown tensor");
    expect_edit_rejected(buf, n, "\"fc.bias\"", "\"optim.fc\"", "missing tensor fc.bias");
    expect_edit_rejected(buf, n, "\"dtype\":\"F32\",", "", "exactly dtype, shape and data_offsets");
    /* Offsets: fc.bias moved 4 bytes back overlaps fc.weight and leaves a gap at the end. */
    size_t begin, end;
    tensor_offsets(buf, "fc.bias", &begin, &end);
    char from[80], to[80];
    snprintf(from, sizeof from, "\"data_offsets\":[%zu,%zu]", begin, end);
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", begin - 4, end - 4);
    expect_edit_rejected(buf, n, from, to, "overlap");
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", begin, n);
    expect_edit_rejected(buf, n, from, to, "outside");
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", end, begin);
    expect_edit_rejected(buf, n, from, to, "end before they begin");
    snprintf(to, sizeof to, "\"data_offsets\":[%zu]", begin);
    expect_edit_rejected(buf, n, from, to, "not a pair");
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,1e3]", begin);
    expect_edit_rejected(buf, n, from, to, "non-negative integers");
    /* Metadata. */
    expect_edit_rejected(buf, n, "lstmgen-1", "lstmgen-2", "format is \"lstmgen-2\"");
    expect_edit_rejected(buf, n, "\"format\":", "\"formax\":", "no \"format\"");
    /* The container is checked first: a renamed __metadata__ is a tensor entry gone wrong. */
    expect_edit_rejected(buf, n, "\"__metadata__\"", "\"__metadata_x\"",
                         "tensor __metadata_x: entry must have exactly");
    {
        /* A valid safetensors file without metadata (as many tools write): not ours. */
        const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
                           "  ";
        unsigned char plain[8 + sizeof hdr - 1 + 4] = {sizeof hdr - 1};
        memcpy(plain + 8, hdr, sizeof hdr - 1);
        ASSERT((sizeof hdr - 1) % 8 == 0);
        expect_reject(plain, sizeof plain, "no __metadata__; not an lstmgen checkpoint");
    }
    expect_edit_rejected(buf, n, "\"layers\":\"2\"", "\"layers\":\"7\"", "layers must be 1..4");
    expect_edit_rejected(buf, n, "\"hidden\":\"16\"", "\"hidden\":\"4\"", "hidden must be");
    expect_edit_rejected(buf, n, "\"maxlen\":\"40\"", "\"maxlen\":\"4x\"", "not an integer");
    expect_edit_rejected(buf, n, "\"maxlen\":\"40\"", "\"maxlen\":\"040\"", "not an integer");
    expect_edit_rejected(buf, n, "\"maxlen\":\"40\"", "\"maxlen\":\" 40\"", "not an integer");
    expect_edit_rejected(buf, n, "\"maxlen\":\"40\"", "\"maxlen\":\"99999999999\"",
                         "not an integer");
    expect_edit_rejected(buf, n, "\"maxlen\":\"40\"", "\"maxlen\":40", "not a string");
    expect_edit_rejected(buf, n, "\"step\":", "\"stop\":", "no \"step\"");
    expect_edit_rejected(buf, n, "\"dropout\":\"0.300000012\"", "\"dropout\":\"nan\"",
                         "not a number");
    expect_edit_rejected(buf, n, "\"dropout\":\"0.300000012\"", "\"dropout\":\"1.5\"",
                         "dropout must be");
    expect_edit_rejected(buf, n, "\"regime\":\"sequence\"", "\"regime\":\"bptt\"",
                         "not window or sequence");
    expect_edit_rejected(buf, n, "\"lowercase\":\"true\"", "\"lowercase\":\"yes\"",
                         "not false or true");
    expect_edit_rejected(buf, n, "\"epochs\":\"10\"", "\"epochs\":\"1\\u00000\"", "NUL");
    expect_edit_rejected(buf, n, "\"data_sha256\":\"", "\"data_sha256\":\"X", "64 lowercase hex");
    /* JSON-level problems report where they are. */
    expect_edit_rejected(buf, n, "\"format\":", "\"format\"", "not valid JSON");
    expect_edit_rejected(buf, n, "\"format\":", "\"format\"", "file offset");
    expect_edit_rejected(buf, n, "{\"__metadata__\"", "[{\"__metadata__\"", "not valid JSON");

    /* A header that is valid JSON but not an object, and lengths beyond the file. */
    unsigned char arr[16] = {8, 0, 0, 0, 0, 0, 0, 0, '[', ']', ' ', ' ', ' ', ' ', ' ', ' '};
    expect_reject(arr, sizeof arr, "not a JSON object");
    unsigned char big[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    expect_reject(big, sizeof big, "exceeds");
    unsigned char *huge = calloc(1, 8 + 100000001);
    ASSERT(huge != NULL);
    huge[0] = 0x01, huge[1] = 0xe1, huge[2] = 0xf5, huge[3] = 0x05; /* 100000001 */
    expect_reject(huge, 8 + 100000001, "limit");
    free(huge);
    unsigned char allbits[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_reject(allbits, 8, "exceeds");

    /* A NaN in the data with both checksums recomputed: caught by the finiteness check. */
    size_t N = header_len(buf);
    unsigned char *nan_buf = malloc(n);
    ASSERT(nan_buf != NULL);
    memcpy(nan_buf, buf, n);
    tensor_offsets(buf, "fc.weight", &begin, &end);
    float q = NAN;
    memcpy(nan_buf + 8 + N + begin + 4 * 5, &q, 4);
    resign(nan_buf, n);
    expect_reject(nan_buf, n, "fc.weight has a non-finite value at index 5");
    memcpy(nan_buf, buf, n);
    tensor_offsets(buf, "optim.v", &begin, &end);
    q = -INFINITY;
    memcpy(nan_buf + 8 + N + begin, &q, 4);
    resign(nan_buf, n);
    expect_reject(nan_buf, n, "optim.v has a non-finite value at index 0");
    free(nan_buf);
    free(buf);
}

static void test_missing_file(void)
{
    model *m = (model *)&m, *before = m;
    char err[512] = "";
    const char *path = tmp_path("does-not-exist.safetensors");
    ASSERT_EQ_INT(checkpoint_load(&m, NULL, NULL, path, err, sizeof err), CORE_EIO);
    ASSERT(m == before);
    ASSERT_CONTAINS(err, path);
    ASSERT_CONTAINS(err, "No such file");
    /* A directory is not a checkpoint either. */
    ASSERT_EQ_INT(checkpoint_load(&m, NULL, NULL, tmpdir, err, sizeof err), CORE_EIO);
    /* Load errors from the parser carry the path too. */
    const char *small = tmp_path("small.safetensors");
    write_all(small, (const unsigned char *)"abc", 3);
    ASSERT_EQ_INT(checkpoint_load(&m, NULL, NULL, small, err, sizeof err), CORE_EFORMAT);
    ASSERT_CONTAINS(err, small);
    ASSERT_CONTAINS(err, "too short");
    ASSERT_EQ_INT(unlink(small), 0);
}

int main(void)
{
    test_json_valid();
    test_json_malformed();

    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_checkpoint.XXXXXX");
    ASSERT(mkdtemp(tmpdir) != NULL);
    test_round_trip();
    test_layout();
    test_atomic_save();
    test_sweep_temporaries();
    test_save_refuses();
    test_truncated();
    test_bit_flips();
    test_bad_headers();
    test_missing_file();
    ASSERT_EQ_INT(unlink(tmp_path("rt.safetensors")), 0);
    ASSERT_EQ_INT(unlink(tmp_path("noextra.safetensors")), 0);
    ASSERT_EQ_INT(unlink(tmp_path("layout.safetensors")), 0);
    ASSERT_EQ_INT(rmdir(tmpdir), 0); /* fails if any test left a file behind */
    printf("checkpoint: all tests passed\n");
    return 0;
}
