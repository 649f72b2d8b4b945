/* gen: per-model FIFO queues served by worker threads that run sample_generate to the end. */
#include "gen.h"

#include "err.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_MAX_MODELS 64

typedef struct model_queue {
    char name[72];
    gen_job *head, *tail;
    pthread_t *threads;
    int n_threads;
    struct gen_sched *s;
} model_queue;

struct gen_sched {
    registry *models;
    int workers, max_pending;
    pthread_mutex_t lock;
    pthread_cond_t work;
    model_queue queues[GEN_MAX_MODELS];
    int n_queues;
    gen_job *running[1024]; /* for cancel by id; bounded by max_pending */
    int queued, n_running;
    int stopping;
    rng ids; /* generation ids: random, so a client cannot guess another's to cancel it */
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int gen_sched_new(gen_sched **out, registry *models, int workers, int max_pending)
{
    gen_sched *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    s->models = models;
    s->workers = workers < 1 ? 1 : workers;
    s->max_pending = max_pending > 1024 ? 1024 : max_pending;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    uint64_t seed[2] = {rng_fresh_seed(), rng_fresh_seed()};
    rng_seed(&s->ids, seed[0] ^ (seed[1] << 11));
    *out = s;
    return 0;
}

gen_job *gen_job_new(const char *seed_text, size_t seed_len, const char *const *stops, int n_stop)
{
    gen_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->refs = 1;
    j->seed_text = malloc(seed_len + 1);
    j->stops = n_stop > 0 ? calloc((size_t)n_stop, sizeof *j->stops) : NULL;
    if (!j->seed_text || (n_stop > 0 && !j->stops)) {
        gen_job_release(j);
        return NULL;
    }
    memcpy(j->seed_text, seed_text, seed_len);
    j->seed_text[seed_len] = '\0';
    for (int i = 0; i < n_stop; i++)
        if (!(j->stops[i] = strdup(stops[i]))) {
            j->req.n_stop = i; /* free what was copied */
            gen_job_release(j);
            return NULL;
        }
    j->req.seed_text = j->seed_text;
    j->req.seed_len = seed_len;
    j->req.stop = (const char *const *)j->stops;
    j->req.n_stop = n_stop;
    j->req.cancel = &j->cancel;
    return j;
}

void gen_job_release(gen_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    for (int i = 0; i < j->req.n_stop; i++)
        free(j->stops[i]);
    free(j->stops);
    free(j->seed_text);
    sample_result_deinit(&j->res);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j);
}

static void *worker_main(void *arg)
{
    model_queue *q = arg;
    gen_sched *s = q->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!q->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!q->head)
            break; /* stopping and nothing left */
        gen_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        s->queued--;
        for (int i = 0; i < s->max_pending; i++)
            if (!s->running[i]) {
                s->running[i] = j;
                break;
            }
        s->n_running++;
        if (s->stopping)
            j->cancel = 1;
        pthread_mutex_unlock(&s->lock);

        j->t_start = now_mono();
        j->rc = sample_generate(&j->res, j->lm->m, &j->req, j->err, sizeof j->err);
        j->t_end = now_mono();
        registry_release(s->models, j->lm);
        j->lm = NULL;

        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < s->max_pending; i++)
            if (s->running[i] == j)
                s->running[i] = NULL;
        s->n_running--;
        pthread_mutex_unlock(&s->lock);

        if (j->on_done)
            j->on_done(j);
        pthread_mutex_lock(&j->lock);
        j->done = 1;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
        gen_job_release(j); /* the worker's reference */
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The queue of model name, created with its workers on first use; call with the lock held. */
static model_queue *queue_for(gen_sched *s, const char *name)
{
    for (int i = 0; i < s->n_queues; i++)
        if (strcmp(s->queues[i].name, name) == 0)
            return &s->queues[i];
    if (s->n_queues == GEN_MAX_MODELS)
        return NULL;
    model_queue *q = &s->queues[s->n_queues];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    q->s = s;
    q->threads = calloc((size_t)s->workers, sizeof *q->threads);
    if (!q->threads)
        return NULL;
    for (int i = 0; i < s->workers; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0)
            break;
        q->n_threads++;
    }
    if (q->n_threads == 0) {
        free(q->threads);
        return NULL;
    }
    s->n_queues++;
    return q;
}

int gen_submit(gen_sched *s, gen_job *j, loaded_model *lm)
{
    pthread_mutex_lock(&s->lock);
    if (s->stopping || s->queued + s->n_running >= s->max_pending) {
        pthread_mutex_unlock(&s->lock);
        return CORE_ERANGE;
    }
    model_queue *q = queue_for(s, lm->name);
    if (!q) {
        pthread_mutex_unlock(&s->lock);
        return CORE_ENOMEM;
    }
    uint64_t a = rng_u64(&s->ids), b = rng_u64(&s->ids);
    snprintf(j->id, sizeof j->id, "gen-%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
    j->lm = lm;
    j->t_submit = now_mono();
    j->refs++; /* the worker's */
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    s->queued++;
    /* every model's workers share one condition variable: wake them all, the right ones go */
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int gen_wait(gen_job *j, int (*alive)(void *ctx), void *ctx)
{
    int gone = 0;
    pthread_mutex_lock(&j->lock);
    while (!j->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&j->cond, &j->lock, &ts);
        if (j->done)
            break;
        pthread_mutex_unlock(&j->lock);
        if (!gone && alive && !alive(ctx)) {
            gone = 1;
            j->cancel = 1;
        }
        if (j->deadline > 0 && now_mono() > j->deadline && !j->cancel) {
            j->timed_out = 1;
            j->cancel = 1;
        }
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return !gone;
}

int gen_cancel(gen_sched *s, const char *id)
{
    int rc = CORE_ENOTFOUND;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->max_pending && rc; i++)
        if (s->running[i] && strcmp(s->running[i]->id, id) == 0)
            s->running[i]->cancel = 1, rc = 0;
    for (int k = 0; k < s->n_queues && rc; k++)
        for (gen_job *j = s->queues[k].head; j && rc; j = j->next)
            if (strcmp(j->id, id) == 0)
                j->cancel = 1, rc = 0;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void gen_counts(gen_sched *s, int *queued, int *running)
{
    pthread_mutex_lock(&s->lock);
    *queued = s->queued;
    *running = s->n_running;
    pthread_mutex_unlock(&s->lock);
}

void gen_cancel_all(gen_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    for (int i = 0; i < s->max_pending; i++)
        if (s->running[i])
            s->running[i]->cancel = 1;
    for (int k = 0; k < s->n_queues; k++)
        for (gen_job *j = s->queues[k].head; j; j = j->next)
            j->cancel = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->lock);
}

void gen_sched_free(gen_sched *s)
{
    if (!s)
        return;
    gen_cancel_all(s);
    for (int k = 0; k < s->n_queues; k++) {
        for (int i = 0; i < s->queues[k].n_threads; i++)
            pthread_join(s->queues[k].threads[i], NULL);
        free(s->queues[k].threads);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    free(s);
}
