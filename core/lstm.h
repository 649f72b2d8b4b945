/* lstm: one LSTM layer over T steps of a batch of B sequences, forward and backward (BPTT).
 * Math as PyTorch's nn.LSTM, gate order i, f, g, o:
 *   G = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh;  i, f, o = sigmoid(G_i, G_f, G_o), g = tanh(G_g)
 *   c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
 * Layer 0 takes character indices (its W_ih is held as (V, 4H), so W_ih x is a row lookup);
 * layers above take the previous layer's outputs (T, B, H). Backward accumulates into gradients
 * with += and never zeroes (the trainer zeroes once per step). */
#ifndef CORE_LSTM_H
#define CORE_LSTM_H

#include "bimm.h"

#include <stddef.h>

/* What forward keeps for backward, for one layer. h and c hold T+1 steps: index 0 is the initial
 * state (the caller fills it), index t+1 the state after step t, so the layer's output sequence
 * is the contiguous (T, B, H) block at h + B*H. */
typedef struct lstm_cache {
    float *gates;  /* (T, B, 4H) activations i, f, g, o */
    float *h;      /* (T+1, B, H) */
    float *c;      /* (T+1, B, H) */
    float *tanh_c; /* (T, B, H) */
    /* W_hh packed for the per-step products (bimm.h), which for the few rows of a step are
     * faster than OpenBLAS's AVX2 kernels (lstm.c has the figures): w_hh_t (K = H by 4H) for
     * gates += h W_hh^T and w_hh (K = 4H by H) for dh = dgates W_hh. Refilled by every forward.
     * No panels (H not a multiple of BIMM_NR), no vector kernel, or AVX-512 at 32 rows or more:
     * the steps use mm. */
    bimm_matrix w_hh_t, w_hh;
    int packed; /* the last forward filled them, so its backward uses them */
} lstm_cache;

/* Allocates the packed W_hh where H allows it (the arrays above are the caller's). CORE_ENOMEM on
 * failure. lstm_cache_free_packed frees them; safe on a zeroed cache. */
int lstm_cache_init_packed(lstm_cache *k, int H);
void lstm_cache_free_packed(lstm_cache *k);

/* Gate nonlinearities and the cell update for B rows: gates (B, 4H) holds preactivations on entry
 * and activations on return; writes c, h and tanh_c (B, H). No output may alias an input. */
void lstm_gates_forward(float *h, float *c, float *gates, const float *c_prev, float *tanh_c,
                        int B, int H);

/* Forward over T steps. Layer 0: ids (T, B) in [0, in) and w_ih (in, 4H); otherwise x (T, B, in)
 * and w_ih (4H, in). k->h[0] and k->c[0] must hold the initial state. */
void lstm_forward(lstm_cache *k, const int *ids, const float *x, const float *w_ih,
                  const float *w_hh, const float *b_ih, const float *b_hh, int T, int B, int in,
                  int H);

/* Backward over T steps, walking time in reverse.
 * dh (T, B, H): gradient of the loss w.r.t. the layer's outputs; it is used as scratch and
 * holds garbage on return. dgates (T, B, 4H): scratch. Accumulates (+=) into dw_ih (same layout
 * as w_ih), dw_hh, db_ih, db_hh. If dx is not NULL (layers above 0), writes (=) the gradient
 * w.r.t. x (T, B, in). dh0 and dc0 (B, H) hold on entry the gradient w.r.t. the final state
 * (zeros: nothing flows back from after the last step) and on return w.r.t. the initial one. */
void lstm_backward(float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *dx, float *dh0,
                   float *dc0, float *dh, float *dgates, const lstm_cache *k, const int *ids,
                   const float *x, const float *w_ih, const float *w_hh, int T, int B, int in,
                   int H);

#endif
