/* pool: workers sleep on a condition variable between jobs; a generation counter says a new job
 * is posted, and a countdown says when every worker has finished it. */
#include "pool.h"

#include "err.h"

#include <pthread.h>
#include <stdlib.h>

struct pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    unsigned long generation; /* bumped for every job */
    int pending;              /* workers (other than 0) still running the current job */
    int stopping;
    pool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    pool *p;
    int index;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    pool *p = a.p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->generation == seen && !p->stopping)
            pthread_cond_wait(&p->start, &p->lock);
        if (p->stopping)
            break;
        seen = p->generation;
        pool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->lock);
        fn(ctx, a.index);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int pool_new(pool **out, int n)
{
    if (n < 1 || n > 64)
        return CORE_ERANGE;
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return CORE_ENOMEM;
    p->n = n;
    p->threads = calloc((size_t)n, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return CORE_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a || (a->p = p, a->index = i, pthread_create(&p->threads[i], NULL, worker_main, a))) {
            free(a);
            p->n = i; /* join the ones that started */
            pool_free(p);
            return CORE_ENOMEM;
        }
    }
    *out = p;
    return 0;
}

void pool_run(pool *p, pool_fn fn, void *ctx)
{
    if (p->n > 1) {
        pthread_mutex_lock(&p->lock);
        p->fn = fn;
        p->ctx = ctx;
        p->pending = p->n - 1;
        p->generation++;
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);
    }
    fn(ctx, 0);
    if (p->n > 1) {
        pthread_mutex_lock(&p->lock);
        while (p->pending > 0)
            pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}

int pool_size(const pool *p) { return p->n; }

void pool_free(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}
