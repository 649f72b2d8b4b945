/* routes_ops: liveness, readiness, the server's settings, Prometheus metrics and the OpenAPI
 * description. */
#include "routes.h"

#include "app.h"
#include "gen.h"
#include "genreply.h"
#include "jobs.h"
#include "lease.h"
#include "metrics.h"
#include "mm.h"
#include "registry.h"
#include "score.h"
#include "serve.h"
#include "simd.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char openapi_json[]; /* docs/openapi.json, embedded at build time */

int route_healthz(request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return reply_json_take(r, 200, o);
}

int route_readyz(request *r)
{
    app *a = r->app;
    int64_t counts[STORE_JOB_NSTATUS];
    char err[256] = "";
    /* a generation replica has no database to be unwell */
    int db_ok = !a->store || store_count_jobs(a->store, counts, err, sizeof err) == 0;
    char **names;
    int n = 0;
    int models_ok = registry_list(a->models, &names, &n) == 0;
    for (int i = 0; models_ok && i < n; i++)
        free(names[i]);
    if (models_ok)
        free(names);
    char def[80] = "";
    int has_default = app_default_model(a, def, sizeof def) == 0;
    int ready = db_ok && models_ok && !a->stopping;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status",
                            ready ? "ready" : (a->stopping ? "stopping" : "not ready"));
    cJSON_AddStringToObject(o, "role", server_role_name(a->cfg.role));
    if (a->store)
        cJSON_AddBoolToObject(o, "database", db_ok);
    else
        cJSON_AddNullToObject(o, "database");
    if (a->lease) /* false: another trainer took this database's jobs over */
        cJSON_AddBoolToObject(o, "trainer_lease", lease_held(a->lease));
    cJSON_AddBoolToObject(o, "models_dir", models_ok);
    cJSON_AddNumberToObject(o, "models", n);
    if (has_default)
        cJSON_AddStringToObject(o, "default_model", def);
    else
        cJSON_AddNullToObject(o, "default_model");
    return reply_json_take(r, ready ? 200 : 503, o);
}

/* GET /props: what a client may ask for here, read from the rules themselves. */
int route_props(request *r)
{
    const server_config *c = &r->app->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", LSTMGEN_VERSION);
    cJSON_AddStringToObject(o, "simd", simd_name(simd_level()));
    cJSON_AddStringToObject(o, "blas", mm_blas_core());
    char def[80];
    if (app_default_model(r->app, def, sizeof def) == 0)
        cJSON_AddStringToObject(o, "default_model", def);
    else
        cJSON_AddNullToObject(o, "default_model");
    cJSON_AddStringToObject(o, "chat_template", c->chat_template);
    cJSON *d = cJSON_AddObjectToObject(o, "defaults");
    cJSON_AddNumberToObject(d, "length", SAMPLE_DEFAULT_LENGTH);
    cJSON_AddNumberToObject(d, "max_tokens", OPENAI_DEFAULT_MAX_TOKENS);
    cJSON_AddNumberToObject(d, "chat_max_tokens", SAMPLE_DEFAULT_LENGTH);
    cJSON_AddNumberToObject(d, "temperature", SAMPLE_DEFAULT_TEMPERATURE);
    cJSON_AddNumberToObject(d, "top_k", SAMPLE_DEFAULT_TOP_K);
    cJSON_AddNumberToObject(d, "top_p", SAMPLE_DEFAULT_TOP_P);
    cJSON_AddStringToObject(d, "mode", sample_mode_name(SAMPLE_MODE_AUTO));
    cJSON *l = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(l, "max_length", c->max_length);
    cJSON_AddNumberToObject(l, "max_body", (double)c->max_body);
    cJSON_AddNumberToObject(l, "max_header_bytes", HTTP_MAX_HEADER_BYTES);
    cJSON_AddNumberToObject(l, "max_concurrent", c->max_concurrent);
    cJSON_AddNumberToObject(l, "max_batch", c->max_batch);
    cJSON_AddNumberToObject(l, "request_timeout", c->request_timeout);
    cJSON_AddNumberToObject(l, "stop_strings", SAMPLE_MAX_STOPS);
    cJSON_AddNumberToObject(l, "openai_stop_strings", OPENAI_MAX_STOPS);
    cJSON_AddNumberToObject(l, "choices", GEN_MAX_CHOICES);
    cJSON_AddNumberToObject(l, "prompts", SSE_MAX_REQS);
    cJSON_AddNumberToObject(l, "top_logprobs", SCORE_MAX_TOP);
    cJSON_AddNumberToObject(l, "openai_logprobs", OPENAI_MAX_LOGPROBS);
    cJSON_AddNumberToObject(l, "openai_top_logprobs", OPENAI_MAX_TOP_LOGPROBS);
    cJSON *a = cJSON_AddObjectToObject(o, "auth");
    cJSON_AddBoolToObject(a, "api_key", c->api_key[0] != 0);
    cJSON_AddBoolToObject(a, "public_generate", c->public_generate);
    cJSON_AddBoolToObject(a, "public_metrics", c->public_metrics);
    cJSON_AddStringToObject(o, "cors_origin", c->cors_origin);
    return reply_json_take(r, 200, o);
}

int route_metrics(request *r)
{
    app *a = r->app;
    int queued = 0, running = 0;
    gen_counts(a->gen, &queued, &running);
    int64_t counts[STORE_JOB_NSTATUS] = {0};
    if (a->store)
        store_count_jobs(a->store, counts, NULL, 0);
    char extra[2048];
    int len = snprintf(extra, sizeof extra,
                       "# HELP lstmgen_generations_active Streams generating now, all models.\n"
                       "# TYPE lstmgen_generations_active gauge\nlstmgen_generations_active %d\n"
                       "# HELP lstmgen_generation_queue_depth Streams waiting for a batch slot, "
                       "all models.\n"
                       "# TYPE lstmgen_generation_queue_depth gauge\n"
                       "lstmgen_generation_queue_depth %d\n"
                       "# HELP lstmgen_training_chars_per_second Throughput of the running "
                       "training jobs together.\n# TYPE lstmgen_training_chars_per_second gauge\n"
                       "lstmgen_training_chars_per_second %.1f\n"
                       "# HELP lstmgen_jobs Training jobs by status.\n# TYPE lstmgen_jobs gauge\n",
                       running, queued, jobs_rate(a->jobs));
    for (int s = 0; s < STORE_JOB_NSTATUS && len > 0 && (size_t)len < sizeof extra; s++)
        len +=
            snprintf(extra + len, sizeof extra - (size_t)len, "lstmgen_jobs{status=\"%s\"} %lld\n",
                     store_job_status_name((store_job_status)s), (long long)counts[s]);
    char *per_model = gen_metrics(a->gen);
    size_t elen = strlen(extra), plen = per_model ? strlen(per_model) : 0;
    char *lines = per_model ? malloc(elen + plen + 1) : NULL;
    if (lines) {
        memcpy(lines, extra, elen);
        memcpy(lines + elen, per_model, plen + 1);
    }
    free(per_model);
    char *text = lines ? metrics_render(a->metrics, lines) : NULL;
    free(lines);
    if (!text)
        return reply_error(r, 500, "internal", NULL, "out of memory");
    reply_text(r, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
    return 0;
}

int route_openapi(request *r)
{
    return reply_text(r, 200, "application/json", openapi_json, strlen(openapi_json));
}
