/* lstm: the LSTM layer's forward and backward passes over a whole unrolled sequence.
 * Per step only the recurrent product h_{t-1} W_hh^T is sequential; the input projection (layers
 * above 0) and the weight gradients are each one large sgemm over all T*B rows. */
#include "lstm.h"

#include "cell.h"
#include "err.h"
#include "mathfn.h"
#include "mm.h"
#include "simd.h"

#include <string.h>

/* One row of the gate update. restrict lets the compiler vectorise without alias checks, and
 * always_inline gives each SIMD clone of the caller its own vectorised copy. */
static inline __attribute__((always_inline)) void
gates_row_forward(float *restrict h, float *restrict c, float *restrict gi, float *restrict gf,
                  float *restrict gg, float *restrict go, const float *restrict c_prev,
                  float *restrict tanh_c, int H)
{
    for (int j = 0; j < H; j++)
        lstm_cell(&gi[j], &gf[j], &gg[j], &go[j], c_prev[j], &c[j], &h[j], &tanh_c[j]);
}

static inline __attribute__((always_inline)) void
lstm_gates_forward_body(float *h, float *c, float *gates, const float *c_prev, float *tanh_c,
                        int B, int H)
{
    for (int b = 0; b < B; b++) {
        float *g = gates + (size_t)b * 4 * H;
        size_t o = (size_t)b * H;
        gates_row_forward(h + o, c + o, g, g + H, g + 2 * H, g + 3 * H, c_prev + o, tanh_c + o, H);
    }
}
MATHFN_COPIES(lstm_gates_forward,
              (float *h, float *c, float *gates, const float *c_prev, float *tanh_c, int B, int H),
              (h, c, gates, c_prev, tanh_c, B, H))

void lstm_gates_forward(float *h, float *c, float *gates, const float *c_prev, float *tanh_c,
                        int B, int H)
{
    MATHFN_RUN(lstm_gates_forward, (h, c, gates, c_prev, tanh_c, B, H));
}

/* The cache's views at step t, shared by forward and backward so their offsets cannot disagree. */
typedef struct step_view {
    float *gates;        /* (B, 4H) */
    float *h_prev, *c_prev; /* (B, H) state before the step */
    float *h, *c;        /* (B, H) state after it */
    float *tanh_c;       /* (B, H) */
} step_view;

static step_view step_at(const lstm_cache *k, int t, int B, int H)
{
    size_t BH = (size_t)B * H;
    step_view v = {k->gates + (size_t)t * 4 * BH, k->h + (size_t)t * BH, k->c + (size_t)t * BH,
                   k->h + (size_t)(t + 1) * BH, k->c + (size_t)(t + 1) * BH,
                   k->tanh_c + (size_t)t * BH};
    return v;
}

/* gates (TB, G) = b_ih + b_hh, plus for layer 0 the row ids[r] of W_ih^T (x is one-hot). */
static inline __attribute__((always_inline)) void
gates_start_body(float *restrict gates, const int *ids, const float *restrict w_ih,
                 const float *restrict b_ih, const float *restrict b_hh, size_t TB, size_t G)
{
    for (size_t r = 0; r < TB; r++) {
        float *g = gates + r * G;
        if (ids) {
            const float *row = w_ih + (size_t)ids[r] * G;
            for (size_t j = 0; j < G; j++)
                g[j] = row[j] + b_ih[j] + b_hh[j];
        } else {
            for (size_t j = 0; j < G; j++)
                g[j] = b_ih[j] + b_hh[j];
        }
    }
}
MATHFN_COPIES(gates_start,
              (float *gates, const int *ids, const float *w_ih, const float *b_ih,
               const float *b_hh, size_t TB, size_t G),
              (gates, ids, w_ih, b_ih, b_hh, TB, G))

static void gates_start(float *gates, const int *ids, const float *w_ih, const float *b_ih,
                        const float *b_hh, size_t TB, size_t G)
{
    MATHFN_RUN(gates_start, (gates, ids, w_ih, b_ih, b_hh, TB, G));
}

/* The gradients that are sums of rows of dgates (TB, G): both biases, which enter every row the
 * same way, and for layer 0 (ids) the rows of dW_ih^T that the characters picked. */
static inline __attribute__((always_inline)) void
gates_row_sums_body(float *restrict db_ih, float *restrict db_hh, float *restrict dw_ih,
                    const int *ids, const float *restrict dgates, size_t TB, size_t G)
{
    for (size_t r = 0; r < TB; r++) {
        const float *d = dgates + r * G;
        for (size_t j = 0; j < G; j++) {
            db_ih[j] += d[j];
            db_hh[j] += d[j];
        }
        if (ids) {
            float *row = dw_ih + (size_t)ids[r] * G;
            for (size_t j = 0; j < G; j++)
                row[j] += d[j];
        }
    }
}
MATHFN_COPIES(gates_row_sums,
              (float *db_ih, float *db_hh, float *dw_ih, const int *ids, const float *dgates,
               size_t TB, size_t G),
              (db_ih, db_hh, dw_ih, ids, dgates, TB, G))

static void gates_row_sums(float *db_ih, float *db_hh, float *dw_ih, const int *ids,
                           const float *dgates, size_t TB, size_t G)
{
    MATHFN_RUN(gates_row_sums, (db_ih, db_hh, dw_ih, ids, dgates, TB, G));
}

int lstm_cache_init_packed(lstm_cache *k, int H)
{
    if (H % BIMM_NR != 0)
        return 0;
    if (bimm_alloc(&k->w_hh_t, H, 4 * H) || bimm_alloc(&k->w_hh, 4 * H, H)) {
        lstm_cache_free_packed(k);
        return CORE_ENOMEM;
    }
    return 0;
}

void lstm_cache_free_packed(lstm_cache *k)
{
    bimm_free(&k->w_hh_t);
    bimm_free(&k->w_hh);
    k->packed = 0;
}

void lstm_forward(lstm_cache *k, const int *ids, const float *x, const float *w_ih,
                  const float *w_hh, const float *b_ih, const float *b_hh, int T, int B, int in,
                  int H)
{
    size_t G = 4 * (size_t)H, TB = (size_t)T * B;
    /* Input projection: gates = b_ih + b_hh + W_ih x. Above layer 0 it is one product over all
     * steps at once; layer 0's is a row lookup, done step by step below so that the step's
     * gates are still in cache for the recurrent product. */
    if (!ids) {
        gates_start(k->gates, NULL, w_ih, b_ih, b_hh, TB, G);
        /* gates (TB, 4H) += x (TB, in) . W_ih^T (in, 4H) */
        mm(k->gates, x, w_ih, (int)TB, (int)G, in, MM_N, MM_T, 1.0f);
    }
    /* bimm's AVX2 kernel beats OpenBLAS's Haswell one at every row count (55-79 GFLOP/s
     * against 27-61, 8 to 64 rows, one core); OpenBLAS's AVX-512 kernel wins from 32 rows. */
    k->packed = k->w_hh.panels && bimm_vectorised() && (simd_level() < SIMD_AVX512 || B < 32);
    if (k->packed) {
        bimm_fill_transposed(&k->w_hh_t, w_hh, (size_t)H);
        bimm_fill(&k->w_hh, w_hh, (size_t)H);
    }
    for (int t = 0; t < T; t++) {
        step_view v = step_at(k, t, B, H);
        if (ids)
            gates_start(v.gates, ids + (size_t)t * B, w_ih, b_ih, b_hh, (size_t)B, G);
        /* gates_t (B, 4H) += h_{t-1} (B, H) . W_hh^T (H, 4H) */
        if (k->packed)
            bimm_run(v.gates, G, v.h_prev, (size_t)H, &k->w_hh_t, B, 0, (int)G);
        else
            mm(v.gates, v.h_prev, w_hh, B, (int)G, H, MM_N, MM_T, 1.0f);
        lstm_gates_forward(v.h, v.c, v.gates, v.c_prev, v.tanh_c, B, H);
    }
}

/* Gradient through the gate nonlinearities and cell update for one row of one step.
 * dh: dL/dh_t (H); dc: on entry dL/dc_t from step t+1, on return dL/dc_{t-1}. */
static inline __attribute__((always_inline)) void
gates_row_backward(float *restrict di, float *restrict df, float *restrict dg, float *restrict dout,
                   float *restrict dc, const float *restrict dh, const float *restrict gi,
                   const float *restrict gf, const float *restrict gg, const float *restrict go,
                   const float *restrict c_prev, const float *restrict tanh_c, int H)
{
    for (int j = 0; j < H; j++) {
        float i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tanh_c[j];
        /* forward: h = o * tanh(c) */
        float d_o = dh[j] * t;
        float d_c = dc[j] + dh[j] * o * (1.0f - t * t);
        /* forward: c = f * c_prev + i * g */
        float d_i = d_c * g, d_f = d_c * c_prev[j], d_g = d_c * i;
        dc[j] = d_c * f;
        /* forward: i, f, o = sigmoid(.), g = tanh(.) */
        di[j] = d_i * i * (1.0f - i);
        df[j] = d_f * f * (1.0f - f);
        dg[j] = d_g * (1.0f - g * g);
        dout[j] = d_o * o * (1.0f - o);
    }
}

static inline __attribute__((always_inline)) void
gates_backward_body(float *dgates, float *dc, const float *dh, const float *gates,
                    const float *c_prev, const float *tanh_c, int B, int H)
{
    for (int b = 0; b < B; b++) {
        const float *g = gates + (size_t)b * 4 * H;
        float *d = dgates + (size_t)b * 4 * H;
        size_t o = (size_t)b * H;
        gates_row_backward(d, d + H, d + 2 * H, d + 3 * H, dc + o, dh + o, g, g + H, g + 2 * H,
                           g + 3 * H, c_prev + o, tanh_c + o, H);
    }
}
MATHFN_COPIES(gates_backward,
              (float *dgates, float *dc, const float *dh, const float *gates, const float *c_prev,
               const float *tanh_c, int B, int H),
              (dgates, dc, dh, gates, c_prev, tanh_c, B, H))

static void gates_backward(float *dgates, float *dc, const float *dh, const float *gates,
                           const float *c_prev, const float *tanh_c, int B, int H)
{
    MATHFN_RUN(gates_backward, (dgates, dc, dh, gates, c_prev, tanh_c, B, H));
}

void lstm_backward(float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *dx, float *dh0,
                   float *dc0, float *dh, float *dgates, const lstm_cache *k, const int *ids,
                   const float *x, const float *w_ih, const float *w_hh, int T, int B, int in,
                   int H)
{
    size_t G = 4 * (size_t)H, BH = (size_t)B * H, BG = (size_t)B * G;
    size_t TB = (size_t)T * B;
    /* dc0 carries dL/dc_{t-1} back through the steps; dh0's gradient of the final h joins the
     * last step's output gradient. */
    for (size_t j = 0; j < BH; j++)
        dh[(size_t)(T - 1) * BH + j] += dh0[j];
    for (int t = T - 1; t >= 0; t--) {
        step_view v = step_at(k, t, B, H);
        float *dht = dh + t * BH, *dg = dgates + t * BG;
        gates_backward(dg, dc0, dht, v.gates, v.c_prev, v.tanh_c, B, H);
        if (ids) /* while dg is in cache */
            gates_row_sums(db_ih, db_hh, dw_ih, ids + (size_t)t * B, dg, (size_t)B, G);
        /* forward: gates_t += h_{t-1} W_hh^T, so dL/dh_{t-1} gets dgates_t (B, 4H) . W_hh (4H, H).
         * h_{t-1} also fed the layer's output, whose gradient is already in dh: add to it. Step
         * 0's goes to dh0, the gradient of the initial state. */
        float *dh_prev = t > 0 ? dht - BH : dh0;
        if (t == 0)
            memset(dh0, 0, BH * sizeof *dh0);
        if (k->packed)
            bimm_run(dh_prev, (size_t)H, dg, G, &k->w_hh, B, 0, H);
        else
            mm(dh_prev, dg, w_hh, B, H, (int)G, MM_N, MM_N, 1.0f);
    }
    /* dW_hh (4H, H) += dgates^T (4H, TB) . h_prev (TB, H), over all steps at once. */
    mm(dw_hh, dgates, k->h, (int)G, H, (int)TB, MM_T, MM_N, 1.0f);
    if (!ids) {
        gates_row_sums(db_ih, db_hh, NULL, NULL, dgates, TB, G);
        /* forward: gates += x W_ih^T.
         * dW_ih (4H, in) += dgates^T . x; dx (TB, in) = dgates . W_ih */
        mm(dw_ih, dgates, x, (int)G, in, (int)TB, MM_T, MM_N, 1.0f);
        if (dx)
            mm(dx, dgates, w_ih, (int)TB, in, (int)G, MM_N, MM_N, 0.0f);
    }
}
