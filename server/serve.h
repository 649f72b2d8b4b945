/* serve: `lstmgen serve`, and what the routes share about the app. */
#ifndef SERVER_SERVE_H
#define SERVER_SERVE_H

#include "app.h"
#include "http.h"
#include "registry.h"

#include <stddef.h>

int serve_main(int argc, char **argv);

/* The model a request that names none gets: --default-model, else "default" if it exists,
 * else the first by name. 0 with the name in buf; CORE_ENOTFOUND when there are no models. */
int app_default_model(app *a, char *buf, size_t n);

/* registry_acquire for a request's "model" field (NULL: the default model), answering 404 for an
 * unknown model, 400 for a bad name and 500 for a broken file; nonzero when it replied. */
int model_acquire_or_reply(request *r, const char *name, loaded_model **out);

#endif
