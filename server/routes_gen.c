/* routes_gen: POST /generate (JSON or server-sent events), POST /v1/completions (OpenAI's
 * completions API, streaming and logprobs included), GET /generations and
 * DELETE /generations/{id}. A handler reads its fields, checks the request exactly as the
 * stream will read it (sample_request_check, core's), submits it to the model's scheduler, and
 * then only waits for (gen_wait) or writes out (gen_take) what the scheduler delivers. */
#include "routes.h"

#include "app.h"
#include "err.h"
#include "gen.h"
#include "jsonreq.h"
#include "metrics.h"
#include "rng.h"
#include "serve.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OPENAI_MAX_STOPS 4 /* OpenAI's own limit, which its clients expect */

// ----------------------------------------------------------------------------
// what every generation route shares

/* How a route names core's sample_request fields (sample_request_check's *field), for errors. */
typedef struct field_name {
    const char *core, *json;
} field_name;

static const char *json_field(const field_name *names, const char *core)
{
    for (; names && names->core; names++)
        if (strcmp(names->core, core) == 0)
            return names->json;
    return core;
}

/* Checks q against lm's model, then queues it for n choices. NULL after a reply: 400 naming the
 * field, 503 with Retry-After when the queue is full or the server is stopping. */
static gen_req *submit_or_reply(request *r, loaded_model *lm, const sample_request *q, int n,
                                int streaming, const field_name *names)
{
    const char *field = NULL;
    char err[512];
    int rc = sample_request_check(q, lm->m, &field, err, sizeof err);
    if (rc) {
        const char *code = rc == CORE_EUTF8    ? "invalid_utf8"
                           : rc == CORE_EVOCAB ? "unknown_character"
                           : rc == CORE_ERANGE ? "out_of_range"
                           : rc == CORE_EINVAL ? "invalid_value"
                                               : "internal";
        const char *param = field ? json_field(names, field) : NULL;
        reply_error(r, rc == CORE_ENOMEM ? 500 : 400, code, param, "%s%s%s", param ? param : "",
                    param ? ": " : "", err);
        return NULL;
    }
    gen_req *g = gen_req_new(q, n, streaming);
    if (!g) {
        reply_error(r, 500, "internal", NULL, "out of memory");
        return NULL;
    }
    int retry = 1;
    rc = gen_submit(r->app->gen, g, lm, &retry);
    if (rc == CORE_ERANGE || rc == CORE_ECANCELLED) {
        reply_busy(r, retry, rc == CORE_ECANCELLED ? "the server is shutting down"
                                                   : "too many generations running or queued "
                                                     "(--max-concurrent %d); retry shortly",
                   r->app->cfg.max_concurrent);
    } else if (rc) {
        reply_error(r, 500, "internal", NULL, "cannot schedule the generation");
    }
    if (rc) {
        gen_req_release(g);
        return NULL;
    }
    return g;
}

/* Waits for a non-streamed request (a gone client cancels it); nonzero after an error reply. */
static int outcome_or_reply(request *r, gen_req *g)
{
    if (!gen_wait(g, http_client_fd(r)))
        return reply_error(r, 499, "client_closed", NULL, "the client closed the connection"), 1;
    if (g->timed_out)
        return reply_error(r, 504, "timeout", NULL, "the generation exceeded --request-timeout "
                           "(%g s)", r->app->cfg.request_timeout), 1;
    if (g->rc)
        return reply_error(r, 500, core_errname(g->rc), NULL, "generation failed: %s",
                           core_strerror(g->rc)), 1;
    return 0;
}

static size_t generated_chars(const gen_req *g)
{
    size_t n = 0;
    for (int i = 0; i < g->n; i++)
        n += g->choice[i].started ? g->choice[i].gs.chars : 0;
    return n;
}

static size_t seed_chars(const gen_req *g)
{
    return g->choice[0].started ? g->choice[0].gs.n_seed : 0;
}

/* OpenAI's finish_reason has no "cancelled": a cancelled choice ends as "length" there, while
 * /generate tells it apart (sample_finish_name). */
static const char *finish_name(int finish)
{
    return finish == SAMPLE_FINISH_CANCELLED ? "length" : sample_finish_name(finish);
}

static void add_seed(cJSON *o, uint64_t seed)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    cJSON_AddRawToObject(o, "seed", buf); /* an integer token: a double would round above 2^53 */
}

static void add_timing(cJSON *o, const gen_req *g)
{
    cJSON *t = cJSON_AddObjectToObject(o, "timing");
    double run = g->t_end - g->t_start;
    cJSON_AddNumberToObject(t, "total_ms", round((g->t_end - g->t_submit) * 1e4) / 10);
    cJSON_AddNumberToObject(t, "queue_ms", round((g->t_start - g->t_submit) * 1e4) / 10);
    cJSON_AddNumberToObject(t, "chars_per_second",
                            run > 0 ? round((double)generated_chars(g) / run) : 0);
}

static void add_usage(cJSON *o, const gen_req *g)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "seed_chars", (double)seed_chars(g));
    cJSON_AddNumberToObject(u, "generated_chars", (double)generated_chars(g));
}

/* The error of a request that ended badly, as an event's "error" object; NULL if it did not. */
static cJSON *outcome_error(const gen_req *g, int openai)
{
    if (!g->timed_out && !g->rc)
        return NULL;
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", g->timed_out ? "timeout" : core_errname(g->rc));
    cJSON_AddStringToObject(e, "message", g->timed_out ? "the generation exceeded "
                            "--request-timeout" : core_strerror(g->rc));
    if (openai) {
        cJSON_AddStringToObject(e, "type", "server_error");
        cJSON_AddNullToObject(e, "param");
    }
    return o;
}

// ----------------------------------------------------------------------------
// server-sent events: the connection's thread takes what the scheduler delivers and formats it

typedef struct sse sse;
/* Formats one delivery into events (sse_put); GEN_END is the last call. */
typedef void (*sse_format_fn)(sse *e, const gen_event *ev);

struct sse {
    app *a;
    gen_req *g;
    sse_format_fn format;
    char *buf;               /* formatted bytes not yet handed to the connection */
    size_t len, off, cap;
    int ended;
    /* /v1/completions */
    char id[64], model[72];
    long long created;
    int include_usage;
    const char *echo;        /* the prompt, sent first for each choice (g's own copy) */
};

static void sse_append(sse *e, const char *s, size_t n)
{
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 1024;
        while (cap < e->len + n)
            cap *= 2;
        char *p = realloc(e->buf, cap);
        if (!p)
            return; /* the event is lost; the connection gets what fits */
        e->buf = p, e->cap = cap;
    }
    memcpy(e->buf + e->len, s, n);
    e->len += n;
}

/* Appends `data: JSON\n\n` and deletes o. */
static void sse_put(sse *e, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return;
    sse_append(e, "data: ", 6);
    sse_append(e, text, strlen(text));
    sse_append(e, "\n\n", 2);
    cJSON_free(text);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sse *e = cls;
    while (e->off == e->len) {
        if (e->ended)
            return HTTP_EVENTS_END;
        e->off = e->len = 0;
        gen_event ev;
        gen_take(e->g, &ev);
        e->format(e, &ev);
        free(ev.text);
        if (ev.kind == GEN_END) { /* done: its streams are the handler's to read now */
            metrics_generated(e->a->metrics, (long long)generated_chars(e->g));
            e->ended = 1;
        }
    }
    size_t n = e->len - e->off < max ? e->len - e->off : max;
    memcpy(out, e->buf + e->off, n);
    e->off += n;
    return (ssize_t)n;
}

/* The response is gone: sent in full, or the client left (then the generation stops). */
static void sse_free(void *cls)
{
    sse *e = cls;
    gen_req_cancel(e->g);
    gen_req_release(e->g);
    free(e->buf);
    free(e);
}

/* Answers with the events of g (taking over the caller's reference) as format writes them. */
static int reply_sse(request *r, gen_req *g, sse_format_fn format, const sse *init)
{
    sse *e = malloc(sizeof *e);
    if (!e) {
        gen_req_cancel(g);
        gen_req_release(g);
        return reply_error(r, 500, "internal", NULL, "out of memory");
    }
    *e = *init;
    e->a = r->app, e->g = g, e->format = format;
    return reply_events(r, sse_read, e, sse_free, g->id);
}

// ----------------------------------------------------------------------------
// POST /generate

static const field_name generate_names[] = {{NULL, NULL}};

static void generate_event(sse *e, const gen_event *ev)
{
    const gen_req *g = e->g;
    if (ev->kind == GEN_TEXT) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", ev->text);
        sse_put(e, o);
    } else if (ev->kind == GEN_END) {
        cJSON *o = outcome_error(g, 0);
        if (!o) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", g->id);
            cJSON_AddStringToObject(o, "finish_reason", sample_finish_name(g->choice[0].finish));
            add_seed(o, g->req.seed);
            add_usage(o, g);
            add_timing(o, g);
        }
        sse_put(e, o);
    }
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
    const char *stops[SAMPLE_MAX_STOPS];
    int n_stop = 0, streaming = 0, seed_given = 0;
    uint64_t seed = 0;
    loaded_model *lm = NULL;
    gen_req *g = NULL;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_string_or_reply(r, body, "model", &model) ||
        json_string_or_reply(r, body, "seed_text", &seed_text) ||
        json_number_or_reply(r, body, "temperature", &temperature, 0, 1e6) ||
        json_int_or_reply(r, body, "length", &length, 1, r->app->cfg.max_length) ||
        json_int_or_reply(r, body, "top_k", &top_k, 0, 1 << 30) ||
        json_number_or_reply(r, body, "top_p", &top_p, 0, 1) ||
        json_strings_or_reply(r, body, "stop", stops, SAMPLE_MAX_STOPS, &n_stop) ||
        json_seed_or_reply(r, body, "seed", &seed, &seed_given) ||
        json_bool_or_reply(r, body, "stream", &streaming) ||
        json_string_or_reply(r, body, "unknown_chars", &unknown) ||
        json_string_or_reply(r, body, "mode", &mode))
        goto out;
    if (!seed_text) {
        reply_error(r, 400, "missing_field", "seed_text", "seed_text is required (it may be \"\")");
        goto out;
    }
    int skip = strcmp(unknown, "skip") == 0;
    if (!skip && strcmp(unknown, "error") != 0) {
        reply_error(r, 400, "out_of_range", "unknown_chars", "unknown_chars must be \"error\" or "
                    "\"skip\"");
        goto out;
    }
    int sample_mode = sample_mode_parse(mode);
    if (sample_mode < 0) {
        reply_error(r, 400, "out_of_range", "mode", "mode must be \"auto\", \"stateful\" or "
                    "\"window\"");
        goto out;
    }
    sample_request q = {.seed_text = seed_text, .seed_len = strlen(seed_text),
                        .length = (int)length, .temperature = temperature, .top_k = (int)top_k,
                        .top_p = top_p, .seed = seed_given ? seed : rng_fresh_seed(),
                        .stop = stops, .n_stop = n_stop, .skip_unknown = skip,
                        .mode = sample_mode};
    if (model_acquire_or_reply(r, model, &lm) ||
        !(g = submit_or_reply(r, lm, &q, 1, streaming, generate_names)))
        goto out;
    if (streaming) {
        reply_sse(r, g, generate_event, &(sse){0});
        g = NULL; /* the response's now */
        goto out;
    }
    if (outcome_or_reply(r, g))
        goto out;
    const genstream *gs = &g->choice[0].gs;
    metrics_generated(r->app->metrics, (long long)generated_chars(g));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", g->id);
    cJSON_AddStringToObject(o, "model", lm->name);
    cJSON_AddStringToObject(o, "seed_text", seed_text);
    cJSON_AddStringToObject(o, "text", g->choice[0].started ? gs->text : "");
    cJSON_AddStringToObject(o, "finish_reason", sample_finish_name(g->choice[0].finish));
    cJSON_AddStringToObject(o, "mode", sample_mode_name(gs->mode));
    add_seed(o, q.seed);
    add_usage(o, g);
    add_timing(o, g);
    reply_json_take(r, 200, o);
out:
    gen_req_release(g);
    registry_release(r->app->models, lm);
    cJSON_Delete(body);
    return 0;
}

// ----------------------------------------------------------------------------
// GET /generations, DELETE /generations/{id}

int route_generations_list(request *r)
{
    gen_info *list;
    int n;
    if (gen_list(r->app->gen, &list, &n))
        return reply_error(r, 500, "internal", NULL, "out of memory");
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "generations");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", list[i].id);
        cJSON_AddStringToObject(e, "model", list[i].model);
        cJSON_AddStringToObject(e, "status", list[i].queued ? "queued" : "running");
        cJSON_AddNumberToObject(e, "choices", list[i].n);
        cJSON_AddNumberToObject(e, "chars", (double)list[i].chars);
        cJSON_AddNumberToObject(e, "age_seconds", round(list[i].age * 1000) / 1000);
        cJSON_AddItemToArray(arr, e);
    }
    free(list);
    return reply_json_take(r, 200, o);
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

static const field_name completion_names[] = {
    {"seed_text", "prompt"}, {"length", "max_tokens"}, {"top_logprobs", "logprobs"}, {NULL, NULL}};

static cJSON *chunk_base(const char *id, long long created, const char *model)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    return o;
}

/* A chunk of one choice: its text, and finish_reason when it is the choice's last. */
static cJSON *choice_chunk(const sse *e, int index, const char *text, const char *finish)
{
    cJSON *o = chunk_base(e->id, e->created, e->model), *arr = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddStringToObject(ch, "text", text);
    cJSON_AddNumberToObject(ch, "index", index);
    cJSON_AddNullToObject(ch, "logprobs");
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(arr, ch);
    return o;
}

static void completion_event(sse *e, const gen_event *ev)
{
    const gen_req *g = e->g;
    if (e->echo) { /* echo: the prompt comes first, in each choice */
        for (int i = 0; i < g->n && *e->echo; i++)
            sse_put(e, choice_chunk(e, i, e->echo, NULL));
        e->echo = NULL;
    }
    if (ev->kind == GEN_TEXT) {
        sse_put(e, choice_chunk(e, ev->choice, ev->text, NULL));
    } else if (ev->kind == GEN_CHOICE_END) {
        cJSON *err = outcome_error(g, 1);
        sse_put(e, err ? err : choice_chunk(e, ev->choice, "",
                                             finish_name(g->choice[ev->choice].finish)));
    } else {
        if (e->include_usage) { /* OpenAI's last chunk: no choices, the usage of them all */
            cJSON *o = chunk_base(e->id, e->created, e->model);
            cJSON *u = cJSON_AddObjectToObject(o, "usage");
            cJSON_AddArrayToObject(o, "choices");
            double prompt = (double)seed_chars(g), done = (double)generated_chars(g);
            cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
            cJSON_AddNumberToObject(u, "completion_tokens", done);
            cJSON_AddNumberToObject(u, "total_tokens", prompt + done);
            sse_put(e, o);
        }
        sse_append(e, "data: [DONE]\n\n", 14);
    }
}

/* OpenAI's logprobs object for a finished choice: its entries are the scored seed characters
 * (echo) and the generated ones; text_offset counts characters from the prompt's start. */
static cJSON *logprobs_json(const genstream *gs, const model *m, int top_n, size_t first_offset)
{
    cJSON *lp = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens");
    cJSON *token_lp = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *top = cJSON_AddArrayToObject(lp, "top_logprobs");
    cJSON *offsets = cJSON_AddArrayToObject(lp, "text_offset");
    for (size_t i = 0; i < gs->n_lp; i++) {
        char ch[5] = {0};
        utf8_encode(ch, m->voc.chars[gs->lp_id[i]]);
        cJSON_AddItemToArray(tokens, cJSON_CreateString(ch));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(first_offset + i)));
        if (isnan(gs->lp[i])) { /* the text's first character has no prediction */
            cJSON_AddItemToArray(token_lp, cJSON_CreateNull());
            cJSON_AddItemToArray(top, cJSON_CreateNull());
            continue;
        }
        cJSON_AddItemToArray(token_lp, cJSON_CreateNumber(gs->lp[i]));
        if (top_n == 0) {
            cJSON_AddItemToArray(top, cJSON_CreateNull());
            continue;
        }
        cJSON *alts = cJSON_CreateObject();
        for (int k = 0; k < top_n; k++) {
            const score_alt *alt = &gs->lp_top[i * (size_t)top_n + k];
            char ac[5] = {0};
            utf8_encode(ac, m->voc.chars[alt->id]);
            cJSON_AddNumberToObject(alts, ac, alt->logprob);
        }
        /* OpenAI lists the chosen token too, when it is not among the top n */
        if (!cJSON_GetObjectItemCaseSensitive(alts, ch))
            cJSON_AddNumberToObject(alts, ch, gs->lp[i]);
        cJSON_AddItemToArray(top, alts);
    }
    return lp;
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
    int streaming = 0, echo = 0, seed_given = 0, n_stop = 0, include_usage = 0;
    uint64_t seed = 0;
    const char *stops[OPENAI_MAX_STOPS];
    loaded_model *lm = NULL;
    gen_req *g = NULL;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_string_or_reply(r, body, "model", &model) ||
        json_int_or_reply(r, body, "max_tokens", &max_tokens, 0, a->cfg.max_length) ||
        json_number_or_reply(r, body, "temperature", &temperature, 0, 1e6) ||
        json_number_or_reply(r, body, "top_p", &top_p, 0, 1) ||
        json_int_or_reply(r, body, "n", &n, 1, GEN_MAX_CHOICES) ||
        json_strings_or_reply(r, body, "stop", stops, OPENAI_MAX_STOPS, &n_stop) ||
        json_seed_or_reply(r, body, "seed", &seed, &seed_given) ||
        json_bool_or_reply(r, body, "stream", &streaming) ||
        json_int_or_reply(r, body, "logprobs", &logprobs, 0, 5) ||
        json_bool_or_reply(r, body, "echo", &echo) ||
        json_int_or_reply(r, body, "top_k", &top_k, 0, 1 << 30) ||
        json_number_or_reply(r, body, "presence_penalty", &presence, 0, 0) ||
        json_number_or_reply(r, body, "frequency_penalty", &frequency, 0, 0) ||
        json_int_or_reply(r, body, "best_of", &best_of, 1, GEN_MAX_CHOICES) ||
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
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        static const char *const so_fields[] = {"include_usage", NULL};
        if (!cJSON_IsObject(so)) {
            reply_error(r, 400, "invalid_type", "stream_options",
                        "stream_options must be an object");
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
    if (streaming && logprobs >= 0) {
        reply_error(r, 400, "unsupported", "logprobs", "logprobs are not supported with stream");
        goto out;
    }
    if (max_tokens == 0 && !echo) {
        reply_error(r, 400, "out_of_range", "max_tokens", "max_tokens must be at least 1 unless "
                    "echo is true");
        goto out;
    }
    sample_request q = {.seed_text = prompt, .seed_len = strlen(prompt),
                        .length = (int)max_tokens, .temperature = temperature,
                        .top_k = (int)top_k, .top_p = top_p,
                        .seed = seed_given ? seed : rng_fresh_seed(), .stop = stops,
                        .n_stop = n_stop, .mode = SAMPLE_MODE_AUTO,
                        .want_logprobs = logprobs >= 0,
                        .top_logprobs = (int)(logprobs < 0 ? 0 : logprobs), .echo_logprobs = echo};
    if (model_acquire_or_reply(r, model, &lm) ||
        !(g = submit_or_reply(r, lm, &q, (int)n, streaming, completion_names)))
        goto out;
    sse e = {.created = (long long)time(NULL), .include_usage = include_usage,
             .echo = echo ? g->req.seed_text : NULL};
    snprintf(e.id, sizeof e.id, "cmpl-%016llx", (unsigned long long)rng_fresh_seed());
    snprintf(e.model, sizeof e.model, "%s", lm->name);
    if (streaming) {
        reply_sse(r, g, completion_event, &e);
        g = NULL; /* the response's now */
        goto out;
    }
    if (outcome_or_reply(r, g))
        goto out;
    metrics_generated(a->metrics, (long long)generated_chars(g));
    cJSON *o = chunk_base(e.id, e.created, e.model), *arr = cJSON_AddArrayToObject(o, "choices");
    size_t prompt_len = strlen(prompt), prompt_chars = seed_chars(g);
    for (int i = 0; i < g->n; i++) {
        const gen_choice *c = &g->choice[i];
        const char *made = c->started ? c->gs.text : "";
        size_t made_len = strlen(made);
        char *text = malloc(prompt_len + made_len + 1);
        if (!text) {
            cJSON_Delete(o);
            reply_error(r, 500, "internal", NULL, "out of memory");
            goto out;
        }
        memcpy(text, prompt, prompt_len);
        memcpy(text + prompt_len, made, made_len + 1);
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddStringToObject(ch, "text", echo ? text : text + prompt_len);
        free(text);
        cJSON_AddNumberToObject(ch, "index", i);
        if (logprobs >= 0 && c->started)
            cJSON_AddItemToObject(ch, "logprobs", logprobs_json(&c->gs, lm->m, (int)logprobs,
                                                                echo ? 0 : prompt_chars));
        else
            cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddStringToObject(ch, "finish_reason", finish_name(c->finish));
        cJSON_AddItemToArray(arr, ch);
    }
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    double done = (double)generated_chars(g);
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)prompt_chars);
    cJSON_AddNumberToObject(usage, "completion_tokens", done);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)prompt_chars + done);
    add_seed(o, q.seed);
    reply_json_take(r, 200, o);
out:
    gen_req_release(g);
    registry_release(r->app->models, lm);
    cJSON_Delete(body);
    return 0;
}
