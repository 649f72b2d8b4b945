/* infer: packing, stream state and the batched step. The step runs on T workers, split one of two
 * ways: each worker takes a share of the streams through everything (no synchronisation; for
 * weights small enough that every core can read them all from its cache), or a share of each
 * layer's unit groups and of the output columns for every stream (each core reads part of the
 * weights; one barrier per layer, since the next layer reads all of this one's h). */
#include "infer.h"

#include "cell.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

#define UNITS 8              /* hidden units per column group */
#define L2_BYTES (512u << 10) /* a core's L2, at the least on the machines we aim at (Zen 3) */
#define GROUP (4 * UNITS)    /* packed columns per group: i, f, g, o of each unit */

// ----------------------------------------------------------------------------
// packed weights

int infer_weights_new(infer_weights **out, const model *m)
{
    int L = m->cfg.L, H = m->cfg.H, V = m->V;
    infer_weights *w = calloc(1, sizeof *w);
    if (!w)
        return CORE_ENOMEM;
    w->m = m, w->L = L, w->H = H, w->V = V;
    w->Gp = (H + UNITS - 1) / UNITS * GROUP;
    w->Vp = (V + BIMM_NR - 1) / BIMM_NR * BIMM_NR;
    int *fc_src = malloc((size_t)w->Vp * sizeof *fc_src);
    w->gate_src = malloc((size_t)w->Gp * sizeof *w->gate_src);
    w->fc_bias = calloc((size_t)w->Vp, sizeof *w->fc_bias);
    if (!fc_src || !w->gate_src || !w->fc_bias)
        goto fail;
    for (int q = 0; q < w->Gp; q++) {
        int gate = q % GROUP / UNITS, j = q / GROUP * UNITS + q % UNITS;
        w->gate_src[q] = j < H ? gate * H + j : -1;
    }
    for (int q = 0; q < w->Vp; q++)
        fc_src[q] = q < V ? q : -1;
    const model_params *p = &m->p;
    for (int l = 0; l < L; l++) {
        w->bias[l] = calloc((size_t)w->Gp, sizeof *w->bias[l]);
        if (!w->bias[l])
            goto fail;
        for (int q = 0; q < w->Gp; q++) {
            int s = w->gate_src[q];
            w->bias[l][q] = s < 0 ? 0.0f : p->b_ih[l][s] + p->b_hh[l][s];
        }
        /* layer 0's input product is a row lookup (one-hot x), so it packs W_hh alone */
        const float *parts[2] = {p->w_ih[l], p->w_hh[l]};
        int K[2] = {H, H};
        int rc = l == 0 ? bimm_pack(&w->layer[l], w->Gp, w->gate_src, 1, parts + 1, K + 1)
                        : bimm_pack(&w->layer[l], w->Gp, w->gate_src, 2, parts, K);
        if (rc)
            goto fail;
    }
    for (int q = 0; q < V; q++)
        w->fc_bias[q] = p->fc_b[q];
    if (bimm_pack(&w->fc, w->Vp, fc_src, 1, (const float *const[]){p->fc_w}, &H))
        goto fail;
    free(fc_src);
    *out = w;
    return 0;
fail:
    free(fc_src);
    infer_weights_free(w);
    return CORE_ENOMEM;
}

void infer_weights_free(infer_weights *w)
{
    if (!w)
        return;
    for (int l = 0; l < MODEL_MAX_LAYERS; l++) {
        bimm_free(&w->layer[l]);
        free(w->bias[l]);
    }
    bimm_free(&w->fc);
    free(w->fc_bias);
    free(w->gate_src);
    free(w);
}

double infer_row_flops(const infer_weights *w)
{
    double per_layer = 2.0 * 4 * w->H * 2 * w->H; /* [W_ih | W_hh] (4H, 2H) */
    return per_layer * w->L - 2.0 * 4 * w->H * w->H /* layer 0's input is a lookup */
           + 2.0 * w->V * w->H;
}

int infer_threads_for(const infer_weights *w, int B, int max_threads)
{
    /* bench_gen on 2 cores: from about 1 MFLOP a step, two threads step 1.5-2x as fast (1 x 128
     * from B = 8, split by streams; 2 x 384 from B = 1, split by columns); below it the
     * synchronisation eats most of the gain (1 x 128 at B = 1 to 4: 1.2x for two cores). */
    return max_threads > 1 && B * infer_row_flops(w) >= 1e6 ? max_threads : 1;
}

// ----------------------------------------------------------------------------
// stream state

int infer_state_init(infer_state *s, const model *m)
{
    memset(s, 0, sizeof *s);
    s->L = m->cfg.L, s->H = m->cfg.H, s->V = m->V;
    size_t LH = (size_t)s->L * s->H;
    s->h = calloc(LH, sizeof *s->h);
    s->c = calloc(LH, sizeof *s->c);
    s->logits = calloc((size_t)s->V, sizeof *s->logits);
    if (!s->h || !s->c || !s->logits) {
        infer_state_deinit(s);
        return CORE_ENOMEM;
    }
    return 0;
}

void infer_state_deinit(infer_state *s)
{
    free(s->h);
    free(s->c);
    free(s->logits);
    memset(s, 0, sizeof *s);
}

void infer_state_reset(infer_state *s)
{
    memset(s->h, 0, (size_t)s->L * s->H * sizeof *s->h);
    memset(s->c, 0, (size_t)s->L * s->H * sizeof *s->c);
}

void infer_state_copy(infer_state *dst, const infer_state *src)
{
    size_t LH = (size_t)src->L * src->H;
    memcpy(dst->h, src->h, LH * sizeof *dst->h);
    memcpy(dst->c, src->c, LH * sizeof *dst->c);
    memcpy(dst->logits, src->logits, (size_t)src->V * sizeof *dst->logits);
}

void infer_zero_logits(float *logits, const model *m)
{
    memcpy(logits, m->p.fc_b, (size_t)m->V * sizeof *logits);
}

// ----------------------------------------------------------------------------
// the batched step

struct infer_batch {
    const infer_weights *w;
    infer_weights *owned; /* infer_batch_open's */
    int cap, threads;
    float *x[64];  /* per worker (cap, 2H): one layer's inputs [h_below | h_prev] per stream */
    float *cells[64]; /* per worker (5H): row_cells's scratch */
    float *pre;    /* (cap, Gp) preactivations, packed order */
    float *hn;     /* (L, cap, H) each layer's new h, copied into the states after the step */
    float *out;    /* (cap, Vp) logits, packed, of the rows that want them */
    int *want;     /* (cap) which rows those are */
};

int infer_batch_new(infer_batch **out, const infer_weights *w, int cap, int threads)
{
    if (cap < 1 || threads < 1 || threads > 64)
        return CORE_ERANGE;
    infer_batch *b = calloc(1, sizeof *b);
    if (!b)
        return CORE_ENOMEM;
    b->w = w, b->cap = cap, b->threads = threads;
    int ok = 1;
    for (int t = 0; t < threads; t++)
        ok &= (b->x[t] = malloc((size_t)cap * 2 * w->H * sizeof(float))) != NULL &&
              (b->cells[t] = malloc((size_t)5 * w->H * sizeof(float))) != NULL;
    b->pre = malloc((size_t)cap * w->Gp * sizeof *b->pre);
    b->hn = malloc((size_t)w->L * cap * w->H * sizeof *b->hn);
    b->out = malloc((size_t)cap * w->Vp * sizeof *b->out);
    b->want = malloc((size_t)cap * sizeof *b->want);
    if (!ok || !b->pre || !b->hn || !b->out || !b->want) {
        infer_batch_free(b);
        return CORE_ENOMEM;
    }
    *out = b;
    return 0;
}

int infer_batch_open(infer_batch **out, const model *m, int cap)
{
    infer_weights *w;
    int rc = infer_weights_new(&w, m);
    if (rc)
        return rc;
    infer_batch *b;
    rc = infer_batch_new(&b, w, cap, 1);
    if (rc) {
        infer_weights_free(w);
        return rc;
    }
    b->owned = w;
    *out = b;
    return 0;
}

void infer_batch_free(infer_batch *b)
{
    if (!b)
        return;
    for (int t = 0; t < b->threads; t++) {
        free(b->x[t]);
        free(b->cells[t]);
    }
    free(b->pre);
    free(b->hn);
    free(b->out);
    free(b->want);
    infer_weights_free(b->owned);
    free(b);
}

/* The cell update of one stream's units [u0, u0 + n), u0 the start of a group: pre holds those
 * groups' preactivations (i, f, g, o, 8 units each), c is updated in place, h written. The gates
 * are first laid out flat in scratch (4 n + n floats), which the compiler vectorises as it does
 * training's loop; it cannot do as well on the interleaved groups themselves. */
static inline __attribute__((always_inline)) void
row_cells_body(float *restrict scratch, const float *restrict pre, float *restrict c,
               float *restrict h, int n)
{
    float *gi = scratch, *gf = gi + n, *gg = gf + n, *go = gg + n, *tanh_c = go + n;
    for (int j = 0; j < n; j++) {
        const float *p = pre + (size_t)(j / UNITS) * GROUP + j % UNITS;
        gi[j] = p[0], gf[j] = p[UNITS], gg[j] = p[2 * UNITS], go[j] = p[3 * UNITS];
    }
    for (int j = 0; j < n; j++)
        lstm_cell(&gi[j], &gf[j], &gg[j], &go[j], c[j], &c[j], &h[j], &tanh_c[j]);
}

/* One copy per SIMD level, with denormals flushed (mathfn.h says why). */
MATHFN_COPIES(row_cells, (float *scratch, const float *pre, float *c, float *h, int n),
              (scratch, pre, c, h, n))

static void row_cells(float *scratch, const float *pre, float *c, float *h, int n)
{
    MATHFN_RUN(row_cells, (scratch, pre, c, h, n));
}

typedef struct step_job {
    infer_batch *b;
    const infer_row *rows;
    int B, T;
    int by_rows; /* each worker steps its share of the rows through everything, no barrier */
    pool *p;
} step_job;

/* Rows [r0, r1) through every layer and the output layer, over unit groups [g0, g1) and output
 * panels [v0, v1) (in BIMM_NR columns). With `barrier`, other workers share these rows (other
 * columns): wait for them after each layer, since the next one reads all of its h. */
static void step_part(step_job *j, int t, int r0, int r1, int g0, int g1, int v0, int v1,
                      int barrier)
{
    infer_batch *b = j->b;
    const infer_weights *w = b->w;
    const model_params *mp = &w->m->p;
    int H = w->H, Gp = w->Gp, G = 4 * H, n_rows = r1 - r0;
    int q0 = g0 * GROUP, q1 = g1 * GROUP;
    float *x = b->x[t];

    for (int l = 0; l < w->L; l++) {
        int K = l == 0 ? H : 2 * H;
        float *hn = b->hn + (size_t)l * b->cap * H;
        /* x[r] = [h of the layer below, new | this layer's h, old]; every worker gathers its
         * own copy, so none waits for another before its product */
        for (int r = r0; r < r1; r++) {
            float *xr = x + (size_t)(r - r0) * K;
            if (l > 0)
                memcpy(xr, b->hn + ((size_t)(l - 1) * b->cap + r) * H, (size_t)H * sizeof *xr);
            memcpy(xr + K - H, j->rows[r].st->h + (size_t)l * H, (size_t)H * sizeof *xr);
        }
        /* pre = b_ih + b_hh (+ W_ih x: for layer 0's one-hot x, a row of W_ih^T, whose gate
         * blocks map onto each group's four runs of 8), then the product adds [W_ih | W_hh] x */
        for (int r = r0; r < r1; r++) {
            float *pr = b->pre + (size_t)r * Gp;
            memcpy(pr + q0, w->bias[l] + q0, (size_t)(q1 - q0) * sizeof *pr);
            if (l > 0)
                continue;
            const float *row = mp->w_ih[0] + (size_t)j->rows[r].id * G;
            for (int g = g0; g < g1; g++) {
                int u0 = g * UNITS, n = H - u0 < UNITS ? H - u0 : UNITS;
                for (int gate = 0; gate < 4; gate++) {
                    float *dst = pr + (size_t)g * GROUP + gate * UNITS;
                    const float *src = row + (size_t)gate * H + u0;
                    for (int u = 0; u < n; u++)
                        dst[u] += src[u];
                }
            }
        }
        bimm_run(b->pre + (size_t)r0 * Gp, (size_t)Gp, x, (size_t)K, &w->layer[l], n_rows, q0,
                 q1);
        int u0 = g0 * UNITS, u1 = g1 * UNITS < H ? g1 * UNITS : H;
        for (int r = r0; r < r1; r++)
            row_cells(b->cells[t], b->pre + (size_t)r * Gp + q0,
                      j->rows[r].st->c + (size_t)l * H + u0, hn + (size_t)r * H + u0, u1 - u0);
        if (barrier)
            pool_barrier(j->p); /* the next layer (or the output layer) reads all of hn */
    }

    /* logits = fc_b + fc_w h_top for the rows that want them: gathered into x and out from
     * row r0 on, so that workers with other rows use other parts of out */
    int V = w->V, Vp = w->Vp, n = 0;
    const float *top = b->hn + (size_t)(w->L - 1) * b->cap * H;
    for (int r = r0; r < r1; r++) {
        if (!j->rows[r].want_logits)
            continue;
        memcpy(x + (size_t)n * H, top + (size_t)r * H, (size_t)H * sizeof *x);
        memcpy(b->out + (size_t)(r0 + n) * Vp + v0, w->fc_bias + v0, (size_t)(v1 - v0) * sizeof *x);
        b->want[r0 + n++] = r;
    }
    bimm_run(b->out + (size_t)r0 * Vp, (size_t)Vp, x, (size_t)H, &w->fc, n, v0, v1);
    int v_end = v1 < V ? v1 : V;
    for (int i = 0; i < n && v_end > v0; i++)
        memcpy(j->rows[b->want[r0 + i]].st->logits + v0, b->out + (size_t)(r0 + i) * Vp + v0,
               (size_t)(v_end - v0) * sizeof *x);
}

/* The states take their new h (rows [r0, r1)) once nobody gathers the old ones any more. */
static void publish_h(step_job *j, int r0, int r1)
{
    const infer_weights *w = j->b->w;
    for (int r = r0; r < r1; r++)
        for (int l = 0; l < w->L; l++)
            memcpy(j->rows[r].st->h + (size_t)l * w->H,
                   j->b->hn + ((size_t)l * j->b->cap + r) * w->H, (size_t)w->H * sizeof(float));
}

static void step_worker(void *ctx, int t)
{
    step_job *j = ctx;
    const infer_weights *w = j->b->w;
    int T = j->T, groups = w->Gp / GROUP, panels = w->Vp / BIMM_NR;
    if (j->by_rows) {
        int r0 = j->B * t / T, r1 = j->B * (t + 1) / T;
        step_part(j, t, r0, r1, 0, groups, 0, w->Vp, 0);
        publish_h(j, r0, r1);
    } else {
        step_part(j, t, 0, j->B, groups * t / T, groups * (t + 1) / T,
                  panels * t / T * BIMM_NR, panels * (t + 1) / T * BIMM_NR, T > 1);
    }
}

void infer_batch_step(infer_batch *b, const infer_row *rows, int B, pool *p)
{
    int T = p ? pool_size(p) : 1;
    if (T > b->threads)
        T = 1; /* the batch has no scratch for more workers: stay on this thread */
    /* Weights that fit in a core's L2 are cheap to read on both: split the streams, which needs
     * no barrier. Bigger ones are split by columns, so each core reads half of them. */
    const infer_weights *w = b->w;
    size_t bytes = (size_t)w->fc.K * w->Vp * sizeof(float);
    for (int l = 0; l < w->L; l++)
        bytes += (size_t)w->layer[l].K * w->Gp * sizeof(float);
    int by_rows = T > 1 && B >= 2 * T && bytes <= L2_BYTES;
    step_job j = {b, rows, B, T, by_rows, T > 1 ? p : NULL};
    if (T > 1)
        pool_run(p, step_worker, &j);
    else
        step_worker(&j, 0);
    if (!j.by_rows)
        publish_h(&j, 0, B);
}

void infer_step(infer_batch *b, infer_state *s, int id)
{
    infer_row row = {s, id, 1};
    infer_batch_step(b, &row, 1, NULL);
}
