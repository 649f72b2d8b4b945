/* app: the state one `lstmgen serve` process shares between its threads. */
#ifndef SERVER_APP_H
#define SERVER_APP_H

#include "config.h"

struct store;
struct registry;
struct gen_sched;
struct metrics;
struct job_worker;
struct trainer_lease;

typedef struct app {
    server_config cfg;
    struct store *store;            /* NULL with --role generate */
    struct registry *models;
    struct gen_sched *gen;
    struct metrics *metrics;
    struct job_worker *jobs;        /* NULL with --role generate */
    struct trainer_lease *lease;    /* this process runs the database's jobs (not generate) */
    char jobs_dir[CONFIG_PATH_MAX + 16]; /* working checkpoints of training jobs */
    volatile int stopping;          /* SIGTERM received: finish what is in flight */
    int in_flight;                  /* requests received and not yet answered in full (atomic) */
} app;

#endif
