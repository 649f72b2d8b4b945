/* test_dpnet: sharding a batch over P workers gives the same loss and gradient as one worker
 * (up to float summation order), for both regimes, uneven shards and a partial batch; and the
 * carried state moves between shards and (L, B, H) arrays row for row. */
#include "test.h"

#include "dpnet.h"
#include "model.h"
#include "rng.h"

enum { V = 7, H = 6, L = 2, B = 5, T = 4 };

static void run(int all_steps, int b, int P, const float *params, size_t n, const int *ids,
                const int *targets, double *loss, float *grads, float *state)
{
    model_params p;
    model_params_point(&p, (float *)params, V, H, L);
    dpnet d;
    ASSERT_EQ_INT(dpnet_init(&d, P, V, H, L, B, T, all_steps, 0.0f, n), 0);
    ASSERT_EQ_INT(d.P, P);
    dpnet_zero_state(&d);
    *loss = dpnet_step(&d, &p, ids, targets, b, T, 0, 0, grads);
    if (state && b == B) {
        /* carry, then read the state out through the (L, B, H) view and back in */
        dpnet_carry_state(&d);
        dpnet_get_state(&d, state, state + L * B * H);
        dpnet_zero_state(&d);
        dpnet_set_state(&d, state, state + L * B * H);
        float again[2 * L * B * H];
        dpnet_get_state(&d, again, again + L * B * H);
        ASSERT(memcmp(again, state, sizeof again) == 0);
    }
    dpnet_deinit(&d);
}

static void test_equivalence(int all_steps, int b)
{
    size_t n = model_param_count(V, H, L);
    float *params = malloc(n * sizeof *params), *g1 = malloc(n * sizeof *g1),
          *gp = malloc(n * sizeof *gp);
    rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++)
        params[i] = (float)(rng_uniform(&r) - 0.5);
    int ids[T * B], targets[T * B];
    for (int i = 0; i < T * b; i++) {
        ids[i] = (int)rng_below(&r, V);
        targets[i] = (int)rng_below(&r, V);
    }
    double loss1, lossp;
    float s1[2 * L * B * H], sp[2 * L * B * H];
    run(all_steps, b, 1, params, n, ids, targets, &loss1, g1, s1);
    for (int P = 2; P <= 3; P++) {
        run(all_steps, b, P, params, n, ids, targets, &lossp, gp, sp);
        ASSERT_REL(lossp, loss1, 1e-6);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            ASSERT_NEAR(gp[i], g1[i], 1e-6 + 1e-5 * fabs(g1[i]));
            worst = fmax(worst, fabs(gp[i] - g1[i]));
        }
        if (b == B)
            for (int i = 0; i < 2 * L * B * H; i++)
                ASSERT_NEAR(sp[i], s1[i], 1e-6);
        printf("  %s b=%d P=%d: loss %.7f vs %.7f, max |grad diff| %.2e\n",
               all_steps ? "sequence" : "window", b, P, lossp, loss1, worst);
    }
    free(params);
    free(g1);
    free(gp);
}

int main(void)
{
    for (int all = 0; all <= 1; all++) {
        test_equivalence(all, B);
        test_equivalence(all, 3); /* a partial last batch: shards of 1, 1, 1 or 2, 1 */
    }
    printf("test_dpnet: ok\n");
    return 0;
}
