/* config: `lstmgen serve` options, from flags or LSTMGEN_* environment variables (flags win).
 * The thread budget is decided here, once: generation workers and training shards each run
 * single-threaded BLAS, so they never oversubscribe the cores. */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <stddef.h>

#define CONFIG_PATH_MAX 4096

/* What one process serves (--role): past one machine, generation replicas and one trainer. */
enum server_role {
    ROLE_ALL = 0,      /* everything: one machine */
    ROLE_GENERATE = 1, /* generation, models, health, metrics; no database, no jobs */
    ROLE_TRAIN = 2,    /* corpora, jobs and their workers, publishing models; no generation */
};
const char *server_role_name(int role);

typedef struct server_config {
    char host[256];
    int port;
    char models_dir[CONFIG_PATH_MAX];
    char db_path[CONFIG_PATH_MAX];
    char default_model[80];
    char api_key[512];        /* empty: no authentication */
    int public_generate;      /* with a key: generation and the model list stay open */
    int public_metrics;       /* with a key: /metrics stays open */
    char cors_origin[512];    /* "*", or origins separated by commas */
    char chat_template[512];  /* a chat message as prompt text: {role}, {content} */
    int http_threads;         /* concurrent connections (one thread each) */
    int gen_threads;          /* threads that split one model's step */
    int max_batch;            /* streams per model per tick */
    int train_threads;        /* shards of a training job */
    int job_workers;          /* training jobs run at once */
    int max_length;           /* characters per generation */
    size_t max_body;          /* bytes */
    int max_concurrent;       /* streams running or queued, across models */
    double request_timeout;   /* seconds; 0 = none */
    int log_json;
    int role;                 /* enum server_role */
} server_config;

/* Fills c from the environment and then argv (argv[0] is "serve"). Returns -1 to go on serving,
 * or an exit code (0 after --help, 2 after logging a usage error). */
int config_parse(server_config *c, int argc, char **argv);

/* Whether the log is to be JSON, told before config_parse checks anything so that its own errors
 * come in that format: the last --log-format VALUE or --log-format=VALUE in argv, else
 * LSTMGEN_LOG_FORMAT. (getopt's abbreviations, such as --log-f, count only from config_parse.) */
int config_log_json(int argc, char **argv);

#endif
