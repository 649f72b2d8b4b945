/* gen: the generation scheduler. Each model has its own queue and worker threads; HTTP handlers
 * submit jobs and wait (or stream), and never run the model themselves, so later the workers can
 * advance many streams with one batched LSTM step. A job is refcounted: the submitter and the
 * worker each hold a reference; the last release frees it. */
#ifndef SERVER_GEN_H
#define SERVER_GEN_H

#include "registry.h"
#include "sample.h"

#include <pthread.h>

typedef struct gen_sched gen_sched;
typedef struct gen_job gen_job;

/* Called on the worker thread when the job ends (after res/rc are set), before waiters wake. */
typedef void (*gen_done_fn)(gen_job *job);

struct gen_job {
    char id[48];
    loaded_model *lm;       /* the weights this job runs on (a registry reference) */
    sample_request req;     /* strings below are owned by the job */
    char *seed_text;
    char **stops;
    volatile int cancel;    /* set by DELETE /generations/{id}, a gone client or the timeout */
    double deadline;        /* monotonic seconds; 0 = none */
    int timed_out;
    gen_done_fn on_done;
    void *ctx;              /* the submitter's, for emit and on_done */
    /* result, valid once done */
    int rc;
    char err[512];
    sample_result res;
    double t_submit, t_start, t_end;
    /* bookkeeping */
    int done;
    int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gen_job *next;          /* queue link */
};

/* A scheduler with `workers` threads per model (started on a model's first job) and at most
 * max_pending jobs queued or running in all. */
int gen_sched_new(gen_sched **out, registry *models, int workers, int max_pending);
/* Cancels everything, joins the workers and frees the scheduler. */
void gen_sched_free(gen_sched *s);

/* A new job with one reference (the caller's), a fresh id, and copies of seed and stops. */
gen_job *gen_job_new(const char *seed_text, size_t seed_len, const char *const *stops, int n_stop);
void gen_job_release(gen_job *job);

/* Queues job on lm's queue; the job takes over the lm reference. CORE_ERANGE when max_pending
 * jobs are already queued or running (the caller answers 503); the lm reference is then still
 * the caller's. */
int gen_submit(gen_sched *s, gen_job *job, loaded_model *lm);

/* Waits until job is done, polling alive(ctx) every 50 ms (a gone client cancels the job); 1 if
 * it finished on its own, 0 if it was cancelled because alive returned 0. */
int gen_wait(gen_job *job, int (*alive)(void *ctx), void *ctx);

/* Sets the cancel flag of the queued or running job with this id; CORE_ENOTFOUND if none. */
int gen_cancel(gen_sched *s, const char *id);

/* Cancels every queued and running job (they finish at once, cancelled); new submissions are
 * refused from now on. */
void gen_cancel_all(gen_sched *s);

/* Jobs queued and running now. */
void gen_counts(gen_sched *s, int *queued, int *running);

#endif
