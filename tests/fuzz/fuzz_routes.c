/* fuzz_routes: libFuzzer target for every request body the server parses. The first byte picks a
 * route from the route table, the rest is the body; the request goes through http_handle in
 * process (no socket) to a real app: two tiny models on disk, a real SQLite file, the
 * generation scheduler. Whatever the bytes, the answer must be a status below 500 (503 aside:
 * busy) with a JSON body, or a stream; never a crash, a hang, a leak or a 5xx. (A job's event
 * stream is left out: without a worker its job never ends, and the route reads no body.) */
#include "app.h"
#include "checkpoint.h"
#include "config.h"
#include "gen.h"
#include "http.h"
#include "jobs.h"
#include "metrics.h"
#include "registry.h"
#include "routes.h"
#include "store.h"
#include "vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static app a;

static void save_model(const char *dir, const char *name, int regime)
{
    uint32_t cps[100];
    int V = 0;
    cps[V++] = '\n'; /* in code point order, as a vocabulary is */
    for (uint32_t c = ' '; c <= '~'; c++)
        cps[V++] = c;
    cps[V++] = 0xE9, cps[V++] = 0x7EA2; /* é 红 */
    vocab v = {0};
    model_config cfg = {.L = regime ? 2 : 1, .H = 16, .regime = regime, .maxlen = 5, .step = 1,
                        .seq_len = 8};
    model *m;
    char path[256];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    if (vocab_init(&v, cps, V, NULL, 0) || model_new(&m, &cfg, &v, NULL, 0) ||
        model_init_weights(m, 1) || checkpoint_save(path, m, NULL, 0, NULL, 0))
        abort();
    vocab_deinit(&v);
    model_free(m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char dir[] = "/tmp/fuzz_routes.XXXXXX";
    if (!mkdtemp(dir))
        abort();
    save_model(dir, "default", REGIME_SEQUENCE);
    save_model(dir, "win", REGIME_WINDOW);
    char db[256];
    snprintf(db, sizeof db, "%s/db", dir);
    char *args[] = {"serve", "--models", dir, "--db", db, "--max-length", "40",
                    "--request-timeout", "5", "--max-body", "65536", NULL};
    if (config_parse(&a.cfg, 11, args) != -1 || store_open(&a.store, db, NULL, 0) ||
        metrics_new(&a.metrics) || registry_new(&a.models, dir) ||
        gen_sched_new(&a.gen, a.models, &(gen_limits){1, 8, 64, 5, 4096}))
        abort();
    snprintf(a.jobs_dir, sizeof a.jobs_dir, "%s.jobs", db);
    return 0; /* no job workers: a queued job stays queued */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const route *rt = &routes[data[0] % n_routes];
    if (strcmp(rt->pattern, "/jobs/{id}/events") == 0)
        return 0; /* a queued job's events never end (no worker here); it reads no body */
    /* path parameters that exist (and a model name nobody deletes) */
    char path[256];
    const char *p = rt->pattern;
    size_t n = 0;
    while (*p && n + 16 < sizeof path) {
        if (*p == '{') {
            const char *value = strncmp(p, "{name}", 6) == 0
                                    ? (strcmp(rt->method, "DELETE") == 0 ? "gone" : "default")
                                    : "1";
            n += (size_t)snprintf(path + n, sizeof path - n, "%s", value);
            p = strchr(p, '}') + 1;
        } else {
            path[n++] = *p++;
        }
    }
    path[n] = '\0';
    request r = {0};
    r.app = &a;
    r.method = rt->method;
    r.path = path;
    r.route = "unmatched";
    r.body = malloc(size);
    if (!r.body)
        return 0;
    memcpy(r.body, data + 1, size - 1);
    r.body[size - 1] = '\0';
    r.body_len = size - 1;
    static const char *const args[] = {"name", "fuzz", NULL};
    static const char *const headers[] = {"Content-Type", "application/json", NULL};
    r.args = args;
    r.headers = headers;
    http_handle(&r);
    if (r.status < 100 || (r.status >= 500 && r.status != 503)) {
        fprintf(stderr, "%s %s answered %d: %s\n", rt->method, path, r.status,
                r.captured ? r.captured : "(no body)");
        abort();
    }
    if (r.captured && r.captured_len && r.status != 204 && r.captured[0] != 'd' &&
        r.captured[0] != ':' && strncmp(rt->pattern, "/metrics", 8) != 0 &&
        strncmp(rt->pattern, "/openapi", 8) != 0 && strcmp(rt->pattern, "/") != 0) {
        cJSON *j = cJSON_Parse(r.captured); /* JSON, but for streams, /metrics and the web page */
        if (!j) {
            fprintf(stderr, "%s %s: not JSON: %.200s\n", rt->method, path, r.captured);
            abort();
        }
        cJSON_Delete(j);
    }
    free(r.body);
    free(r.captured);
    return 0;
}
