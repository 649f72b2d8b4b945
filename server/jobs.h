/* jobs: the training worker. One thread takes queued jobs from the store in order, trains each
 * with train_run in its own directory (PATH.jobs/ID/), records progress and epochs, and on success
 * publishes the model into the models directory atomically. A job interrupted by a crash or a
 * shutdown is queued again and resumes from its latest checkpoint. */
#ifndef SERVER_JOBS_H
#define SERVER_JOBS_H

#include "app.h"

#include <stdint.h>

typedef struct job_worker job_worker;

int jobs_start(job_worker **out, app *a);
/* Wakes the worker: a job was queued. */
void jobs_wake(job_worker *w);
/* The running job's cancel was requested: stop it at the next batch. */
void jobs_cancel(job_worker *w, int64_t id);
/* Stops the worker: a running job saves its state, goes back to queued, and the thread ends.
 * Frees w. */
void jobs_stop(job_worker *w);
/* Training characters per second of the running job (0 when none). */
double jobs_rate(job_worker *w);

#endif
