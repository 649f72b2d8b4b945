/* jobopts: a job's hyperparameters, read by the training options' table (core/trainopts.c), so a
 * job takes exactly what `lstmgen train` takes, checked the same way. */
#include "jobopts.h"

#include "err.h"
#include "trainopts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int fail(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
                const char *msg)
{
    snprintf(field, fieldlen, "%s", name);
    return core_errf(err, errlen, CORE_ERANGE, "hyperparameters.%s %s", name, msg);
}

/* The JSON value of option id as the table's number: a choice's index, a flag's 0 or 1. */
static int json_value(int id, const cJSON *c, double *v, char *err, size_t errlen)
{
    const train_opt *t = &train_opts[id];
    switch (t->kind) {
    case TOPT_BOOL:
        if (!cJSON_IsBool(c))
            return core_errf(err, errlen, CORE_ERANGE, "must be true or false");
        *v = cJSON_IsTrue(c);
        return 0;
    case TOPT_CHOICE:
        if (!cJSON_IsString(c))
            return core_errf(err, errlen, CORE_ERANGE, "must be a string");
        return train_opt_parse(id, c->valuestring, v, err, errlen);
    default:
        if (!cJSON_IsNumber(c))
            return core_errf(err, errlen, CORE_ERANGE, "must be %s",
                             t->kind == TOPT_INT ? "an integer" : "a number");
        *v = c->valuedouble;
        return train_opt_check(id, *v, err, errlen);
    }
}

int jobopts_parse(train_options *o, const cJSON *hp, const model_config *base, char *field,
                  size_t fieldlen, char *err, size_t errlen)
{
    if (hp && !cJSON_IsObject(hp))
        return fail(field, fieldlen, "", err, errlen, "must be an object");
    int given[TOPT_COUNT] = {0};
    double value[TOPT_COUNT] = {0};
    for (const cJSON *c = hp ? hp->child : NULL; c; c = c->next) {
        int id = train_opt_find(c->string);
        if (id < 0 || strchr(c->string, '-')) /* JSON keys are written with '_' only */
            return fail(field, fieldlen, c->string, err, errlen, "is not a known hyperparameter");
        if (cJSON_IsNull(c))
            continue; /* null takes the default */
        char msg[256];
        if (json_value(id, c, &value[id], msg, sizeof msg)) {
            /* the table's message starts with the name; say it once, with its path */
            const char *rest = strncmp(msg, c->string, strlen(c->string)) == 0
                                   ? msg + strlen(c->string) + 1
                                   : msg;
            return fail(field, fieldlen, c->string, err, errlen, rest);
        }
        given[id] = 1;
    }
    const char *bad = NULL;
    int rc = base ? train_opts_adopt_model(given, value, base, &bad, err, errlen) : 0;
    if (rc == 0)
        rc = train_opts_build(o, given, value, &bad, err, errlen);
    if (rc == 0) {
        o->out = "-"; /* checked by train_options_check; the worker sets the real path */
        rc = train_options_check(o, err, errlen);
    }
    if (rc)
        snprintf(field, fieldlen, "%s", bad ? bad : "");
    return rc;
}
