/* net: stacking layers, dropout, output layer and loss for training. */
#include "net.h"

#include "dense.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

int net_init(net *n, int V, int H, int L, int B, int T, int loss_all_steps, float dropout)
{
    memset(n, 0, sizeof *n);
    n->V = V, n->H = H, n->L = L, n->B = B, n->T = T;
    n->loss_all_steps = loss_all_steps;
    n->dropout = dropout;
    size_t TB = (size_t)T * B, BH = (size_t)B * H, TBH = TB * H, G = 4 * (size_t)H;
    size_t rows = loss_all_steps ? TB : (size_t)B;
    size_t per_layer = TB * G + 2 * (TBH + BH) + TBH; /* gates, h, c, tanh_c */
    size_t total = L * per_layer + 2 * (size_t)(L - 1) * TBH + rows * V + 2 * TBH + TB * G +
                   2 * (size_t)L * BH;
    n->block = calloc(total, sizeof *n->block);
    n->targets = calloc(rows, sizeof *n->targets);
    if (!n->block || !n->targets) {
        net_deinit(n);
        return CORE_ENOMEM;
    }
    float *f = n->block;
    for (int l = 0; l < L; l++) {
        lstm_cache *k = &n->cache[l];
        k->gates = f, f += TB * G;
        k->h = f, f += TBH + BH;
        k->c = f, f += TBH + BH;
        k->tanh_c = f, f += TBH;
        if (lstm_cache_init_packed(k, H)) {
            net_deinit(n);
            return CORE_ENOMEM;
        }
    }
    for (int l = 0; l + 1 < L; l++) {
        n->mask[l] = f, f += TBH;
        n->x_in[l + 1] = f, f += TBH;
    }
    n->probs = f, f += rows * V;
    n->dh = f, f += TBH;
    n->dx = f, f += TBH;
    n->dgates = f, f += TB * G;
    n->dh0 = f, f += (size_t)L * BH;
    n->dc0 = f;
    return 0;
}

void net_deinit(net *n)
{
    for (int l = 0; l < n->L; l++)
        lstm_cache_free_packed(&n->cache[l]);
    free(n->block);
    free(n->targets);
    memset(n, 0, sizeof *n);
}

float *net_state_h(net *n, int l) { return n->cache[l].h; }
float *net_state_c(net *n, int l) { return n->cache[l].c; }

void net_zero_state(net *n)
{
    size_t BH = (size_t)n->B * n->H;
    for (int l = 0; l < n->L; l++) {
        memset(n->cache[l].h, 0, BH * sizeof(float));
        memset(n->cache[l].c, 0, BH * sizeof(float));
    }
}

void net_carry_state(net *n)
{
    size_t bh = (size_t)n->b * n->H, last = (size_t)n->t * bh;
    for (int l = 0; l < n->L; l++) {
        memmove(n->cache[l].h, n->cache[l].h + last, bh * sizeof(float));
        memmove(n->cache[l].c, n->cache[l].c + last, bh * sizeof(float));
    }
}

double net_forward(net *n, const model_params *p, const int *ids, const int *targets, int b, int t,
                   rng *drop_rng)
{
    int H = n->H, V = n->V;
    size_t bh = (size_t)b * H, tbh = (size_t)t * bh;
    n->b = b, n->t = t, n->ids = ids;
    for (int l = 0; l < n->L; l++) {
        const float *x = l == 0 ? NULL : n->x_in[l];
        lstm_forward(&n->cache[l], l == 0 ? ids : NULL, x, p->w_ih[l], p->w_hh[l], p->b_ih[l],
                     p->b_hh[l], t, b, l == 0 ? V : H, H);
        if (l + 1 < n->L) {
            const float *out = n->cache[l].h + bh;
            float *mask = n->mask[l], *next = n->x_in[l + 1];
            float keep = 1.0f - n->dropout;
            for (size_t j = 0; j < tbh; j++) {
                /* inverted dropout: scale at training time so evaluation needs no change */
                mask[j] = drop_rng && n->dropout > 0 ? (rng_uniform(drop_rng) < keep) / keep : 1.0f;
                next[j] = out[j] * mask[j];
            }
        }
    }
    const float *top = n->cache[n->L - 1].h + bh; /* (t, b, H) outputs of the top layer */
    int rows = n->loss_all_steps ? t * b : b;
    if (!n->loss_all_steps)
        top += (size_t)(t - 1) * bh; /* window regime: the last step only */
    memcpy(n->targets, targets, (size_t)rows * sizeof *targets);
    linear_forward(n->probs, top, p->fc_w, p->fc_b, rows, H, V);
    return softmax_xent_forward(n->probs, n->targets, rows, V);
}

void net_backward(net *n, model_params *g, const model_params *p)
{
    int H = n->H, V = n->V, b = n->b, t = n->t;
    size_t bh = (size_t)b * H, tbh = (size_t)t * bh;
    int rows = n->loss_all_steps ? t * b : b;
    const float *top = n->cache[n->L - 1].h + bh;
    float *dtop = n->dh;
    if (!n->loss_all_steps) {
        /* only the last step's output reaches the loss; earlier steps get zero gradient */
        memset(n->dh, 0, tbh * sizeof(float));
        top += (size_t)(t - 1) * bh;
        dtop += (size_t)(t - 1) * bh;
    }
    softmax_xent_backward(n->probs, n->probs, n->targets, rows, V);
    /* dtop is written (=), not accumulated, by linear_backward */
    linear_backward(g->fc_w, g->fc_b, dtop, n->probs, top, p->fc_w, rows, H, V);
    for (int l = n->L - 1; l >= 0; l--) {
        float *dh0 = n->dh0 + (size_t)l * bh, *dc0 = n->dc0 + (size_t)l * bh;
        memset(dh0, 0, bh * sizeof(float)); /* nothing flows back from after the last step */
        memset(dc0, 0, bh * sizeof(float));
        const float *x = l == 0 ? NULL : n->x_in[l];
        lstm_backward(g->w_ih[l], g->w_hh[l], g->b_ih[l], g->b_hh[l], l == 0 ? NULL : n->dx, dh0,
                      dc0, n->dh, n->dgates, &n->cache[l], l == 0 ? n->ids : NULL, x, p->w_ih[l],
                      p->w_hh[l], t, b, l == 0 ? V : H, H);
        if (l > 0) {
            /* forward: x_in[l] = h_{l-1} * mask; the layer below's output gradient */
            const float *mask = n->mask[l - 1];
            for (size_t j = 0; j < tbh; j++)
                n->dh[j] = n->dx[j] * mask[j];
        }
    }
}
