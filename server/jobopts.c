/* jobopts: hyperparameters by name, checked as `lstmgen train` checks its options. */
#include "jobopts.h"

#include "err.h"
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct num_field {
    const char *name;
    double lo, hi;
    int integer;
} num_field;

static const num_field numbers[] = {
    {"layers", 1, MODEL_MAX_LAYERS, 1},    {"hidden", MODEL_MIN_HIDDEN, MODEL_MAX_HIDDEN, 1},
    {"dropout", 0, 0.99, 0},               {"maxlen", 1, 100000, 1},
    {"step", 1, 100000, 1},                {"seq_len", 1, 100000, 1},
    {"batch", 1, 65536, 1},                {"epochs", 1, 1000000, 1},
    {"lr", 1e-9, 10, 0},                   {"lr_decay", 1e-6, 1, 0},
    {"clip", 0, 1e6, 0},                   {"val_fraction", 0, 0.5, 0},
    {"seed", 0, 9007199254740992.0, 1},    {"max_seconds", 0.001, 1e9, 0},
    {"sample_chars", 0, 100000, 1},
};
#define N_NUMBERS (sizeof numbers / sizeof *numbers)

static int fail(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
                const char *msg)
{
    snprintf(field, fieldlen, "%s", name);
    return core_errf(err, errlen, CORE_ERANGE, "hyperparameters.%s %s", name, msg);
}

int jobopts_parse(train_options *o, const cJSON *hp, char *field, size_t fieldlen, char *err,
                  size_t errlen)
{
    train_options_default(o);
    if (hp && !cJSON_IsObject(hp))
        return fail(field, fieldlen, "", err, errlen, "must be an object");
    const cJSON *regime = hp ? cJSON_GetObjectItemCaseSensitive(hp, "regime") : NULL;
    int seq = 0;
    if (regime && !cJSON_IsNull(regime)) {
        if (!cJSON_IsString(regime) || (strcmp(regime->valuestring, "window") != 0 &&
                                        strcmp(regime->valuestring, "sequence") != 0))
            return fail(field, fieldlen, "regime", err, errlen,
                        "must be \"window\" or \"sequence\"");
        seq = strcmp(regime->valuestring, "sequence") == 0;
    }
    train_options_regime_defaults(o, seq ? REGIME_SEQUENCE : REGIME_WINDOW);
    int given_epochs = 0, given_lr = 0, given_dropout = 0;
    for (const cJSON *c = hp ? hp->child : NULL; c; c = c->next) {
        const char *k = c->string;
        if (strcmp(k, "regime") == 0)
            continue;
        if (cJSON_IsNull(c))
            continue;
        if (strcmp(k, "optimizer") == 0) {
            int kind = cJSON_IsString(c) ? optim_parse(c->valuestring) : -1;
            if (kind < 0)
                return fail(field, fieldlen, k, err, errlen, "must be \"rmsprop\" or \"adam\"");
            if (kind != o->optimizer && !given_lr) /* the optimizer's own default rate */
                o->lr = kind == OPTIM_ADAM ? 0.002f : 0.01f;
            o->optimizer = kind;
            continue;
        }
        if (strcmp(k, "lowercase") == 0) {
            if (!cJSON_IsBool(c))
                return fail(field, fieldlen, k, err, errlen, "must be true or false");
            o->cfg.lowercase = cJSON_IsTrue(c);
            continue;
        }
        const num_field *f = NULL;
        for (size_t i = 0; i < N_NUMBERS && !f; i++)
            if (strcmp(numbers[i].name, k) == 0)
                f = &numbers[i];
        if (!f)
            return fail(field, fieldlen, k, err, errlen, "is not a known hyperparameter");
        double v = c->valuedouble;
        char msg[96];
        snprintf(msg, sizeof msg, "must be %s from %g to %g",
                 f->integer ? "an integer" : "a number", f->lo, f->hi);
        if (!cJSON_IsNumber(c) || !isfinite(v) || v < f->lo || v > f->hi ||
            (f->integer && v != floor(v)))
            return fail(field, fieldlen, k, err, errlen, msg);
        if (strcmp(k, "layers") == 0) o->cfg.L = (int)v;
        else if (strcmp(k, "hidden") == 0) o->cfg.H = (int)v;
        else if (strcmp(k, "dropout") == 0) o->cfg.dropout = (float)v, given_dropout = 1;
        else if (strcmp(k, "maxlen") == 0) o->cfg.maxlen = (int)v;
        else if (strcmp(k, "step") == 0) o->cfg.step = (int)v;
        else if (strcmp(k, "seq_len") == 0) o->cfg.seq_len = (int)v;
        else if (strcmp(k, "batch") == 0) o->batch = (int)v;
        else if (strcmp(k, "epochs") == 0) o->epochs = (int)v, given_epochs = 1;
        else if (strcmp(k, "lr") == 0) o->lr = (float)v, given_lr = 1;
        else if (strcmp(k, "lr_decay") == 0) o->lr_decay = (float)v;
        else if (strcmp(k, "clip") == 0) o->clip = (float)v;
        else if (strcmp(k, "val_fraction") == 0) o->val_fraction = v;
        else if (strcmp(k, "seed") == 0) o->seed = (uint64_t)v;
        else if (strcmp(k, "max_seconds") == 0) o->max_seconds = v;
        else if (strcmp(k, "sample_chars") == 0) o->sample_chars = (int)v;
    }
    if (!given_dropout && o->cfg.L == 1)
        o->cfg.dropout = 0.0f; /* dropout acts between layers: none with one */
    if (!given_epochs && o->max_seconds > 0)
        o->epochs = 1000000; /* a time budget without an epoch count: train until it runs out */
    o->out = "-"; /* checked by train_options_check; the worker sets the real path */
    int rc = train_options_check(o, err, errlen);
    if (rc)
        snprintf(field, fieldlen, "%s", "");
    return rc;
}
