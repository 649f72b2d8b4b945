/* bench_core: lstmgen's throughput on the book's workloads, one JSON line per measurement.
 *   train_window    the book's recipe: LSTM(128), windows of 60 every 3, batch 128, RMSprop
 *   train_sequence  the same network in the sequence regime: seq_len 100, batch 128, loss at
 *                   every step, state carried
 *   sample          one stream, stateful generation, for 1x128 and 2x512 models, on one
 *                   thread (sample_generate: the batch-invariant step with B = 1)
 * Training runs the same calls as train_run (dpnet_step over `threads` shards, optim_step) on
 * batches of the real corpus, after a warm-up. Not a test: bench/run.sh prints it beside
 * PyTorch's. usage: bench_core [CORPUS] [SECONDS] [train|sample] (default: both groups) */
#include "corpus.h"
#include "infer.h"
#include "model.h"
#include "dpnet.h"
#include "mm.h"
#include "optim.h"
#include "rng.h"
#include "sample.h"
#include "simd.h"

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

/* Runs training batches for about `seconds` and returns batches per second. */
static double train_rate(const corpus *c, int threads, int regime, int H, int B, int T, int step,
                         double seconds)
{
    model_config cfg = {.L = 1, .H = H, .regime = regime, .maxlen = T, .step = step, .seq_len = T};
    model *m;
    if (model_new(&m, &cfg, &c->voc, NULL, 0) || model_init_weights(m, 1))
        exit(1);
    float *grads = calloc(m->n_params, sizeof *grads);
    optim opt;
    dpnet n;
    int all = regime == REGIME_SEQUENCE;
    if (!grads || optim_init(&opt, OPTIM_RMSPROP, m->n_params) ||
        dpnet_init(&n, threads, m->V, H, 1, B, T, all, 0.0f, m->n_params))
        exit(1);
    int *ids = malloc((size_t)T * B * sizeof *ids),
        *targets = malloc((size_t)T * B * sizeof *targets);
    rng r;
    rng_seed(&r, 7);
    size_t stream = c->n_train / (size_t)B;
    double start = 0;
    long long done = 0;
    for (long long k = 0;; k++) {
        if (k == 3)
            start = now(); /* warm-up: page faults, OpenBLAS thread start */
        for (int b = 0; b < B; b++) {
            size_t s =
                all ? (size_t)b * stream + (size_t)(k * T) % (stream - T - 1)
                    : (size_t)rng_below(&r, (c->n_train - (size_t)T - 1) / (size_t)step) * step;
            for (int t = 0; t < T; t++) {
                ids[t * B + b] = c->ids[s + t];
                if (all)
                    targets[t * B + b] = c->ids[s + t + 1];
            }
            if (!all)
                targets[b] = c->ids[s + T];
        }
        if (!all || k == 0)
            dpnet_zero_state(&n);
        dpnet_step(&n, &m->p, ids, targets, B, T, 0, 0, grads);
        optim_step(&opt, m->params, grads, 0.01f);
        if (all)
            dpnet_carry_state(&n);
        if (k >= 3) {
            done++;
            if (now() - start >= seconds)
                break;
        }
    }
    double rate = done / (now() - start);
    free(ids);
    free(targets);
    dpnet_deinit(&n);
    optim_deinit(&opt);
    free(grads);
    model_free(m);
    return rate;
}

/* GFLOP/s of one thread on the training step's three product shapes for a shard of Bs rows,
 * weighted by how often each runs: the recurrent forward and dh products every step (Bs x 4H x H),
 * and the weight gradient once per batch over all T steps (4H x H x T*Bs). */
static double sgemm_gflops(int Bs, int H, int T, double seconds)
{
    int G = 4 * H;
    float *a = calloc((size_t)T * Bs * G, sizeof *a), *w = calloc((size_t)G * H, sizeof *w);
    float *h = calloc((size_t)T * Bs * H, sizeof *h), *c = calloc((size_t)T * Bs * G, sizeof *c);
    double flops = 0, t0 = now();
    do {
        for (int t = 0; t < T; t++) {
            mm(c + (size_t)t * Bs * G, h + (size_t)t * Bs * H, w, Bs, G, H, MM_N, MM_T, 1.0f);
            mm(h + (size_t)t * Bs * H, c + (size_t)t * Bs * G, w, Bs, H, G, MM_N, MM_N, 0.0f);
        }
        mm(w, a, h, G, H, T * Bs, MM_T, MM_N, 1.0f);
        flops += 3.0 * 2.0 * T * Bs * (double)G * H;
    } while (now() - t0 < seconds);
    double rate = flops / (now() - t0) / 1e9;
    free(a), free(w), free(h), free(c);
    return rate;
}

/* Characters per second one thread would sample if a step were its matrix products alone: the
 * generation kernel (bimm, batch-invariant) at B = 1 on an L x H model's packed weights. */
static double products_rate(const corpus *c, int L, int H, double seconds)
{
    model_config cfg = {
        .L = L, .H = H, .regime = REGIME_SEQUENCE, .maxlen = 60, .step = 3, .seq_len = 100};
    model *m;
    infer_weights *w;
    if (model_new(&m, &cfg, &c->voc, NULL, 0) || infer_weights_new(&w, m))
        exit(1);
    float *x = calloc((size_t)2 * H, sizeof *x), *out = calloc((size_t)w->Gp + w->Vp, sizeof *out);
    long steps = 0;
    double t0 = now();
    do {
        for (int i = 0; i < 100; i++, steps++) {
            for (int l = 0; l < L; l++)
                bimm_run(out, (size_t)w->Gp, x, (size_t)w->layer[l].K, &w->layer[l], 1, 0, w->Gp);
            bimm_run(out, (size_t)w->Vp, x, (size_t)H, &w->fc, 1, 0, w->Vp);
        }
    } while (now() - t0 < seconds);
    double rate = (double)steps / (now() - t0);
    free(x), free(out);
    infer_weights_free(w);
    model_free(m);
    return rate;
}

static double sample_rate(const corpus *c, int L, int H, int chars)
{
    model_config cfg = {
        .L = L, .H = H, .regime = REGIME_SEQUENCE, .maxlen = 60, .step = 3, .seq_len = 100};
    model *m;
    if (model_new(&m, &cfg, &c->voc, NULL, 0) || model_init_weights(m, 1))
        exit(1);
    sample_request req = {.seed_text = "the ",
                          .seed_len = 4,
                          .length = chars / 10,
                          .temperature = 1.0,
                          .top_p = 1.0,
                          .seed = 1,
                          .mode = SAMPLE_MODE_STATEFUL};
    sample_result res;
    if (sample_generate(&res, m, &req, NULL, 0)) /* warm-up */
        exit(1);
    sample_result_deinit(&res);
    req.length = chars;
    double t0 = now();
    if (sample_generate(&res, m, &req, NULL, 0))
        exit(1);
    double rate = (double)res.generated_chars / (now() - t0);
    sample_result_deinit(&res);
    model_free(m);
    return rate;
}

int main(int argc, char **argv)
{
    mm_choose_blas_kernels(argv); /* as lstmgen does */
    const char *path = argc > 1 ? argv[1] : "../shared/corpora/nietzsche.txt";
    double seconds = argc > 2 ? atof(argv[2]) : 10;
    const char *only = argc > 3 ? argv[3] : NULL;
    int train = !only || strcmp(only, "train") == 0, sample = !only || strcmp(only, "sample") == 0;
    if (!train && !sample) {
        fprintf(stderr, "bench_core: the group is train or sample, not %s\n", only);
        return 2;
    }
    char err[256], *text;
    size_t len;
    corpus c;
    if (corpus_read_file(&text, &len, path, err, sizeof err) ||
        corpus_init(&c, text, len, 1, 0.0, NULL, err, sizeof err)) {
        fprintf(stderr, "bench_core: %s\n", err);
        return 1;
    }
    free(text);
    /* the kernels in use, so that run.sh gives PyTorch's OpenBLAS the same */
    printf("{\"bench\":\"kernels\",\"impl\":\"lstmgen\",\"simd\":\"%s\",\"blas\":\"%s\"}\n",
           simd_name(simd_level()), mm_blas_core());
    size_t windows = (c.n_train - 60 + 2) / 3;
    /* The arithmetic limit: the step's matrix products at the measured BLAS rate. Per sequence
     * the forward, dh and dW products each cost 2 T 4H H FLOPs (the one-hot input is a lookup). */
    openblas_set_num_threads(1);
    double seq_flops = 3.0 * 2.0 * 60 * 4 * 128 * 128;
    for (int threads = 1; train && threads <= 2; threads++) {
        double rate = sgemm_gflops(128 / threads, 128, 60, 2.0) * threads;
        printf(
            "{\"bench\":\"limit_window\",\"impl\":\"lstmgen\",\"threads\":%d,\"sgemm_gflops\":%.1f,"
            "\"seqs_per_sec\":%.1f,\"epoch_seconds\":%.1f}\n",
            threads, rate, rate * 1e9 / seq_flops, windows * seq_flops / (rate * 1e9));
    }
    if (sample) {
        printf("{\"bench\":\"limit_sample_1x128\",\"impl\":\"lstmgen\",\"threads\":1,"
               "\"chars_per_sec\":%.1f}\n", products_rate(&c, 1, 128, 1.0));
        printf("{\"bench\":\"limit_sample_2x512\",\"impl\":\"lstmgen\",\"threads\":1,"
               "\"chars_per_sec\":%.1f}\n", products_rate(&c, 2, 512, 1.0));
    }
    fflush(stdout);
    for (int threads = 1; train && threads <= 2; threads++) {
        openblas_set_num_threads(1);
        double bps = train_rate(&c, threads, REGIME_WINDOW, 128, 128, 60, 3, seconds);
        printf(
            "{\"bench\":\"train_window\",\"impl\":\"lstmgen\",\"threads\":%d,\"seqs_per_sec\":%.1f,"
            "\"epoch_seconds\":%.1f}\n",
            threads, bps * 128, windows / (bps * 128));
        fflush(stdout);
        bps = train_rate(&c, threads, REGIME_SEQUENCE, 128, 128, 100, 1, seconds);
        printf("{\"bench\":\"train_sequence\",\"impl\":\"lstmgen\",\"threads\":%d,"
               "\"chars_per_sec\":%.1f}\n", threads, bps * 128 * 100);
        fflush(stdout);
    }
    if (sample) {
        printf("{\"bench\":\"sample_1x128\",\"impl\":\"lstmgen\",\"threads\":1,"
               "\"chars_per_sec\":%.1f}\n", sample_rate(&c, 1, 128, 1000000));
        printf("{\"bench\":\"sample_2x512\",\"impl\":\"lstmgen\",\"threads\":1,"
               "\"chars_per_sec\":%.1f}\n", sample_rate(&c, 2, 512, 50000));
    }
    corpus_deinit(&c);
    return 0;
}
