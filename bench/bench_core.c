/* bench_core: lstmgen's throughput on the book's workloads, one JSON line per measurement.
 *   train_window    the book's recipe: LSTM(128), windows of 60 every 3, batch 128, RMSprop
 *   train_sequence  the same network in the sequence regime: seq_len 100, batch 128, loss at
 *                   every step, state carried
 *   sample          one stream, stateful generation, for 1x128 and 2x512 models
 * Training runs the same calls as train_run (dpnet_step over `threads` shards, optim_step) on
 * batches of the real corpus, after a warm-up. Not a test: bench/run.sh prints it beside PyTorch's. */
#include "corpus.h"
#include "infer.h"
#include "model.h"
#include "dpnet.h"
#include "optim.h"
#include "rng.h"
#include "sample.h"

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
    int *ids = malloc((size_t)T * B * sizeof *ids), *targets = malloc((size_t)T * B * sizeof *targets);
    rng r;
    rng_seed(&r, 7);
    size_t stream = c->n_train / (size_t)B;
    double start = 0;
    long long done = 0;
    for (long long k = 0;; k++) {
        if (k == 3)
            start = now(); /* warm-up: page faults, OpenBLAS thread start */
        for (int b = 0; b < B; b++) {
            size_t s = all ? (size_t)b * stream + (size_t)(k * T) % (stream - T - 1)
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

static double sample_rate(const corpus *c, int L, int H, int chars)
{
    model_config cfg = {.L = L, .H = H, .regime = REGIME_SEQUENCE, .maxlen = 60, .step = 3, .seq_len = 100};
    model *m;
    if (model_new(&m, &cfg, &c->voc, NULL, 0) || model_init_weights(m, 1))
        exit(1);
    sample_request req = {.seed_text = "the ", .seed_len = 4, .length = chars / 10,
                          .temperature = 1.0, .top_p = 1.0, .seed = 1, .mode = SAMPLE_MODE_STATEFUL};
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
    const char *path = argc > 1 ? argv[1] : "../shared/corpora/nietzsche.txt";
    double seconds = argc > 2 ? atof(argv[2]) : 10;
    char err[256], *text;
    size_t len;
    corpus c;
    if (corpus_read_file(&text, &len, path, err, sizeof err) ||
        corpus_init(&c, text, len, 1, 0.0, NULL, err, sizeof err)) {
        fprintf(stderr, "bench_core: %s\n", err);
        return 1;
    }
    free(text);
    size_t windows = (c.n_train - 60 + 2) / 3;
    for (int threads = 1; threads <= 2; threads++) {
        openblas_set_num_threads(1);
        double bps = train_rate(&c, threads, REGIME_WINDOW, 128, 128, 60, 3, seconds);
        printf("{\"bench\":\"train_window\",\"impl\":\"lstmgen\",\"threads\":%d,\"seqs_per_sec\":%.1f,"
               "\"epoch_seconds\":%.1f}\n", threads, bps * 128, windows / (bps * 128));
        fflush(stdout);
        bps = train_rate(&c, threads, REGIME_SEQUENCE, 128, 128, 100, 1, seconds);
        printf("{\"bench\":\"train_sequence\",\"impl\":\"lstmgen\",\"threads\":%d,"
               "\"chars_per_sec\":%.1f}\n", threads, bps * 128 * 100);
        fflush(stdout);
    }
    openblas_set_num_threads(1); /* one stream is matrix-vector work: threads only add syncs */
    printf("{\"bench\":\"sample_1x128\",\"impl\":\"lstmgen\",\"threads\":1,\"chars_per_sec\":%.1f}\n",
           sample_rate(&c, 1, 128, 1000000));
    printf("{\"bench\":\"sample_2x512\",\"impl\":\"lstmgen\",\"threads\":1,\"chars_per_sec\":%.1f}\n",
           sample_rate(&c, 2, 512, 50000));
    corpus_deinit(&c);
    return 0;
}
