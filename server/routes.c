/* routes: every endpoint the server answers; docs/openapi.json describes the same list (a test
 * checks the two agree). */
#include "routes.h"

const route routes[] = {
    {"POST", "/generate", route_generate, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"GET", "/generations", route_generations_list, AUTH_KEY, 0, SERVED_GENERATE},
    {"DELETE", "/generations/{id}", route_generation_cancel, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"POST", "/v1/completions", route_completions, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"GET", "/v1/models", route_openai_models, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"GET", "/models", route_models_list, AUTH_GENERATE, 0, SERVED_BOTH},
    {"GET", "/models/{name}", route_model_get, AUTH_GENERATE, 0, SERVED_BOTH},
    {"DELETE", "/models/{name}", route_model_delete, AUTH_KEY, 0, SERVED_TRAIN},
    {"POST", "/corpora", route_corpora_create, AUTH_KEY, 0, SERVED_TRAIN},
    {"GET", "/corpora", route_corpora_list, AUTH_KEY, 0, SERVED_TRAIN},
    {"GET", "/corpora/{id}", route_corpus_get, AUTH_KEY, 0, SERVED_TRAIN},
    {"DELETE", "/corpora/{id}", route_corpus_delete, AUTH_KEY, 0, SERVED_TRAIN},
    {"POST", "/jobs", route_jobs_create, AUTH_KEY, 0, SERVED_TRAIN},
    {"GET", "/jobs", route_jobs_list, AUTH_KEY, 0, SERVED_TRAIN},
    {"GET", "/jobs/{id}", route_job_get, AUTH_KEY, 0, SERVED_TRAIN},
    {"POST", "/jobs/{id}/cancel", route_job_cancel, AUTH_KEY, 0, SERVED_TRAIN},
    {"GET", "/jobs/{id}/events", route_job_events, AUTH_KEY, 0, SERVED_TRAIN},
    {"GET", "/healthz", route_healthz, AUTH_NONE, 1, SERVED_BOTH},
    {"GET", "/readyz", route_readyz, AUTH_NONE, 1, SERVED_BOTH},
    {"GET", "/metrics", route_metrics, AUTH_METRICS, 0, SERVED_BOTH},
    {"GET", "/openapi.json", route_openapi, AUTH_KEY, 0, SERVED_BOTH},
    /* added after the fuzz seeds were made: they pick a route by its index in this table */
    {"POST", "/v1/chat/completions", route_chat_completions, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"GET", "/v1/models/{id}", route_openai_model_get, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"POST", "/tokenize", route_tokenize, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"POST", "/detokenize", route_detokenize, AUTH_GENERATE, 0, SERVED_GENERATE},
    {"GET", "/props", route_props, AUTH_GENERATE, 0, SERVED_GENERATE},
    /* the web app: a page that asks for the key itself, so it must load without one */
    {"GET", "/", route_web_index, AUTH_NONE, 0, SERVED_BOTH},
    {"GET", "/app/{file}", route_web_asset, AUTH_NONE, 0, SERVED_BOTH},
};
const int n_routes = sizeof routes / sizeof *routes;
