/* model: allocation, parameter layout and Keras-style initialisation. */
#include "model.h"

#include "err.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t model_param_count(int V, int H, int L)
{
    size_t n = 0, G = 4 * (size_t)H;
    for (int l = 0; l < L; l++) {
        size_t in = l == 0 ? (size_t)V : (size_t)H;
        n += G * in + G * (size_t)H + 2 * G;
    }
    return n + (size_t)V * H + (size_t)V;
}

void model_params_point(model_params *p, float *block, int V, int H, int L)
{
    size_t G = 4 * (size_t)H;
    memset(p, 0, sizeof *p);
    for (int l = 0; l < L; l++) {
        size_t in = l == 0 ? (size_t)V : (size_t)H;
        p->w_ih[l] = block, block += G * in;
        p->w_hh[l] = block, block += G * H;
        p->b_ih[l] = block, block += G;
        p->b_hh[l] = block, block += G;
    }
    p->fc_w = block, block += (size_t)V * H;
    p->fc_b = block;
}

const char *const model_regime_names[] = {"window", "sequence", NULL};

const char *model_regime_name(int regime)
{
    return regime == REGIME_SEQUENCE ? model_regime_names[1] : model_regime_names[0];
}

int model_regime_parse(const char *name)
{
    for (int i = 0; model_regime_names[i]; i++)
        if (strcmp(name, model_regime_names[i]) == 0)
            return i;
    return -1;
}

int model_config_check(const model_config *c, char *err, size_t errlen)
{
    if (c->L < 1 || c->L > MODEL_MAX_LAYERS)
        return core_errf(err, errlen, CORE_ERANGE, "layers must be 1..%d, got %d", MODEL_MAX_LAYERS,
                         c->L);
    if (c->H < MODEL_MIN_HIDDEN || c->H > MODEL_MAX_HIDDEN)
        return core_errf(err, errlen, CORE_ERANGE, "hidden must be %d..%d, got %d",
                         MODEL_MIN_HIDDEN, MODEL_MAX_HIDDEN, c->H);
    if (!(c->dropout >= 0.0f && c->dropout <= (float)MODEL_MAX_DROPOUT))
        return core_errf(err, errlen, CORE_ERANGE, "dropout must be in [0, %g], got %g",
                         MODEL_MAX_DROPOUT, (double)c->dropout);
    if (c->regime != REGIME_WINDOW && c->regime != REGIME_SEQUENCE)
        return core_errf(err, errlen, CORE_ERANGE, "unknown regime %d", c->regime);
    const struct {
        const char *name;
        int v;
    } lengths[] = {{"maxlen", c->maxlen}, {"step", c->step}, {"seq_len", c->seq_len}};
    for (int i = 0; i < 3; i++)
        if (lengths[i].v < 1 || lengths[i].v > MODEL_MAX_LENGTH)
            return core_errf(err, errlen, CORE_ERANGE, "%s must be 1..%d, got %d", lengths[i].name,
                             MODEL_MAX_LENGTH, lengths[i].v);
    return 0;
}

int model_new(model **out, const model_config *cfg, const vocab *voc, char *err, size_t errlen)
{
    int rc = model_config_check(cfg, err, errlen);
    if (rc)
        return rc;
    model *m = calloc(1, sizeof *m);
    if (!m)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory");
    m->cfg = *cfg;
    rc = vocab_init(&m->voc, voc->chars, voc->V, err, errlen);
    if (rc)
        goto fail;
    m->V = voc->V;
    m->n_params = model_param_count(m->V, cfg->H, cfg->L);
    m->params = calloc(m->n_params, sizeof *m->params);
    if (!m->params) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for %zu parameters", m->n_params);
        goto fail;
    }
    model_params_point(&m->p, m->params, m->V, cfg->H, cfg->L);
    *out = m;
    return 0;
fail:
    model_free(m);
    return rc;
}

void model_free(model *m)
{
    if (!m)
        return;
    vocab_deinit(&m->voc);
    free(m->params);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta_keys[i]);
        free(m->meta_vals[i]);
    }
    free(m->meta_keys);
    free(m->meta_vals);
    free(m);
}

// ----------------------------------------------------------------------------
// initialisation

static void glorot_uniform(float *w, size_t n, size_t fan_in, size_t fan_out, rng *r)
{
    double limit = sqrt(6.0 / (double)(fan_in + fan_out));
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * rng_uniform(r) - 1.0) * limit);
}

/* Fills w (rows x cols, rows >= cols) with a matrix whose columns are orthonormal: the Q of the
 * QR decomposition of a Gaussian matrix with R's diagonal made positive, as Keras's Orthogonal
 * does. Modified Gram-Schmidt in double precision. */
static int orthogonal(float *w, size_t rows, size_t cols, rng *r)
{
    double *a = malloc(rows * cols * sizeof *a); /* column-major: column j at a + j*rows */
    if (!a)
        return CORE_ENOMEM;
    for (size_t j = 0; j < cols; j++)
        for (size_t i = 0; i < rows; i++)
            a[j * rows + i] = rng_normal(r);
    for (size_t j = 0; j < cols; j++) {
        double *q = a + j * rows;
        for (size_t k = 0; k < j; k++) {
            const double *qk = a + k * rows;
            double dot = 0;
            for (size_t i = 0; i < rows; i++)
                dot += qk[i] * q[i];
            for (size_t i = 0; i < rows; i++)
                q[i] -= dot * qk[i];
        }
        double norm = 0;
        for (size_t i = 0; i < rows; i++)
            norm += q[i] * q[i];
        norm = sqrt(norm);
        for (size_t i = 0; i < rows; i++)
            q[i] /= norm; /* the norm is R's (positive) diagonal entry */
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            w[i * cols + j] = (float)a[j * rows + i];
    free(a);
    return 0;
}

int model_init_weights(model *m, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    int V = m->V, H = m->cfg.H;
    size_t G = 4 * (size_t)H;
    memset(m->params, 0, m->n_params * sizeof *m->params);
    for (int l = 0; l < m->cfg.L; l++) {
        size_t in = l == 0 ? (size_t)V : (size_t)H;
        glorot_uniform(m->p.w_ih[l], G * in, in, G, &r);
        int rc = orthogonal(m->p.w_hh[l], G, (size_t)H, &r);
        if (rc)
            return rc;
        for (int j = 0; j < H; j++)
            m->p.b_ih[l][GATE_F * H + j] = 1.0f; /* Keras's unit_forget_bias */
    }
    glorot_uniform(m->p.fc_w, (size_t)V * H, (size_t)H, (size_t)V, &r);
    return 0;
}

// ----------------------------------------------------------------------------
// metadata

int model_meta_set(model *m, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return CORE_ENOMEM;
    for (int i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta_keys[i], key) == 0) {
            free(m->meta_vals[i]);
            m->meta_vals[i] = v;
            return 0;
        }
    }
    char *k = strdup(key);
    char **keys = realloc(m->meta_keys, (size_t)(m->n_meta + 1) * sizeof *keys);
    if (keys)
        m->meta_keys = keys;
    char **vals = realloc(m->meta_vals, (size_t)(m->n_meta + 1) * sizeof *vals);
    if (vals)
        m->meta_vals = vals;
    if (!k || !keys || !vals) {
        free(k);
        free(v);
        return CORE_ENOMEM;
    }
    m->meta_keys[m->n_meta] = k;
    m->meta_vals[m->n_meta] = v;
    m->n_meta++;
    return 0;
}

const char *model_meta_get(const model *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_keys[i], key) == 0)
            return m->meta_vals[i];
    return NULL;
}

int model_clone(model **out, const model *src)
{
    model *m;
    int rc = model_new(&m, &src->cfg, &src->voc, NULL, 0);
    if (rc)
        return rc;
    memcpy(m->params, src->params, src->n_params * sizeof *m->params);
    for (int i = 0; i < src->n_meta; i++) {
        rc = model_meta_set(m, src->meta_keys[i], src->meta_vals[i]);
        if (rc) {
            model_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}
