/* routes_models: the models directory over HTTP, in lstmgen's shape and in OpenAI's. */
#include "routes.h"

#include "app.h"
#include "err.h"
#include "registry.h"
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void iso_time(char *buf, size_t n, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void add_meta_number(cJSON *o, const char *key, const model *m, const char *meta)
{
    const char *v = model_meta_get(m, meta);
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (v && *v && !*end)
        cJSON_AddNumberToObject(o, key, d);
    else
        cJSON_AddNullToObject(o, key);
}

/* The description of a loaded model (GET /models/{name}, and each item of GET /models). */
static cJSON *describe(app *a, const loaded_model *lm, int is_default)
{
    const model *m = lm->m;
    cJSON *o = cJSON_CreateObject();
    char when[32];
    cJSON_AddStringToObject(o, "name", lm->name);
    cJSON_AddBoolToObject(o, "default", is_default);
    cJSON_AddNumberToObject(o, "vocab_size", m->V);
    cJSON_AddNumberToObject(o, "layers", m->cfg.L);
    cJSON_AddNumberToObject(o, "hidden", m->cfg.H);
    cJSON_AddNumberToObject(o, "parameters", (double)m->n_params);
    cJSON_AddStringToObject(o, "regime", model_regime_name(m->cfg.regime));
    cJSON_AddNumberToObject(o, "maxlen", m->cfg.maxlen);
    cJSON_AddBoolToObject(o, "lowercase", m->cfg.lowercase);
    add_meta_number(o, "val_loss", m, "val_loss");
    add_meta_number(o, "train_loss", m, "train_loss");
    add_meta_number(o, "epochs", m, "epochs");
    const char *sha = model_meta_get(m, "corpus_sha256");
    if (sha)
        cJSON_AddStringToObject(o, "corpus_sha256", sha);
    else
        cJSON_AddNullToObject(o, "corpus_sha256");
    add_meta_number(o, "job_id", m, "job_id");
    const char *parent = model_meta_get(m, "parent_model"); /* fine-tuned from */
    if (parent)
        cJSON_AddStringToObject(o, "parent_model", parent);
    else
        cJSON_AddNullToObject(o, "parent_model");
    const char *created = model_meta_get(m, "created_at");
    if (created)
        cJSON_AddStringToObject(o, "created_at", created);
    cJSON_AddNumberToObject(o, "file_size", (double)lm->file_size);
    iso_time(when, sizeof when, lm->mtime.tv_sec);
    cJSON_AddStringToObject(o, "modified_at", when);
    (void)a;
    return o;
}

int route_models_list(request *r)
{
    app *a = r->app;
    char **names;
    int n;
    if (registry_list(a->models, &names, &n))
        return reply_error(r, 500, "models_dir", NULL, "cannot read the models directory");
    char def[80] = "";
    app_default_model(a, def, sizeof def);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < n; i++) {
        loaded_model *lm;
        char err[256];
        int rc = registry_acquire(a->models, names[i], &lm, err, sizeof err);
        if (rc == 0) {
            cJSON_AddItemToArray(arr, describe(a, lm, strcmp(def, names[i]) == 0));
            registry_release(a->models, lm);
        } else if (rc != CORE_ENOTFOUND) { /* listed but unusable: say so rather than hide it */
            cJSON *bad = cJSON_CreateObject();
            cJSON_AddStringToObject(bad, "name", names[i]);
            cJSON_AddStringToObject(bad, "error", err);
            cJSON_AddItemToArray(arr, bad);
        }
        free(names[i]);
    }
    free(names);
    if (def[0])
        cJSON_AddStringToObject(o, "default_model", def);
    else
        cJSON_AddNullToObject(o, "default_model");
    return reply_json_take(r, 200, o);
}

int route_model_get(request *r)
{
    loaded_model *lm;
    if (model_acquire_or_reply(r, r->params[0], &lm))
        return 0;
    char def[80] = "";
    app_default_model(r->app, def, sizeof def);
    cJSON *o = describe(r->app, lm, strcmp(def, lm->name) == 0);
    registry_release(r->app->models, lm);
    return reply_json_take(r, 200, o);
}

int route_model_delete(request *r)
{
    if (registry_is_readonly(r->app->models, r->params[0]))
        return reply_error(r, 403, "read_only", "name", "model '%s' is in a read-only directory "
                           "(a bundled model) and cannot be deleted", r->params[0]);
    char err[256];
    int rc = registry_delete(r->app->models, r->params[0], err, sizeof err);
    if (rc == CORE_EINVAL)
        return reply_error(r, 400, "invalid_model_name", "name", "%s", err);
    if (rc == CORE_ENOTFOUND)
        return reply_error(r, 404, "model_not_found", "name", "%s", err);
    if (rc)
        return reply_error(r, 500, "models_dir", NULL, "%s", err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->params[0]);
    cJSON_AddBoolToObject(o, "deleted", 1);
    return reply_json_take(r, 200, o);
}

/* A model in OpenAI's shape: created is the file's modification time. */
static cJSON *openai_model(app *a, const char *id, const char *name)
{
    char path[4200];
    struct stat st;
    registry_path(a->models, name, path, sizeof path);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", stat(path, &st) == 0 ? (double)st.st_mtim.tv_sec : 0);
    cJSON_AddStringToObject(m, "owned_by", "lstmgen");
    if (strcmp(id, name) != 0)
        cJSON_AddStringToObject(m, "root", name); /* what the alias stands for */
    return m;
}

int route_openai_models(request *r)
{
    char **names;
    int n;
    if (registry_list(r->app->models, &names, &n))
        return reply_error(r, 500, "models_dir", NULL, "cannot read the models directory");
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "data");
    cJSON_AddStringToObject(o, "object", "list");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, openai_model(r->app, names[i], names[i]));
        free(names[i]);
    }
    free(names);
    return reply_json_take(r, 200, o);
}

/* GET /v1/models/{id}: a model by name; "default" is the server's default model when no model
 * has that name (a request that names no model gets the same one). */
int route_openai_model_get(request *r)
{
    const char *id = r->params[0];
    char name[sizeof r->params[0]], err[256];
    loaded_model *lm;
    snprintf(name, sizeof name, "%s", id);
    int rc = registry_acquire(r->app->models, id, &lm, err, sizeof err);
    if (rc == CORE_ENOTFOUND && strcmp(id, "default") == 0)
        app_default_model(r->app, name, sizeof name);
    if (rc == 0)
        registry_release(r->app->models, lm);
    else if (model_acquire_or_reply(r, name, &lm)) /* the alias, or the same error answered */
        return 0;
    else
        registry_release(r->app->models, lm);
    return reply_json_take(r, 200, openai_model(r->app, id, name));
}
