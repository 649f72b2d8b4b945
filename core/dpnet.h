/* dpnet: data-parallel training of one batch over P worker threads. The batch's B rows are split
 * into P contiguous shards; each worker runs net_forward/net_backward on its shard with its own
 * workspace and gradient buffer (single-threaded BLAS, so the small per-step products do not pay
 * for thread synchronisation), and the shard gradients are summed, weighted by each shard's share
 * of the predictions, into the batch-mean gradient. With P = 1 it is exactly net.h. Results
 * depend on P (float sums in another order), never on timing. */
#ifndef CORE_DPNET_H
#define CORE_DPNET_H

#include "model.h"
#include "net.h"
#include "pool.h"

#include <stdint.h>

#define DPNET_MAX_SHARDS 16

typedef struct dp_shard {
    net n;
    float *grads;    /* (n_params) */
    model_params g;  /* views into grads */
    int *ids;        /* (T, b) this shard's rows, time-major */
    int *targets;    /* (T, b) or (b) */
    int row0, b;     /* rows [row0, row0 + b) of the last batch */
    double loss;     /* mean loss of the last forward over this shard's predictions */
    double weight;   /* this shard's share of the batch's predictions */
} dp_shard;

typedef struct dpnet {
    int P, V, H, L, B, T;
    int loss_all_steps;
    size_t n_params;
    pool *workers;
    dp_shard shard[DPNET_MAX_SHARDS];
    /* the current job, read by the workers */
    const model_params *p;
    const int *ids, *targets;
    int b, t, backward;
    uint64_t drop_seed;
    int use_dropout;
    float *grads_out;
} dpnet;

/* A workspace for batches of up to B rows of up to T steps over P = min(threads, B) shards.
 * Sets OpenBLAS to one thread when P > 1. */
int dpnet_init(dpnet *d, int threads, int V, int H, int L, int B, int T, int loss_all_steps,
               float dropout, size_t n_params);
void dpnet_deinit(dpnet *d);

/* Forward (and, with grads_out, backward) of b rows of t steps: ids (t, b), targets (t, b) or (b),
 * as net_forward. With dropout, shard s draws its masks from a generator seeded by drop_seed and
 * s. grads_out (n_params) receives (=) the batch-mean gradient. Returns the batch-mean loss. */
double dpnet_step(dpnet *d, const model_params *p, const int *ids, const int *targets, int b,
                  int t, int use_dropout, uint64_t drop_seed, float *grads_out);

/* Initial state of the next step: zero, or the last step's final state (same rows, so the
 * sequence regime's streams keep their shard). */
void dpnet_zero_state(dpnet *d);
void dpnet_carry_state(dpnet *d);
/* Copies the initial state of the next step out of / into (L, B, H) arrays, row by row. */
void dpnet_get_state(dpnet *d, float *h, float *c);
void dpnet_set_state(dpnet *d, const float *h, const float *c);

#endif
