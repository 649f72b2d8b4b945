/* bench_gen: the batched generation step alone (no HTTP, no sampling): characters per second for
 * B streams of a model, on one thread and split across two, with the batch-invariant kernel
 * (bimm) and with OpenBLAS's sgemm/sgemv doing the same products, and the share of the matrix-
 * product limit (the products at the kernel's best measured rate). One JSON line per figure.
 * Not a test. Usage: bench_gen [SECONDS_PER_FIGURE] [baseline|avx2|avx512]
 * The "split" lines show where giving one step both threads starts to pay (infer_threads_for). */
#include "bimm.h"
#include "infer.h"
#include "model.h"
#include "pool.h"
#include "rng.h"
#include "simd.h"
#include "vocab.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static model *make_model(int L, int H, int V)
{
    uint32_t cps[256];
    for (int i = 0; i < V; i++)
        cps[i] = 0x100 + (uint32_t)i;
    vocab v = {0};
    model_config cfg = {.L = L, .H = H, .regime = REGIME_SEQUENCE, .maxlen = 60, .step = 3,
                        .seq_len = 100};
    model *m;
    if (vocab_init(&v, cps, V, NULL, 0) || model_new(&m, &cfg, &v, NULL, 0) ||
        model_init_weights(m, 1))
        exit(1);
    vocab_deinit(&v);
    return m;
}

/* Steps per second of B streams through infer_batch_step with `threads` workers. */
static double step_rate(const infer_weights *w, const model *m, int B, int threads,
                        double seconds)
{
    pool *p = NULL;
    infer_batch *b;
    if ((threads > 1 && pool_new(&p, threads)) || infer_batch_new(&b, w, B, threads))
        exit(1);
    if (p)
        pool_set_spin(p, 200);
    infer_state *st = calloc((size_t)B, sizeof *st);
    infer_row *rows = calloc((size_t)B, sizeof *rows);
    rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < B; i++) {
        if (infer_state_init(&st[i], m))
            exit(1);
        rows[i] = (infer_row){&st[i], (int)rng_below(&r, (uint64_t)m->V), 1};
    }
    long steps = 0;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 20; k++, steps++)
            infer_batch_step(b, rows, B, p);
    } while ((t = now() - t0) < seconds);
    for (int i = 0; i < B; i++)
        infer_state_deinit(&st[i]);
    free(st), free(rows);
    infer_batch_free(b);
    pool_free(p);
    return (double)steps / t;
}

/* The same products through OpenBLAS (sgemm; sgemv at B = 1), one thread: the step without
 * batch invariance, for comparison. Steps per second. */
static double blas_rate(const model *m, int B, double seconds)
{
    int H = m->cfg.H, G = 4 * H, V = m->V, L = m->cfg.L;
    float *x = calloc((size_t)B * H, sizeof *x), *g = calloc((size_t)B * G, sizeof *g);
    float *z = calloc((size_t)B * V, sizeof *z);
    long steps = 0;
    double t0 = now(), t;
    do {
        for (int l = 0; l < L; l++)
            for (int part = l == 0 ? 1 : 0; part < 2; part++) {
                const float *W = part ? m->p.w_hh[l] : m->p.w_ih[l];
                if (B == 1)
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, G, H, 1.0f, W, H, x, 1, 1.0f, g, 1);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f, x, H, W,
                                H, 1.0f, g, G);
            }
        if (B == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, V, H, 1.0f, m->p.fc_w, H, x, 1, 1.0f, z, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, V, H, 1.0f, x, H, m->p.fc_w,
                        H, 1.0f, z, V);
        steps++;
    } while ((t = now() - t0) < seconds);
    free(x), free(g), free(z);
    return (double)steps / t;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (argc > 2)
        simd_cap(simd_parse(argv[2]));
    openblas_set_num_threads(1);
    const struct {
        int L, H, V;
    } models[] = {{1, 128, 60}, {2, 384, 60}, {2, 512, 60}};
    const int batches[] = {1, 2, 4, 8, 16, 32, 64, 128};
    /* the limit: the kernel's own best rate, measured on the big model at a large batch */
    double peak = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        model *m = make_model(models[i].L, models[i].H, models[i].V);
        infer_weights *w;
        if (infer_weights_new(&w, m))
            return 1;
        double flops = infer_row_flops(w);
        for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
            int B = batches[k];
            double one = step_rate(w, m, B, 1, seconds), two = step_rate(w, m, B, 2, seconds);
            double blas = blas_rate(m, B, seconds);
            double gf1 = one * B * flops / 1e9;
            if (gf1 > peak)
                peak = gf1;
            printf("{\"bench\":\"step\",\"model\":\"%dx%d\",\"kernel\":\"%s\",\"B\":%d,"
                   "\"chars_per_sec_1\":%.0f,\"chars_per_sec_2\":%.0f,\"split_gain\":%.2f,"
                   "\"blas_chars_per_sec_1\":%.0f,\"vs_blas\":%.2f,\"gflops_1\":%.1f,"
                   "\"mflop_per_step\":%.2f,\"split\":%d}\n",
                   models[i].L, models[i].H, bimm_impl_name(), B, one * B, two * B, two / one,
                   blas * B, one / blas, gf1, B * flops / 1e6, infer_threads_for(w, B, 2));
            fflush(stdout);
        }
        infer_weights_free(w);
        model_free(m);
    }
    printf("{\"bench\":\"peak\",\"kernel\":\"%s\",\"gflops_1\":%.1f}\n", bimm_impl_name(), peak);
    return 0;
}
