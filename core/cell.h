/* cell: the LSTM cell's forward arithmetic for one unit, written once for training (lstm.c) and
 * generation (infer.c) so both compute the same bits from the same preactivations.
 *   i, f, o = sigmoid(G_i, G_f, G_o);  g = tanh(G_g);  c = f * c_prev + i * g;  h = o * tanh(c)
 * Inline, so each SIMD clone of a caller gets its own vectorised copy. */
#ifndef CORE_CELL_H
#define CORE_CELL_H

#include "mathfn.h"

/* gi..go: preactivations on entry, activations on return; writes c, h and tanh(c). */
static inline __attribute__((always_inline)) void
lstm_cell(float *gi, float *gf, float *gg, float *go, float c_prev, float *c, float *h,
          float *tanh_c)
{
    float i = mathfn_sigmoid(*gi), f = mathfn_sigmoid(*gf);
    float g = mathfn_tanh(*gg), o = mathfn_sigmoid(*go);
    float cv = fmaf(f, c_prev, i * g);
    float t = mathfn_tanh(cv);
    *gi = i, *gf = f, *gg = g, *go = o;
    *c = cv;
    *h = o * t;
    *tanh_c = t;
}

#endif
