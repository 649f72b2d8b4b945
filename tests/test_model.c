/* test_model: Keras's initialisation as model_init_weights promises it: orthogonal recurrent
 * kernels (W_hh^T W_hh = I), Glorot-uniform input and output kernels (bounds and variance),
 * forget-gate bias 1 in b_ih and every other bias 0, reproducible by seed; and the parameter
 * layout's views tile the block exactly. */
#include "test.h"

#include "model.h"

static void check_glorot(const float *w, size_t n, size_t fan_in, size_t fan_out, const char *what)
{
    double limit = sqrt(6.0 / (double)(fan_in + fan_out)), sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(w[i]) <= limit))
            TEST_FAIL("%s[%zu] = %g outside +-%g", what, i, (double)w[i], limit);
        sum += w[i];
        sq += (double)w[i] * w[i];
    }
    double mean = sum / n, var = sq / n - mean * mean, want = limit * limit / 3; /* U(-a, a) */
    ASSERT_NEAR(mean, 0, 4 * sqrt(want / n));
    ASSERT_REL(var, want, 0.05);
}

static void test_init(int L, int H, int V)
{
    uint32_t chars[256];
    for (int i = 0; i < V; i++)
        chars[i] = 32 + (uint32_t)i;
    vocab voc = {V, chars};
    model_config cfg = {.L = L, .H = H, .regime = REGIME_SEQUENCE, .maxlen = 60, .step = 3,
                        .seq_len = 100};
    model *m, *again;
    ASSERT_EQ_INT(model_new(&m, &cfg, &voc, NULL, 0), 0);
    ASSERT_EQ_INT(model_new(&again, &cfg, &voc, NULL, 0), 0);
    ASSERT_EQ_INT(model_init_weights(m, 42), 0);
    ASSERT_EQ_INT(model_init_weights(again, 42), 0);
    ASSERT(memcmp(m->params, again->params, m->n_params * sizeof(float)) == 0);
    ASSERT_EQ_INT(model_init_weights(again, 43), 0);
    ASSERT(memcmp(m->params, again->params, m->n_params * sizeof(float)) != 0);

    /* the views tile the block: the last one ends exactly at n_params */
    ASSERT(m->p.fc_b + V == m->params + m->n_params);
    ASSERT_EQ_INT(m->n_params, model_param_count(V, H, L));

    int G = 4 * H;
    for (int l = 0; l < L; l++) {
        size_t in = l == 0 ? (size_t)V : (size_t)H;
        check_glorot(m->p.w_ih[l], (size_t)G * in, in, (size_t)G, "w_ih");
        /* columns of W_hh (4H x H) are orthonormal */
        const float *w = m->p.w_hh[l];
        double worst = 0;
        for (int a = 0; a < H; a++)
            for (int b = a; b < H; b++) {
                double dot = 0;
                for (int r = 0; r < G; r++)
                    dot += (double)w[r * H + a] * w[r * H + b];
                worst = fmax(worst, fabs(dot - (a == b)));
            }
        if (worst > 1e-5)
            TEST_FAIL("layer %d: W_hh^T W_hh differs from I by %g", l, worst);
        for (int j = 0; j < G; j++) {
            ASSERT(m->p.b_ih[l][j] == (j >= GATE_F * H && j < (GATE_F + 1) * H ? 1.0f : 0.0f));
            ASSERT(m->p.b_hh[l][j] == 0.0f);
        }
        printf("  L=%d H=%d V=%d layer %d: max |W_hh^T W_hh - I| = %.2e\n", L, H, V, l, worst);
    }
    check_glorot(m->p.fc_w, (size_t)V * H, (size_t)H, (size_t)V, "fc_w");
    for (int v = 0; v < V; v++)
        ASSERT(m->p.fc_b[v] == 0.0f);
    model_free(m);
    model_free(again);
}

int main(void)
{
    test_init(1, 128, 57);
    test_init(2, 64, 200);
    printf("test_model: ok\n");
    return 0;
}
