/* infer: one stream's run state and the single-character forward step used by sampling and
 * scoring. The model is read-only here; each stream owns an infer_state, so any number of
 * streams can share one model across threads. One stream is matrix-vector work (sgemv). */
#ifndef CORE_INFER_H
#define CORE_INFER_H

#include "model.h"

typedef struct infer_state {
    int L, H, V;
    float *h;      /* (L, H) hidden state after the last step */
    float *c;      /* (L, H) cell state after the last step */
    float *gates;  /* (4H) scratch */
    float *tanh_c; /* (H) scratch */
    float *c_prev; /* (H) scratch */
    float *logits; /* (V) next-character logits after the last step */
} infer_state;

/* Allocates state for m, set to the zero state. */
int infer_state_init(infer_state *s, const model *m);
/* Releases s; safe on a zeroed or partly initialised state. */
void infer_state_deinit(infer_state *s);
/* Back to the zero state (h = c = 0); logits are left as they were. */
void infer_state_reset(infer_state *s);

/* Feeds character index id (0 <= id < V) through every layer and the output layer: updates h and c
 * and leaves the next-character logits in s->logits. */
void infer_step(infer_state *s, const model *m, int id);

#endif
