/* jobs: the worker thread and the publication of finished models. */
#include "jobs.h"

#include "budget.h"
#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "fsutil.h"
#include "jobopts.h"
#include "lease.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "train.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One worker thread and the job it runs. */
typedef struct job_slot {
    struct job_worker *w;
    pthread_t thread;
    int64_t running_id;    /* w->lock */
    volatile int cancel;   /* the running job's stop flag, read by train_run */
    int cancel_by_user;    /* w->lock: the stop was a cancel, not a shutdown */
    double rate;           /* w->lock */
    double last_poll;      /* this slot's thread only */
} job_slot;

struct job_worker {
    app *a;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;          /* lock */
    int woken;             /* lock */
    int n;                 /* slots */
    job_slot *slots;
};

/* A store call the worker cannot answer to a client: a failure is logged, naming the job and
 * what was being recorded, and the caller goes on (or stops) as its comment says. */
static int checked(int rc, int64_t job, const char *what, const char *err)
{
    if (rc && rc != STORE_ENOTFOUND)
        log_event("error", "jobs", "job %lld: cannot %s: %s", (long long)job, what,
                  err[0] ? err : store_strerror(rc));
    return rc;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ----------------------------------------------------------------------------
// callbacks from train_run

typedef struct job_run {
    job_slot *slot;
    int64_t id;
} job_run;

static void on_progress(void *ctx, const train_progress *p)
{
    job_run *jr = ctx;
    job_slot *slot = jr->slot;
    job_worker *w = slot->w;
    store_progress sp = {p->epoch, p->epochs, p->batch, p->batches,
                         p->fraction > 1 ? 1 : p->fraction, p->chars_per_sec, p->eta, p->loss};
    char err[256] = "";
    /* progress is advisory: a failed write shows as a stale progress, training goes on */
    checked(store_update_progress(w->a->store, jr->id, &sp, err, sizeof err), jr->id,
            "record progress", err);
    pthread_mutex_lock(&w->lock);
    slot->rate = p->chars_per_sec;
    pthread_mutex_unlock(&w->lock);
    /* A cancel from another process sharing the database reaches us through the row. */
    double now = now_mono();
    if (now - slot->last_poll > 1.0) {
        slot->last_poll = now;
        int requested = 0;
        if (checked(store_poll_cancel(w->a->store, jr->id, &requested, err, sizeof err), jr->id,
                    "poll for a cancel", err) == 0 && requested) {
            pthread_mutex_lock(&w->lock);
            slot->cancel_by_user = 1;
            pthread_mutex_unlock(&w->lock);
            slot->cancel = 1;
        }
    }
    if (!lease_held(w->a->lease)) /* another trainer has the database: stop as on a shutdown */
        slot->cancel = 1;
}

static void on_plan(void *ctx, const train_plan *p)
{
    job_run *jr = ctx;
    char json[BUDGET_PLAN_JSON_MAX], err[256] = "";
    budget_plan_json(json, sizeof json, p);
    /* advisory like progress: the checkpoint records the plan too */
    checked(store_set_plan(jr->slot->w->a->store, jr->id, json, err, sizeof err), jr->id,
            "record its plan", err);
}

static void on_epoch(void *ctx, const train_epoch_report *r)
{
    job_run *jr = ctx;
    if (r->partial)
        return; /* a stopped epoch is finished after the resume, and recorded then */
    cJSON *s = cJSON_CreateObject();
    if (r->sample_seed) /* the text the samples continue; the API shows it as sample_seed */
        cJSON_AddStringToObject(s, "seed_text", r->sample_seed);
    for (int k = 0; k < r->n_samples; k++) {
        char key[16];
        snprintf(key, sizeof key, "%.1f", r->temps[k]);
        cJSON_AddStringToObject(s, key, r->samples[k]);
    }
    char *samples = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    char err[256] = "";
    /* the checkpoint holds the run; a lost row costs the job's per-epoch history only */
    checked(store_add_epoch(jr->slot->w->a->store, jr->id, r->epoch, r->train_loss, r->val_loss,
                            r->seconds, samples, err, sizeof err),
            jr->id, "record an epoch", err);
    cJSON_free(samples);
}

// ----------------------------------------------------------------------------
// a job's working files

/* A job's directory (PATH.jobs/ID) and the checkpoints train_run keeps in it. */
typedef struct job_files {
    char dir[4200], out[4300], latest[4400];
} job_files;

static void job_files_of(job_files *f, const app *a, int64_t id)
{
    snprintf(f->dir, sizeof f->dir, "%s/%lld", a->jobs_dir, (long long)id);
    snprintf(f->out, sizeof f->out, "%s/model.safetensors", f->dir);
    train_latest_path(f->latest, sizeof f->latest, f->out);
}

/* For a job finished for good: removes its checkpoints (megabytes each, of no further use), what
 * writes cut short beside them, and then the directory, unless it holds files we did not write;
 * the store forgets the checkpoint. 0 when the directory is gone, else why it stays (an errno). */
static int job_files_remove(app *a, int64_t id, const job_files *f)
{
    unlink(f->out);
    unlink(f->latest);
    fs_remove_temporaries(f->dir, 0); /* a finished job's directory: nobody writes there */
    int why = rmdir(f->dir) == 0 || errno == ENOENT ? 0 : errno;
    char err[256] = "";
    checked(store_set_checkpoint(a->store, id, NULL, err, sizeof err), id,
            "forget its checkpoint", err);
    return why;
}

// ----------------------------------------------------------------------------
// running one job

/* Copies the trained model into the models directory as NAME.safetensors, atomically (a new file
 * then a rename), without the optimizer state and with the job's id in its metadata. */
static int publish(app *a, const char *trained, const char *name, int64_t job_id, char *err,
                   size_t errlen)
{
    model *m;
    int rc = checkpoint_load(&m, NULL, NULL, trained, err, errlen);
    if (rc)
        return rc;
    char id[32], path[4200];
    snprintf(id, sizeof id, "%lld", (long long)job_id);
    rc = model_meta_set(m, "job_id", id);
    if (rc == 0 && fs_mkdirs(registry_dir(a->models)) != 0)
        rc = core_errf(err, errlen, CORE_EIO, "cannot create %s: %s", registry_dir(a->models),
                       strerror(errno));
    registry_write_path(a->models, name, path, sizeof path);
    if (rc == 0)
        rc = checkpoint_save(path, m, NULL, 0, err, errlen);
    model_free(m);
    return rc;
}

/* A job started this many times without completing an epoch in between has brought the server
 * down each time; one that makes progress may be restarted any number of times. */
#define JOBS_MAX_ATTEMPTS 5

/* Records how a job ended. If the database refuses, the job stays "running" there and the next
 * start of the server queues it again (store_requeue_running): it is not lost. */
static void finish(app *a, int64_t id, store_job_status status, const char *why)
{
    char err[256] = "";
    checked(store_finish_job(a->store, id, status, why, err, sizeof err), id,
            "record that it ended", err);
}

static void run_job(job_slot *slot, store_job *job)
{
    job_worker *w = slot->w;
    app *a = w->a;
    char err[1024] = "", field[64], serr[256] = "";
    if (job->stalled_attempts > JOBS_MAX_ATTEMPTS) {
        snprintf(err, sizeof err, "gave up after %d interrupted attempts without progress",
                 JOBS_MAX_ATTEMPTS);
        finish(a, job->id, STORE_JOB_FAILED, err);
        return;
    }
    train_options o;
    int rc = 0;
    /* fine-tuning: the base model's file as it is now, whose architecture the options take */
    loaded_model *base = NULL;
    char base_path[4200] = "", why[512];
    if (job->base_model) {
        rc = registry_acquire(a->models, job->base_model, &base, why, sizeof why);
        if (rc)
            rc = core_errf(err, sizeof err, rc, "base model: %s", why);
        else
            registry_path(a->models, job->base_model, base_path, sizeof base_path);
    }
    cJSON *hp = cJSON_Parse(job->hyperparameters);
    if (rc == 0)
        rc = jobopts_parse(&o, hp, base ? &base->m->cfg : NULL, field, sizeof field, err,
                           sizeof err);
    cJSON_Delete(hp);
    registry_release(a->models, base);
    if (rc == 0 && job->base_model) {
        o.init = base_path;
        if (job->unknown_chars && corpus_unknown_spec_parse(job->unknown_chars, &o.unknown_chars,
                                                            &o.replacement))
            rc = core_errf(err, sizeof err, CORE_EINVAL, "unknown_chars '%s' is not a rule",
                           job->unknown_chars);
    }
    store_corpus corpus = {0};
    if (rc == 0 && job->corpus_id == 0)
        rc = core_errf(err, sizeof err, CORE_EINVAL, "the job's corpus was deleted");
    if (rc == 0)
        rc = store_get_corpus(a->store, &corpus, job->corpus_id, 1, err, sizeof err);
    job_files f;
    job_files_of(&f, a, job->id);
    if (rc == 0 && fs_mkdirs(f.dir) != 0)
        rc = core_errf(err, sizeof err, CORE_EIO, "cannot create %s: %s", f.dir, strerror(errno));
    /* The directory is this job's alone: what is half-written there, a crash left. */
    int removed = rc == 0 ? fs_remove_temporaries(f.dir, 0) : 0;
    if (removed > 0)
        log_event("info", "jobs", "job %lld: removed %d file(s) an interrupted write left",
                  (long long)job->id, removed);
    if (rc) {
        finish(a, job->id, STORE_JOB_FAILED, err);
        store_corpus_deinit(&corpus);
        return;
    }
    /* Resume from the state the last attempt saved: the .latest file with a validation split,
     * else out itself. */
    const char *state = o.val_fraction > 0 ? f.latest : f.out;
    if (access(state, R_OK) == 0)
        o.resume = state;
    o.out = f.out;
    o.threads = a->cfg.train_threads;
    job_run jr = {slot, job->id};
    o.on_progress = on_progress;
    o.on_epoch = on_epoch;
    o.on_plan = on_plan;
    o.ctx = &jr;
    o.cancel = &slot->cancel;
    /* informational (GET /jobs/{id}); the resume finds the file by its path, not by this */
    checked(store_set_checkpoint(a->store, job->id, state, serr, sizeof serr), job->id,
            "record its checkpoint", serr);

    train_result res;
    rc = train_run(&res, &o, corpus.text, (size_t)corpus.bytes, err, sizeof err);
    store_corpus_deinit(&corpus);
    pthread_mutex_lock(&w->lock);
    int by_user = slot->cancel_by_user;
    slot->rate = 0;
    pthread_mutex_unlock(&w->lock);
    if (rc) {
        finish(a, job->id, STORE_JOB_FAILED, err);
    } else if (res.stopped == 2 && by_user) {
        finish(a, job->id, STORE_JOB_CANCELLED, NULL);
    } else if (res.stopped == 2) {
        /* a shutdown: the state is saved; the job goes back to the queue for the next start
         * (and if the database refuses, store_requeue_running does it at that start) */
        checked(store_requeue_job(a->store, job->id, serr, sizeof serr), job->id,
                "queue it again", serr);
        return;
    } else {
        rc = publish(a, f.out, job->model_name, job->id, err, sizeof err);
        finish(a, job->id, rc ? STORE_JOB_FAILED : STORE_JOB_SUCCEEDED, rc ? err : NULL);
    }
    /* Finished for good. A crash before this line leaves the files to jobs_sweep. */
    job_files_remove(a, job->id, &f);
}

// ----------------------------------------------------------------------------
// what a crash left

/* A temporary file in the models folder may be another live process's write (lstmgen train
 * --out, the trainer of another database): one its writer holds locked is left alone, and so
 * is one written in the last minute (see fs_remove_temporaries). */
#define JOBS_SWEEP_MIN_AGE 60.0

/* A job's id from its directory's name: decimal digits, no sign or leading zero; else 0. */
static int64_t job_dir_id(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 18 || name[0] == '0' || strspn(name, "0123456789") != n)
        return 0;
    return (int64_t)strtoll(name, NULL, 10);
}

void jobs_sweep(app *a, const char *models_dir)
{
    DIR *d = opendir(a->jobs_dir);
    if (!d && errno != ENOENT)
        log_event("error", "jobs", "cannot read %s: %s", a->jobs_dir, strerror(errno));
    for (struct dirent *e; d && (e = readdir(d));) {
        int64_t id = job_dir_id(e->d_name);
        store_job j;
        char err[256] = "";
        if (!id || checked(store_get_job(a->store, &j, id, err, sizeof err), id, "look it up",
                           err))
            continue; /* not a job's directory, or no such job: not ours to judge */
        store_job_status st = j.status;
        store_job_deinit(&j);
        if (st != STORE_JOB_SUCCEEDED && st != STORE_JOB_FAILED && st != STORE_JOB_CANCELLED)
            continue; /* queued or running: its checkpoints are what it resumes from */
        job_files f;
        job_files_of(&f, a, id);
        int why = job_files_remove(a, id, &f);
        if (why) /* ENOTEMPTY: files lstmgen did not write */
            log_event("info", "jobs", "job %lld (%s): removed the working files a crash left; %s "
                      "stays: %s", (long long)id, store_job_status_name(st), f.dir,
                      strerror(why));
        else
            log_event("info", "jobs", "job %lld (%s): removed the working files a crash left",
                      (long long)id, store_job_status_name(st));
    }
    if (d)
        closedir(d);
    int removed = fs_remove_temporaries(models_dir, JOBS_SWEEP_MIN_AGE);
    if (removed > 0)
        log_event("info", "jobs", "removed %d temporary file(s) that interrupted writes left in "
                  "%s", removed, models_dir);
}

static void *worker_main(void *arg)
{
    job_slot *slot = arg;
    job_worker *w = slot->w;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        int stopping = w->stopping;
        w->woken = 0;
        pthread_mutex_unlock(&w->lock);
        if (stopping)
            break;
        store_job job;
        char err[256] = "";
        /* without the lease another trainer runs this database's jobs: claim none */
        int rc = lease_held(w->a->lease) ? store_claim_job(w->a->store, &job, err, sizeof err)
                                          : STORE_ENOTFOUND;
        if (rc && rc != STORE_ENOTFOUND) /* the database is unwell: say so, try again soon */
            log_event("error", "jobs", "cannot claim a queued job: %s",
                      err[0] ? err : store_strerror(rc));
        if (rc == 0) {
            pthread_mutex_lock(&w->lock);
            slot->running_id = job.id;
            slot->cancel = w->stopping; /* a jobs_stop since the check above must not be lost */
            slot->cancel_by_user = 0;
            pthread_mutex_unlock(&w->lock);
            run_job(slot, &job);
            pthread_mutex_lock(&w->lock);
            slot->running_id = 0;
            pthread_mutex_unlock(&w->lock);
            store_job_deinit(&job);
            continue;
        }
        /* nothing queued: sleep until woken (a new job) or a second passes (another process) */
        pthread_mutex_lock(&w->lock);
        if (!w->woken && !w->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&w->wake, &w->lock, &ts);
        }
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

int jobs_start(job_worker **out, app *a, int workers)
{
    job_worker *w = calloc(1, sizeof *w);
    job_slot *slots = calloc((size_t)(workers > 0 ? workers : 1), sizeof *slots);
    if (!w || !slots) {
        free(w);
        free(slots);
        return CORE_ENOMEM;
    }
    w->a = a;
    w->slots = slots;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    for (int i = 0; i < (workers > 0 ? workers : 1); i++) {
        slots[i].w = w;
        if (pthread_create(&slots[i].thread, NULL, worker_main, &slots[i]) != 0)
            break;
        w->n++;
    }
    if (w->n == 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(slots);
        free(w);
        return CORE_ENOMEM;
    }
    *out = w;
    return 0;
}

void jobs_wake(job_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->woken = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void jobs_cancel(job_worker *w, int64_t id)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n; i++)
        if (w->slots[i].running_id == id) {
            w->slots[i].cancel_by_user = 1;
            w->slots[i].cancel = 1;
        }
    pthread_mutex_unlock(&w->lock);
}

double jobs_rate(job_worker *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    double r = 0;
    for (int i = 0; i < w->n; i++)
        r += w->slots[i].rate;
    pthread_mutex_unlock(&w->lock);
    return r;
}

void jobs_stop(job_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    for (int i = 0; i < w->n; i++)
        w->slots[i].cancel = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->slots[i].thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w->slots);
    free(w);
}
