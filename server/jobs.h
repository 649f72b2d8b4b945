/* jobs: the training workers. Each of --job-workers threads takes queued jobs from the store in
 * order (a claim is atomic, so no job runs twice), trains each
 * with train_run in its own directory (PATH.jobs/ID/), records progress and epochs, and on success
 * publishes the model into the models directory atomically. A job interrupted by a crash or a
 * shutdown is queued again and resumes from its latest checkpoint. */
#ifndef SERVER_JOBS_H
#define SERVER_JOBS_H

#include "app.h"

#include <stdint.h>

typedef struct job_worker job_worker;

/* At startup, with the trainer lease held, after store_requeue_running and before jobs_start:
 * removes what a crash left. The working directories of finished jobs (succeeded, failed or
 * cancelled: the process died before removing them; files it did not write stay, and so does
 * their directory), and the temporary files of interrupted writes in models_dir, the writable
 * models directory (named as fs_atomic_open names them and no longer written: see
 * fs_remove_temporaries). Queued and running jobs' directories are left alone. Logs what it
 * removed; a failure is logged, never fatal. */
void jobs_sweep(app *a, const char *models_dir);

/* Starts `workers` worker threads (at least one). The functions below take NULL too: a server
 * (or the fuzz harness) that runs no jobs. */
int jobs_start(job_worker **out, app *a, int workers);
/* Wakes the worker: a job was queued. */
void jobs_wake(job_worker *w);
/* The running job's cancel was requested: stop it at the next batch. */
void jobs_cancel(job_worker *w, int64_t id);
/* Stops the workers: running jobs save their state and go back to queued; the threads end.
 * Frees w. */
void jobs_stop(job_worker *w);
/* Training characters per second of the running jobs together (0 when none). */
double jobs_rate(job_worker *w);

#endif
