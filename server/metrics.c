/* metrics: a small table of (method, route, status) counters with latency histograms. */
#include "metrics.h"

#include "err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof buckets / sizeof *buckets)

typedef struct series {
    char method[8];
    const char *route; /* a route pattern: static storage */
    int status;
    long long count;
    double sum;
    long long le[N_BUCKETS + 1]; /* per bucket, the last above every bound */
} series;

struct metrics {
    pthread_mutex_t lock;
    series *s;
    int n, cap;
    long long generated_chars;
};

int metrics_new(metrics **out)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return CORE_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return 0;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->s);
    free(m);
}

void metrics_request(metrics *m, const char *method, const char *route, int status, double seconds)
{
    pthread_mutex_lock(&m->lock);
    series *s = NULL;
    for (int i = 0; i < m->n && !s; i++)
        if (m->s[i].route == route && m->s[i].status == status &&
            strcmp(m->s[i].method, method) == 0)
            s = &m->s[i];
    if (!s && m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 32;
        series *more = realloc(m->s, (size_t)cap * sizeof *more);
        if (more)
            m->s = more, m->cap = cap;
    }
    if (!s && m->n < m->cap) {
        s = &m->s[m->n++];
        memset(s, 0, sizeof *s);
        snprintf(s->method, sizeof s->method, "%s", method);
        s->route = route;
        s->status = status;
    }
    if (s) {
        s->count++;
        s->sum += seconds;
        size_t b = 0;
        while (b < N_BUCKETS && seconds > buckets[b])
            b++;
        s->le[b]++;
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_generated(metrics *m, long long chars)
{
    pthread_mutex_lock(&m->lock);
    m->generated_chars += chars;
    pthread_mutex_unlock(&m->lock);
}

void metrics_put(metrics_text *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0 || b->failed) {
            b->failed = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
}

void metrics_put_histogram(metrics_text *b, const char *name, const char *labels,
                           const double *le, size_t n, const long long *counts, double sum)
{
    long long cum = 0;
    for (size_t k = 0; k < n; k++) {
        cum += counts[k];
        metrics_put(b, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels, le[k], cum);
    }
    cum += counts[n];
    metrics_put(b, "%s_bucket{%s,le=\"+Inf\"} %lld\n", name, labels, cum);
    metrics_put(b, "%s_sum{%s} %.6f\n%s_count{%s} %lld\n", name, labels, sum, name, labels, cum);
}

char *metrics_render(metrics *m, const char *extra_lines)
{
    metrics_text b = {0};
    pthread_mutex_lock(&m->lock);
    metrics_put(&b, "# HELP lstmgen_http_requests_total HTTP requests by method, route and "
                    "status.\n# TYPE lstmgen_http_requests_total counter\n");
    for (int i = 0; i < m->n; i++)
        metrics_put(&b,
                    "lstmgen_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %lld\n",
                    m->s[i].method, m->s[i].route, m->s[i].status, m->s[i].count);
    metrics_put(&b, "# HELP lstmgen_http_request_duration_seconds Time from request to the end of "
                    "the response.\n# TYPE lstmgen_http_request_duration_seconds histogram\n");
    for (int i = 0; i < m->n; i++) {
        const series *s = &m->s[i];
        char labels[256];
        snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",status=\"%d\"", s->method,
                 s->route, s->status);
        metrics_put_histogram(&b, "lstmgen_http_request_duration_seconds", labels, buckets,
                              N_BUCKETS, s->le, s->sum);
    }
    metrics_put(
        &b,
        "# HELP lstmgen_generated_characters_total Characters generated.\n"
        "# TYPE lstmgen_generated_characters_total counter\nlstmgen_generated_characters_total "
        "%lld\n",
        m->generated_chars);
    pthread_mutex_unlock(&m->lock);
    if (extra_lines)
        metrics_put(&b, "%s", extra_lines);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
