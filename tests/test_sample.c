/* test_sample: temperature reweighting (the book's table), greedy, top-k and top-p filters and
 * their empirical distributions, seeded generation in both modes against hand-rolled loops over
 * infer_step, stop strings and streaming, cancellation, error paths, and scoring. */
#include "test.h"

#include "err.h"
#include "genstream.h"
#include "infer.h"
#include "model.h"
#include "rng.h"
#include "sample.h"
#include "score.h"
#include "utf8.h"
#include "vocab.h"

#include <time.h>

/* '\n', ' ', 'a', 'b', 'c', 'é', '红', '😀': 1-, 2-, 3- and 4-byte characters. */
static const uint32_t CHARS[] = {'\n', ' ', 'a', 'b', 'c', 0xE9, 0x7EA2, 0x1F600};
#define NCHARS ((int)(sizeof CHARS / sizeof CHARS[0]))

static model *make_model(int regime, int lowercase, uint64_t seed)
{
    vocab v = {0};
    ASSERT_EQ_INT(vocab_init(&v, CHARS, NCHARS, NULL, 0), 0);
    model_config cfg = {.L = 2, .H = 8, .dropout = 0.0f, .regime = regime, .maxlen = 4, .step = 1,
                        .seq_len = 10, .lowercase = lowercase};
    model *m = NULL;
    char err[256];
    int rc = model_new(&m, &cfg, &v, err, sizeof err);
    if (rc)
        TEST_FAIL("model_new: %s", err);
    ASSERT_EQ_INT(model_init_weights(m, seed), 0);
    /* Sharper output than the Glorot init alone, so greedy runs are not all one character. */
    for (size_t i = 0; i < (size_t)m->V * m->cfg.H; i++)
        m->p.fc_w[i] *= 6.0f;
    vocab_deinit(&v);
    return m;
}

static sample_request base_request(const char *seed_text, int length)
{
    sample_request r = {0};
    r.seed_text = seed_text;
    r.seed_len = seed_text ? strlen(seed_text) : 0;
    r.length = length;
    r.temperature = 1.0;
    r.top_k = 0;
    r.top_p = 1.0;
    r.seed = 42;
    r.mode = SAMPLE_MODE_AUTO;
    return r;
}

static void generate_ok(sample_result *res, const model *m, const sample_request *req)
{
    char err[256] = "";
    int rc = sample_generate(res, m, req, err, sizeof err);
    if (rc)
        TEST_FAIL("sample_generate: %s (%s)", core_errname(rc), err);
}

/* Seed text -> ids without going through sample.c. */
static size_t text_ids(int *ids, const model *m, const char *s)
{
    uint32_t *cps;
    size_t n;
    ASSERT_EQ_INT(utf8_decode(&cps, &n, NULL, s, strlen(s), NULL, 0), 0);
    for (size_t i = 0; i < n; i++) {
        ids[i] = vocab_index(&m->voc, cps[i]);
        ASSERT(ids[i] >= 0);
    }
    free(cps);
    return n;
}

/* One character through a one-off batch of one (the hand-rolled reference loops). */
static void step1(infer_state *st, const model *m, int id)
{
    infer_batch *b;
    ASSERT_EQ_INT(infer_batch_open(&b, m, 1), 0);
    infer_step(b, st, id);
    infer_batch_free(b);
}

static void append_id(char *buf, size_t *len, const model *m, int id)
{
    *len += utf8_encode(buf + *len, m->voc.chars[id]);
    buf[*len] = '\0';
}

static int argmax_f(const float *z, int V)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (z[i] > z[best])
            best = i;
    return best;
}

// ----------------------------------------------------------------------------
// reweighting

static void test_reweight_table(void)
{
    const double p[3] = {0.8, 0.1, 0.1};
    double logp[3], q[3];
    for (int i = 0; i < 3; i++)
        logp[i] = log(p[i]);
    /* Deep Learning with Python, 8.1: the same distribution at three temperatures. */
    const struct {
        double T, q[3];
    } table[] = {
        {0.01, {1.0, 4.90909347e-91, 4.90909347e-91}},
        {2.0, {0.58578644, 0.20710678, 0.20710678}},
        {10.0, {0.38102426, 0.30948787, 0.30948787}},
    };
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        sample_reweight(q, logp, 3, table[t].T);
        for (int i = 0; i < 3; i++) {
            ASSERT(isfinite(q[i]) && q[i] > 0.0);
            ASSERT_REL(q[i], table[t].q[i], 1e-6);
        }
    }
    sample_reweight(q, logp, 3, 1.0);
    for (int i = 0; i < 3; i++)
        ASSERT_REL(q[i], p[i], 1e-12);
    /* Logits are log-probabilities up to a constant. */
    double z[3] = {logp[0] + 7.5, logp[1] + 7.5, logp[2] + 7.5};
    sample_reweight(z, z, 3, 2.0); /* in place */
    ASSERT_REL(z[0], 0.58578644, 1e-6);
    ASSERT_REL(z[2], 0.20710678, 1e-6);
    /* T = 0: one-hot at the argmax, ties to the lowest index. */
    double tie[4] = {0.5, 2.0, 2.0, -1.0};
    double q4[4];
    sample_reweight(q4, tie, 4, 0.0);
    ASSERT(q4[0] == 0.0 && q4[1] == 1.0 && q4[2] == 0.0 && q4[3] == 0.0);
    double neg[3] = {-INFINITY, 0.0, -INFINITY};
    sample_reweight(q, neg, 3, 0.5);
    ASSERT(q[0] == 0.0 && q[1] == 1.0 && q[2] == 0.0);
}

// ----------------------------------------------------------------------------
// filters and draws

static sampler make_sampler(int V, double T, int top_k, double top_p, uint64_t seed)
{
    sampler s;
    sample_options o = {T, top_k, top_p};
    char err[128];
    int rc = sampler_init(&s, V, &o, seed, err, sizeof err);
    if (rc)
        TEST_FAIL("sampler_init: %s", err);
    return s;
}

static double chi_square_bound(int df) { return df + 10.0 * sqrt(2.0 * df); }

/* Draws N times and checks the counts against want (V, zero outside the kept set). */
static void check_distribution(sampler *s, const float *logits, const double *want, int V, int N)
{
    long counts[64] = {0};
    ASSERT(V <= 64);
    for (int i = 0; i < N; i++) {
        int id = sample_next(s, logits);
        ASSERT(id >= 0 && id < V);
        counts[id]++;
    }
    double chi2 = 0.0;
    int df = -1;
    for (int i = 0; i < V; i++) {
        if (want[i] == 0.0) {
            ASSERT_EQ_INT(counts[i], 0);
            continue;
        }
        double e = want[i] * N;
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
        df++;
    }
    if (!(chi2 <= chi_square_bound(df)))
        TEST_FAIL("chi-square %.3f with %d degrees of freedom exceeds %.1f", chi2, df,
                  chi_square_bound(df));
}

static void test_greedy_and_plain(void)
{
    const float z[6] = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f, 1.0f};
    sampler s = make_sampler(6, 0.0, 0, 1.0, 1);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(sample_next(&s, z), 1); /* tie between 1 and 3: the lower index */
    ASSERT_EQ_INT(sample_filter(&s, z), 1);
    sampler_deinit(&s);

    /* No filter: every index kept in index order, softmax probabilities. */
    double want[6], sum = 0.0;
    for (int i = 0; i < 6; i++)
        sum += exp(z[i]);
    for (int i = 0; i < 6; i++)
        want[i] = exp(z[i]) / sum;
    s = make_sampler(6, 1.0, 0, 1.0, 2);
    ASSERT_EQ_INT(sample_filter(&s, z), 6);
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ_INT(s.cand[i].id, i);
        ASSERT_REL(s.cand[i].p, want[i], 1e-9);
    }
    check_distribution(&s, z, want, 6, 200000);
    sampler_deinit(&s);

    /* top_k >= V is "keep everything". */
    s = make_sampler(6, 1.0, 6, 1.0, 2);
    ASSERT_EQ_INT(sample_filter(&s, z), 6);
    sampler_deinit(&s);
}

static void test_top_k(void)
{
    const float z[8] = {0.3f, 1.5f, -0.7f, 1.1f, 0.9f, -2.0f, 1.2f, 0.0f};
    sampler s = make_sampler(8, 0.7, 3, 1.0, 3);
    ASSERT_EQ_INT(sample_filter(&s, z), 3);
    const int order[3] = {1, 6, 3};
    double e[3], sum = 0.0;
    for (int i = 0; i < 3; i++)
        sum += e[i] = exp((z[order[i]] - 1.5) / 0.7);
    double want[8] = {0};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(s.cand[i].id, order[i]);
        ASSERT_REL(s.cand[i].p, e[i] / sum, 1e-9);
        want[order[i]] = e[i] / sum;
    }
    check_distribution(&s, z, want, 8, 200000);
    sampler_deinit(&s);

    /* Ties: the lower indices win. */
    const float flat[6] = {1, 1, 1, 1, 1, 1};
    s = make_sampler(6, 1.0, 3, 1.0, 3);
    ASSERT_EQ_INT(sample_filter(&s, flat), 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(s.cand[i].id, i);
        ASSERT_REL(s.cand[i].p, 1.0 / 3.0, 1e-12);
    }
    sampler_deinit(&s);
}

static void expect_kept(const float *z, int V, int top_k, double top_p, const int *ids, int n)
{
    sampler s = make_sampler(V, 1.0, top_k, top_p, 4);
    int got = sample_filter(&s, z);
    if (got != n)
        TEST_FAIL("top_k %d top_p %g kept %d, want %d", top_k, top_p, got, n);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        ASSERT_EQ_INT(s.cand[i].id, ids[i]);
        sum += s.cand[i].p;
    }
    ASSERT_NEAR(sum, 1.0, 1e-12);
    sampler_deinit(&s);
}

static void test_top_p(void)
{
    const double p[5] = {0.05, 0.4, 0.3, 0.15, 0.1};
    float z[5];
    for (int i = 0; i < 5; i++)
        z[i] = (float)log(p[i]);
    expect_kept(z, 5, 0, 0.3, (int[]){1}, 1);
    expect_kept(z, 5, 0, 0.65, (int[]){1, 2}, 2);
    expect_kept(z, 5, 0, 0.75, (int[]){1, 2, 3}, 3);
    expect_kept(z, 5, 0, 0.92, (int[]){1, 2, 3, 4}, 4);
    expect_kept(z, 5, 0, 1.0, (int[]){0, 1, 2, 3, 4}, 5); /* off: index order */
    /* top_p applies to the top-k distribution renormalised: 0.4/0.85 + 0.3/0.85 = 0.82 >= 0.8,
     * where the unrenormalised 0.7 would have needed a third character. */
    expect_kept(z, 5, 3, 0.8, (int[]){1, 2}, 2);
    expect_kept(z, 5, 2, 0.5, (int[]){1}, 1);
    /* A uniform distribution and a small top_p still keeps one (llama2.c's cutoff would keep
     * none here). */
    const float flat[2] = {0.0f, 0.0f};
    expect_kept(flat, 2, 0, 0.1, (int[]){0}, 1);
    expect_kept(z, 1, 0, 0.5, (int[]){0}, 1);

    /* Empirical distribution of top_p = 0.75: {0.4, 0.3, 0.15} renormalised. */
    double want[5] = {0, 0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0};
    sampler s = make_sampler(5, 1.0, 0, 0.75, 5);
    check_distribution(&s, z, want, 5, 200000);
    sampler_deinit(&s);
}

/* Brute force: sort all V (most probable first, ties to the lower index), apply top_k, then
 * top_p on the renormalised rest. */
typedef struct pair {
    double p;
    int id;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

static void test_filters_large_v(void)
{
    enum { V = 4400 };
    static float z[V];
    static pair ref[V];
    rng r;
    rng_seed(&r, 99);
    for (int i = 0; i < V; i++)
        z[i] = (float)(2.5 * rng_normal(&r));
    const struct {
        double T;
        int k;
        double p;
    } cases[] = {{1.0, 40, 1.0}, {0.8, 0, 0.9}, {1.3, 200, 0.5}, {0.5, 0, 0.2}, {1.0, 1, 1.0},
                 {2.0, 0, 0.999}, {1.0, 4399, 0.95}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double T = cases[c].T, zmax = z[argmax_f(z, V)], total = 0.0;
        for (int i = 0; i < V; i++) {
            ref[i] = (pair){exp((z[i] - zmax) / T), i};
            total += ref[i].p;
        }
        qsort(ref, V, sizeof *ref, pair_cmp);
        int n = V;
        if (cases[c].k > 0 && cases[c].k < V) {
            n = cases[c].k;
            total = 0.0;
            for (int i = 0; i < n; i++)
                total += ref[i].p;
        }
        if (cases[c].p < 1.0) {
            double acc = 0.0;
            for (int i = 0; i < n; i++) {
                acc += ref[i].p;
                if (acc >= cases[c].p * total) {
                    n = i + 1;
                    break;
                }
            }
        }
        sampler s = make_sampler(V, T, cases[c].k, cases[c].p, 6);
        int got = sample_filter(&s, z);
        if (got != n)
            TEST_FAIL("case %zu: kept %d, brute force %d", c, got, n);
        double kept = 0.0;
        for (int i = 0; i < n; i++)
            kept += ref[i].p;
        for (int i = 0; i < n; i++) {
            ASSERT_EQ_INT(s.cand[i].id, ref[i].id);
            ASSERT_REL(s.cand[i].p, ref[i].p / kept, 1e-12);
        }
        sampler_deinit(&s);
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Not a pass/fail check: how long one character's draw takes at the Chinese corpus's V. */
static void bench_sample_next(void)
{
    enum { V = 4400, N = 2000 };
    static float z[V];
    rng r;
    rng_seed(&r, 7);
    for (int i = 0; i < V; i++)
        z[i] = (float)(3.0 * rng_normal(&r));
    const struct {
        const char *name;
        int k;
        double p;
    } cases[] = {{"plain", 0, 1.0}, {"top_k=40", 40, 1.0}, {"top_p=0.9", 0, 0.9},
                 {"top_k=40,top_p=0.9", 40, 0.9}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sampler s = make_sampler(V, 0.8, cases[c].k, cases[c].p, 8);
        long sink = 0;
        double t0 = now_us();
        for (int i = 0; i < N; i++)
            sink += sample_next(&s, z);
        double us = (now_us() - t0) / N;
        printf("sample_next V=%d %-20s %7.2f us/char (sink %ld)\n", V, cases[c].name, us, sink % 7);
        sampler_deinit(&s);
    }
}

// ----------------------------------------------------------------------------
// generation

static void test_greedy_generation(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 11);
    enum { LEN = 40 };
    sample_request req = base_request("ab c", LEN);
    req.temperature = 0.0;
    sample_result res;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.mode, SAMPLE_MODE_STATEFUL);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_LENGTH);
    ASSERT_EQ_INT(res.seed_chars, 4);
    ASSERT_EQ_INT(res.generated_chars, LEN);

    /* By hand: feed the seed, then argmax and feed back. */
    infer_state st;
    ASSERT_EQ_INT(infer_state_init(&st, m), 0);
    int ids[16];
    size_t n = text_ids(ids, m, "ab c");
    for (size_t i = 0; i < n; i++)
        step1(&st, m, ids[i]);
    char want[LEN * 4 + 1] = "";
    size_t wlen = 0;
    for (int i = 0; i < LEN; i++) {
        int id = argmax_f(st.logits, m->V);
        append_id(want, &wlen, m, id);
        step1(&st, m, id);
    }
    ASSERT_EQ_INT(res.text_len, wlen);
    ASSERT_EQ_STR(res.text, want);

    /* top_k = 1 at any temperature is greedy. */
    sample_result k1;
    req.temperature = 1.7;
    req.top_k = 1;
    generate_ok(&k1, m, &req);
    ASSERT_EQ_STR(k1.text, want);
    sample_result_deinit(&k1);

    /* Empty seed: the first character comes from the zero state's output, softmax(fc_b). */
    float saved = m->p.fc_b[5];
    m->p.fc_b[5] = 50.0f;
    sample_request e = base_request("", 1);
    e.temperature = 0.0;
    sample_result er;
    generate_ok(&er, m, &e);
    ASSERT_EQ_STR(er.text, "\xC3\xA9"); /* CHARS[5] = é */
    ASSERT_EQ_INT(er.seed_chars, 0);
    sample_result_deinit(&er);
    e.seed_text = NULL;
    e.mode = SAMPLE_MODE_WINDOW;
    generate_ok(&er, m, &e);
    ASSERT_EQ_STR(er.text, "\xC3\xA9");
    sample_result_deinit(&er);
    m->p.fc_b[5] = saved;

    /* Length 0 gives an empty, NUL-terminated text. */
    sample_request z = base_request("a", 0);
    sample_result zr;
    generate_ok(&zr, m, &z);
    ASSERT_EQ_INT(zr.text_len, 0);
    ASSERT_EQ_STR(zr.text, "");
    sample_result_deinit(&zr);

    infer_state_deinit(&st);
    sample_result_deinit(&res);
    model_free(m);
}

static void test_stateful_matches_hand_loop(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 12);
    enum { LEN = 100 };
    sample_request req = base_request("c\xC3\xA9 a", LEN);
    req.temperature = 0.9;
    req.top_k = 5;
    req.top_p = 0.95;
    req.seed = 1234;
    sample_result res;
    generate_ok(&res, m, &req);

    sampler s = make_sampler(m->V, 0.9, 5, 0.95, 1234);
    infer_state st;
    ASSERT_EQ_INT(infer_state_init(&st, m), 0);
    int ids[16];
    size_t n = text_ids(ids, m, "c\xC3\xA9 a");
    for (size_t i = 0; i < n; i++)
        step1(&st, m, ids[i]);
    char want[LEN * 4 + 1] = "";
    size_t wlen = 0;
    for (int i = 0; i < LEN; i++) {
        int id = sample_next(&s, st.logits);
        append_id(want, &wlen, m, id);
        step1(&st, m, id);
    }
    ASSERT_EQ_STR(res.text, want);
    ASSERT_EQ_INT(res.generated_chars, LEN);
    infer_state_deinit(&st);
    sampler_deinit(&s);
    sample_result_deinit(&res);
    model_free(m);
}

static void test_window_matches_hand_loop(void)
{
    model *m = make_model(REGIME_WINDOW, 0, 13);
    enum { LEN = 60 };
    const char *seed = "ab\xE7\xBA\xA2 c\xF0\x9F\x98\x80"; /* ab红 c😀: longer than maxlen = 4 */
    sample_request req = base_request(seed, LEN);
    req.temperature = 0.8;
    req.seed = 77;
    sample_result res;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.mode, SAMPLE_MODE_WINDOW); /* AUTO on a window model */
    ASSERT_EQ_INT(res.seed_chars, 6);

    sampler s = make_sampler(m->V, 0.8, 0, 1.0, 77);
    infer_state st;
    ASSERT_EQ_INT(infer_state_init(&st, m), 0);
    int hist[16 + LEN];
    size_t n = text_ids(hist, m, seed);
    char want[LEN * 4 + 1] = "";
    size_t wlen = 0;
    for (int i = 0; i < LEN; i++) {
        infer_state_reset(&st);
        for (size_t j = n > 4 ? n - 4 : 0; j < n; j++)
            step1(&st, m, hist[j]);
        int id = sample_next(&s, st.logits);
        append_id(want, &wlen, m, id);
        hist[n++] = id;
    }
    ASSERT_EQ_STR(res.text, want);

    /* The window mode differs from the stateful one on the same model. */
    sample_result sres;
    req.mode = SAMPLE_MODE_STATEFUL;
    generate_ok(&sres, m, &req);
    ASSERT_EQ_INT(sres.mode, SAMPLE_MODE_STATEFUL);
    ASSERT(strcmp(sres.text, res.text) != 0);
    sample_result_deinit(&sres);

    infer_state_deinit(&st);
    sampler_deinit(&s);
    sample_result_deinit(&res);
    model_free(m);
}

static void test_determinism(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 14);
    sample_request req = base_request("a", 200);
    req.seed = 5;
    sample_result a, b, c;
    generate_ok(&a, m, &req);
    generate_ok(&b, m, &req);
    req.seed = 6;
    generate_ok(&c, m, &req);
    ASSERT_EQ_STR(a.text, b.text);
    ASSERT(strcmp(a.text, c.text) != 0);
    /* The output is valid UTF-8 of exactly 200 characters. */
    uint32_t *cps;
    size_t n;
    ASSERT_EQ_INT(utf8_decode(&cps, &n, NULL, a.text, a.text_len, NULL, 0), 0);
    ASSERT_EQ_INT(n, 200);
    free(cps);
    sample_result_deinit(&a);
    sample_result_deinit(&b);
    sample_result_deinit(&c);
    model_free(m);
}

// ----------------------------------------------------------------------------
// stop strings, streaming, cancellation

typedef struct collect {
    char buf[16384];
    size_t len;
    int calls;
    int bad_chunks;   /* empty or not valid UTF-8 */
    int refuse_after; /* emit returns nonzero from this call on (0: never) */
    volatile int *flag;
    int flag_after; /* set *flag on this call */
} collect;

static int collect_emit(void *ctx, const char *s, size_t n)
{
    collect *c = ctx;
    uint32_t *cps;
    size_t k;
    if (n == 0 || utf8_decode(&cps, &k, NULL, s, n, NULL, 0) != 0)
        c->bad_chunks++;
    else
        free(cps);
    ASSERT(c->len + n < sizeof c->buf);
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
    c->calls++;
    if (c->flag && c->calls == c->flag_after)
        *c->flag = 1;
    return c->refuse_after && c->calls >= c->refuse_after;
}

/* The byte offset of character i of valid UTF-8 s. */
static size_t char_offset(const char *s, size_t i)
{
    size_t off = 0;
    for (size_t k = 0; k < i; k++) {
        uint32_t cp;
        off += utf8_next(&cp, s + off, strlen(s + off));
    }
    return off;
}

/* Brute force: the first prefix of full ending with a stop string, minus the longest such one. */
static size_t expected_cut(const char *full, const char *const *stop, int n_stop, int *matched)
{
    size_t n = strlen(full);
    for (size_t e = 1; e <= n; e++) {
        size_t best = 0;
        for (int i = 0; i < n_stop; i++) {
            size_t l = strlen(stop[i]);
            if (l <= e && l > best && memcmp(full + e - l, stop[i], l) == 0)
                best = l;
        }
        if (best) {
            *matched = 1;
            return e - best;
        }
    }
    *matched = 0;
    return n;
}

static void run_stop_case(const model *m, const char *full, const char *const *stop, int n_stop)
{
    int matched;
    size_t cut = expected_cut(full, stop, n_stop, &matched);
    sample_request req = base_request("a", (int)strlen(full)); /* >= its character count */
    req.seed = 31;
    req.stop = stop;
    req.n_stop = n_stop;
    collect c = {0};
    req.emit = collect_emit;
    req.emit_ctx = &c;
    sample_result res;
    generate_ok(&res, m, &req);
    ASSERT(matched); /* the cases are chosen so that one matches */
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_STOP);
    ASSERT_EQ_INT(res.text_len, cut);
    ASSERT(memcmp(res.text, full, cut) == 0);
    ASSERT_EQ_INT(c.bad_chunks, 0);
    ASSERT_EQ_INT(c.len, res.text_len);
    ASSERT_EQ_STR(c.buf, res.text);
    for (int i = 0; i < n_stop; i++)
        ASSERT(strstr(c.buf, stop[i]) == NULL);
    sample_result_deinit(&res);
}

static void test_stop_and_stream(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 15);
    enum { LEN = 120 };
    /* The reference: the same request without stop strings, streamed. */
    sample_request req = base_request("a", LEN);
    req.seed = 31;
    collect c = {0};
    req.emit = collect_emit;
    req.emit_ctx = &c;
    sample_result full;
    generate_ok(&full, m, &req);
    ASSERT_EQ_INT(full.finish_reason, SAMPLE_FINISH_LENGTH);
    ASSERT_EQ_INT(c.bad_chunks, 0);
    ASSERT_EQ_INT(c.calls, LEN); /* nothing to hold back: one character per call */
    ASSERT_EQ_STR(c.buf, full.text);

    /* A stop string that spans several characters, taken from the middle of the text. */
    size_t a = char_offset(full.text, 50), b = char_offset(full.text, 53);
    char span[32];
    memcpy(span, full.text + a, b - a);
    span[b - a] = '\0';
    run_stop_case(m, full.text, (const char *const[]){span}, 1);

    /* A single multi-byte character: the first one at character 10 or later. */
    char mb[8] = "";
    for (size_t i = 10; i < LEN && !mb[0]; i++) {
        size_t o = char_offset(full.text, i), o2 = char_offset(full.text, i + 1);
        if (o2 - o > 1) {
            memcpy(mb, full.text + o, o2 - o);
            mb[o2 - o] = '\0';
        }
    }
    ASSERT(mb[0] != '\0');
    run_stop_case(m, full.text, (const char *const[]){mb}, 1);

    /* Overlapping stops: y is the first occurrence of some character and x the one before it, so
     * "xy" and "y" first match together, and the longer one must be cut. A never-matching stop
     * whose prefix is the text's start is held back, then released. */
    size_t j = 1;
    for (;; j++) {
        ASSERT(j < 20);
        size_t o = char_offset(full.text, j), l = char_offset(full.text, j + 1) - o;
        int seen = 0;
        for (size_t k = 0; k < o && !seen; k++)
            seen = memcmp(full.text + k, full.text + o, l) == 0;
        if (!seen)
            break;
    }
    size_t p = char_offset(full.text, j - 1), q = char_offset(full.text, j),
           r = char_offset(full.text, j + 1);
    char xy[16], y[8];
    memcpy(xy, full.text + p, r - p);
    xy[r - p] = '\0';
    memcpy(y, full.text + q, r - q);
    y[r - q] = '\0';
    char never[64];
    snprintf(never, sizeof never, "%.*s\x01", (int)char_offset(full.text, 6), full.text);
    int both;
    ASSERT_EQ_INT(expected_cut(full.text, (const char *const[]){xy}, 1, &both), p);
    run_stop_case(m, full.text, (const char *const[]){xy, never, y}, 3);
    run_stop_case(m, full.text, (const char *const[]){y, xy}, 2);

    /* Only the never-matching stop: everything is eventually emitted, in more than one chunk. */
    collect c2 = {0};
    const char *const only_never[] = {never};
    req.emit_ctx = &c2;
    req.stop = only_never;
    req.n_stop = 1;
    sample_result res;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_LENGTH);
    ASSERT_EQ_STR(res.text, full.text);
    ASSERT_EQ_STR(c2.buf, full.text);
    ASSERT_EQ_INT(c2.bad_chunks, 0);
    ASSERT(c2.calls > 1 && c2.calls < LEN); /* the first 6 characters went out together */
    sample_result_deinit(&res);

    /* Without emit the result is the same. */
    req.emit = NULL;
    const char *const only_span[] = {span};
    req.stop = only_span;
    generate_ok(&res, m, &req);
    int matched;
    size_t cut = expected_cut(full.text, only_span, 1, &matched);
    ASSERT(matched && cut <= a);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_STOP);
    ASSERT_EQ_INT(res.text_len, cut);
    ASSERT(memcmp(res.text, full.text, cut) == 0);
    sample_result_deinit(&res);

    sample_result_deinit(&full);
    model_free(m);
}

static void test_cancel(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 16);
    volatile int flag = 1;
    sample_request req = base_request("ab", 50);
    req.cancel = &flag;
    sample_result res;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_CANCELLED);
    ASSERT_EQ_INT(res.generated_chars, 0);
    ASSERT_EQ_STR(res.text, "");
    sample_result_deinit(&res);

    /* The flag goes up while the 7th character is emitted: polled before the 8th. */
    flag = 0;
    collect c = {0};
    c.flag = &flag;
    c.flag_after = 7;
    req.emit = collect_emit;
    req.emit_ctx = &c;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_CANCELLED);
    ASSERT_EQ_INT(res.generated_chars, 7);
    ASSERT_EQ_STR(c.buf, res.text);
    sample_result_deinit(&res);

    /* emit refusing (client gone) stops generation too. */
    collect d = {0};
    d.refuse_after = 3;
    req.cancel = NULL;
    req.emit_ctx = &d;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_CANCELLED);
    ASSERT_EQ_INT(d.calls, 3);
    ASSERT_EQ_INT(res.generated_chars, 3);
    sample_result_deinit(&res);

    /* Cancelled while in the window mode, too. */
    flag = 1;
    req.cancel = &flag;
    req.emit = NULL;
    req.mode = SAMPLE_MODE_WINDOW;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.finish_reason, SAMPLE_FINISH_CANCELLED);
    sample_result_deinit(&res);
    model_free(m);
}

// ----------------------------------------------------------------------------
// errors

static void expect_error(const model *m, const sample_request *req, int code, const char *needle)
{
    sample_result res;
    memset(&res, 0xAB, sizeof res);
    sample_result before = res;
    char err[256] = "";
    int rc = sample_generate(&res, m, req, err, sizeof err);
    if (rc != code)
        TEST_FAIL("got %s (%s), want %s", core_errname(rc), err, core_errname(code));
    if (!strstr(err, needle))
        TEST_FAIL("message \"%s\" does not mention \"%s\"", err, needle);
    ASSERT(memcmp(&res, &before, sizeof res) == 0); /* untouched on failure */
}

static void test_errors(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 17);
    sample_request req = base_request("ab\xFF", 5);
    expect_error(m, &req, CORE_EUTF8, "offset 2");
    req = base_request("ab z", 5);
    expect_error(m, &req, CORE_EVOCAB, "position 3");
    expect_error(m, &req, CORE_EVOCAB, "'z'");
    req = base_request("ABC", 5); /* not lowercased: this model was not trained lowercased */
    expect_error(m, &req, CORE_EVOCAB, "position 0");

    req = base_request("ab z", 5);
    req.skip_unknown = 1;
    sample_result res;
    generate_ok(&res, m, &req);
    ASSERT_EQ_INT(res.seed_chars, 3);
    sample_result expect;
    sample_request same = base_request("ab ", 5);
    generate_ok(&expect, m, &same);
    ASSERT_EQ_STR(res.text, expect.text);
    sample_result_deinit(&res);
    sample_result_deinit(&expect);

    req = base_request("a", 5);
    req.temperature = NAN;
    expect_error(m, &req, CORE_ERANGE, "temperature");
    req.temperature = -0.5;
    expect_error(m, &req, CORE_ERANGE, "temperature");
    req.temperature = INFINITY;
    expect_error(m, &req, CORE_ERANGE, "temperature");
    req = base_request("a", 5);
    req.top_p = 0.0;
    expect_error(m, &req, CORE_ERANGE, "top_p");
    req.top_p = 1.5;
    expect_error(m, &req, CORE_ERANGE, "top_p");
    req.top_p = NAN;
    expect_error(m, &req, CORE_ERANGE, "top_p");
    req = base_request("a", 5);
    req.top_k = -1;
    expect_error(m, &req, CORE_ERANGE, "top_k");
    req = base_request("a", -1);
    expect_error(m, &req, CORE_ERANGE, "length");
    req = base_request("a", 5);
    req.mode = 9;
    expect_error(m, &req, CORE_ERANGE, "mode");
    req.mode = SAMPLE_MODE_AUTO;
    req.stop = (const char *const[]){"ok", ""};
    req.n_stop = 2;
    expect_error(m, &req, CORE_EINVAL, "stop[1]");
    req.stop = (const char *const[]){"\xE7\xBA"};
    req.n_stop = 1;
    expect_error(m, &req, CORE_EUTF8, "stop[0]");
    req.n_stop = -1;
    expect_error(m, &req, CORE_ERANGE, "n_stop");
    const char *many[SAMPLE_MAX_STOPS + 1];
    for (int i = 0; i <= SAMPLE_MAX_STOPS; i++)
        many[i] = "zz";
    req.stop = many;
    req.n_stop = SAMPLE_MAX_STOPS + 1;
    expect_error(m, &req, CORE_ERANGE, "n_stop must be 0..16");
    req.n_stop = SAMPLE_MAX_STOPS; /* the limit itself is fine */
    char err2[256];
    ASSERT_EQ_INT(sample_request_check(&req, m, NULL, err2, sizeof err2), 0);
    req.n_stop = 0;

    /* sampler_init validates the same way, and leaves the sampler alone. */
    sampler s = {0};
    char err[128];
    ASSERT_EQ_INT(sampler_init(&s, 8, &(sample_options){1.0, 0, 0.0}, 1, err, sizeof err),
                  CORE_ERANGE);
    ASSERT(s.cand == NULL);
    sampler_deinit(&s); /* safe on a zeroed sampler */
    model_free(m);

    /* A lowercased model reads "AB" as "ab". */
    model *lm = make_model(REGIME_SEQUENCE, 1, 17);
    sample_request up = base_request("AB", 10), low = base_request("ab", 10);
    sample_result ur, lr;
    generate_ok(&ur, lm, &up);
    generate_ok(&lr, lm, &low);
    ASSERT_EQ_STR(ur.text, lr.text);
    sample_result_deinit(&ur);
    sample_result_deinit(&lr);
    model_free(lm);
}

// ----------------------------------------------------------------------------
// scoring

static void test_score(void)
{
    model *m = make_model(REGIME_SEQUENCE, 0, 18);
    const char *text = "ab\xE7\xBA\xA2\xF0\x9F\x98\x80\xC3\xA9 c\nba"; /* ab红😀é c\nba */
    score_result res;
    char err[256];
    int rc = score_text(&res, m, text, strlen(text), 3, 0, err, sizeof err);
    if (rc)
        TEST_FAIL("score_text: %s", err);
    int ids[32];
    size_t n = text_ids(ids, m, text);
    ASSERT_EQ_INT(res.n, n);
    ASSERT(isnan(res.logprobs[0]));
    ASSERT_EQ_INT(res.top[0].id, -1);

    /* Independently: the plain formula log(exp(z_i) / sum_j exp(z_j)); the logits are small. */
    infer_state st;
    ASSERT_EQ_INT(infer_state_init(&st, m), 0);
    double total = 0.0;
    for (size_t i = 0; i + 1 < n; i++) {
        ASSERT_EQ_INT(res.ids[i], ids[i]);
        step1(&st, m, ids[i]);
        double sum = 0.0;
        for (int j = 0; j < m->V; j++)
            sum += exp((double)st.logits[j]);
        double want = log(exp((double)st.logits[ids[i + 1]]) / sum);
        ASSERT_NEAR(res.logprobs[i + 1], want, 1e-9);
        total += want;
        /* Top 3 alternatives: the three largest logits, in order. */
        const score_alt *top = res.top + (i + 1) * 3;
        int used[8] = {0};
        for (int t = 0; t < 3; t++) {
            int best = -1;
            for (int j = 0; j < m->V; j++)
                if (!used[j] && (best < 0 || st.logits[j] > st.logits[best]))
                    best = j;
            used[best] = 1;
            ASSERT_EQ_INT(top[t].id, best);
            ASSERT_NEAR(top[t].logprob, log(exp((double)st.logits[best]) / sum), 1e-9);
        }
    }
    ASSERT_NEAR(res.total, total, 1e-9);
    ASSERT_NEAR(score_mean_nats(&res), total / (double)(n - 1), 1e-12);
    infer_state_deinit(&st);
    score_result_deinit(&res);

    /* top_n 0: no alternatives. */
    ASSERT_EQ_INT(score_text(&res, m, text, strlen(text), 0, 0, NULL, 0), 0);
    ASSERT(res.top == NULL);
    ASSERT_NEAR(res.total, total, 1e-9);
    score_result_deinit(&res);

    /* Empty text and a single character: nothing is predicted. */
    ASSERT_EQ_INT(score_text(&res, m, "", 0, 2, 0, NULL, 0), 0);
    ASSERT_EQ_INT(res.n, 0);
    ASSERT(isnan(score_mean_nats(&res)));
    score_result_deinit(&res);
    ASSERT_EQ_INT(score_text(&res, m, "a", 1, 2, 0, NULL, 0), 0);
    ASSERT_EQ_INT(res.n, 1);
    ASSERT(isnan(res.logprobs[0]));
    ASSERT(res.total == 0.0);
    score_result_deinit(&res);

    /* Errors, and skip_unknown. */
    memset(&res, 0, sizeof res);
    ASSERT_EQ_INT(score_text(&res, m, "a\xC0\xAF", 3, 0, 0, err, sizeof err), CORE_EUTF8);
    ASSERT(strstr(err, "offset 1") != NULL);
    ASSERT_EQ_INT(score_text(&res, m, "abxa", 4, 0, 0, err, sizeof err), CORE_EVOCAB);
    ASSERT(strstr(err, "position 2") != NULL);
    ASSERT_EQ_INT(score_text(&res, m, "a", 1, SCORE_MAX_TOP + 1, 0, err, sizeof err), CORE_ERANGE);
    ASSERT(strstr(err, "top_n") != NULL);
    ASSERT(res.n == 0 && res.ids == NULL);
    score_result skipped, plain;
    ASSERT_EQ_INT(score_text(&skipped, m, "abxa", 4, 0, 1, NULL, 0), 0);
    ASSERT_EQ_INT(score_text(&plain, m, "aba", 3, 0, 0, NULL, 0), 0);
    ASSERT_EQ_INT(skipped.n, 3);
    ASSERT(skipped.total == plain.total);
    score_result_deinit(&skipped);
    score_result_deinit(&plain);

    /* score_log_softmax is stable for large logits and sums to 1. */
    const float big[3] = {1000.0f, 999.0f, -1000.0f};
    double lp[3];
    score_log_softmax(lp, big, 3);
    ASSERT(isfinite(lp[0]) && isfinite(lp[1]));
    ASSERT_NEAR(exp(lp[0]) + exp(lp[1]) + exp(lp[2]), 1.0, 1e-12);
    ASSERT_NEAR(lp[0] - lp[1], 1.0, 1e-12);
    score_alt top2[2];
    const double ties[4] = {-1.0, -0.5, -0.5, -3.0};
    score_top(top2, 2, ties, 4);
    ASSERT(top2[0].id == 1 && top2[1].id == 2);
    model_free(m);
}

int main(void)
{
    test_reweight_table();
    test_greedy_and_plain();
    test_top_k();
    test_top_p();
    test_filters_large_v();
    test_greedy_generation();
    test_stateful_matches_hand_loop();
    test_window_matches_hand_loop();
    test_determinism();
    test_stop_and_stream();
    test_cancel();
    test_errors();
    test_score();
    bench_sample_next();
    printf("test_sample: ok\n");
    return 0;
}
