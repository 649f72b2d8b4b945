/* optim: RMSprop, Adam and gradient clipping as single flat loops over the parameter block. */
#include "optim.h"

#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_init(optim *o, int kind, size_t n)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->n = n;
    o->rho = 0.9, o->beta1 = 0.9, o->beta2 = 0.999;
    o->eps = kind == OPTIM_RMSPROP ? 1e-7 : 1e-8;
    o->v = calloc(n, sizeof *o->v);
    if (kind == OPTIM_ADAM)
        o->m = calloc(n, sizeof *o->m);
    if (!o->v || (kind == OPTIM_ADAM && !o->m)) {
        optim_deinit(o);
        return CORE_ENOMEM;
    }
    return 0;
}

void optim_deinit(optim *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void optim_step(optim *o, float *params, const float *grads, float lr)
{
    o->steps++;
    float *v = o->v;
    if (o->kind == OPTIM_RMSPROP) {
        /* 1 - rho in double, then rounded, as PyTorch does (not 1 - (float)rho) */
        float rho = (float)o->rho, one_minus_rho = (float)(1.0 - o->rho), eps = (float)o->eps;
        for (size_t i = 0; i < o->n; i++) {
            float g = grads[i];
            v[i] = rho * v[i] + one_minus_rho * g * g;
            params[i] -= lr * g / (sqrtf(v[i]) + eps);
        }
        return;
    }
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float one_minus_b1 = (float)(1.0 - o->beta1), one_minus_b2 = (float)(1.0 - o->beta2);
    float *m = o->m;
    float step_size = (float)(lr / (1.0 - pow(o->beta1, (double)o->steps)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, (double)o->steps));
    for (size_t i = 0; i < o->n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + one_minus_b1 * g;
        v[i] = b2 * v[i] + one_minus_b2 * g * g;
        params[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

double optim_clip(float *grads, size_t n, double max_norm)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)grads[i] * grads[i];
    double norm = sqrt(sum);
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++)
            grads[i] *= scale;
    }
    return norm;
}

const char *const optim_names[] = {"rmsprop", "adam", NULL};

int optim_parse(const char *name)
{
    for (int i = 0; optim_names[i]; i++)
        if (strcmp(name, optim_names[i]) == 0)
            return i;
    return -1;
}

const char *optim_name(int kind) { return optim_names[kind == OPTIM_ADAM]; }
