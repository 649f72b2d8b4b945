/* net: the whole unrolled network for training: L stacked LSTM layers with dropout between them,
 * the output layer and the loss, forward and backward over a batch of B sequences of T steps.
 * All activations are allocated once for the largest B and T (net_init) and reused every step.
 * Two loss shapes: at every step (sequence regime) or at the last step only (window regime). */
#ifndef CORE_NET_H
#define CORE_NET_H

#include "lstm.h"
#include "model.h"
#include "rng.h"

typedef struct net {
    int V, H, L;
    int B, T;           /* capacity */
    int loss_all_steps; /* 1: targets (T, B); 0: targets (B), loss on the last step only */
    float dropout;
    int b, t;           /* shape of the last forward call */
    lstm_cache cache[MODEL_MAX_LAYERS];
    float *mask[MODEL_MAX_LAYERS];  /* (T, B, H) dropout scale on layer l's outputs, l < L-1 */
    float *x_in[MODEL_MAX_LAYERS];  /* (T, B, H) input to layer l > 0, after dropout */
    float *probs;    /* (T*B, V) or (B, V): logits, then probabilities */
    int *targets;    /* copy of the last targets */
    const int *ids;  /* borrowed (T, B) inputs of the last forward, valid until backward */
    float *dh;       /* (T, B, H) gradient w.r.t. a layer's outputs */
    float *dx;       /* (T, B, H) gradient w.r.t. a layer's inputs */
    float *dgates;   /* (T, B, 4H) */
    float *dh0;      /* (L, B, H) after backward: dL/d(initial h) per layer */
    float *dc0;      /* (L, B, H) after backward: dL/d(initial c) per layer */
    float *block;    /* the one allocation behind every buffer above */
} net;

/* Allocates a network workspace for batches of up to B sequences of up to T steps. */
int net_init(net *n, int V, int H, int L, int B, int T, int loss_all_steps, float dropout);
void net_deinit(net *n);

/* Initial state for the next forward: zero, or the final state of the last forward (truncated
 * BPTT carries it from one batch to the next; no gradient flows across the boundary). */
void net_zero_state(net *n);
void net_carry_state(net *n);
/* Pointers to layer l's initial h and c (B, H), for tests and checkpointing carried state. */
float *net_state_h(net *n, int l);
float *net_state_c(net *n, int l);

/* Forward pass of b <= B sequences of t <= T steps: ids (t, b), targets (t, b) or (b); a negative
 * target is ignored. drop_rng draws the dropout masks (NULL: dropout off, as at evaluation).
 * ids must stay valid until net_backward. Returns the mean loss in nats per predicted character. */
double net_forward(net *n, const model_params *p, const int *ids, const int *targets, int b, int t,
                   rng *drop_rng);

/* Backward pass of the last forward: accumulates (+=) parameter gradients into g (same layout as
 * p) and leaves dL/d(initial state) in n->dh0, n->dc0. */
void net_backward(net *n, model_params *g, const model_params *p);

#endif
