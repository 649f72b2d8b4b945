/* lease: the trainer lease's holder name, its renewal thread, and the staleness test. */
#include "lease.h"

#include "log.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct trainer_lease {
    struct store *s;
    char holder[160];      /* "host H pid P token T" */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;          /* lock */
    int held;              /* atomic */
};

static double now_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char my_host[64];
static unsigned long long my_token;

/* A holder on this host that is not a live process: its pid is gone, or it is our own pid with
 * another token (an earlier run in this container, where the server is pid 1 each time). */
static int holder_is_stale(const char *holder)
{
    char host[64];
    long pid;
    unsigned long long token;
    if (sscanf(holder, "host %63s pid %ld token %llx", host, &pid, &token) != 3 ||
        strcmp(host, my_host) != 0)
        return 0; /* another machine's: only its heartbeat can tell */
    if (pid == (long)getpid())
        return token != my_token;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int take(trainer_lease *l, char *err, size_t errlen)
{
    char other[160] = "";
    double age = 0;
    char why[256] = "";
    int rc = store_take_lease(l->s, l->holder, now_unix(), LEASE_TTL, holder_is_stale, other,
                              sizeof other, &age, why, sizeof why);
    if (rc == STORE_ECONFLICT)
        snprintf(err, errlen, "another trainer runs this database's jobs (%s, heartbeat %.1f s "
                 "ago): two would run the same jobs twice. Stop it, or give this server "
                 "--role generate or another --db", other, age);
    else if (rc)
        snprintf(err, errlen, "%s", why);
    return rc;
}

static void *renew_main(void *arg)
{
    trainer_lease *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(LEASE_TTL / 3);
        pthread_cond_timedwait(&l->wake, &l->lock, &ts);
        if (l->stopping)
            break;
        pthread_mutex_unlock(&l->lock);
        char err[512];
        int rc = take(l, err, sizeof err), was = __atomic_load_n(&l->held, __ATOMIC_SEQ_CST);
        if (rc == STORE_ECONFLICT && was) /* another trainer took over: our jobs stop */
            log_event("error", "jobs", "lost the trainer lease: %s", err);
        else if (rc == 0 && !was)
            log_event("info", "jobs", "took the trainer lease back");
        else if (rc && rc != STORE_ECONFLICT) /* the database is unwell: try again next time */
            log_event("error", "jobs", "cannot renew the trainer lease: %s", err);
        if (rc == 0 || rc == STORE_ECONFLICT)
            __atomic_store_n(&l->held, rc == 0, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int lease_take(trainer_lease **out, struct store *s, char *err, size_t errlen)
{
    if (!my_host[0]) {
        if (gethostname(my_host, sizeof my_host) != 0)
            snprintf(my_host, sizeof my_host, "unknown");
        my_host[sizeof my_host - 1] = '\0';
        for (char *p = my_host; *p; p++) /* one word, for sscanf */
            if (*p == ' ')
                *p = '_';
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        my_token = ((unsigned long long)ts.tv_sec << 20) ^ (unsigned long long)ts.tv_nsec ^
                   ((unsigned long long)getpid() << 40);
    }
    trainer_lease *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->s = s;
    snprintf(l->holder, sizeof l->holder, "host %s pid %ld token %llx", my_host, (long)getpid(),
             my_token);
    int rc = take(l, err, errlen);
    if (rc) {
        free(l);
        return rc;
    }
    l->held = 1;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    if (pthread_create(&l->thread, NULL, renew_main, l) != 0) {
        store_drop_lease(s, l->holder, NULL, 0);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->wake);
        free(l);
        snprintf(err, errlen, "cannot start the lease thread");
        return -1;
    }
    *out = l;
    return 0;
}

int lease_held(const trainer_lease *l)
{
    return !l || __atomic_load_n(&l->held, __ATOMIC_SEQ_CST);
}

void lease_drop(trainer_lease *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    char err[256];
    if (store_drop_lease(l->s, l->holder, err, sizeof err))
        log_event("error", "jobs", "cannot give the trainer lease up: %s", err);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->wake);
    free(l);
}
