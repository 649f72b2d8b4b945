/* routes_data: corpora and training jobs, stored in SQLite (store.h), and a job's progress as
 * server-sent events. */
#include "routes.h"

#include "app.h"
#include "corpus.h"
#include "err.h"
#include "jobopts.h"
#include "jobs.h"
#include "jsonreq.h"
#include "registry.h"
#include "serve.h"
#include "sha256.h"
#include "store.h"
#include "utf8.h"
#include "vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Replies for a store failure: 404 (code what_not_found), 409, 503 with Retry-After (another
 * process holds the database's write lock), 507 (the disk is full) or 500. */
static int store_error_reply(request *r, int rc, const char *what, const char *err)
{
    if (rc == STORE_ENOTFOUND) {
        char code[48];
        snprintf(code, sizeof code, "%s_not_found", what);
        return reply_error(r, 404, code, NULL, "%s", err);
    }
    if (rc == STORE_ECONFLICT)
        return reply_error(r, 409, "conflict", NULL, "%s", err);
    if (rc == STORE_EBUSY)
        /* whoever holds the write lock has already kept it for the store's whole wait */
        return reply_busy(r, STORE_BUSY_TIMEOUT_MS / 1000, "database_busy",
                          "the database is busy, try again shortly: %s", err);
    if (rc == STORE_EFULL)
        return reply_error(r, 507, "insufficient_storage", NULL, "%s", err);
    return reply_error(r, 500, "database", NULL, "%s", err);
}

/* A positive integer id from a path segment, or 0. */
static int64_t parse_id(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return *s && !*end && v > 0 ? (int64_t)v : 0;
}

static int paging_or_reply(request *r, int64_t *limit, int64_t *offset)
{
    const char *names[2] = {"limit", "offset"};
    int64_t *dst[2] = {limit, offset};
    for (int i = 0; i < 2; i++) {
        const char *v = http_query(r, names[i]);
        if (!v)
            continue;
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || n < 0 || (i == 0 && n > 1000))
            return reply_error(r, 400, "out_of_range", names[i], "%s must be an integer from 0 to "
                               "%s", names[i], i == 0 ? "1000" : "2^63"), 1;
        *dst[i] = n;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// corpora

static cJSON *corpus_json(const store_corpus *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)c->id);
    cJSON_AddStringToObject(o, "name", c->name ? c->name : "");
    cJSON_AddNumberToObject(o, "bytes", (double)c->bytes);
    cJSON_AddNumberToObject(o, "chars", (double)c->chars);
    cJSON_AddNumberToObject(o, "distinct_chars", (double)c->distinct_chars);
    cJSON_AddStringToObject(o, "sha256", c->sha256);
    cJSON_AddStringToObject(o, "created_at", c->created_at);
    return o;
}

int route_corpora_create(request *r)
{
    const char *ct = http_header(r, "Content-Type");
    const char *name = http_query(r, "name"), *text = r->body ? r->body : "";
    size_t len = r->body_len;
    cJSON *body = NULL;
    if (ct && strncasecmp(ct, "text/plain", 10) == 0) {
        if (!name || !*name)
            return reply_error(r, 400, "missing_field", "name", "a text/plain upload needs ?name=");
    } else {
        static const char *const fields[] = {"name", "text", NULL};
        body = json_body_or_reply(r);
        if (!body)
            return 0;
        name = NULL, text = NULL;
        if (json_known_fields_or_reply(r, body, fields) ||
            json_string_or_reply(r, body, "name", &name) ||
            json_string_or_reply(r, body, "text", &text))
            goto out;
        if (!name || !*name || !text) {
            reply_error(r, 400, "missing_field", !name || !*name ? "name" : "text",
                        "name and text are required");
            goto out;
        }
        len = strlen(text); /* cJSON strings cannot hold NUL: \u0000 ends them */
    }
    if (strlen(name) > 200) {
        reply_error(r, 400, "out_of_range", "name", "name is longer than 200 bytes");
        goto out;
    }
    uint32_t *cps;
    size_t n;
    char err[512];
    if (utf8_decode(&cps, &n, NULL, text, len, err, sizeof err)) {
        reply_error(r, 400, "invalid_utf8", "text", "%s", err);
        goto out;
    }
    vocab v = {0};
    if (n == 0 || vocab_build(&v, cps, n, err, sizeof err)) {
        free(cps);
        reply_error(r, 400, n == 0 ? "empty_corpus" : "out_of_range", "text",
                    "%s", n == 0 ? "the corpus is empty" : err);
        goto out;
    }
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256_digest(digest, text, len);
    sha256_hex(hex, digest);
    store_corpus c;
    int rc = store_add_corpus(r->app->store, &c, name, text, len, (int64_t)n, v.V, hex, err,
                              sizeof err);
    free(cps);
    vocab_deinit(&v);
    if (rc) {
        store_error_reply(r, rc, "corpus", err);
        goto out;
    }
    reply_json_take(r, 201, corpus_json(&c));
    store_corpus_deinit(&c);
out:
    cJSON_Delete(body);
    return 0;
}

int route_corpora_list(request *r)
{
    int64_t limit = 100, offset = 0;
    if (paging_or_reply(r, &limit, &offset))
        return 0;
    store_corpus *list;
    size_t n;
    char err[512];
    int rc = store_list_corpora(r->app->store, &list, &n, limit, offset, err, sizeof err);
    if (rc)
        return store_error_reply(r, rc, "corpus", err);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "corpora");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, corpus_json(&list[i]));
    store_free_corpora(list, n);
    return reply_json_take(r, 200, o);
}

int route_corpus_get(request *r)
{
    int64_t id = parse_id(r->params[0]);
    store_corpus c;
    char err[512];
    int rc = id ? store_get_corpus(r->app->store, &c, id, 0, err, sizeof err) : STORE_ENOTFOUND;
    if (rc == STORE_ENOTFOUND)
        return reply_error(r, 404, "corpus_not_found", "id", "no corpus %.40s", r->params[0]);
    if (rc)
        return store_error_reply(r, rc, "corpus", err);
    cJSON *o = corpus_json(&c);
    store_corpus_deinit(&c);
    return reply_json_take(r, 200, o);
}

int route_corpus_delete(request *r)
{
    int64_t id = parse_id(r->params[0]);
    char err[512];
    snprintf(err, sizeof err, "no corpus %.40s", r->params[0]);
    int rc = id ? store_delete_corpus(r->app->store, id, err, sizeof err) : STORE_ENOTFOUND;
    if (rc == STORE_ENOTFOUND)
        return reply_error(r, 404, "corpus_not_found", "id", "no corpus %.40s", r->params[0]);
    if (rc)
        return store_error_reply(r, rc, "corpus", err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddBoolToObject(o, "deleted", 1);
    return reply_json_take(r, 200, o);
}

// ----------------------------------------------------------------------------
// jobs

static void add_nullable(cJSON *o, const char *key, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

/* A text, or null when it is NULL or empty (times not reached yet, fields not given). */
static void add_text_or_null(cJSON *o, const char *key, const char *t)
{
    if (t && *t)
        cJSON_AddStringToObject(o, key, t);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *epoch_json(const store_epoch *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", (double)e->epoch);
    add_nullable(o, "train_loss", e->train_loss);
    add_nullable(o, "val_loss", e->val_loss);
    add_nullable(o, "seconds", e->seconds);
    /* stored as one object: the seed text under "seed_text" beside the temperatures */
    cJSON *samples = e->samples ? cJSON_Parse(e->samples) : NULL;
    cJSON *seed = samples ? cJSON_DetachItemFromObjectCaseSensitive(samples, "seed_text") : NULL;
    if (cJSON_IsString(seed)) {
        cJSON_AddItemToObject(o, "sample_seed", seed);
    } else { /* recorded before the seed was kept, or without samples */
        cJSON_Delete(seed);
        cJSON_AddNullToObject(o, "sample_seed");
    }
    cJSON_AddItemToObject(o, "samples", samples ? samples : cJSON_CreateObject());
    return o;
}

static cJSON *job_json(const store_job *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)j->id);
    if (j->corpus_id)
        cJSON_AddNumberToObject(o, "corpus_id", (double)j->corpus_id);
    else
        cJSON_AddNullToObject(o, "corpus_id");
    cJSON_AddStringToObject(o, "model_name", j->model_name);
    cJSON *hp = cJSON_Parse(j->hyperparameters);
    cJSON_AddItemToObject(o, "hyperparameters", hp ? hp : cJSON_CreateObject());
    add_text_or_null(o, "base_model", j->base_model);
    add_text_or_null(o, "unknown_chars", j->base_model && !j->unknown_chars ? "error"
                                                                             : j->unknown_chars);
    /* what a time budget chose (core/budget.h), once the job has started; else null */
    cJSON *plan = j->plan ? cJSON_Parse(j->plan) : NULL;
    cJSON_AddItemToObject(o, "plan", plan ? plan : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "status", store_job_status_name(j->status));
    if (j->error)
        cJSON_AddStringToObject(o, "error", j->error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddBoolToObject(o, "cancel_requested", j->cancel_requested);
    cJSON *p = cJSON_AddObjectToObject(o, "progress");
    const store_progress *sp = &j->progress;
    cJSON_AddNumberToObject(p, "epoch", (double)sp->epoch);
    cJSON_AddNumberToObject(p, "epochs", (double)sp->epochs);
    cJSON_AddNumberToObject(p, "step", (double)sp->step);
    cJSON_AddNumberToObject(p, "steps", (double)sp->steps);
    double fraction = j->status == STORE_JOB_SUCCEEDED ? 1.0 : sp->fraction;
    add_nullable(p, "fraction", fraction);
    add_nullable(p, "chars_per_second", sp->chars_per_sec);
    add_nullable(p, "eta_seconds", j->status == STORE_JOB_RUNNING ? sp->eta_seconds : NAN);
    add_nullable(p, "train_loss", sp->train_loss);
    cJSON_AddNumberToObject(o, "attempts", (double)j->attempts);
    add_text_or_null(o, "created_at", j->created_at);
    add_text_or_null(o, "started_at", j->started_at);
    add_text_or_null(o, "finished_at", j->finished_at);
    add_text_or_null(o, "updated_at", j->updated_at);
    return o;
}

/* The job with its epochs; NULL with *rc set on failure. */
static cJSON *job_full_json(app *a, int64_t id, int *rc, char *err, size_t errlen)
{
    store_job j;
    *rc = store_get_job(a->store, &j, id, err, errlen);
    if (*rc)
        return NULL;
    cJSON *o = job_json(&j);
    store_job_deinit(&j);
    store_epoch *eps;
    size_t n;
    if ((*rc = store_list_epochs(a->store, &eps, &n, id, err, errlen)) != 0) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON *arr = cJSON_AddArrayToObject(o, "epochs");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, epoch_json(&eps[i]));
    store_free_epochs(eps, n);
    return o;
}

int route_jobs_create(request *r)
{
    static const char *const fields[] = {"corpus_id", "model_name", "hyperparameters",
                                         "base_model", "unknown_chars", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    long long corpus_id = 0;
    const char *model_name = NULL, *base_model = NULL, *unknown = NULL;
    char err[512], field[64], pfield[96];
    loaded_model *base = NULL;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_int_or_reply(r, body, "corpus_id", &corpus_id, 1, 9007199254740992LL) ||
        json_string_or_reply(r, body, "model_name", &model_name) ||
        json_string_or_reply(r, body, "base_model", &base_model) ||
        json_string_or_reply(r, body, "unknown_chars", &unknown))
        goto out;
    if (!corpus_id || !model_name) {
        reply_error(r, 400, "missing_field", !corpus_id ? "corpus_id" : "model_name",
                    "corpus_id and model_name are required");
        goto out;
    }
    if (!registry_name_ok(model_name)) {
        reply_error(r, 400, "invalid_model_name", "model_name",
                    "model_name must be 1 to 64 of A-Z a-z 0-9 . _ - and not start with a dot");
        goto out;
    }
    int policy;
    uint32_t replacement;
    if (unknown && !base_model) {
        reply_error(r, 400, "invalid_value", "unknown_chars", "unknown_chars applies to "
                    "fine-tuning (base_model): a new model's vocabulary is its corpus's");
        goto out;
    }
    if (unknown && corpus_unknown_spec_parse(unknown, &policy, &replacement)) {
        reply_error(r, 400, "out_of_range", "unknown_chars", "unknown_chars must be \"error\", "
                    "\"drop\" or \"replace=C\" with C one character");
        goto out;
    }
    /* fine-tuning: the model must exist now, and the options take its architecture */
    if (base_model && model_acquire_or_reply(r, base_model, &base))
        goto out;
    const cJSON *hp = cJSON_GetObjectItemCaseSensitive(body, "hyperparameters");
    if (hp && cJSON_IsNull(hp))
        hp = NULL;
    train_options o;
    if (hp && !cJSON_IsObject(hp)) {
        reply_error(r, 400, "invalid_type", "hyperparameters", "hyperparameters must be an object");
        goto out;
    }
    if (jobopts_parse(&o, hp, base ? &base->m->cfg : NULL, field, sizeof field, err,
                      sizeof err)) {
        snprintf(pfield, sizeof pfield, "hyperparameters%s%s", field[0] ? "." : "", field);
        reply_error(r, 400, "invalid_hyperparameter", pfield, "%s", err);
        goto out;
    }
    char *hp_text = hp ? cJSON_PrintUnformatted(hp) : NULL;
    store_job j;
    int rc = store_add_job(r->app->store, &j, corpus_id, model_name, hp_text ? hp_text : "{}",
                           base_model, unknown, err, sizeof err);
    cJSON_free(hp_text);
    if (rc) {
        if (rc == STORE_ENOTFOUND)
            reply_error(r, 404, "corpus_not_found", "corpus_id", "no corpus %lld", corpus_id);
        else
            store_error_reply(r, rc, "job", err);
        goto out;
    }
    jobs_wake(r->app->jobs);
    reply_json_take(r, 202, job_json(&j));
    store_job_deinit(&j);
out:
    registry_release(r->app->models, base);
    cJSON_Delete(body);
    return 0;
}

int route_jobs_list(request *r)
{
    int64_t limit = 100, offset = 0;
    if (paging_or_reply(r, &limit, &offset))
        return 0;
    store_job_status st = STORE_JOB_ANY;
    const char *status = http_query(r, "status");
    if (status && store_job_status_parse(status, &st))
        return reply_error(r, 400, "out_of_range", "status", "status must be queued, running, "
                           "succeeded, failed or cancelled");
    store_job *list;
    size_t n;
    char err[512];
    int rc = store_list_jobs(r->app->store, &list, &n, st, limit, offset, err, sizeof err);
    if (rc)
        return store_error_reply(r, rc, "job", err);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "jobs");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, job_json(&list[i]));
    store_free_jobs(list, n);
    return reply_json_take(r, 200, o);
}

int route_job_get(request *r)
{
    int64_t id = parse_id(r->params[0]);
    char err[512];
    int rc = STORE_ENOTFOUND;
    cJSON *o = id ? job_full_json(r->app, id, &rc, err, sizeof err) : NULL;
    if (!o)
        return rc == STORE_ENOTFOUND ? reply_error(r, 404, "job_not_found", "id", "no job %.40s",
                                                   r->params[0])
                                     : store_error_reply(r, rc, "job", err);
    return reply_json_take(r, 200, o);
}

int route_job_cancel(request *r)
{
    int64_t id = parse_id(r->params[0]);
    store_job j;
    char err[512];
    snprintf(err, sizeof err, "no job %.40s", r->params[0]);
    int rc = id ? store_cancel_job(r->app->store, &j, id, err, sizeof err) : STORE_ENOTFOUND;
    if (rc == STORE_ENOTFOUND)
        return reply_error(r, 404, "job_not_found", "id", "no job %.40s", r->params[0]);
    if (rc)
        return store_error_reply(r, rc, "job", err);
    if (j.status == STORE_JOB_RUNNING)
        jobs_cancel(r->app->jobs, id);
    cJSON *o = job_json(&j);
    store_job_deinit(&j);
    return reply_json_take(r, 200, o);
}

// ----------------------------------------------------------------------------
// GET /jobs/{id}/events

typedef struct job_events {
    app *a;
    int64_t id;
    char last[STORE_TIME_SIZE + 32]; /* updated_at and status of the last progress event */
    size_t epochs_sent;
    int finished;
    char *pending;
    size_t len, off;
    double last_write;
} job_events;

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void events_append(job_events *ev, const char *event, cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!text)
        return;
    size_t need = ev->len + strlen(event) + strlen(text) + 32;
    char *p = realloc(ev->pending, need);
    if (p) {
        ev->pending = p;
        ev->len += (size_t)sprintf(p + ev->len, "event: %s\ndata: %s\n\n", event, text);
    }
    cJSON_free(text);
}

/* Looks at the job once and queues events for what changed. */
/* The stream's last event when the database cannot be read: the client should not take the
 * silence for a finished job. */
static void events_fail(job_events *ev, const char *err)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", "database");
    cJSON_AddStringToObject(e, "message", err);
    events_append(ev, "error", o);
    ev->finished = 1;
}

static void events_poll(job_events *ev)
{
    store_job j;
    char err[512];
    int rc = store_get_job(ev->a->store, &j, ev->id, err, sizeof err);
    if (rc) {
        if (rc == STORE_ENOTFOUND) /* deleted with its corpus: nothing more will come */
            ev->finished = 1;
        else
            events_fail(ev, err);
        return;
    }
    store_epoch *eps;
    size_t n;
    if (store_list_epochs(ev->a->store, &eps, &n, ev->id, err, sizeof err) != 0) {
        store_job_deinit(&j);
        events_fail(ev, err);
        return;
    }
    for (size_t i = ev->epochs_sent; i < n; i++)
        events_append(ev, "epoch", epoch_json(&eps[i]));
    ev->epochs_sent = n > ev->epochs_sent ? n : ev->epochs_sent;
    store_free_epochs(eps, n);
    char now[sizeof ev->last];
    snprintf(now, sizeof now, "%s %d", j.updated_at, (int)j.status);
    if (strcmp(now, ev->last) != 0) {
        snprintf(ev->last, sizeof ev->last, "%s", now);
        events_append(ev, "progress", job_json(&j));
    }
    if (j.status != STORE_JOB_QUEUED && j.status != STORE_JOB_RUNNING) {
        events_append(ev, "end", job_json(&j));
        ev->finished = 1;
    }
    store_job_deinit(&j);
}

/* Runs on the connection's own thread: it may wait between looks at the database. */
static ssize_t events_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    job_events *ev = cls;
    for (;;) {
        if (ev->off < ev->len) {
            size_t k = ev->len - ev->off < max ? ev->len - ev->off : max;
            memcpy(buf, ev->pending + ev->off, k);
            ev->off += k;
            if (ev->off == ev->len)
                ev->off = ev->len = 0;
            ev->last_write = now_mono();
            return (ssize_t)k;
        }
        if (ev->finished || ev->a->stopping)
            return HTTP_EVENTS_END;
        if (ev->last_write > 0) {
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        events_poll(ev);
        if (ev->len == 0 && now_mono() - ev->last_write > 15) {
            /* a comment line keeps proxies from timing out and finds a gone client */
            char *p = realloc(ev->pending, 16);
            if (p) {
                ev->pending = p;
                ev->len = (size_t)sprintf(p, ": keepalive\n\n");
            }
        }
    }
}

static void events_free(void *cls)
{
    job_events *ev = cls;
    free(ev->pending);
    free(ev);
}

int route_job_events(request *r)
{
    int64_t id = parse_id(r->params[0]);
    store_job j;
    char err[512];
    int rc = id ? store_get_job(r->app->store, &j, id, err, sizeof err) : STORE_ENOTFOUND;
    if (rc == STORE_ENOTFOUND)
        return reply_error(r, 404, "job_not_found", "id", "no job %.40s", r->params[0]);
    if (rc)
        return store_error_reply(r, rc, "job", err);
    store_job_deinit(&j);
    job_events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return reply_error(r, 500, "internal", NULL, "out of memory");
    ev->a = r->app;
    ev->id = id;
    return reply_events(r, events_read, ev, events_free, NULL);
}
