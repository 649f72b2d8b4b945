/* test_grad: every backward pass against central finite differences of the forward loss.
 * Covers mm against its naive reference, the LSTM layer alone (dx, dh0, dc0 and all four
 * parameter tensors), and the whole network for both regimes, 1 and 2 layers, with and without
 * dropout (a fixed mask), plus the accumulation contract (two backwards double every gradient).
 * The finite differences run at the machine's SIMD level; test_simd_levels shows that every
 * other level (LSTMGEN_SIMD) computes the same bits, so the check holds for those too. */
#include "test.h"

#include "lstm.h"
#include "mm.h"
#include "model.h"
#include "net.h"
#include "rng.h"
#include "simd.h"

/* The forward pass runs in float, so the central difference has rounding noise of about
 * 1e-7 / FD_EPS in absolute terms and truncation error of about FD_EPS^2 relative: 1e-2 balances
 * the two. Gradients are compared with that relative tolerance plus a small absolute floor. */
#define FD_EPS 1e-2f
#define FD_RTOL 1e-2
#define FD_ATOL 1e-5

static void fill_uniform(float *x, size_t n, float scale, rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * rng_uniform(r) - 1.0) * scale);
}

/* |analytic - numeric| <= rtol * max(|a|, |n|) + atol; returns the relative error, counting only
 * gradients well above the absolute floor (for tiny ones the relative error is just noise). */
static double check_close(const char *what, size_t idx, double a, double num, double rtol,
                          double atol)
{
    double scale = fmax(fabs(a), fabs(num));
    if (fabs(a - num) > rtol * scale + atol)
        TEST_FAIL("%s[%zu]: analytic %.8g vs numeric %.8g", what, idx, a, num);
    return scale > 100 * atol ? fabs(a - num) / scale : 0;
}

static void test_mm(void)
{
    rng r;
    rng_seed(&r, 1);
    int M = 7, N = 5, K = 9;
    float A[63], B[45], C[35], D[35];
    fill_uniform(A, 63, 1, &r);
    fill_uniform(B, 45, 1, &r);
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            fill_uniform(C, 35, 1, &r);
            memcpy(D, C, sizeof C);
            mm(C, A, B, M, N, K, ta, tb, 0.5f);
            mm_naive(D, A, B, M, N, K, ta, tb, 0.5f);
            for (int i = 0; i < 35; i++)
                ASSERT_NEAR(C[i], D[i], 1e-5);
        }
    }
}

// ----------------------------------------------------------------------------
// one layer with float inputs: loss = sum over outputs of h * R

/* LH a multiple of BIMM_NR, so that (where the CPU has AVX2) the per-step products run packed
 * (bimm); the network tests below, with H = 4, check the OpenBLAS path. */
enum { LT = 3, LB = 2, LIN = 3, LH = 16, LG = 4 * LH };

typedef struct layer_case {
    float x[LT * LB * LIN], w_ih[LG * LIN], w_hh[LG * LH], b_ih[LG], b_hh[LG];
    float h0[LB * LH], c0[LB * LH], R[LT * LB * LH];
    float gates[LT * LB * LG], h[(LT + 1) * LB * LH], c[(LT + 1) * LB * LH], tanh_c[LT * LB * LH];
} layer_case;

static lstm_cache layer_cache(layer_case *lc)
{
    lstm_cache k = {.gates = lc->gates, .h = lc->h, .c = lc->c, .tanh_c = lc->tanh_c};
    ASSERT_EQ_INT(lstm_cache_init_packed(&k, LH), 0);
    return k;
}

static double layer_loss(layer_case *lc)
{
    lstm_cache k = layer_cache(lc);
    memcpy(lc->h, lc->h0, sizeof lc->h0);
    memcpy(lc->c, lc->c0, sizeof lc->c0);
    lstm_forward(&k, NULL, lc->x, lc->w_ih, lc->w_hh, lc->b_ih, lc->b_hh, LT, LB, LIN, LH);
    lstm_cache_free_packed(&k);
    double loss = 0;
    for (int i = 0; i < LT * LB * LH; i++)
        loss += (double)lc->h[LB * LH + i] * lc->R[i];
    return loss;
}

static void check_layer_tensor(layer_case *lc, float *param, size_t n, const float *grad,
                               const char *name)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float saved = param[i];
        param[i] = saved + FD_EPS;
        double up = layer_loss(lc);
        param[i] = saved - FD_EPS;
        double down = layer_loss(lc);
        double step = (double)(saved + FD_EPS) - (double)(saved - FD_EPS); /* the step float took */
        param[i] = saved;
        worst = fmax(worst, check_close(name, i, grad[i], (up - down) / step, FD_RTOL, FD_ATOL));
    }
    printf("  layer %-6s max rel err %.2e over %zu values (|g| > 1e-3)\n", name, worst, n);
}

static void test_layer(void)
{
    static layer_case lc;
    rng r;
    rng_seed(&r, 2);
    fill_uniform(lc.x, sizeof lc.x / 4, 1, &r);
    fill_uniform(lc.w_ih, sizeof lc.w_ih / 4, 0.5f, &r);
    fill_uniform(lc.w_hh, sizeof lc.w_hh / 4, 0.5f, &r);
    fill_uniform(lc.b_ih, LG, 0.5f, &r);
    fill_uniform(lc.b_hh, LG, 0.5f, &r);
    fill_uniform(lc.h0, LB * LH, 0.5f, &r);
    fill_uniform(lc.c0, LB * LH, 0.5f, &r);
    fill_uniform(lc.R, LT * LB * LH, 1, &r);

    static float dw_ih[LG * LIN], dw_hh[LG * LH], db_ih[LG], db_hh[LG], dx[LT * LB * LIN];
    static float dh0[LB * LH], dc0[LB * LH], dh[LT * LB * LH], dgates[LT * LB * LG];
    memcpy(dh, lc.R, sizeof dh);
    lstm_cache k = layer_cache(&lc);
    memcpy(lc.h, lc.h0, sizeof lc.h0);
    memcpy(lc.c, lc.c0, sizeof lc.c0);
    lstm_forward(&k, NULL, lc.x, lc.w_ih, lc.w_hh, lc.b_ih, lc.b_hh, LT, LB, LIN, LH);
    printf("  layer: per-step products %s\n", k.packed ? "packed (bimm)" : "by mm");
    lstm_backward(dw_ih, dw_hh, db_ih, db_hh, dx, dh0, dc0, dh, dgates, &k, NULL, lc.x, lc.w_ih,
                  lc.w_hh, LT, LB, LIN, LH);
    lstm_cache_free_packed(&k);
    check_layer_tensor(&lc, lc.x, sizeof lc.x / 4, dx, "dx");
    check_layer_tensor(&lc, lc.h0, LB * LH, dh0, "dh0");
    check_layer_tensor(&lc, lc.c0, LB * LH, dc0, "dc0");
    check_layer_tensor(&lc, lc.w_ih, LG * LIN, dw_ih, "w_ih");
    check_layer_tensor(&lc, lc.w_hh, LG * LH, dw_hh, "w_hh");
    check_layer_tensor(&lc, lc.b_ih, LG, db_ih, "b_ih");
    check_layer_tensor(&lc, lc.b_hh, LG, db_hh, "b_hh");
}

// ----------------------------------------------------------------------------
// the whole network

enum { NV = 5, NH = 4, NT = 3, NB = 2 };

typedef struct net_case {
    net n;
    model_params p, g;
    float *params, *grads, *h0, *c0; /* h0, c0: (L, B, H) initial state */
    size_t n_params;
    int L;
    int ids[NT * NB], targets[NT * NB];
    float dropout;
} net_case;

static double net_loss(net_case *nc)
{
    for (int l = 0; l < nc->L; l++) {
        memcpy(net_state_h(&nc->n, l), nc->h0 + l * NB * NH, NB * NH * sizeof(float));
        memcpy(net_state_c(&nc->n, l), nc->c0 + l * NB * NH, NB * NH * sizeof(float));
    }
    rng drop;
    rng_seed(&drop, 99); /* the same dropout mask on every evaluation */
    return net_forward(&nc->n, &nc->p, nc->ids, nc->targets, NB, NT,
                       nc->dropout > 0 ? &drop : NULL);
}

static void check_net_values(net_case *nc, float *vals, const float *grad, size_t n,
                             const char *name)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float saved = vals[i];
        vals[i] = saved + FD_EPS;
        double up = net_loss(nc);
        vals[i] = saved - FD_EPS;
        double down = net_loss(nc);
        double step = (double)(saved + FD_EPS) - (double)(saved - FD_EPS);
        vals[i] = saved;
        worst = fmax(worst, check_close(name, i, grad[i], (up - down) / step, FD_RTOL, FD_ATOL));
    }
    printf("    %-10s max rel err %.2e over %zu values (|g| > 1e-3)\n", name, worst, n);
}

static void test_net(int L, int all_steps, float dropout)
{
    printf("  net L=%d regime=%s dropout=%.1f\n", L, all_steps ? "sequence" : "window", dropout);
    net_case nc = {0};
    nc.L = L;
    nc.dropout = dropout;
    ASSERT_EQ_INT(net_init(&nc.n, NV, NH, L, NB, NT, all_steps, dropout), 0);
    nc.n_params = model_param_count(NV, NH, L);
    nc.params = malloc(nc.n_params * sizeof(float));
    nc.grads = calloc(nc.n_params, sizeof(float));
    nc.h0 = malloc((size_t)L * NB * NH * sizeof(float));
    nc.c0 = malloc((size_t)L * NB * NH * sizeof(float));
    rng r;
    rng_seed(&r, 3 + (uint64_t)L * 10 + (uint64_t)all_steps);
    fill_uniform(nc.params, nc.n_params, 0.6f, &r);
    fill_uniform(nc.h0, (size_t)L * NB * NH, 0.5f, &r);
    fill_uniform(nc.c0, (size_t)L * NB * NH, 0.5f, &r);
    model_params_point(&nc.p, nc.params, NV, NH, L);
    model_params_point(&nc.g, nc.grads, NV, NH, L);
    for (int i = 0; i < NT * NB; i++) {
        nc.ids[i] = (int)rng_below(&r, NV);
        nc.targets[i] = (int)rng_below(&r, NV);
    }
    net_loss(&nc);
    net_backward(&nc.n, &nc.g, &nc.p);
    float *dh0 = malloc((size_t)L * NB * NH * sizeof(float)),
          *dc0 = malloc((size_t)L * NB * NH * sizeof(float));
    memcpy(dh0, nc.n.dh0, (size_t)L * NB * NH * sizeof(float));
    memcpy(dc0, nc.n.dc0, (size_t)L * NB * NH * sizeof(float));

    const char *names[] = {"w_ih", "w_hh", "b_ih", "b_hh"};
    for (int l = 0; l < L; l++) {
        size_t sizes[] = {(size_t)4 * NH * (l ? NH : NV), 4 * NH * NH, 4 * NH, 4 * NH};
        float *pv[] = {nc.p.w_ih[l], nc.p.w_hh[l], nc.p.b_ih[l], nc.p.b_hh[l]};
        float *gv[] = {nc.g.w_ih[l], nc.g.w_hh[l], nc.g.b_ih[l], nc.g.b_hh[l]};
        for (int k = 0; k < 4; k++) {
            char name[32];
            snprintf(name, sizeof name, "%s_l%d", names[k], l);
            check_net_values(&nc, pv[k], gv[k], sizes[k], name);
        }
        char name[32];
        snprintf(name, sizeof name, "h0_l%d", l);
        check_net_values(&nc, nc.h0 + l * NB * NH, dh0 + l * NB * NH, NB * NH, name);
        snprintf(name, sizeof name, "c0_l%d", l);
        check_net_values(&nc, nc.c0 + l * NB * NH, dc0 + l * NB * NH, NB * NH, name);
    }
    check_net_values(&nc, nc.p.fc_w, nc.g.fc_w, NV * NH, "fc_w");
    check_net_values(&nc, nc.p.fc_b, nc.g.fc_b, NV, "fc_b");

    /* Accumulation contract: a second backward without zeroing doubles every gradient (exactly,
     * but for float rounding where a gradient is a sum of several terms, as scatter-adds are). */
    float *once = malloc(nc.n_params * sizeof(float));
    memcpy(once, nc.grads, nc.n_params * sizeof(float));
    net_loss(&nc);
    net_backward(&nc.n, &nc.g, &nc.p);
    for (size_t i = 0; i < nc.n_params; i++)
        ASSERT_NEAR(nc.grads[i], 2 * once[i], 1e-5 * fabs(once[i]) + 1e-12);

    free(once);
    free(dh0);
    free(dc0);
    free(nc.params);
    free(nc.grads);
    free(nc.h0);
    free(nc.c0);
    net_deinit(&nc.n);
}

/* Forward and backward of a 2-layer network, wide enough for full vectors and a remainder, at
 * every SIMD level: the loss and every gradient bit-identical. Large weights drive some gates to
 * exp's clamp (preactivations past +-88), where denormals would appear without the flush. */
static void test_simd_levels(void)
{
    enum { V = 37, H = 40, L = 2, T = 5, B = 3 };
    size_t n_params = model_param_count(V, H, L);
    float *params = malloc(n_params * sizeof(float));
    float *want = calloc(n_params, sizeof(float)), *got = calloc(n_params, sizeof(float));
    int ids[T * B], targets[T * B];
    ASSERT(params && want && got);
    rng r;
    rng_seed(&r, 11);
    fill_uniform(params, n_params, 8.0f, &r);
    for (int i = 0; i < T * B; i++) {
        ids[i] = (int)rng_below(&r, V);
        targets[i] = (int)rng_below(&r, V);
    }
    model_params p, g;
    model_params_point(&p, params, V, H, L);
    double want_loss = 0;
    for (int level = SIMD_AVX512; level >= SIMD_BASELINE; level--) {
        int used = simd_cap(level);
        net n;
        ASSERT_EQ_INT(net_init(&n, V, H, L, B, T, 1, 0.0f), 0);
        net_zero_state(&n);
        float *grads = level == SIMD_AVX512 ? want : got;
        memset(grads, 0, n_params * sizeof(float));
        model_params_point(&g, grads, V, H, L);
        double loss = net_forward(&n, &p, ids, targets, B, T, NULL);
        net_backward(&n, &g, &p);
        net_deinit(&n);
        if (level == SIMD_AVX512) {
            want_loss = loss;
            continue;
        }
        printf("  simd %s: loss %.9g\n", simd_name(used), loss);
        if (loss != want_loss || memcmp(got, want, n_params * sizeof(float)) != 0)
            TEST_FAIL("SIMD level %s gives other bits than the machine's level", simd_name(used));
    }
    simd_cap(SIMD_AVX512);
    free(params), free(want), free(got);
}

int main(void)
{
    test_simd_levels();
    test_mm();
    test_layer();
    for (int L = 1; L <= 2; L++)
        for (int all = 0; all <= 1; all++)
            test_net(L, all, 0.0f);
    test_net(2, 1, 0.3f);
    test_net(3, 0, 0.5f);
    printf("test_grad: ok\n");
    return 0;
}
