/* test_infer: the batch-invariant product and the batched step. bimm gives the bits of its
 * definition (one fmaf chain per output, in k order) for every batch size, column range and
 * kernel (AVX2 and portable); infer_batch_step gives every stream the bits it gets alone, in any
 * batch, in any order, split across any number of threads, at every SIMD level; the step
 * matches an independent float reference of the LSTM within rounding; genstream forks are the
 * streams they copy. */
#include "test.h"

#include "bimm.h"
#include "err.h"
#include "genstream.h"
#include "infer.h"
#include "model.h"
#include "pool.h"
#include "rng.h"
#include "simd.h"
#include "vocab.h"

static float frand(rng *r) { return (float)(rng_uniform(r) * 2.0 - 1.0); }

// ----------------------------------------------------------------------------
// bimm

static void test_bimm_exact(void)
{
    rng r;
    rng_seed(&r, 7);
    const int shapes[][2] = {{16, 1}, {48, 7}, {64, 128}, {160, 37}, {32, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], K = shapes[s][1], Bmax = 14;
        float *W = malloc((size_t)N * K * sizeof *W), *P = malloc((size_t)N * K * sizeof *P);
        float *x = malloc((size_t)Bmax * K * sizeof *x);
        int *src = malloc((size_t)N * sizeof *src);
        ASSERT(W && P && x && src);
        for (int i = 0; i < N * K; i++)
            W[i] = frand(&r);
        for (int i = 0; i < Bmax * K; i++)
            x[i] = frand(&r);
        /* a permuted packing with a zero column, as the LSTM's gate groups and padding use */
        for (int q = 0; q < N; q++)
            src[q] = q == N - 1 ? -1 : (q * 5 + 3) % (N - 1);
        for (int k = 0; k < K; k++)
            for (int q = 0; q < N; q++)
                P[(size_t)k * N + q] = src[q] < 0 ? 0.0f : W[(size_t)src[q] * K + k];
        bimm_matrix m;
        ASSERT_EQ_INT(bimm_pack(&m, N, src, 1, (const float *const[]){W}, &K), 0);
        float *want = malloc((size_t)Bmax * N * sizeof *want);
        float *got = malloc((size_t)Bmax * N * sizeof *got);
        ASSERT(want && got);
        for (int B = 1; B <= Bmax; B++) {
            for (int i = 0; i < B * N; i++)
                want[i] = frand(&r);
            memcpy(got, want, (size_t)B * N * sizeof *got);
            bimm_naive(want, (size_t)N, x, (size_t)K, P, N, K, B);
            for (int level = SIMD_BASELINE; level <= SIMD_AVX512; level++) {
                float *out = malloc((size_t)B * N * sizeof *out);
                ASSERT(out);
                memcpy(out, got, (size_t)B * N * sizeof *out);
                simd_cap(level);
                /* split into column ranges, as threads would */
                for (int q = 0; q < N; q += BIMM_NR)
                    bimm_run(out, (size_t)N, x, (size_t)K, &m, B, q, q + BIMM_NR);
                if (memcmp(out, want, (size_t)B * N * sizeof *out) != 0)
                    TEST_FAIL("bimm N=%d K=%d B=%d (%s kernel) differs from its definition", N,
                              K, B, bimm_impl_name());
                free(out);
            }
        }
        simd_cap(SIMD_AVX512);
        bimm_free(&m);
        free(W), free(P), free(x), free(src), free(want), free(got);
    }
}

// ----------------------------------------------------------------------------
// the batched step

static model *make_model(int L, int H, int V, uint64_t seed)
{
    uint32_t cps[64];
    for (int i = 0; i < V; i++)
        cps[i] = 'A' + (uint32_t)i;
    vocab v = {0};
    ASSERT_EQ_INT(vocab_init(&v, cps, V, NULL, 0), 0);
    model_config cfg = {.L = L, .H = H, .regime = REGIME_SEQUENCE, .maxlen = 5, .step = 1,
                        .seq_len = 10};
    model *m;
    ASSERT_EQ_INT(model_new(&m, &cfg, &v, NULL, 0), 0);
    ASSERT_EQ_INT(model_init_weights(m, seed), 0);
    rng r; /* biases too, so that every term of the step matters */
    rng_seed(&r, seed + 1);
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 4 * H; j++)
            m->p.b_ih[l][j] = 0.3f * frand(&r), m->p.b_hh[l][j] = 0.3f * frand(&r);
    for (int j = 0; j < V; j++)
        m->p.fc_b[j] = frand(&r);
    vocab_deinit(&v);
    return m;
}

enum { S = 23, STEPS = 9 };

/* Runs STEPS steps of S streams with the given grouping (groups of `group` streams, visited in
 * an order rotated by `rot`) on `threads` workers, and returns their final states and logits. */
static void run_streams(float *h, float *c, float *z, const model *m, const infer_weights *w,
                        const int *ids, int group, int rot, int threads)
{
    int LH = m->cfg.L * m->cfg.H, V = m->V;
    infer_state st[S];
    for (int i = 0; i < S; i++)
        ASSERT_EQ_INT(infer_state_init(&st[i], m), 0);
    infer_batch *b;
    pool *p = NULL;
    ASSERT_EQ_INT(infer_batch_new(&b, w, group, threads), 0);
    if (threads > 1)
        ASSERT_EQ_INT(pool_new(&p, threads), 0);
    infer_row rows[S];
    for (int t = 0; t < STEPS; t++) {
        for (int g0 = 0; g0 < S; g0 += group) {
            int n = S - g0 < group ? S - g0 : group;
            for (int k = 0; k < n; k++) {
                int i = (g0 + k + rot) % S;
                rows[k] = (infer_row){&st[i], ids[t * S + i], t == STEPS - 1 || i % 3 == 0};
            }
            infer_batch_step(b, rows, n, p);
        }
    }
    for (int i = 0; i < S; i++) {
        memcpy(h + (size_t)i * LH, st[i].h, (size_t)LH * sizeof *h);
        memcpy(c + (size_t)i * LH, st[i].c, (size_t)LH * sizeof *c);
        memcpy(z + (size_t)i * V, st[i].logits, (size_t)V * sizeof *z);
        infer_state_deinit(&st[i]);
    }
    infer_batch_free(b);
    pool_free(p);
}

static void test_step_invariance(void)
{
    /* H = 20: the last unit group is partial; 3 layers; V = 37: a partial output panel. The
     * small ones split their streams across threads, 2 x 136 (over 512 KiB) its columns. */
    const int shapes[][3] = {{1, 8, 5}, {3, 20, 37}, {2, 48, 20}, {2, 136, 30}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        model *m = make_model(shapes[s][0], shapes[s][1], shapes[s][2], 40 + s);
        infer_weights *w;
        ASSERT_EQ_INT(infer_weights_new(&w, m), 0);
        int LH = m->cfg.L * m->cfg.H, V = m->V;
        int ids[STEPS * S];
        rng r;
        rng_seed(&r, 5);
        for (int i = 0; i < STEPS * S; i++)
            ids[i] = (int)rng_below(&r, (uint64_t)V);
        float *h0 = malloc(sizeof(float) * S * LH), *c0 = malloc(sizeof(float) * S * LH);
        float *z0 = malloc(sizeof(float) * S * V), *h1 = malloc(sizeof(float) * S * LH);
        float *c1 = malloc(sizeof(float) * S * LH), *z1 = malloc(sizeof(float) * S * V);
        ASSERT(h0 && c0 && z0 && h1 && c1 && z1);
        simd_cap(SIMD_AVX512);
        run_streams(h0, c0, z0, m, w, ids, 1, 0, 1); /* every stream alone */
        const struct {
            int group, rot, threads, level;
        } runs[] = {{S, 0, 1, SIMD_AVX512}, {S, 7, 2, SIMD_AVX512}, {5, 3, 3, SIMD_AVX512},
                    {6, 11, 1, SIMD_AVX512}, {S, 2, 4, SIMD_AVX2}, {7, 1, 2, SIMD_BASELINE}};
        for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
            simd_cap(runs[k].level);
            run_streams(h1, c1, z1, m, w, ids, runs[k].group, runs[k].rot, runs[k].threads);
            if (memcmp(h0, h1, sizeof(float) * S * LH) || memcmp(c0, c1, sizeof(float) * S * LH) ||
                memcmp(z0, z1, sizeof(float) * S * V))
                TEST_FAIL("%dx%d: batches of %d, %d threads, %s: a stream's bits changed",
                          m->cfg.L, m->cfg.H, runs[k].group, runs[k].threads,
                          simd_name(simd_level()));
        }
        simd_cap(SIMD_AVX512);
        free(h0), free(c0), free(z0), free(h1), free(c1), free(z1);
        infer_weights_free(w);
        model_free(m);
    }
}

/* The step against the LSTM's equations in double, straight from the unpacked parameters. */
static void test_step_matches_reference(void)
{
    model *m = make_model(2, 20, 11, 9);
    const model_params *p = &m->p;
    int H = 20, V = 11, ids[] = {3, 0, 10, 7, 7, 1};
    double h[2][20] = {{0}}, c[2][20] = {{0}}, g[80];
    infer_batch *b;
    ASSERT_EQ_INT(infer_batch_open(&b, m, 1), 0);
    infer_state st;
    ASSERT_EQ_INT(infer_state_init(&st, m), 0);
    for (size_t t = 0; t < sizeof ids / sizeof ids[0]; t++) {
        infer_step(b, &st, ids[t]);
        for (int l = 0; l < 2; l++) {
            for (int r = 0; r < 4 * H; r++) {
                double acc = (double)p->b_ih[l][r] + p->b_hh[l][r];
                if (l == 0)
                    acc += p->w_ih[0][(size_t)ids[t] * 4 * H + r];
                else
                    for (int k = 0; k < H; k++)
                        acc += (double)p->w_ih[l][(size_t)r * H + k] * h[l - 1][k];
                for (int k = 0; k < H; k++)
                    acc += (double)p->w_hh[l][(size_t)r * H + k] * h[l][k];
                g[r] = acc;
            }
            for (int j = 0; j < H; j++) {
                double i = 1 / (1 + exp(-g[j])), f = 1 / (1 + exp(-g[H + j]));
                double gg = tanh(g[2 * H + j]), o = 1 / (1 + exp(-g[3 * H + j]));
                c[l][j] = f * c[l][j] + i * gg;
                h[l][j] = o * tanh(c[l][j]);
            }
        }
        for (int j = 0; j < H; j++) {
            ASSERT_NEAR(st.h[H + j], h[1][j], 1e-5);
            ASSERT_NEAR(st.c[j], c[0][j], 1e-5);
        }
        for (int v = 0; v < V; v++) {
            double z = p->fc_b[v];
            for (int k = 0; k < H; k++)
                z += (double)p->fc_w[(size_t)v * H + k] * h[1][k];
            ASSERT_NEAR(st.logits[v], z, 1e-5);
        }
    }
    infer_state_deinit(&st);
    infer_batch_free(b);
    model_free(m);
}

// ----------------------------------------------------------------------------
// genstream

/* Steps one stream to its end alone and returns its text (malloc'ed). */
static char *run_alone(genstream *g, const model *m)
{
    infer_batch *b;
    ASSERT_EQ_INT(infer_batch_open(&b, m, 1), 0);
    while (!genstream_done(g)) {
        if (genstream_ready(g)) {
            ASSERT_EQ_INT(genstream_predict(g), 0);
            continue;
        }
        infer_row row = {&g->st, 0, 0};
        row.id = genstream_input(g, &row.want_logits);
        infer_batch_step(b, &row, 1, NULL);
        genstream_stepped(g);
    }
    infer_batch_free(b);
    char *t = malloc(g->len + 1);
    ASSERT(t);
    memcpy(t, g->text, g->len);
    t[g->len] = '\0';
    return t;
}

static void test_fork(void)
{
    model *m = make_model(2, 16, 12, 3);
    for (int mode = SAMPLE_MODE_STATEFUL; mode <= SAMPLE_MODE_WINDOW; mode++) {
        sample_request q = {.seed_text = "ABCDEFG", .seed_len = 7, .length = 40,
                            .temperature = 1.0, .top_p = 1.0, .seed = 100, .mode = mode,
                            .want_logprobs = 1, .top_logprobs = 2, .echo_logprobs = 1};
        genstream reader, fork;
        ASSERT_EQ_INT(genstream_init(&reader, m, &q, NULL, 0), 0);
        infer_batch *b;
        ASSERT_EQ_INT(infer_batch_open(&b, m, 1), 0);
        while (!genstream_ready(&reader)) { /* read the seed */
            infer_row row = {&reader.st, 0, 0};
            row.id = genstream_input(&reader, &row.want_logits);
            infer_batch_step(b, &row, 1, NULL);
            genstream_stepped(&reader);
        }
        infer_batch_free(b);
        ASSERT_EQ_INT(genstream_fork(&fork, &reader, 101), 0);
        char *a = run_alone(&reader, m), *f = run_alone(&fork, m);
        /* the fork is the stream that seed 101 gives from scratch */
        q.seed = 101;
        genstream fresh;
        ASSERT_EQ_INT(genstream_init(&fresh, m, &q, NULL, 0), 0);
        char *want = run_alone(&fresh, m);
        ASSERT_EQ_STR(f, want);
        ASSERT(strcmp(a, f) != 0);
        ASSERT_EQ_INT(fork.n_lp, fresh.n_lp);
        ASSERT(memcmp(fork.lp, fresh.lp, fresh.n_lp * sizeof *fresh.lp) == 0 ||
               fresh.n_lp == 0);
        ASSERT_EQ_INT(fresh.n_lp, 7 + 40); /* the seed scored, then each generated character */
        free(a), free(f), free(want);
        genstream_deinit(&reader), genstream_deinit(&fork), genstream_deinit(&fresh);
    }
    model_free(m);
}

int main(void)
{
    test_bimm_exact();
    test_step_invariance();
    test_step_matches_reference();
    test_fork();
    printf("test_infer: ok (kernel %s)\n", bimm_impl_name());
    return 0;
}
