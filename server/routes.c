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
};
const int n_routes = sizeof routes / sizeof *routes;
