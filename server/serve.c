/* serve: `lstmgen serve`: start everything, wait for SIGTERM/SIGINT, stop in order.
 * Shutdown: stop accepting, let in-flight requests finish (up to 5 s), cancel what is still
 * generating, stop the training worker (its job saves its state and is queued again), give the
 * cancelled responses up to 2 s to reach their clients, exit 0. */
#include "serve.h"

#include "config.h"
#include "err.h"
#include "fsutil.h"
#include "gen.h"
#include "jobs.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "mm.h"
#include "store.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int app_default_model(app *a, char *buf, size_t n)
{
    if (a->cfg.default_model[0]) {
        snprintf(buf, n, "%s", a->cfg.default_model);
        return 0;
    }
    char **names;
    int count;
    if (registry_list(a->models, &names, &count) || count == 0)
        return CORE_ENOTFOUND;
    int pick = 0;
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], "default") == 0)
            pick = i;
    snprintf(buf, n, "%s", names[pick]);
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return 0;
}

int model_acquire_or_reply(request *r, const char *name, loaded_model **out)
{
    char def[80], err[512];
    if (!name) {
        if (app_default_model(r->app, def, sizeof def))
            return reply_error(r, 404, "model_not_found", "model", "no model named and no models "
                               "in %s", r->app->cfg.models_dir), 1;
        name = def;
    }
    int rc = registry_acquire(r->app->models, name, out, err, sizeof err);
    if (rc == CORE_EINVAL)
        return reply_error(r, 400, "invalid_model_name", "model", "%s", err), 1;
    if (rc == CORE_ENOTFOUND)
        return reply_error(r, 404, "model_not_found", "model", "%s", err), 1;
    if (rc)
        return reply_error(r, 500, "model_unusable", "model", "model '%s': %s", name, err), 1;
    return 0;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The trainer's side: the database, the lease, the jobs a crash left running and the files it
 * left (before any worker starts). */
static int open_trainer(app *a, const char *models_dir, char *err, size_t errlen)
{
    if (store_open(&a->store, a->cfg.db_path, err, errlen))
        return 1;
    if (lease_take(&a->lease, a->store, err, errlen))
        return 1;
    int64_t requeued = 0;
    if (store_requeue_running(a->store, &requeued, err, errlen))
        return 1;
    if (requeued)
        log_event("info", "serve", "%lld interrupted job(s) queued again to resume",
                  (long long)requeued);
    jobs_sweep(a, models_dir);
    return 0;
}

int serve_main(int argc, char **argv)
{
    static app a; /* lives until exit: connection threads may still hold it while stopping */
    log_set_json(config_log_json(argc, argv)); /* for the options' own errors */
    int rc = config_parse(&a.cfg, argc, argv);
    if (rc >= 0)
        return rc;
    log_set_json(a.cfg.log_json);
    /* One BLAS thread per call: generations run on their own threads, training shards too. */
    mm_set_threads(1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit makes a write fail (EFBIG), not the process */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* every thread started below inherits the mask */

    char err[1024];
    snprintf(a.jobs_dir, sizeof a.jobs_dir, "%s.jobs", a.cfg.db_path);
    char writable[CONFIG_PATH_MAX];
    snprintf(writable, sizeof writable, "%.*s", (int)strcspn(a.cfg.models_dir, ":"),
             a.cfg.models_dir);
    if (fs_mkdirs(writable) != 0) {
        log_event("error", "serve", "cannot create the models directory %s: %s", writable,
                  strerror(errno));
        return 1;
    }
    /* A generation replica has no database and runs no jobs; everything else owns both, and
     * takes the trainer lease first: only one process may run a database's jobs. */
    if (a.cfg.role != ROLE_GENERATE && open_trainer(&a, writable, err, sizeof err)) {
        log_event("error", "serve", "%s", err);
        lease_drop(a.lease);
        store_close(a.store);
        return 1;
    }
    if (metrics_new(&a.metrics) || registry_new(&a.models, a.cfg.models_dir) ||
        gen_sched_new(&a.gen, a.models,
                      &(gen_limits){a.cfg.gen_threads, a.cfg.max_batch, a.cfg.max_concurrent,
                                    a.cfg.request_timeout, 64 * 1024}) ||
        (a.cfg.role != ROLE_GENERATE && jobs_start(&a.jobs, &a, a.cfg.job_workers))) {
        log_event("error", "serve", "out of memory");
        return 1;
    }
    struct MHD_Daemon *d = http_start(&a);
    if (!d) {
        jobs_stop(a.jobs);
        gen_sched_free(a.gen);
        lease_drop(a.lease);
        store_close(a.store);
        return 1;
    }
    char def[80] = "";
    app_default_model(&a, def, sizeof def);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    log_event("info", "serve", "listening on http://%s:%u (models %s, default %s; %s%s%s)",
              a.cfg.host, info ? info->port : (unsigned)a.cfg.port, a.cfg.models_dir,
              def[0] ? def : "none", a.store ? "db " : "role generate, no db",
              a.store ? a.cfg.db_path : "", a.cfg.role == ROLE_TRAIN ? "; role train" : "");

    int sig = 0;
    sigwait(&stop, &sig);
    log_event("info", "serve", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    a.stopping = 1;
    double t0 = now_mono();
    http_quiesce(d);
    /* In-flight requests get up to 5 s; then what still generates is cancelled. */
    int queued = 0, running = 0;
    do {
        gen_counts(a.gen, &queued, &running);
        if (queued + running == 0)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    } while (now_mono() - t0 < 5.0);
    gen_cancel_all(a.gen); /* waiting handlers and streams finish now */
    jobs_stop(a.jobs);     /* the running job saves and goes back to the queue */
    /* What was just cancelled still has its last bytes to send (a stream's final event, a JSON
     * answer): up to 2 s more for them, since http_stop cuts every connection. */
    double t1 = now_mono();
    while (__atomic_load_n(&a.in_flight, __ATOMIC_SEQ_CST) > 0 && now_mono() - t1 < 2.0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    http_stop(d);          /* joins the connection threads */
    gen_sched_free(a.gen);
    registry_free(a.models);
    metrics_free(a.metrics);
    lease_drop(a.lease); /* the next trainer may start at once */
    store_close(a.store);
    log_event("info", "serve", "stopped after %.1fs", now_mono() - t0);
    return 0;
}
