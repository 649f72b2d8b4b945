/* pool: a generation counter says a new job is posted, a countdown says when every worker has
 * finished it. Workers (and pool_run waiting for them) may spin for a while on those counters
 * before sleeping on a condition variable; the counters are only changed under the lock, so a
 * sleeper never misses a change. */
#include "pool.h"

#include "err.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

struct pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    unsigned long generation; /* bumped for every job (atomic reads outside the lock) */
    int pending;              /* workers (other than 0) still running the current job */
    int stopping;
    pool_fn fn;
    void *ctx;
    int spin_us;
    int arrived;              /* pool_barrier: workers at the barrier */
    unsigned phase;           /* pool_barrier: bumped when the last one arrives */
};

typedef struct worker_arg {
    pool *p;
    int index;
} worker_arg;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins up to p->spin_us while *word == value; 1 if it changed meanwhile. */
static int spin_while_equal(pool *p, const unsigned long *word, unsigned long value)
{
    if (p->spin_us <= 0)
        return 0;
    double until = now_us() + p->spin_us;
    for (int i = 0;; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != value)
            return 1;
        cpu_relax();
        if ((i & 255) == 255 && now_us() > until)
            return 0;
    }
}

static void *worker_main(void *arg)
{
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    pool *p = a.p;
    unsigned long seen = 0;
    for (;;) {
        spin_while_equal(p, &p->generation, seen);
        pthread_mutex_lock(&p->lock);
        while (p->generation == seen && !p->stopping)
            pthread_cond_wait(&p->start, &p->lock);
        if (p->stopping) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        seen = p->generation;
        pool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->lock);
        fn(ctx, a.index);
        pthread_mutex_lock(&p->lock);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_RELEASE) == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
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

void pool_set_spin(pool *p, int microseconds) { p->spin_us = microseconds; }

void pool_run(pool *p, pool_fn fn, void *ctx)
{
    if (p->n > 1) {
        pthread_mutex_lock(&p->lock);
        p->fn = fn;
        p->ctx = ctx;
        __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);
    }
    fn(ctx, 0);
    if (p->n > 1) {
        if (p->spin_us > 0) {
            double until = now_us() + p->spin_us;
            for (int i = 0; __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0; i++) {
                cpu_relax();
                if ((i & 255) == 255 && now_us() > until)
                    break;
            }
        }
        pthread_mutex_lock(&p->lock);
        while (p->pending > 0)
            pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}

void pool_barrier(pool *p)
{
    if (p->n == 1)
        return;
    unsigned phase = __atomic_load_n(&p->phase, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&p->arrived, 1, __ATOMIC_ACQ_REL) == p->n) {
        __atomic_store_n(&p->arrived, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&p->phase, 1, __ATOMIC_RELEASE);
        return;
    }
    /* The others are mid-step and a step is short: spin, and yield if we share a core. */
    for (int i = 0; __atomic_load_n(&p->phase, __ATOMIC_ACQUIRE) == phase; i++) {
        if (i < 4000)
            cpu_relax();
        else
            sched_yield();
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
