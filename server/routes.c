/* routes: every endpoint the server answers; docs/openapi.json describes the same list (a test
 * checks the two agree). */
#include "routes.h"

const route routes[] = {
    {"POST", "/generate", route_generate, AUTH_GENERATE, 0},
    {"GET", "/generations", route_generations_list, AUTH_KEY, 0},
    {"DELETE", "/generations/{id}", route_generation_cancel, AUTH_GENERATE, 0},
    {"POST", "/v1/completions", route_completions, AUTH_GENERATE, 0},
    {"GET", "/v1/models", route_openai_models, AUTH_GENERATE, 0},
    {"GET", "/models", route_models_list, AUTH_GENERATE, 0},
    {"GET", "/models/{name}", route_model_get, AUTH_GENERATE, 0},
    {"DELETE", "/models/{name}", route_model_delete, AUTH_KEY, 0},
    {"POST", "/corpora", route_corpora_create, AUTH_KEY, 0},
    {"GET", "/corpora", route_corpora_list, AUTH_KEY, 0},
    {"GET", "/corpora/{id}", route_corpus_get, AUTH_KEY, 0},
    {"DELETE", "/corpora/{id}", route_corpus_delete, AUTH_KEY, 0},
    {"POST", "/jobs", route_jobs_create, AUTH_KEY, 0},
    {"GET", "/jobs", route_jobs_list, AUTH_KEY, 0},
    {"GET", "/jobs/{id}", route_job_get, AUTH_KEY, 0},
    {"POST", "/jobs/{id}/cancel", route_job_cancel, AUTH_KEY, 0},
    {"GET", "/jobs/{id}/events", route_job_events, AUTH_KEY, 0},
    {"GET", "/healthz", route_healthz, AUTH_NONE, 1},
    {"GET", "/readyz", route_readyz, AUTH_NONE, 1},
    {"GET", "/metrics", route_metrics, AUTH_METRICS, 0},
    {"GET", "/openapi.json", route_openapi, AUTH_KEY, 0},
    /* added after the fuzz seeds were made: they pick a route by its index in this table */
    {"POST", "/v1/chat/completions", route_chat_completions, AUTH_GENERATE, 0},
    {"GET", "/v1/models/{id}", route_openai_model_get, AUTH_GENERATE, 0},
    {"POST", "/tokenize", route_tokenize, AUTH_GENERATE, 0},
    {"POST", "/detokenize", route_detokenize, AUTH_GENERATE, 0},
    {"GET", "/props", route_props, AUTH_GENERATE, 0},
    /* the web app: a page that asks for the key itself, so it must load without one */
    {"GET", "/", route_web_index, AUTH_NONE, 0},
    {"GET", "/app/{file}", route_web_asset, AUTH_NONE, 0},
};
const int n_routes = sizeof routes / sizeof *routes;
