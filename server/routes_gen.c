/* routes_gen: POST /generate (JSON or server-sent events), POST /v1/completions (OpenAI's legacy
 * completions API, streaming and logprobs included) and DELETE /generations/{id}. Handlers check
 * everything a client can get wrong before queueing, so a stream never starts on a bad request. */
#include "routes.h"

#include "app.h"
#include "err.h"
#include "gen.h"
#include "jsonreq.h"
#include "metrics.h"
#include "rng.h"
#include "score.h"
#include "serve.h"
#include "utf8.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STOPS 16

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int client_alive(void *ctx) { return http_client_alive(ctx); }

static const char *finish_name(const gen_job *j)
{
    return j->res.finish_reason == SAMPLE_FINISH_STOP ? "stop" : "length";
}

/* /generate's finish_reason, which also tells a cancelled generation (DELETE /generations/{id}
 * or a shutdown) from one that reached its length; OpenAI's enum has no such value. */
static const char *generate_finish_name(const gen_job *j)
{
    return j->res.finish_reason == SAMPLE_FINISH_CANCELLED ? "cancelled" : finish_name(j);
}

/* Validates the seed text against the model as generation will read it; nonzero if it replied. */
static int seed_text_or_reply(request *r, const loaded_model *lm, const char *field,
                              const char *text, int skip_unknown)
{
    int *ids = NULL;
    size_t n;
    char err[256];
    int rc = sample_encode_text(&ids, &n, lm->m, text, strlen(text), skip_unknown, err, sizeof err);
    free(ids);
    if (rc == CORE_EUTF8 || rc == CORE_EVOCAB)
        return reply_error(r, 400, rc == CORE_EUTF8 ? "invalid_utf8" : "unknown_character", field,
                           "%s: %s", field, err), 1;
    if (rc)
        return reply_error(r, 500, "internal", NULL, "%s", err), 1;
    return 0;
}

static int submit_or_reply(request *r, gen_job *job, loaded_model *lm)
{
    int rc = gen_submit(r->app->gen, job, lm);
    if (rc == CORE_ERANGE) {
        registry_release(r->app->models, lm);
        reply_busy(r, 1,
                   "too many generations running or queued (--max-concurrent %d); retry shortly",
                   r->app->cfg.max_concurrent);
        return 1;
    }
    if (rc) {
        registry_release(r->app->models, lm);
        reply_error(r, 500, "internal", NULL, "cannot schedule the generation");
        return 1;
    }
    return 0;
}

/* The error of a finished job as a reply; 0 if it succeeded. */
static int job_error_or_reply(request *r, gen_job *job)
{
    if (job->timed_out)
        return reply_error(r, 504, "timeout", NULL, "the generation exceeded --request-timeout "
                           "(%g s)", r->app->cfg.request_timeout), 1;
    if (job->rc)
        return reply_error(r, job->rc == CORE_ERANGE ? 400 : 500, core_errname(job->rc), NULL, "%s",
                           job->err), 1;
    return 0;
}

static void add_timing(cJSON *o, const gen_job *j)
{
    cJSON *t = cJSON_AddObjectToObject(o, "timing");
    double total = j->t_end - j->t_submit, run = j->t_end - j->t_start;
    cJSON_AddNumberToObject(t, "total_ms", round(total * 1e4) / 10);
    cJSON_AddNumberToObject(t, "queue_ms", round((j->t_start - j->t_submit) * 1e4) / 10);
    cJSON_AddNumberToObject(t, "chars_per_second",
                            run > 0 ? round((double)j->res.generated_chars / run) : 0);
}

static void add_usage(cJSON *o, const gen_job *j)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "seed_chars", (double)j->res.seed_chars);
    cJSON_AddNumberToObject(u, "generated_chars", (double)j->res.generated_chars);
}

static void add_seed(cJSON *o, uint64_t seed)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    cJSON_AddRawToObject(o, "seed", buf);
}

/* Writes one server-sent event; nonzero if the client is gone. */
static int sse_send(stream *s, cJSON *event)
{
    char *text = cJSON_PrintUnformatted(event);
    cJSON_Delete(event);
    if (!text)
        return 1;
    size_t len = strlen(text);
    char *line = malloc(len + 9);
    if (!line) {
        free(text);
        return 1;
    }
    memcpy(line, "data: ", 6);
    memcpy(line + 6, text, len);
    memcpy(line + 6 + len, "\n\n", 2);
    int rc = stream_write(s, line, len + 8);
    free(line);
    cJSON_free(text);
    return rc != 0;
}

// ----------------------------------------------------------------------------
// POST /generate

typedef struct generate_ctx {
    app *a;
    stream *s;
    gen_job *job;
    char model[72];
} generate_ctx;

static int generate_emit(void *ctx, const char *utf8, size_t len)
{
    generate_ctx *g = ctx;
    if (g->job->deadline > 0 && now_mono() > g->job->deadline) {
        g->job->timed_out = 1;
        return 1;
    }
    char *chunk = strndup(utf8, len); /* the chunk is not NUL-terminated */
    if (!chunk)
        return 1;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "text", chunk);
    free(chunk);
    return sse_send(g->s, e);
}

static void generate_stream_done(gen_job *j)
{
    generate_ctx *g = j->ctx;
    metrics_generated(g->a->metrics, (long long)j->res.generated_chars);
    cJSON *e = cJSON_CreateObject();
    if (j->timed_out || j->rc) {
        cJSON *err = cJSON_AddObjectToObject(e, "error");
        cJSON_AddStringToObject(err, "code", j->timed_out ? "timeout" : core_errname(j->rc));
        cJSON_AddStringToObject(err, "message", j->timed_out ? "the generation exceeded "
                                "--request-timeout" : j->err);
    } else {
        cJSON_AddStringToObject(e, "id", j->id);
        cJSON_AddStringToObject(e, "finish_reason", generate_finish_name(j));
        add_seed(e, j->req.seed);
        add_usage(e, j);
        add_timing(e, j);
    }
    sse_send(g->s, e);
    stream_on_gone(g->s, NULL); /* the job is about to go; the stream may outlive it */
    stream_close(g->s);
    stream_release(g->s);
    free(g);
}

int route_generate(request *r)
{
    static const char *const fields[] = {"model", "seed_text", "temperature", "length", "top_k",
                                         "top_p", "stop", "seed", "stream", "unknown_chars",
                                         "mode", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    const char *model = NULL, *seed_text = NULL, *unknown = "error", *mode = "auto";
    double temperature = 1.0, top_p = 1.0;
    long long length = 200, top_k = 0;
    const char *stops[MAX_STOPS];
    int n_stop = 0, streaming = 0, seed_given = 0;
    uint64_t seed = 0;
    app *a = r->app;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_string_or_reply(r, body, "model", &model) ||
        json_string_or_reply(r, body, "seed_text", &seed_text) ||
        json_number_or_reply(r, body, "temperature", &temperature, 0, 1e6) ||
        json_int_or_reply(r, body, "length", &length, 1, a->cfg.max_length) ||
        json_int_or_reply(r, body, "top_k", &top_k, 0, 1 << 30) ||
        json_number_or_reply(r, body, "top_p", &top_p, 0, 1) ||
        json_strings_or_reply(r, body, "stop", stops, MAX_STOPS, &n_stop) ||
        json_seed_or_reply(r, body, "seed", &seed, &seed_given) ||
        json_bool_or_reply(r, body, "stream", &streaming) ||
        json_string_or_reply(r, body, "unknown_chars", &unknown) ||
        json_string_or_reply(r, body, "mode", &mode))
        goto out;
    if (!seed_text) {
        reply_error(r, 400, "missing_field", "seed_text", "seed_text is required (it may be \"\")");
        goto out;
    }
    if (top_p <= 0) {
        reply_error(r, 400, "out_of_range", "top_p", "top_p must be in (0, 1], got %g", top_p);
        goto out;
    }
    int skip = strcmp(unknown, "skip") == 0;
    if (!skip && strcmp(unknown, "error") != 0) {
        reply_error(r, 400, "out_of_range", "unknown_chars", "unknown_chars must be \"error\" or "
                    "\"skip\"");
        goto out;
    }
    int sample_mode = strcmp(mode, "auto") == 0       ? SAMPLE_MODE_AUTO
                      : strcmp(mode, "stateful") == 0 ? SAMPLE_MODE_STATEFUL
                      : strcmp(mode, "window") == 0   ? SAMPLE_MODE_WINDOW
                                                      : -1;
    if (sample_mode < 0) {
        reply_error(r, 400, "out_of_range", "mode", "mode must be \"auto\", \"stateful\" or "
                    "\"window\"");
        goto out;
    }
    for (int i = 0; i < n_stop; i++) {
        uint32_t *cps;
        size_t n;
        if (utf8_decode(&cps, &n, NULL, stops[i], strlen(stops[i]), NULL, 0)) {
            reply_error(r, 400, "invalid_utf8", "stop", "stop strings must be valid UTF-8");
            goto out;
        }
        free(cps);
    }
    if (!seed_given)
        seed = rng_fresh_seed();
    loaded_model *lm;
    if (model_acquire_or_reply(r, model, &lm))
        goto out;
    if (seed_text_or_reply(r, lm, "seed_text", seed_text, skip)) {
        registry_release(a->models, lm);
        goto out;
    }
    gen_job *job = gen_job_new(seed_text, strlen(seed_text), stops, n_stop);
    if (!job) {
        registry_release(a->models, lm);
        reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    job->req.length = (int)length;
    job->req.temperature = temperature;
    job->req.top_k = (int)top_k;
    job->req.top_p = top_p;
    job->req.seed = seed;
    job->req.skip_unknown = skip;
    job->req.mode = sample_mode;
    if (a->cfg.request_timeout > 0)
        job->deadline = now_mono() + a->cfg.request_timeout;
    char model_name[72];
    snprintf(model_name, sizeof model_name, "%s", lm->name);

    if (streaming) {
        generate_ctx *g = calloc(1, sizeof *g);
        stream *s = g ? stream_new() : NULL;
        if (!s) {
            free(g);
            registry_release(a->models, lm);
            gen_job_release(job);
            reply_error(r, 500, "internal", NULL, "out of memory");
            goto out;
        }
        g->a = a, g->s = s, g->job = job;
        snprintf(g->model, sizeof g->model, "%s", model_name);
        job->req.emit = generate_emit;
        job->req.emit_ctx = g;
        job->ctx = g;
        job->on_done = generate_stream_done;
        stream_on_gone(s, &job->cancel);
        /* This handler's own reference: a short job can end, and its on_done drop the producer's
         * reference, before reply_stream has taken the response's. */
        stream_hold(s);
        if (submit_or_reply(r, job, lm)) {
            stream_on_gone(s, NULL);
            stream_release(s); /* ours */
            stream_release(s); /* the producer's: the job never ran */
            free(g);
            gen_job_release(job);
            goto out;
        }
        reply_stream(r, s, job->id); /* set by gen_submit; we still hold the job */
        stream_release(s);
        gen_job_release(job);
        goto out;
    }

    if (submit_or_reply(r, job, lm)) {
        gen_job_release(job);
        goto out;
    }
    if (!gen_wait(job, client_alive, r)) {
        reply_error(r, 499, "client_closed", NULL, "the client closed the connection");
    } else if (!job_error_or_reply(r, job)) {
        metrics_generated(a->metrics, (long long)job->res.generated_chars);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", job->id);
        cJSON_AddStringToObject(o, "model", model_name);
        cJSON_AddStringToObject(o, "seed_text", seed_text);
        cJSON_AddStringToObject(o, "text", job->res.text);
        cJSON_AddStringToObject(o, "finish_reason", generate_finish_name(job));
        cJSON_AddStringToObject(o, "mode", job->res.mode == SAMPLE_MODE_WINDOW ? "window"
                                                                                : "stateful");
        add_seed(o, seed);
        add_usage(o, job);
        add_timing(o, job);
        reply_json_take(r, 200, o);
    }
    gen_job_release(job);
out:
    cJSON_Delete(body);
    return 0;
}

int route_generation_cancel(request *r)
{
    if (gen_cancel(r->app->gen, r->params[0]) != 0)
        return reply_error(r, 404, "generation_not_found", "id",
                           "no running or queued generation '%.80s'", r->params[0]);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->params[0]);
    cJSON_AddBoolToObject(o, "cancelled", 1);
    return reply_json_take(r, 200, o);
}

// ----------------------------------------------------------------------------
// POST /v1/completions

#define MAX_CHOICES 16

typedef struct completion_ctx {
    app *a;
    stream *s;              /* NULL unless streaming */
    pthread_mutex_t lock;
    int remaining;          /* streaming: holds (completion_drop) */
    int include_usage;      /* streaming: stream_options.include_usage */
    long long prompt_chars, completion_chars; /* streaming: for the usage chunk (lock) */
    char id[64];
    char model[72];
    long long created;
    gen_job *jobs[MAX_CHOICES];
} completion_ctx;

static void completion_free(completion_ctx *c)
{
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static cJSON *chunk_base(completion_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddStringToObject(o, "object", "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)c->created);
    cJSON_AddStringToObject(o, "model", c->model);
    return o;
}

/* Drops k holds on a streaming completion: the handler holds one until it has submitted, each
 * running choice one. The last hold ends the stream with [DONE] and frees it. */
static void completion_drop(completion_ctx *c, int k)
{
    pthread_mutex_lock(&c->lock);
    c->remaining -= k;
    int last = c->remaining == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    if (c->include_usage) { /* OpenAI's last chunk: no choices, the usage of them all */
        cJSON *o = chunk_base(c), *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddArrayToObject(o, "choices");
        cJSON_AddNumberToObject(u, "prompt_tokens", (double)c->prompt_chars);
        cJSON_AddNumberToObject(u, "completion_tokens", (double)c->completion_chars);
        cJSON_AddNumberToObject(u, "total_tokens", (double)(c->prompt_chars + c->completion_chars));
        sse_send(c->s, o);
    }
    stream_write(c->s, "data: [DONE]\n\n", 14);
    stream_close(c->s);
    stream_release(c->s);
    completion_free(c);
}

typedef struct choice_emit {
    completion_ctx *c;
    gen_job *job;
    int index;
} choice_emit;

static int completion_emit(void *ctx, const char *utf8, size_t len)
{
    choice_emit *ce = ctx;
    if (ce->job->deadline > 0 && now_mono() > ce->job->deadline) {
        ce->job->timed_out = 1;
        return 1;
    }
    char *chunk = strndup(utf8, len);
    if (!chunk)
        return 1;
    cJSON *o = chunk_base(ce->c), *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddStringToObject(ch, "text", chunk);
    cJSON_AddNumberToObject(ch, "index", ce->index);
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(choices, ch);
    free(chunk);
    return sse_send(ce->c->s, o);
}

static void completion_stream_done(gen_job *j)
{
    choice_emit *ce = j->req.emit_ctx;
    completion_ctx *c = ce->c;
    metrics_generated(c->a->metrics, (long long)j->res.generated_chars);
    pthread_mutex_lock(&c->lock);
    c->prompt_chars = (long long)j->res.seed_chars;
    c->completion_chars += (long long)j->res.generated_chars;
    pthread_mutex_unlock(&c->lock);
    cJSON *o;
    if (j->timed_out || j->rc) {
        o = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(err, "message", j->timed_out ? "the generation exceeded "
                                "--request-timeout" : j->err);
        cJSON_AddStringToObject(err, "type", "server_error");
        cJSON_AddNullToObject(err, "param");
        cJSON_AddStringToObject(err, "code", j->timed_out ? "timeout" : core_errname(j->rc));
    } else {
        o = chunk_base(c);
        cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
        cJSON_AddStringToObject(ch, "text", "");
        cJSON_AddNumberToObject(ch, "index", ce->index);
        cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddStringToObject(ch, "finish_reason", finish_name(j));
        cJSON_AddItemToArray(choices, ch);
    }
    sse_send(c->s, o);
    if (ce->index == 0)
        stream_on_gone(c->s, NULL); /* choice 0's cancel flag is registered; the job goes now */
    free(ce);
    completion_drop(c, 1);
}

/* OpenAI's logprobs object for the characters of text (prompt + completion) from index first
 * on (0 when echoing the prompt, else the prompt's length), each scored in the context of all
 * before it; the text's first character has no prediction: null. Offsets count characters. */
static int add_logprobs(request *r, cJSON *choice, const loaded_model *lm, const char *text,
                        size_t first, int top_n)
{
    score_result sr;
    char err[256];
    int rc = score_text(&sr, lm->m, text, strlen(text), top_n, 0, err, sizeof err);
    if (rc)
        return reply_error(r, 500, "internal", NULL, "scoring failed: %s", err), 1;
    cJSON *lp = cJSON_AddObjectToObject(choice, "logprobs");
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens");
    cJSON *token_lp = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *top = cJSON_AddArrayToObject(lp, "top_logprobs");
    cJSON *offsets = cJSON_AddArrayToObject(lp, "text_offset");
    for (size_t i = first; i < sr.n; i++) {
        char ch[5] = {0};
        utf8_encode(ch, lm->m->voc.chars[sr.ids[i]]);
        cJSON_AddItemToArray(tokens, cJSON_CreateString(ch));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)i));
        if (i == 0) {
            cJSON_AddItemToArray(token_lp, cJSON_CreateNull());
            cJSON_AddItemToArray(top, cJSON_CreateNull());
            continue;
        }
        cJSON_AddItemToArray(token_lp, cJSON_CreateNumber(sr.logprobs[i]));
        if (top_n > 0) {
            cJSON *alts = cJSON_CreateObject();
            for (int k = 0; k < top_n; k++) {
                const score_alt *alt = &sr.top[i * (size_t)top_n + k];
                char ac[5] = {0};
                utf8_encode(ac, lm->m->voc.chars[alt->id]);
                cJSON_AddNumberToObject(alts, ac, alt->logprob);
            }
            /* OpenAI lists the chosen token too, when it is not among the top n */
            char chosen[5] = {0};
            utf8_encode(chosen, lm->m->voc.chars[sr.ids[i]]);
            if (!cJSON_GetObjectItemCaseSensitive(alts, chosen))
                cJSON_AddNumberToObject(alts, chosen, sr.logprobs[i]);
            cJSON_AddItemToArray(top, alts);
        } else {
            cJSON_AddItemToArray(top, cJSON_CreateNull());
        }
    }
    score_result_deinit(&sr);
    return 0;
}

int route_completions(request *r)
{
    /* what the official clients send; accepted but without effect: user, presence and frequency
     * penalties of 0, logit_bias {}, best_of equal to n */
    static const char *const fields[] = {"model", "prompt", "max_tokens", "temperature", "top_p",
                                         "n", "stop", "seed", "stream", "logprobs", "echo", "user",
                                         "presence_penalty", "frequency_penalty", "logit_bias",
                                         "best_of", "suffix", "top_k", "stream_options", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    app *a = r->app;
    const char *model = NULL, *prompt = "", *suffix = NULL;
    double temperature = 1.0, top_p = 1.0, presence = 0, frequency = 0;
    long long max_tokens = 16, n = 1, logprobs = -1, top_k = 0, best_of = -1;
    int streaming = 0, echo = 0, seed_given = 0, n_stop = 0;
    uint64_t seed = 0;
    const char *stops[4];
    completion_ctx *c = NULL;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_string_or_reply(r, body, "model", &model) ||
        json_int_or_reply(r, body, "max_tokens", &max_tokens, 0, a->cfg.max_length) ||
        json_number_or_reply(r, body, "temperature", &temperature, 0, 1e6) ||
        json_number_or_reply(r, body, "top_p", &top_p, 0, 1) ||
        json_int_or_reply(r, body, "n", &n, 1, MAX_CHOICES) ||
        json_strings_or_reply(r, body, "stop", stops, 4, &n_stop) ||
        json_seed_or_reply(r, body, "seed", &seed, &seed_given) ||
        json_bool_or_reply(r, body, "stream", &streaming) ||
        json_int_or_reply(r, body, "logprobs", &logprobs, 0, 5) ||
        json_bool_or_reply(r, body, "echo", &echo) ||
        json_int_or_reply(r, body, "top_k", &top_k, 0, 1 << 30) ||
        json_number_or_reply(r, body, "presence_penalty", &presence, 0, 0) ||
        json_number_or_reply(r, body, "frequency_penalty", &frequency, 0, 0) ||
        json_int_or_reply(r, body, "best_of", &best_of, 1, MAX_CHOICES) ||
        json_string_or_reply(r, body, "suffix", &suffix))
        goto out;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child)) {
        prompt = p->child->valuestring;
    } else if (p && !cJSON_IsNull(p) && !cJSON_IsString(p)) {
        reply_error(r, 400, "invalid_type", "prompt", "prompt must be a string (or an array of one "
                    "string)");
        goto out;
    } else if (cJSON_IsString(p)) {
        prompt = p->valuestring;
    }
    if (suffix) {
        reply_error(r, 400, "unsupported", "suffix", "suffix (insertion) is not supported");
        goto out;
    }
    int include_usage = 0;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        static const char *const so_fields[] = {"include_usage", NULL};
        if (!cJSON_IsObject(so)) {
            reply_error(r, 400, "invalid_type", "stream_options", "stream_options must be an object");
            goto out;
        }
        if (json_known_fields_or_reply(r, so, so_fields) ||
            json_bool_or_reply(r, so, "include_usage", &include_usage))
            goto out;
    }
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(body, "logit_bias");
    if (bias && !cJSON_IsNull(bias) && !(cJSON_IsObject(bias) && !bias->child)) {
        reply_error(r, 400, "unsupported", "logit_bias", "logit_bias is not supported (only {})");
        goto out;
    }
    if (best_of >= 0 && best_of != n) {
        reply_error(r, 400, "unsupported", "best_of", "best_of must equal n");
        goto out;
    }
    if (top_p <= 0) {
        reply_error(r, 400, "out_of_range", "top_p", "top_p must be in (0, 1], got %g", top_p);
        goto out;
    }
    if (streaming && logprobs >= 0) {
        reply_error(r, 400, "unsupported", "logprobs", "logprobs are not supported with stream");
        goto out;
    }
    if (max_tokens == 0 && !echo) {
        reply_error(r, 400, "out_of_range", "max_tokens", "max_tokens must be at least 1 unless "
                    "echo is true");
        goto out;
    }
    if (!seed_given)
        seed = rng_fresh_seed();
    loaded_model *lm;
    if (model_acquire_or_reply(r, model, &lm))
        goto out;
    if (seed_text_or_reply(r, lm, "prompt", prompt, 0)) {
        registry_release(a->models, lm);
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        registry_release(a->models, lm);
        reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->a = a;
    c->created = (long long)time(NULL);
    snprintf(c->model, sizeof c->model, "%s", lm->name);
    snprintf(c->id, sizeof c->id, "cmpl-%016llx", (unsigned long long)rng_fresh_seed());
    int choices = (int)n;
    /* every choice holds its own model reference */
    loaded_model *refs[MAX_CHOICES];
    refs[0] = lm;
    for (int i = 1; i < choices; i++) {
        char err[64];
        if (registry_acquire(a->models, lm->name, &refs[i], err, sizeof err)) {
            for (int k = 0; k < i; k++)
                registry_release(a->models, refs[k]);
            reply_error(r, 500, "internal", NULL, "cannot load the model again");
            goto out;
        }
    }
    for (int i = 0; i < choices; i++) {
        gen_job *job = gen_job_new(prompt, strlen(prompt), stops, n_stop);
        if (!job) {
            for (int k = i; k < choices; k++)
                registry_release(a->models, refs[k]);
            reply_error(r, 500, "internal", NULL, "out of memory");
            choices = i;
            goto wait;
        }
        job->req.length = (int)max_tokens;
        job->req.temperature = temperature;
        job->req.top_p = top_p;
        job->req.top_k = (int)top_k;
        job->req.seed = seed + (uint64_t)i; /* distinct choices, each reproducible */
        if (a->cfg.request_timeout > 0)
            job->deadline = now_mono() + a->cfg.request_timeout;
        c->jobs[i] = job;
    }
    if (streaming) {
        c->s = stream_new();
        if (!c->s) {
            for (int i = 0; i < choices; i++) {
                registry_release(a->models, refs[i]);
                gen_job_release(c->jobs[i]);
            }
            reply_error(r, 500, "internal", NULL, "out of memory");
            goto out;
        }
        c->remaining = choices + 1; /* one per choice, one for this handler */
        c->include_usage = include_usage;
        for (int i = 0; echo && *prompt && i < choices; i++) { /* the prompt comes first */
            cJSON *o = chunk_base(c), *arr = cJSON_AddArrayToObject(o, "choices");
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddStringToObject(ch, "text", prompt);
            cJSON_AddNumberToObject(ch, "index", i);
            cJSON_AddNullToObject(ch, "logprobs");
            cJSON_AddNullToObject(ch, "finish_reason");
            cJSON_AddItemToArray(arr, ch);
            sse_send(c->s, o);
        }
        int submitted = 0;
        for (int i = 0; i < choices; i++) {
            choice_emit *ce = calloc(1, sizeof *ce);
            gen_job *job = c->jobs[i];
            if (ce) {
                ce->c = c, ce->job = job, ce->index = i;
                job->req.emit = completion_emit;
                job->req.emit_ctx = ce;
                job->on_done = completion_stream_done;
            }
            if (i == 0)
                stream_on_gone(c->s, &job->cancel);
            if (!ce || gen_submit(a->gen, job, refs[i]) != 0) {
                free(ce);
                for (int k = i; k < choices; k++) {
                    registry_release(a->models, refs[k]);
                    gen_job_release(c->jobs[k]);
                }
                if (submitted == 0) {
                    stream_on_gone(c->s, NULL);
                    stream_release(c->s);
                    completion_free(c);
                    c = NULL;
                    reply_busy(r, 1, "too many generations running or queued");
                    goto out;
                }
                /* the choices that run finish the stream; the others never hold it */
                completion_drop(c, choices - i); /* never the last: this handler holds one */
                break;
            }
            submitted++;
        }
        reply_stream(r, c->s, NULL);
        for (int i = 0; i < submitted; i++)
            gen_job_release(c->jobs[i]);
        completion_drop(c, 1);
        c = NULL; /* freed by the last hold */
        goto out;
    }
    for (int i = 0; i < choices; i++) {
        if (gen_submit(a->gen, c->jobs[i], refs[i]) != 0) {
            for (int k = i; k < choices; k++) {
                registry_release(a->models, refs[k]);
                gen_job_release(c->jobs[k]);
                c->jobs[k] = NULL;
            }
            for (int k = 0; k < i; k++)
                c->jobs[k]->cancel = 1;
            reply_busy(r, 1, "too many generations running or queued");
            choices = i;
            goto wait;
        }
    }
wait:
    for (int i = 0; i < choices; i++)
        if (!gen_wait(c->jobs[i], client_alive, r))
            for (int k = i + 1; k < choices; k++)
                c->jobs[k]->cancel = 1;
    if (r->status) /* replied already (out of memory or busy) */
        goto release;
    if (!http_client_alive(r)) {
        reply_error(r, 499, "client_closed", NULL, "the client closed the connection");
        goto release;
    }
    for (int i = 0; i < choices; i++)
        if (job_error_or_reply(r, c->jobs[i]))
            goto release;
    cJSON *o = chunk_base(c), *arr = cJSON_AddArrayToObject(o, "choices");
    long long prompt_chars = (long long)c->jobs[0]->res.seed_chars, completion_chars = 0;
    for (int i = 0; i < choices; i++) {
        gen_job *j = c->jobs[i];
        metrics_generated(a->metrics, (long long)j->res.generated_chars);
        completion_chars += (long long)j->res.generated_chars;
        size_t plen = strlen(prompt);
        char *text = malloc(plen + j->res.text_len + 1);
        if (!text) {
            cJSON_Delete(o);
            reply_error(r, 500, "internal", NULL, "out of memory");
            goto release;
        }
        memcpy(text, prompt, plen);
        memcpy(text + plen, j->res.text, j->res.text_len + 1);
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddStringToObject(ch, "text", echo ? text : text + plen);
        cJSON_AddNumberToObject(ch, "index", i);
        if (logprobs >= 0) {
            loaded_model *again;
            char err[64];
            int failed = registry_acquire(a->models, c->model, &again, err, sizeof err) ||
                         add_logprobs(r, ch, again, text, echo ? 0 : (size_t)prompt_chars,
                                      (int)logprobs);
            if (!failed)
                registry_release(a->models, again);
            if (failed) {
                free(text);
                cJSON_Delete(ch);
                cJSON_Delete(o);
                if (!r->status)
                    reply_error(r, 500, "internal", NULL, "the model is gone");
                goto release;
            }
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
        free(text);
        cJSON_AddStringToObject(ch, "finish_reason", finish_name(j));
        cJSON_AddItemToArray(arr, ch);
    }
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)prompt_chars);
    cJSON_AddNumberToObject(usage, "completion_tokens", (double)completion_chars);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)(prompt_chars + completion_chars));
    add_seed(o, seed);
    reply_json_take(r, 200, o);
release:
    for (int i = 0; i < choices; i++)
        gen_job_release(c->jobs[i]);
out:
    if (c)
        completion_free(c);
    cJSON_Delete(body);
    return 0;
}
