/* routes_openai: OpenAI's POST /v1/completions and POST /v1/chat/completions, plain and
 * streamed, with logprobs, n choices and prompt arrays. Both read the fields they share in one
 * place (openai_fields_or_reply), turn the request into core's sample_request, and answer
 * through genreply. A character model is not a chat model: a chat's messages become one plain
 * text prompt through --chat-template, and the reply continues that text. */
#include "routes.h"

#include "app.h"
#include "err.h"
#include "genreply.h"
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

// ----------------------------------------------------------------------------
// what both routes read

typedef struct openai_req {
    const char *model;
    double temperature, top_p;
    long long max_tokens, n, top_k;
    const char *stops[OPENAI_MAX_STOPS];
    int n_stop;
    uint64_t seed;
    int seed_given, streaming, include_usage;
    int logprobs; /* alternatives per position; -1: no logprobs */
} openai_req;

/* The fields both routes take; what the official clients send without effect here (user, zero
 * penalties, an empty logit_bias) is accepted as OpenAI accepts it. */
static int openai_fields_or_reply(request *r, const cJSON *body, openai_req *q)
{
    double presence = 0, frequency = 0;
    const char *user = NULL;
    *q = (openai_req){.temperature = SAMPLE_DEFAULT_TEMPERATURE, .top_p = SAMPLE_DEFAULT_TOP_P,
                      .top_k = SAMPLE_DEFAULT_TOP_K, .max_tokens = OPENAI_DEFAULT_MAX_TOKENS,
                      .n = 1, .logprobs = -1};
    if (json_string_or_reply(r, body, "model", &q->model) ||
        json_number_or_reply(r, body, "temperature", &q->temperature, 0, 1e6) ||
        json_number_or_reply(r, body, "top_p", &q->top_p, 0, 1) ||
        json_int_or_reply(r, body, "n", &q->n, 1, GEN_MAX_CHOICES) ||
        json_strings_or_reply(r, body, "stop", q->stops, OPENAI_MAX_STOPS, &q->n_stop) ||
        json_seed_or_reply(r, body, "seed", &q->seed, &q->seed_given) ||
        json_bool_or_reply(r, body, "stream", &q->streaming) ||
        json_int_or_reply(r, body, "top_k", &q->top_k, 0, 1 << 30) ||
        json_number_or_reply(r, body, "presence_penalty", &presence, 0, 0) ||
        json_number_or_reply(r, body, "frequency_penalty", &frequency, 0, 0) ||
        json_string_or_reply(r, body, "user", &user))
        return 1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        static const char *const so_fields[] = {"include_usage", NULL};
        if (!cJSON_IsObject(so))
            return reply_error(r, 400, "invalid_type", "stream_options",
                               "stream_options must be an object"), 1;
        if (json_known_fields_or_reply(r, so, so_fields) ||
            json_bool_or_reply(r, so, "include_usage", &q->include_usage))
            return 1;
    }
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(body, "logit_bias");
    if (bias && !cJSON_IsNull(bias) && !(cJSON_IsObject(bias) && !bias->child))
        return reply_error(r, 400, "unsupported", "logit_bias",
                           "logit_bias is not supported (only {})"), 1;
    return 0;
}

static sample_request openai_sample_request(const openai_req *q, const char *prompt,
                                            int echo_logprobs, int skip_unknown)
{
    return (sample_request){.seed_text = prompt, .seed_len = strlen(prompt),
                            .length = (int)q->max_tokens, .temperature = q->temperature,
                            .top_k = (int)q->top_k, .top_p = q->top_p,
                            .seed = q->seed_given ? q->seed : rng_fresh_seed(),
                            .stop = q->stops, .n_stop = q->n_stop, .mode = SAMPLE_MODE_AUTO,
                            .want_logprobs = q->logprobs >= 0,
                            .top_logprobs = q->logprobs < 0 ? 0 : q->logprobs,
                            .echo_logprobs = echo_logprobs, .skip_unknown = skip_unknown};
}

/* Submits one request per prompt into e->g (n choices each, the same seed for all: prompt k's
 * choice i draws from seed + i) under the first one's id, which the answer names (X-Request-Id)
 * and one DELETE cancels; or answers with the error and submits nothing. */
static int submit_all_or_reply(request *r, loaded_model *lm, const sample_request *q,
                               const char *const *prompts, int n_prompts, int n, int streaming,
                               const field_name *names, sse *e)
{
    for (int k = 0; k < n_prompts; k++) {
        sample_request qk = *q;
        qk.seed_text = prompts[k], qk.seed_len = strlen(prompts[k]);
        gen_req *g = submit_or_reply(r, lm, &qk, n, streaming, names, k ? e->g[0]->id : NULL);
        if (!g) {
            for (int j = 0; j < e->n_g; j++) {
                gen_req_cancel(e->g[j]);
                gen_req_release(e->g[j]);
            }
            e->n_g = 0;
            return 1;
        }
        e->g[e->n_g++] = g;
    }
    return 0;
}

/* Waits for every request of a buffered answer; nonzero after an error reply. */
static int outcomes_or_reply(request *r, sse *e)
{
    for (int k = 0; k < e->n_g; k++)
        if (outcome_or_reply(r, e->g[k])) {
            for (int j = k + 1; j < e->n_g; j++)
                gen_req_cancel(e->g[j]);
            return 1;
        }
    metrics_generated(r->app->metrics, (long long)sse_generated_chars(e));
    return 0;
}

static void release_all(sse *e)
{
    for (int k = 0; k < e->n_g; k++)
        gen_req_release(e->g[k]);
}

/* OpenAI's finish_reason has no "cancelled": a cancelled choice ends as "length" there. */
static const char *finish_name(int finish)
{
    return finish == SAMPLE_FINISH_CANCELLED ? "length" : sample_finish_name(finish);
}

static cJSON *response_base(const sse *e, const char *object)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)e->created);
    cJSON_AddStringToObject(o, "model", e->model);
    return o;
}

static void add_usage(cJSON *o, const sse *e)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    double prompt = (double)sse_seed_chars(e), done = (double)sse_generated_chars(e);
    cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", done);
    cJSON_AddNumberToObject(u, "total_tokens", prompt + done);
}

static void sse_init(sse *e, const loaded_model *lm, const char *prefix, const openai_req *q,
                     int chat)
{
    *e = (sse){.created = (long long)time(NULL), .include_usage = q->include_usage, .chat = chat,
               .logprobs = q->logprobs, .m = lm->m};
    snprintf(e->id, sizeof e->id, "%s-%016llx", prefix, (unsigned long long)rng_fresh_seed());
    snprintf(e->model, sizeof e->model, "%s", lm->name);
}

// ----------------------------------------------------------------------------
// logprobs: a finished choice's entries or a streamed chunk's, in either API's shape

typedef struct lp_view {
    const genstream *gs;         /* a finished choice's entries, or */
    const gen_logprob *streamed; /* a chunk's */
    size_t n;
    int top_n;
} lp_view;

static void lp_get(const lp_view *v, size_t i, int *id, double *logprob, const score_alt **top)
{
    if (v->gs) {
        *id = v->gs->lp_id[i], *logprob = v->gs->lp[i];
        *top = v->top_n ? v->gs->lp_top + i * (size_t)v->top_n : NULL; /* none without top_n */
    } else {
        *id = v->streamed[i].id, *logprob = v->streamed[i].logprob;
        *top = v->streamed[i].top;
    }
}

static lp_view view_of_choice(const gen_choice *c, int top_n)
{
    return (lp_view){.gs = &c->gs, .n = c->gs.n_lp, .top_n = top_n};
}

static lp_view view_of_event(const gen_event *ev, int top_n)
{
    return (lp_view){.streamed = ev->lp, .n = ev->n_lp, .top_n = top_n};
}

/* completions: {tokens, token_logprobs, top_logprobs, text_offset}; offsets count characters
 * from the prompt's start, the first entry's being first_offset. */
static cJSON *completion_logprobs(const lp_view *v, const model *m, size_t first_offset)
{
    cJSON *lp = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens");
    cJSON *token_lp = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(lp, "top_logprobs");
    cJSON *offsets = cJSON_AddArrayToObject(lp, "text_offset");
    for (size_t i = 0; i < v->n; i++) {
        int id;
        double logprob;
        const score_alt *top;
        lp_get(v, i, &id, &logprob, &top);
        char ch[5] = {0};
        utf8_encode(ch, m->voc.chars[id]);
        cJSON_AddItemToArray(tokens, cJSON_CreateString(ch));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(first_offset + i)));
        if (isnan(logprob)) { /* the text's first character has no prediction */
            cJSON_AddItemToArray(token_lp, cJSON_CreateNull());
            cJSON_AddItemToArray(tops, cJSON_CreateNull());
            continue;
        }
        cJSON_AddItemToArray(token_lp, cJSON_CreateNumber(logprob));
        if (v->top_n == 0) {
            cJSON_AddItemToArray(tops, cJSON_CreateNull());
            continue;
        }
        cJSON *alts = cJSON_CreateObject();
        for (int k = 0; k < v->top_n; k++) {
            char ac[5] = {0};
            utf8_encode(ac, m->voc.chars[top[k].id]);
            cJSON_AddNumberToObject(alts, ac, top[k].logprob);
        }
        /* OpenAI lists the chosen token too, when it is not among the top n */
        if (!cJSON_GetObjectItemCaseSensitive(alts, ch))
            cJSON_AddNumberToObject(alts, ch, logprob);
        cJSON_AddItemToArray(tops, alts);
    }
    return lp;
}

/* chat: {"token", "logprob", "bytes"} for character id */
static cJSON *chat_token(const model *m, int id, double logprob)
{
    char ch[5] = {0};
    int len = utf8_encode(ch, m->voc.chars[id]);
    cJSON *t = cJSON_CreateObject(), *bytes = cJSON_CreateArray();
    cJSON_AddStringToObject(t, "token", ch);
    if (isnan(logprob))
        cJSON_AddNullToObject(t, "logprob");
    else
        cJSON_AddNumberToObject(t, "logprob", logprob);
    for (int b = 0; b < len; b++)
        cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)ch[b]));
    cJSON_AddItemToObject(t, "bytes", bytes);
    return t;
}

/* chat: {"content": [token + top_logprobs...], "refusal": null} */
static cJSON *chat_logprobs(const lp_view *v, const model *m)
{
    cJSON *lp = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(lp, "content");
    for (size_t i = 0; i < v->n; i++) {
        int id;
        double logprob;
        const score_alt *top;
        lp_get(v, i, &id, &logprob, &top);
        cJSON *t = chat_token(m, id, logprob), *alts = cJSON_AddArrayToObject(t, "top_logprobs");
        for (int k = 0; k < v->top_n && !isnan(logprob); k++)
            cJSON_AddItemToArray(alts, chat_token(m, top[k].id, top[k].logprob));
        cJSON_AddItemToArray(content, t);
    }
    cJSON_AddNullToObject(lp, "refusal");
    return lp;
}

// ----------------------------------------------------------------------------
// the streamed chunks of both routes

/* One chunk of one choice: text (or a chat delta), logprobs, finish_reason on its last. */
static cJSON *chunk(const sse *e, int index, const char *text, int with_role, cJSON *logprobs,
                    const char *finish)
{
    cJSON *o = response_base(e, e->chat ? "chat.completion.chunk" : "text_completion");
    cJSON *arr = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", index);
    if (e->chat) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (with_role)
            cJSON_AddStringToObject(delta, "role", "assistant");
        if (text)
            cJSON_AddStringToObject(delta, "content", text);
    } else {
        cJSON_AddStringToObject(ch, "text", text ? text : "");
    }
    if (logprobs)
        cJSON_AddItemToObject(ch, "logprobs", logprobs);
    else
        cJSON_AddNullToObject(ch, "logprobs");
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(arr, ch);
    return o;
}

/* The first chunk of each choice of the stream's current request: a chat's role, or the
 * prompt that a completion echoes. */
static void open_choices(sse *e)
{
    while (e->opened <= e->cur) {
        const gen_req *g = e->g[e->opened];
        const char *echo = e->echo[e->opened];
        for (int i = 0; i < g->n; i++) {
            int index = e->opened * g->n + i;
            if (e->chat)
                sse_put(e, chunk(e, index, "", 1, NULL, NULL));
            else if (echo && *echo)
                sse_put(e, chunk(e, index, echo, 0, NULL, NULL));
        }
        e->opened++;
    }
}

static void openai_event(sse *e, const gen_event *ev)
{
    open_choices(e);
    const gen_req *g = e->g[e->cur];
    if (ev->kind == GEN_TEXT) {
        cJSON *lp = NULL;
        if (e->logprobs >= 0) {
            lp_view v = view_of_event(ev, e->logprobs);
            lp = e->chat ? chat_logprobs(&v, e->m)
                         : completion_logprobs(&v, e->m, gen_req_seed_chars(g) +
                                                             e->sent[ev->choice]);
        }
        e->sent[ev->choice] += ev->n_lp;
        sse_put(e, chunk(e, ev->choice, ev->text, 0, lp, NULL));
    } else if (ev->kind == GEN_CHOICE_END) {
        cJSON *err = gen_req_error_json(g, 1);
        int i = ev->choice - e->cur * g->n;
        sse_put(e, err ? err : chunk(e, ev->choice, e->chat ? NULL : "", 0, NULL,
                                     finish_name(g->choice[i].finish)));
    } else {
        if (e->include_usage) { /* OpenAI's last chunk: no choices, the usage of them all */
            cJSON *o = response_base(e, e->chat ? "chat.completion.chunk" : "text_completion");
            cJSON_AddArrayToObject(o, "choices");
            add_usage(o, e);
            sse_put(e, o);
        }
        sse_append(e, "data: [DONE]\n\n", 14);
    }
}

// ----------------------------------------------------------------------------
// POST /v1/completions

static const field_name completion_names[] = {
    {"seed_text", "prompt"}, {"length", "max_tokens"}, {"top_logprobs", "logprobs"}, {NULL, NULL}};

/* prompt: a string, or an array of strings (one request each, their choices in order). */
static int prompts_or_reply(request *r, const cJSON *body, const char **prompts, int *n)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    *n = 1;
    prompts[0] = "";
    if (!p || cJSON_IsNull(p))
        return 0;
    if (cJSON_IsString(p)) {
        prompts[0] = p->valuestring;
        return 0;
    }
    int count = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : -1;
    if (count < 1 || count > SSE_MAX_REQS)
        return reply_error(r, 400, "invalid_type", "prompt", "prompt must be a string or an "
                           "array of 1 to %d strings", SSE_MAX_REQS), 1;
    int k = 0;
    for (const cJSON *item = p->child; item; item = item->next, k++) {
        if (!cJSON_IsString(item))
            return reply_error(r, 400, "invalid_type", "prompt", "prompt[%d] must be a string "
                               "(token arrays are not supported)", k), 1;
        prompts[k] = item->valuestring;
    }
    *n = count;
    return 0;
}

int route_completions(request *r)
{
    static const char *const fields[] = {"model", "prompt", "max_tokens", "temperature", "top_p",
                                         "n", "stop", "seed", "stream", "logprobs", "echo", "user",
                                         "presence_penalty", "frequency_penalty", "logit_bias",
                                         "best_of", "suffix", "top_k", "stream_options", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    openai_req q;
    const char *suffix = NULL, *prompts[SSE_MAX_REQS];
    long long logprobs = -1, best_of = -1;
    int echo = 0, n_prompts = 0;
    loaded_model *lm = NULL;
    sse e = {0};
    if (json_known_fields_or_reply(r, body, fields) || openai_fields_or_reply(r, body, &q) ||
        json_int_or_reply(r, body, "max_tokens", &q.max_tokens, 0, r->app->cfg.max_length) ||
        json_int_or_reply(r, body, "logprobs", &logprobs, 0, OPENAI_MAX_LOGPROBS) ||
        json_bool_or_reply(r, body, "echo", &echo) ||
        json_int_or_reply(r, body, "best_of", &best_of, 1, GEN_MAX_CHOICES) ||
        json_string_or_reply(r, body, "suffix", &suffix) ||
        prompts_or_reply(r, body, prompts, &n_prompts))
        goto out;
    q.logprobs = (int)logprobs;
    if (suffix) {
        reply_error(r, 400, "unsupported", "suffix", "suffix (insertion) is not supported");
        goto out;
    }
    if (best_of >= 0 && best_of != q.n) {
        reply_error(r, 400, "unsupported", "best_of", "best_of must equal n");
        goto out;
    }
    if (n_prompts * q.n > GEN_MAX_CHOICES) {
        reply_error(r, 400, "out_of_range", "n", "prompts times n must be at most %d, got %d x "
                    "%lld", GEN_MAX_CHOICES, n_prompts, q.n);
        goto out;
    }
    if (q.streaming && echo && q.logprobs >= 0) {
        reply_error(r, 400, "unsupported", "logprobs", "logprobs with both echo and stream are "
                    "not supported (either one is)");
        goto out;
    }
    if (q.max_tokens == 0 && !echo) {
        reply_error(r, 400, "out_of_range", "max_tokens", "max_tokens must be at least 1 unless "
                    "echo is true");
        goto out;
    }
    if (model_acquire_or_reply(r, q.model, &lm))
        goto out;
    sample_request sq = openai_sample_request(&q, prompts[0], echo, 0);
    sse_init(&e, lm, "cmpl", &q, 0);
    if (submit_all_or_reply(r, lm, &sq, prompts, n_prompts, (int)q.n, q.streaming,
                            completion_names, &e))
        goto out;
    for (int k = 0; k < e.n_g; k++)
        e.echo[k] = echo ? e.g[k]->req.seed_text : NULL;
    if (q.streaming) {
        reply_sse(r, openai_event, &e);
        e.n_g = 0; /* the response's now */
        goto out;
    }
    if (outcomes_or_reply(r, &e))
        goto out;
    cJSON *o = response_base(&e, "text_completion"), *arr = cJSON_AddArrayToObject(o, "choices");
    for (int k = 0; k < e.n_g; k++) {
        const gen_req *g = e.g[k];
        for (int i = 0; i < g->n; i++) {
            const gen_choice *c = &g->choice[i];
            const char *made = c->started ? c->gs.text : "";
            cJSON *ch = cJSON_CreateObject();
            if (echo) {
                size_t plen = strlen(prompts[k]), mlen = strlen(made);
                char *text = malloc(plen + mlen + 1);
                if (!text) {
                    cJSON_Delete(ch);
                    cJSON_Delete(o);
                    reply_error(r, 500, "internal", NULL, "out of memory");
                    goto out;
                }
                memcpy(text, prompts[k], plen);
                memcpy(text + plen, made, mlen + 1);
                cJSON_AddStringToObject(ch, "text", text);
                free(text);
            } else {
                cJSON_AddStringToObject(ch, "text", made);
            }
            cJSON_AddNumberToObject(ch, "index", k * g->n + i);
            if (q.logprobs >= 0 && c->started) {
                lp_view v = view_of_choice(c, q.logprobs);
                size_t first = echo ? 0 : gen_req_seed_chars(g);
                cJSON_AddItemToObject(ch, "logprobs", completion_logprobs(&v, lm->m, first));
            } else {
                cJSON_AddNullToObject(ch, "logprobs");
            }
            cJSON_AddStringToObject(ch, "finish_reason", finish_name(c->finish));
            cJSON_AddItemToArray(arr, ch);
        }
    }
    add_usage(o, &e);
    json_add_seed(o, sq.seed);
    reply_json_take(r, 200, o);
out:
    release_all(&e);
    registry_release(r->app->models, lm);
    cJSON_Delete(body);
    return 0;
}

// ----------------------------------------------------------------------------
// POST /v1/chat/completions

static const field_name chat_names[] = {{"seed_text", "messages"},
                                        {"length", "max_completion_tokens"},
                                        {"top_logprobs", "top_logprobs"},
                                        {NULL, NULL}};

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *p = realloc(*buf, c);
        if (!p)
            return CORE_ENOMEM;
        *buf = p, *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* One message through the template: {role} and {content} replaced, the rest as it is. */
static int apply_template(char **buf, size_t *len, size_t *cap, const char *tmpl,
                          const char *role, const char *content)
{
    int rc = 0;
    for (const char *t = tmpl; *t && !rc;) {
        if (strncmp(t, "{role}", 6) == 0)
            rc = append(buf, len, cap, role, strlen(role)), t += 6;
        else if (strncmp(t, "{content}", 9) == 0)
            rc = append(buf, len, cap, content, strlen(content)), t += 9;
        else
            rc = append(buf, len, cap, t, 1), t++;
    }
    return rc;
}

/* A message's text: a string, or an array of {"type": "text", "text": ...} parts, joined. */
static int message_text_or_reply(request *r, const cJSON *content, int index, char **text)
{
    *text = NULL;
    size_t len = 0, cap = 0;
    if (!content || cJSON_IsNull(content))
        return append(text, &len, &cap, "", 0) ? reply_error(r, 500, "internal", NULL,
                                                             "out of memory"), 1 : 0;
    if (cJSON_IsString(content))
        return append(text, &len, &cap, content->valuestring, strlen(content->valuestring))
                   ? reply_error(r, 500, "internal", NULL, "out of memory"), 1 : 0;
    if (!cJSON_IsArray(content))
        return reply_error(r, 400, "invalid_type", "messages", "messages[%d].content must be a "
                           "string or an array of text parts", index), 1;
    append(text, &len, &cap, "", 0);
    for (const cJSON *part = content->child; part; part = part->next) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 ||
            !cJSON_IsString(t)) {
            free(*text);
            *text = NULL;
            return reply_error(r, 400, "unsupported", "messages", "messages[%d].content: only "
                               "text parts ({\"type\": \"text\", \"text\": ...}) are supported",
                               index), 1;
        }
        if (append(text, &len, &cap, t->valuestring, strlen(t->valuestring))) {
            free(*text);
            *text = NULL;
            return reply_error(r, 500, "internal", NULL, "out of memory"), 1;
        }
    }
    return 0;
}

/* The chat as the model's prompt: every message through --chat-template, in order. */
static int chat_prompt_or_reply(request *r, const cJSON *body, char **prompt)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool",
                                        "function", NULL};
    static const char *const msg_fields[] = {"role", "content", "name", "tool_call_id",
                                             "refusal", NULL};
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    *prompt = NULL;
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) < 1)
        return reply_error(r, 400, msgs ? "invalid_type" : "missing_field", "messages",
                           "messages must be a non-empty array of {role, content}"), 1;
    size_t len = 0, cap = 0;
    int k = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, k++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        int known = 0;
        for (int i = 0; cJSON_IsString(role) && roles[i]; i++)
            known |= strcmp(role->valuestring, roles[i]) == 0;
        if (!cJSON_IsObject(m) || !known) {
            free(*prompt);
            *prompt = NULL;
            return reply_error(r, 400, "invalid_value", "messages", "messages[%d] must be an "
                               "object with a role of system, developer, user, assistant or "
                               "tool", k), 1;
        }
        char *text;
        if (json_known_fields_or_reply(r, m, msg_fields) ||
            message_text_or_reply(r, cJSON_GetObjectItemCaseSensitive(m, "content"), k, &text)) {
            free(*prompt);
            *prompt = NULL;
            return 1;
        }
        int rc = apply_template(prompt, &len, &cap, r->app->cfg.chat_template,
                                role->valuestring, text);
        free(text);
        if (rc) {
            free(*prompt);
            *prompt = NULL;
            return reply_error(r, 500, "internal", NULL, "out of memory"), 1;
        }
    }
    return 0;
}

int route_chat_completions(request *r)
{
    static const char *const fields[] = {"model", "messages", "max_tokens",
                                         "max_completion_tokens", "temperature", "top_p", "n",
                                         "stop", "seed", "stream", "stream_options", "logprobs",
                                         "top_logprobs", "user", "presence_penalty",
                                         "frequency_penalty", "logit_bias", "top_k",
                                         "response_format", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    openai_req q;
    char *prompt = NULL;
    long long max_completion = -1, top_logprobs = -1;
    int logprobs = 0;
    loaded_model *lm = NULL;
    sse e = {0};
    if (json_known_fields_or_reply(r, body, fields) || openai_fields_or_reply(r, body, &q) ||
        json_int_or_reply(r, body, "max_tokens", &q.max_tokens, 1, r->app->cfg.max_length) ||
        json_int_or_reply(r, body, "max_completion_tokens", &max_completion, 1,
                          r->app->cfg.max_length) ||
        json_bool_or_reply(r, body, "logprobs", &logprobs) ||
        json_int_or_reply(r, body, "top_logprobs", &top_logprobs, 0, OPENAI_MAX_TOP_LOGPROBS))
        goto out;
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    const cJSON *ftype = cJSON_GetObjectItemCaseSensitive(format, "type");
    if (format && !cJSON_IsNull(format) &&
        !(cJSON_IsString(ftype) && strcmp(ftype->valuestring, "text") == 0)) {
        reply_error(r, 400, "unsupported", "response_format", "response_format must be "
                    "{\"type\": \"text\"}: a character model writes plain text");
        goto out;
    }
    if (top_logprobs >= 0 && !logprobs) {
        reply_error(r, 400, "invalid_value", "top_logprobs", "top_logprobs needs logprobs: true");
        goto out;
    }
    /* a chat without max tokens is not cut at OpenAI's completions default of 16 */
    q.max_tokens = max_completion > 0 ? max_completion
                   : cJSON_GetObjectItemCaseSensitive(body, "max_tokens") ? q.max_tokens
                                                                          : SAMPLE_DEFAULT_LENGTH;
    if (q.max_tokens > r->app->cfg.max_length)
        q.max_tokens = r->app->cfg.max_length;
    q.logprobs = logprobs ? (int)(top_logprobs < 0 ? 0 : top_logprobs) : -1;
    if (chat_prompt_or_reply(r, body, &prompt) || model_acquire_or_reply(r, q.model, &lm))
        goto out;
    /* a chat's messages come from people, not from the corpus: characters the model does not
     * know are left out of the prompt rather than refused */
    sample_request sq = openai_sample_request(&q, prompt, 0, 1);
    sse_init(&e, lm, "chatcmpl", &q, 1);
    const char *prompts[1] = {prompt};
    if (submit_all_or_reply(r, lm, &sq, prompts, 1, (int)q.n, q.streaming, chat_names, &e))
        goto out;
    if (q.streaming) {
        reply_sse(r, openai_event, &e);
        e.n_g = 0; /* the response's now */
        goto out;
    }
    if (outcomes_or_reply(r, &e))
        goto out;
    const gen_req *g = e.g[0];
    cJSON *o = response_base(&e, "chat.completion"), *arr = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < g->n; i++) {
        const gen_choice *c = &g->choice[i];
        cJSON *ch = cJSON_CreateObject(), *msg = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddStringToObject(msg, "content", c->started ? c->gs.text : "");
        cJSON_AddNullToObject(msg, "refusal");
        cJSON_AddItemToObject(ch, "message", msg);
        if (q.logprobs >= 0 && c->started) {
            lp_view v = view_of_choice(c, q.logprobs);
            cJSON_AddItemToObject(ch, "logprobs", chat_logprobs(&v, lm->m));
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", finish_name(c->finish));
        cJSON_AddItemToArray(arr, ch);
    }
    add_usage(o, &e);
    json_add_seed(o, sq.seed);
    reply_json_take(r, 200, o);
out:
    release_all(&e);
    registry_release(r->app->models, lm);
    free(prompt);
    cJSON_Delete(body);
    return 0;
}
