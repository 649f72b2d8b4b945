/* dense: linear layer and softmax cross-entropy. */
#include "dense.h"

#include "mathfn.h"
#include "mm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

void linear_forward(float *out, const float *x, const float *w, const float *b, int N, int I, int O)
{
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * O, b, (size_t)O * sizeof *out);
    mm(out, x, w, N, O, I, MM_N, MM_T, 1.0f);
}

void linear_backward(float *dw, float *db, float *dx, const float *dout, const float *x,
                     const float *w, int N, int I, int O)
{
    /* forward: out = x w^T + b */
    mm(dw, dout, x, O, I, N, MM_T, MM_N, 1.0f);
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * O;
        for (int o = 0; o < O; o++)
            db[o] += d[o];
    }
    if (dx)
        mm(dx, dout, w, N, I, O, MM_N, MM_N, 0.0f);
}

/* The loss summed over the rows with a target, and how many there were. */
static inline __attribute__((always_inline)) void
softmax_xent_rows_body(double *loss_sum, int *rows_counted, float *probs, const int *targets,
                       int N, int V)
{
    double loss = 0;
    int counted = 0;
    for (int n = 0; n < N; n++) {
        float *p = probs + (size_t)n * V;
        float mx = p[0];
        for (int v = 1; v < V; v++)
            mx = p[v] > mx ? p[v] : mx;
        int y = targets[n];
        float zy = y >= 0 ? p[y] - mx : 0.0f;
        float sum = 0;
        for (int v = 0; v < V; v++) { /* subtract the max so exp cannot overflow */
            p[v] = mathfn_exp(p[v] - mx);
            sum += p[v];
        }
        float inv = 1.0f / sum;
        if (y >= 0) {
            /* -log p_y = log(sum) - (z_y - max): no log of a rounded, possibly tiny p_y */
            loss += log((double)sum) - (double)zy;
            counted++;
        }
        for (int v = 0; v < V; v++)
            p[v] *= inv;
    }
    *loss_sum = loss;
    *rows_counted = counted;
}
MATHFN_COPIES(softmax_xent_rows,
              (double *loss_sum, int *rows_counted, float *probs, const int *targets, int N, int V),
              (loss_sum, rows_counted, probs, targets, N, V))

double softmax_xent_forward(float *probs, const int *targets, int N, int V)
{
    double loss;
    int counted;
    MATHFN_RUN(softmax_xent_rows, (&loss, &counted, probs, targets, N, V));
    return counted ? loss / counted : 0.0;
}

void softmax_xent_backward(float *dlogits, const float *probs, const int *targets, int N, int V)
{
    int counted = 0;
    for (int n = 0; n < N; n++)
        counted += targets[n] >= 0;
    float scale = counted ? 1.0f / (float)counted : 0.0f;
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        float s = targets[n] >= 0 ? scale : 0.0f;
        /* forward: loss = -log softmax(z)_y averaged, so dz = (p - onehot(y)) / count */
        for (int v = 0; v < V; v++)
            d[v] = p[v] * s;
        if (targets[n] >= 0)
            d[targets[n]] -= s;
    }
}
