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

/* Exposition text being written: metrics_put appends (printf-style), growing p; failed is set
 * (and stays) when memory runs out. Free p. */
typedef struct metrics_text {
    char *p;
    size_t len, cap;
    int failed;
} metrics_text;
void metrics_put(metrics_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A histogram's _bucket, _sum and _count lines. labels: `k="v",...` without braces; counts:
 * n + 1 per-bucket counts (not cumulative), the last for values above every bound in le. */
void metrics_put_histogram(metrics_text *t, const char *name, const char *labels,
                           const double *le, size_t n, const long long *counts, double sum);

#endif
