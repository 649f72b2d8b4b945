/* model: a character-level LSTM language model: its configuration, vocabulary, parameters and
 * metadata. Parameters are one contiguous float block with named views into it, so optimizers,
 * clipping and checkpoint I/O are flat loops. A model is immutable once built or loaded and can
 * be shared read-only by any number of threads; run state lives elsewhere (infer.h, train.h). */
#ifndef CORE_MODEL_H
#define CORE_MODEL_H

#include "vocab.h"

#include <stddef.h>
#include <stdint.h>

#define MODEL_MAX_LAYERS 4
#define MODEL_MIN_HIDDEN 8
#define MODEL_MAX_HIDDEN 2048
#define MODEL_MAX_DROPOUT 0.99
#define MODEL_MAX_LENGTH 100000 /* maxlen, step and seq_len */

enum model_regime {
    REGIME_WINDOW = 0, /* the book: maxlen-character windows from the zero state, loss at the end */
    REGIME_SEQUENCE = 1, /* char-rnn: contiguous sequences, loss everywhere, state carried */
};

typedef struct model_config {
    int L;         /* layers, 1..MODEL_MAX_LAYERS */
    int H;         /* hidden units per layer */
    float
        dropout; /* on the outputs of every layer but the last (PyTorch's nn.LSTM), training only */
    int regime;    /* enum model_regime */
    int maxlen;    /* window regime: window length */
    int step;      /* window regime: characters between window starts */
    int seq_len;   /* sequence regime: BPTT length */
    int lowercase; /* the corpus was lowercased; seed text is lowercased the same way */
} model_config;

/* Named views into the parameter block, in checkpoint order: for each layer w_ih, w_hh, b_ih,
 * b_hh, then fc_w, fc_b. Gate order inside every 4H dimension is i, f, g, o (PyTorch's).
 * w_ih[0] is held transposed, (V, 4H), so multiplying by a one-hot input is a row lookup; the
 * checkpoint stores it as PyTorch's (4H, V). */
typedef struct model_params {
    float *w_ih[MODEL_MAX_LAYERS]; /* layer 0: (V, 4H); layer l > 0: (4H, H) */
    float *w_hh[MODEL_MAX_LAYERS]; /* (4H, H) */
    float *b_ih[MODEL_MAX_LAYERS]; /* (4H) */
    float *b_hh[MODEL_MAX_LAYERS]; /* (4H) */
    float *fc_w;                   /* (V, H) */
    float *fc_b;                   /* (V) */
} model_params;

/* The regimes' names, in enum order, NULL-terminated: "window", "sequence". */
extern const char *const model_regime_names[];
/* The name of a regime ("window" for an unknown one), and back (-1 for an unknown name). */
const char *model_regime_name(int regime);
int model_regime_parse(const char *name);

/* Gate offsets inside a 4H preactivation row. */
enum { GATE_I = 0, GATE_F = 1, GATE_G = 2, GATE_O = 3 };

typedef struct model {
    model_config cfg;
    vocab voc;
    int V;           /* voc.V */
    size_t n_params; /* floats in params */
    float *params;   /* (n_params) */
    model_params p;  /* views into params */
    int n_meta;      /* free-form string metadata, saved in the checkpoint's __metadata__ */
    char **meta_keys;
    char **meta_vals;
} model;

/* Number of floats in the parameter block of a V-character, H-unit, L-layer model. */
size_t model_param_count(int V, int H, int L);

/* Points the views of p into block (model_param_count floats). Gradients and optimizer moments
 * use the same layout through their own model_params. */
void model_params_point(model_params *p, float *block, int V, int H, int L);

/* Checks that cfg is in range (layers, hidden size, dropout, window and sequence lengths);
 * CORE_ERANGE with a message naming the field otherwise. */
int model_config_check(const model_config *cfg, char *err, size_t errlen);

/* Allocates a model for cfg and a copy of voc, with all parameters zero. */
int model_new(model **out, const model_config *cfg, const vocab *voc, char *err, size_t errlen);

/* Keras's initialisation: Glorot-uniform input and output kernels, orthogonal recurrent kernels,
 * zero biases except the forget gate's b_ih, which is 1. Deterministic in seed. */
int model_init_weights(model *m, uint64_t seed);

/* Frees m and everything it owns; model_free(NULL) is a no-op. */
void model_free(model *m);

/* Sets (copies) or replaces a metadata entry. */
int model_meta_set(model *m, const char *key, const char *value);
/* The value of key, or NULL; valid until the entry is replaced or the model freed. */
const char *model_meta_get(const model *m, const char *key);

/* A deep copy of src (parameters and metadata). */
int model_clone(model **out, const model *src);

#endif
