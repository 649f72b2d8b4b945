/* routes_gen: POST /generate (JSON or server-sent events), GET /generations and
 * DELETE /generations/{id}. A handler reads its fields, checks the request exactly as the
 * stream will read it (sample_request_check, core's), submits it to the model's scheduler, and
 * then only waits for (outcome_or_reply) or streams (reply_sse) what the scheduler delivers. */
#include "routes.h"

#include "app.h"
#include "err.h"
#include "gen.h"
#include "genreply.h"
#include "jsonreq.h"
#include "metrics.h"
#include "rng.h"
#include "serve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// POST /generate

static void add_timing(cJSON *o, const gen_req *g)
{
    cJSON *t = cJSON_AddObjectToObject(o, "timing");
    double run = g->t_end - g->t_start;
    cJSON_AddNumberToObject(t, "total_ms", round((g->t_end - g->t_submit) * 1e4) / 10);
    cJSON_AddNumberToObject(t, "queue_ms", round((g->t_start - g->t_submit) * 1e4) / 10);
    cJSON_AddNumberToObject(t, "chars_per_second",
                            run > 0 ? round((double)gen_req_generated_chars(g) / run) : 0);
}

static void add_usage(cJSON *o, const gen_req *g)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "seed_chars", (double)gen_req_seed_chars(g));
    cJSON_AddNumberToObject(u, "generated_chars", (double)gen_req_generated_chars(g));
}

static const field_name generate_names[] = {{NULL, NULL}};

static void generate_event(sse *e, const gen_event *ev)
{
    const gen_req *g = e->g[0];
    if (ev->kind == GEN_TEXT) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", ev->text);
        sse_put(e, o);
    } else if (ev->kind == GEN_END) {
        cJSON *o = gen_req_error_json(g, 0);
        if (!o) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", g->id);
            cJSON_AddStringToObject(o, "finish_reason", sample_finish_name(g->choice[0].finish));
            json_add_seed(o, g->req.seed);
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
    const char *model = NULL, *seed_text = NULL, *mode = "auto";
    double temperature = SAMPLE_DEFAULT_TEMPERATURE, top_p = SAMPLE_DEFAULT_TOP_P;
    long long length = SAMPLE_DEFAULT_LENGTH, top_k = SAMPLE_DEFAULT_TOP_K;
    const char *stops[SAMPLE_MAX_STOPS];
    int n_stop = 0, streaming = 0, seed_given = 0, skip = 0;
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
        json_unknown_chars_or_reply(r, body, &skip) ||
        json_string_or_reply(r, body, "mode", &mode))
        goto out;
    if (!seed_text) {
        reply_error(r, 400, "missing_field", "seed_text", "seed_text is required (it may be \"\")");
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
        !(g = submit_or_reply(r, lm, &q, 1, streaming, generate_names, NULL)))
        goto out;
    if (streaming) {
        reply_sse(r, generate_event, &(sse){.g = {g}, .n_g = 1});
        g = NULL; /* the response's now */
        goto out;
    }
    if (outcome_or_reply(r, g))
        goto out;
    const genstream *gs = &g->choice[0].gs;
    metrics_generated(r->app->metrics, (long long)gen_req_generated_chars(g));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", g->id);
    cJSON_AddStringToObject(o, "model", lm->name);
    cJSON_AddStringToObject(o, "seed_text", seed_text);
    cJSON_AddStringToObject(o, "text", g->choice[0].started ? gs->text : "");
    cJSON_AddStringToObject(o, "finish_reason", sample_finish_name(g->choice[0].finish));
    cJSON_AddStringToObject(o, "mode", sample_mode_name(gs->mode));
    json_add_seed(o, q.seed);
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
