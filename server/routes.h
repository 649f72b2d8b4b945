/* routes: the table of endpoints and their handlers. Each handler answers through reply_* and
 * returns 0. Path parameters ({name}) arrive decoded in r->params. */
#ifndef SERVER_ROUTES_H
#define SERVER_ROUTES_H

#include "http.h"

/* Who may call a route when the server has an API key (without one, everybody). */
enum route_auth {
    AUTH_NONE = 0,     /* always open: health checks, the web app's files */
    AUTH_KEY = 1,      /* the key */
    AUTH_GENERATE = 2, /* the key, unless --public-generate: generation and the model list */
    AUTH_METRICS = 3,  /* the key, unless --public-metrics */
};

/* Which --role serves a route (an --role all server serves them all). */
enum route_served {
    SERVED_GENERATE = 1, /* generation replicas */
    SERVED_TRAIN = 2,    /* the trainer: the database and the writable models folder */
    SERVED_BOTH = 3,
};

typedef struct route {
    const char *method;
    const char *pattern; /* "/jobs/{id}/cancel": {x} matches one path segment */
    route_fn fn;
    int auth;
    int while_stopping; /* still answered during a shutdown (health checks) */
    int served;         /* enum route_served */
} route;

extern const route routes[];
extern const int n_routes;

/* routes_gen.c */
int route_generate(request *r);
int route_generations_list(request *r);
int route_generation_cancel(request *r);
/* routes_openai.c */
int route_completions(request *r);
int route_chat_completions(request *r);
/* routes_vocab.c */
int route_tokenize(request *r);
int route_detokenize(request *r);
/* routes_models.c */
int route_models_list(request *r);
int route_model_get(request *r);
int route_model_delete(request *r);
int route_openai_models(request *r);
int route_openai_model_get(request *r);
/* routes_data.c */
int route_corpora_create(request *r);
int route_corpora_list(request *r);
int route_corpus_get(request *r);
int route_corpus_delete(request *r);
int route_jobs_create(request *r);
int route_jobs_list(request *r);
int route_job_get(request *r);
int route_job_cancel(request *r);
int route_job_events(request *r);
/* routes_ops.c */
int route_healthz(request *r);
int route_readyz(request *r);
int route_props(request *r);
int route_metrics(request *r);
int route_openapi(request *r);
/* routes_web.c */
int route_web_index(request *r);
int route_web_asset(request *r);

#endif
