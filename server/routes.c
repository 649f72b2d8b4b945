/* routes: every endpoint the server answers; docs/openapi.json describes the same list (a test
 * checks the two agree). */
#include "routes.h"

const route routes[] = {
    {"POST", "/generate", route_generate, AUTH_GENERATE},
    {"DELETE", "/generations/{id}", route_generation_cancel, AUTH_GENERATE},
    {"POST", "/v1/completions", route_completions, AUTH_GENERATE},
    {"GET", "/v1/models", route_openai_models, AUTH_NONE},
    {"GET", "/models", route_models_list, AUTH_NONE},
    {"GET", "/models/{name}", route_model_get, AUTH_NONE},
    {"DELETE", "/models/{name}", route_model_delete, AUTH_MUTATE},
    {"POST", "/corpora", route_corpora_create, AUTH_MUTATE},
    {"GET", "/corpora", route_corpora_list, AUTH_NONE},
    {"GET", "/corpora/{id}", route_corpus_get, AUTH_NONE},
    {"DELETE", "/corpora/{id}", route_corpus_delete, AUTH_MUTATE},
    {"POST", "/jobs", route_jobs_create, AUTH_MUTATE},
    {"GET", "/jobs", route_jobs_list, AUTH_NONE},
    {"GET", "/jobs/{id}", route_job_get, AUTH_NONE},
    {"POST", "/jobs/{id}/cancel", route_job_cancel, AUTH_MUTATE},
    {"GET", "/jobs/{id}/events", route_job_events, AUTH_NONE},
    {"GET", "/healthz", route_healthz, AUTH_NONE},
    {"GET", "/readyz", route_readyz, AUTH_NONE},
    {"GET", "/metrics", route_metrics, AUTH_NONE},
    {"GET", "/openapi.json", route_openapi, AUTH_NONE},
};
const int n_routes = sizeof routes / sizeof *routes;
