/* dpnet: shards of a batch on a thread pool, and the weighted gradient reduction. */
#include "dpnet.h"

#include "err.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* Shard s of P over n rows: [n*s/P, n*(s+1)/P), so sizes differ by at most one. */
static void shard_rows(int n, int P, int s, int *row0, int *count)
{
    *row0 = (int)((long long)n * s / P);
    *count = (int)((long long)n * (s + 1) / P) - *row0;
}

int dpnet_init(dpnet *d, int threads, int V, int H, int L, int B, int T, int loss_all_steps,
               float dropout, size_t n_params)
{
    memset(d, 0, sizeof *d);
    int P = threads < 1 ? 1 : threads;
    P = P > B ? B : P;
    P = P > DPNET_MAX_SHARDS ? DPNET_MAX_SHARDS : P;
    d->P = P, d->V = V, d->H = H, d->L = L, d->B = B, d->T = T;
    d->loss_all_steps = loss_all_steps;
    d->n_params = n_params;
    int rc = pool_new(&d->workers, P);
    if (rc)
        return rc;
    for (int s = 0; s < P; s++) {
        dp_shard *sh = &d->shard[s];
        int row0, cap;
        shard_rows(B, P, s, &row0, &cap);
        rc = net_init(&sh->n, V, H, L, cap, T, loss_all_steps, dropout);
        if (rc)
            goto fail;
        size_t rows = loss_all_steps ? (size_t)T * cap : (size_t)cap;
        sh->ids = malloc((size_t)T * cap * sizeof *sh->ids);
        sh->targets = malloc(rows * sizeof *sh->targets);
        /* shard 0 writes straight into the caller's gradient */
        sh->grads = s == 0 ? NULL : malloc(n_params * sizeof *sh->grads);
        if (!sh->ids || !sh->targets || (s > 0 && !sh->grads)) {
            rc = CORE_ENOMEM;
            goto fail;
        }
        if (sh->grads)
            model_params_point(&sh->g, sh->grads, V, H, L);
    }
    if (P > 1)
        openblas_set_num_threads(1); /* the threads are ours; BLAS runs inside each */
    return 0;
fail:
    dpnet_deinit(d);
    return rc;
}

void dpnet_deinit(dpnet *d)
{
    pool_free(d->workers);
    for (int s = 0; s < DPNET_MAX_SHARDS; s++) {
        dp_shard *sh = &d->shard[s];
        net_deinit(&sh->n);
        free(sh->grads);
        free(sh->ids);
        free(sh->targets);
    }
    memset(d, 0, sizeof *d);
}

static void shard_job(void *ctx, int s)
{
    dpnet *d = ctx;
    dp_shard *sh = &d->shard[s];
    if (sh->b == 0)
        return;
    int b = d->b, t = d->t;
    for (int tt = 0; tt < t; tt++)
        memcpy(sh->ids + (size_t)tt * sh->b, d->ids + (size_t)tt * b + sh->row0,
               (size_t)sh->b * sizeof *sh->ids);
    if (d->loss_all_steps) {
        for (int tt = 0; tt < t; tt++)
            memcpy(sh->targets + (size_t)tt * sh->b, d->targets + (size_t)tt * b + sh->row0,
                   (size_t)sh->b * sizeof *sh->targets);
    } else {
        memcpy(sh->targets, d->targets + sh->row0, (size_t)sh->b * sizeof *sh->targets);
    }
    rng r;
    rng_seed(&r, d->drop_seed + (uint64_t)s * 0x9E3779B97F4A7C15ull);
    sh->loss =
        net_forward(&sh->n, d->p, sh->ids, sh->targets, sh->b, t, d->use_dropout ? &r : NULL);
    if (!d->grads_out)
        return;
    model_params g;
    if (s == 0) {
        model_params_point(&g, d->grads_out, d->V, d->H, d->L);
        memset(d->grads_out, 0, d->n_params * sizeof(float));
    } else {
        g = sh->g;
        memset(sh->grads, 0, d->n_params * sizeof(float));
    }
    net_backward(&sh->n, &g, d->p);
}

/* grads_out = sum over shards of weight_s * grads_s, each worker summing one slice of the block. */
static void reduce_job(void *ctx, int w)
{
    dpnet *d = ctx;
    size_t lo = d->n_params * (size_t)w / (size_t)d->P,
           hi = d->n_params * (size_t)(w + 1) / (size_t)d->P;
    float *out = d->grads_out;
    float w0 = (float)d->shard[0].weight;
    for (size_t i = lo; i < hi; i++)
        out[i] *= w0;
    for (int s = 1; s < d->P; s++) {
        const dp_shard *sh = &d->shard[s];
        if (sh->b == 0)
            continue;
        float ws = (float)sh->weight;
        for (size_t i = lo; i < hi; i++)
            out[i] += ws * sh->grads[i];
    }
}

double dpnet_step(dpnet *d, const model_params *p, const int *ids, const int *targets, int b,
                  int t, int use_dropout, uint64_t drop_seed, float *grads_out)
{
    d->p = p, d->ids = ids, d->targets = targets, d->b = b, d->t = t;
    d->use_dropout = use_dropout, d->drop_seed = drop_seed, d->grads_out = grads_out;
    for (int s = 0; s < d->P; s++)
        shard_rows(b, d->P, s, &d->shard[s].row0, &d->shard[s].b);
    pool_run(d->workers, shard_job, d);
    /* Each shard's loss is a mean over its own rows; the batch mean weights them by row count
     * (with loss_all_steps every row has t predictions, so rows are the right weights too). */
    double loss = 0;
    for (int s = 0; s < d->P; s++) {
        dp_shard *sh = &d->shard[s];
        sh->weight = (double)sh->b / b;
        loss += sh->b ? sh->loss * sh->weight : 0.0;
    }
    if (grads_out && d->P > 1)
        pool_run(d->workers, reduce_job, d);
    return loss;
}

void dpnet_zero_state(dpnet *d)
{
    for (int s = 0; s < d->P; s++)
        net_zero_state(&d->shard[s].n);
}

void dpnet_carry_state(dpnet *d)
{
    for (int s = 0; s < d->P; s++)
        if (d->shard[s].b > 0)
            net_carry_state(&d->shard[s].n);
}

static void copy_state(dpnet *d, float *h, float *c, const float *hin, const float *cin)
{
    size_t H = (size_t)d->H;
    for (int s = 0; s < d->P; s++) {
        int row0, cap;
        shard_rows(d->B, d->P, s, &row0, &cap);
        for (int l = 0; l < d->L; l++) {
            float *sh_h = net_state_h(&d->shard[s].n, l), *sh_c = net_state_c(&d->shard[s].n, l);
            size_t at = ((size_t)l * d->B + row0) * H, n = (size_t)cap * H;
            if (h) {
                memcpy(h + at, sh_h, n * sizeof *h);
                memcpy(c + at, sh_c, n * sizeof *c);
            } else {
                memcpy(sh_h, hin + at, n * sizeof *sh_h);
                memcpy(sh_c, cin + at, n * sizeof *sh_c);
            }
        }
    }
}

void dpnet_get_state(dpnet *d, float *h, float *c) { copy_state(d, h, c, NULL, NULL); }
void dpnet_set_state(dpnet *d, const float *h, const float *c) { copy_state(d, NULL, NULL, h, c); }
