/* infer: stepping character streams through a model, one character each, as one batch. Every
 * stream owns its run state (infer_state); a step gathers the states of B streams, runs one
 * batch-invariant matrix product per layer (bimm.h) and the output layer for the streams that
 * want next-character logits, and scatters the new states back. A stream's bits do not depend on
 * which other streams share its step, how many there are, or how many threads split it: a lone
 * stream (B = 1) runs the very same code. */
#ifndef CORE_INFER_H
#define CORE_INFER_H

#include "bimm.h"
#include "model.h"
#include "pool.h"

/* A model's weights packed for generation: each layer's [W_ih | W_hh] as one product whose
 * columns are grouped 8 hidden units at a time (their i, f, g, o preactivations side by side, so
 * whoever computes a group's columns can finish its cell update at once), and the output layer.
 * Read-only once built: share it between any number of threads. It borrows m (layer 0's input
 * weights are a row lookup into m), which must outlive it. */
typedef struct infer_weights {
    const model *m;
    int L, H, V;
    int Gp;                /* packed gate columns: 32 per group of 8 units, padded */
    int Vp;                /* packed output columns: V padded to a multiple of BIMM_NR */
    int *gate_src;         /* (Gp) row of the 4H gate dimension for each packed column; -1 pad */
    bimm_matrix layer[MODEL_MAX_LAYERS]; /* K = H (layer 0: W_hh) or 2H ([W_ih | W_hh]) */
    float *bias[MODEL_MAX_LAYERS];       /* (Gp) b_ih + b_hh, packed order */
    bimm_matrix fc;        /* K = H, Vp columns */
    float *fc_bias;        /* (Vp) */
} infer_weights;

int infer_weights_new(infer_weights **out, const model *m);
/* infer_weights_free(NULL) is a no-op. */
void infer_weights_free(infer_weights *w);
/* Floating-point operations to step one stream with logits: the size of a row's work. */
double infer_row_flops(const infer_weights *w);

/* One stream's run state. */
typedef struct infer_state {
    int L, H, V;
    float *h;      /* (L, H) hidden state after the last step */
    float *c;      /* (L, H) cell state after the last step */
    float *logits; /* (V) next-character logits after the last step that asked for them */
} infer_state;

/* Allocates state for m, set to the zero state. */
int infer_state_init(infer_state *s, const model *m);
/* Releases s; safe on a zeroed or partly initialised state. */
void infer_state_deinit(infer_state *s);
/* Back to the zero state (h = c = 0); logits are left as they were. */
void infer_state_reset(infer_state *s);
/* dst = src (h, c and logits); both for the same model. */
void infer_state_copy(infer_state *dst, const infer_state *src);
/* The zero state's logits: the output layer at h = 0, which is just its bias. */
void infer_zero_logits(float *logits, const model *m);

/* One stream in a step: its state, the character it reads, and whether it wants the logits. */
typedef struct infer_row {
    infer_state *st;
    int id;          /* 0 <= id < V */
    int want_logits; /* fill st->logits after this step */
} infer_row;

/* Scratch for steps of up to cap streams, split across up to threads workers. */
typedef struct infer_batch infer_batch;

/* A workspace for w (borrowed: it must outlive the batch). */
int infer_batch_new(infer_batch **out, const infer_weights *w, int cap, int threads);
/* A workspace that packs and owns m's weights itself: for one-off users (a CLI sample, an epoch's
 * samples, scoring). m must outlive it. */
int infer_batch_open(infer_batch **out, const model *m, int cap);
/* infer_batch_free(NULL) is a no-op. */
void infer_batch_free(infer_batch *b);

/* Steps B <= cap streams by one character each. With p (at most the threads the batch was made
 * for) the work is split across p's workers: by streams when the packed weights fit in a core's
 * L2 (512 KiB), by the columns of every product otherwise; with NULL, one thread. Either way each
 * stream gets the same bits. The rows' states must be distinct. */
void infer_batch_step(infer_batch *b, const infer_row *rows, int B, pool *p);

/* One stream, one character, logits wanted: infer_batch_step with B = 1 on one thread. */
void infer_step(infer_batch *b, infer_state *s, int id);

/* How many of max_threads workers a step of B streams should use: 1 below the size where
 * splitting costs more in synchronisation than it saves (measured with bench/bench_gen), else
 * max_threads. */
int infer_threads_for(const infer_weights *w, int B, int max_threads);

#endif
