/* infer: the stateful one-character forward step. Same math as lstm.c's forward with B = 1, but
 * shaped as matrix-vector products, which is what one stream needs. */
#include "infer.h"

#include "err.h"
#include "lstm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

int infer_state_init(infer_state *s, const model *m)
{
    memset(s, 0, sizeof *s);
    s->L = m->cfg.L, s->H = m->cfg.H, s->V = m->V;
    size_t LH = (size_t)s->L * s->H;
    s->h = calloc(LH, sizeof *s->h);
    s->c = calloc(LH, sizeof *s->c);
    s->gates = calloc(4 * (size_t)s->H, sizeof *s->gates);
    s->tanh_c = calloc((size_t)s->H, sizeof *s->tanh_c);
    s->c_prev = calloc((size_t)s->H, sizeof *s->c_prev);
    s->logits = calloc((size_t)s->V, sizeof *s->logits);
    if (!s->h || !s->c || !s->gates || !s->tanh_c || !s->c_prev || !s->logits) {
        infer_state_deinit(s);
        return CORE_ENOMEM;
    }
    return 0;
}

void infer_state_deinit(infer_state *s)
{
    free(s->h);
    free(s->c);
    free(s->gates);
    free(s->tanh_c);
    free(s->c_prev);
    free(s->logits);
    memset(s, 0, sizeof *s);
}

void infer_state_reset(infer_state *s)
{
    memset(s->h, 0, (size_t)s->L * s->H * sizeof *s->h);
    memset(s->c, 0, (size_t)s->L * s->H * sizeof *s->c);
}

void infer_step(infer_state *s, const model *m, int id)
{
    int H = s->H, G = 4 * H;
    const model_params *p = &m->p;
    for (int l = 0; l < s->L; l++) {
        float *h = s->h + (size_t)l * H, *c = s->c + (size_t)l * H;
        float *g = s->gates;
        const float *b_ih = p->b_ih[l], *b_hh = p->b_hh[l];
        if (l == 0) {
            const float *row = p->w_ih[0] + (size_t)id * G; /* W_ih x for a one-hot x */
            for (int j = 0; j < G; j++)
                g[j] = row[j] + b_ih[j] + b_hh[j];
        } else {
            for (int j = 0; j < G; j++)
                g[j] = b_ih[j] + b_hh[j];
            /* g += W_ih (4H, H) . h_below */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, G, H, 1.0f, p->w_ih[l], H, h - H, 1, 1.0f, g,
                        1);
        }
        /* g += W_hh (4H, H) . h_prev */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, G, H, 1.0f, p->w_hh[l], H, h, 1, 1.0f, g, 1);
        memcpy(s->c_prev, c, (size_t)H * sizeof *c);
        lstm_gates_forward(h, c, g, s->c_prev, s->tanh_c, 1, H);
    }
    /* logits = fc_w (V, H) . h_top + fc_b */
    memcpy(s->logits, p->fc_b, (size_t)s->V * sizeof *s->logits);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, s->V, H, 1.0f, p->fc_w, H,
                s->h + (size_t)(s->L - 1) * H, 1, 1.0f, s->logits, 1);
}
