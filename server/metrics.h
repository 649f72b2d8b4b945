/* metrics: counters for GET /metrics (Prometheus text format 0.0.4). Thread-safe. */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stddef.h>

typedef struct metrics metrics;

int metrics_new(metrics **out);
void metrics_free(metrics *m);

/* One finished request: counted by method, route pattern and status, and its latency observed. */
void metrics_request(metrics *m, const char *method, const char *route, int status, double seconds);
void metrics_generated(metrics *m, long long chars);

/* Appends the exposition text to a malloc'ed buffer (caller frees); extra_lines, already in the
 * format (gauges owned by other modules), are appended verbatim. NULL if out of memory. */
char *metrics_render(metrics *m, const char *extra_lines);

#endif
