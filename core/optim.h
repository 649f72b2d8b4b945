/* optim: optimizers over the flat parameter block, and global-norm gradient clipping.
 * RMSprop with Keras's defaults (rho 0.9, eps 1e-7 added outside the square root, as PyTorch's
 * RMSprop does too), and Adam as PyTorch implements it (bias-corrected, eps outside the root). */
#ifndef CORE_OPTIM_H
#define CORE_OPTIM_H

#include <stddef.h>

enum optim_kind { OPTIM_RMSPROP = 0, OPTIM_ADAM = 1 };

typedef struct optim {
    int kind;
    size_t n;
    double rho;          /* RMSprop decay */
    double beta1, beta2; /* Adam decays */
    double eps;
    long long steps;     /* updates taken so far (Adam's bias correction needs it) */
    float *m;            /* (n) Adam's first moment; NULL for RMSprop */
    float *v;            /* (n) mean of squared gradients */
} optim;

/* Allocates zeroed moments for n parameters. */
int optim_init(optim *o, int kind, size_t n);
void optim_deinit(optim *o);

/* One update with learning rate lr: params -= lr * step(grads). */
void optim_step(optim *o, float *params, const float *grads, float lr);

/* The L2 norm of the n gradients; if max_norm > 0 and the norm exceeds it, scales them down to
 * max_norm (clipping by global norm). Returns the norm before clipping. */
double optim_clip(float *grads, size_t n, double max_norm);

/* The optimizers' names in enum order, NULL-terminated; the name of one, and back (-1 for an
 * unknown name). */
extern const char *const optim_names[];
int optim_parse(const char *name);
const char *optim_name(int kind);

#endif
