/* genreply: the check, submission, wait and event stream that the generation routes share. */
#include "genreply.h"

#include "app.h"
#include "err.h"
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *json_field(const field_name *names, const char *core)
{
    for (; names && names->core; names++)
        if (strcmp(names->core, core) == 0)
            return names->json;
    return core;
}

gen_req *submit_or_reply(request *r, loaded_model *lm, const sample_request *q, int n,
                         int streaming, const field_name *names, const char *id)
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
    if (id)
        snprintf(g->id, sizeof g->id, "%s", id);
    int retry = 1;
    rc = gen_submit(r->app->gen, g, lm, &retry);
    if (rc == CORE_ERANGE || rc == CORE_ECANCELLED) {
        reply_busy(r, retry, "overloaded",
                   rc == CORE_ECANCELLED ? "the server is shutting down"
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

int outcome_or_reply(request *r, gen_req *g)
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

size_t gen_req_generated_chars(const gen_req *g)
{
    size_t n = 0;
    for (int i = 0; i < g->n; i++)
        n += g->choice[i].started ? g->choice[i].gs.chars : 0;
    return n;
}

size_t gen_req_seed_chars(const gen_req *g)
{
    return g->choice[0].started ? g->choice[0].gs.n_seed : 0;
}

void json_add_seed(cJSON *o, uint64_t seed)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    cJSON_AddRawToObject(o, "seed", buf);
}

cJSON *gen_req_error_json(const gen_req *g, int openai)
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
// server-sent events

void sse_append(sse *e, const char *s, size_t n)
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

void sse_put(sse *e, cJSON *o)
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

size_t sse_generated_chars(const sse *e)
{
    size_t n = 0;
    for (int k = 0; k < e->n_g; k++)
        n += gen_req_generated_chars(e->g[k]);
    return n;
}

size_t sse_seed_chars(const sse *e)
{
    size_t n = 0;
    for (int k = 0; k < e->n_g; k++)
        n += gen_req_seed_chars(e->g[k]);
    return n;
}

/* The next event of the stream: the current request's, or the next request's once it ended. */
static void sse_next_event(sse *e, gen_event *ev)
{
    for (;;) {
        gen_req *g = e->g[e->cur];
        gen_take(g, ev);
        ev->choice += e->cur * g->n;
        if (ev->kind != GEN_END || e->cur + 1 == e->n_g)
            return;
        e->cur++; /* the others ran beside it; their text waits in their buffers */
    }
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
        sse_next_event(e, &ev);
        e->format(e, &ev);
        free(ev.text);
        free(ev.lp);
        if (ev.kind == GEN_END) { /* done: its streams are the handler's to read now */
            metrics_generated(e->a->metrics, (long long)sse_generated_chars(e));
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
    for (int k = 0; k < e->n_g; k++) {
        gen_req_cancel(e->g[k]);
        gen_req_release(e->g[k]);
    }
    free(e->buf);
    free(e);
}

int reply_sse(request *r, sse_format_fn format, const sse *init)
{
    sse *e = malloc(sizeof *e);
    if (!e) {
        for (int k = 0; k < init->n_g; k++) {
            gen_req_cancel(init->g[k]);
            gen_req_release(init->g[k]);
        }
        return reply_error(r, 500, "internal", NULL, "out of memory");
    }
    *e = *init;
    e->a = r->app, e->format = format, e->cur = 0;
    return reply_events(r, sse_read, e, sse_free, e->g[0]->id);
}
