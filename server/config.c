/* config: defaults, then LSTMGEN_* variables, then flags. Errors go through log.c, so that they
 * come in the log format asked for (config_log_json tells it before the options are parsed). */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "usage: lstmgen serve [options]\n"
    "\n"
    "Serves every model in a models directory over HTTP and runs training jobs in the background.\n"
    "Each option can also be set by the environment variable in brackets (the flag wins).\n"
    "\n"
    "  --host ADDR             address to bind (127.0.0.1) [LSTMGEN_HOST]\n"
    "  --port N                port (8080) [LSTMGEN_PORT]\n"
    "  --models DIR[:DIR...]   models directories: NAME.safetensors is model NAME; trained\n"
    "                          models go to the first, the others are read-only (./models)\n"
    "                          [LSTMGEN_MODELS]\n"
    "  --db PATH               SQLite database for corpora and jobs (./lstmgen.db); job "
    "checkpoints\n"
    "                          go in PATH.jobs/ [LSTMGEN_DB]\n"
    "  --default-model NAME    model for requests that name none (default: 'default' if present,\n"
    "                          else the first by name) [LSTMGEN_DEFAULT_MODEL]\n"
    "  --api-key KEY           require 'Authorization: Bearer KEY' on every endpoint but\n"
    "                          /healthz and /readyz [LSTMGEN_API_KEY]\n"
    "  --public-generate       with a key: leave generation and the model list open, for a\n"
    "                          public demo [LSTMGEN_PUBLIC_GENERATE=1]\n"
    "  --public-metrics        with a key: leave /metrics open, for a scraper\n"
    "                          [LSTMGEN_PUBLIC_METRICS=1]\n"
    "  --auth-generate         no effect: generation needs the key unless --public-generate\n"
    "                          (kept so that older command lines still start)\n"
    "  --cors-origin LIST      origins whose pages may call the API: * (any: the API uses\n"
    "                          keys, not cookies), or a comma-separated list such as\n"
    "                          https://app.example.com,http://localhost:3000 (*)\n"
    "                          [LSTMGEN_CORS_ORIGIN]\n"
    "  --chat-template T       how /v1/chat/completions turns each message into prompt text:\n"
    "                          {role} and {content} are replaced, \\n is a newline; the\n"
    "                          reply continues after the last message ('{content}\\n')\n"
    "                          [LSTMGEN_CHAT_TEMPLATE]\n"
    "  --http-threads N        concurrent connections, one thread each (256) "
    "[LSTMGEN_HTTP_THREADS]\n"
    "  --gen-threads N         threads that share one model's batched step when it runs alone\n"
    "                          (one per core) [LSTMGEN_GEN_THREADS]\n"
    "  --train-threads N       threads of a training job (one per core) [LSTMGEN_TRAIN_THREADS]\n"
    "  --job-workers N         training jobs run at once (1: each gets every core)\n"
    "                          [LSTMGEN_JOB_WORKERS]\n"
    "  --max-length N          characters per generation (10000) [LSTMGEN_MAX_LENGTH]\n"
    "  --max-body BYTES        request body limit (67108864: corpora are uploaded whole)\n"
    "                          [LSTMGEN_MAX_BODY]\n"
    "  --max-batch N           streams of one model stepped together per tick (64); more wait\n"
    "                          in its queue [LSTMGEN_MAX_BATCH]\n"
    "  --max-concurrent N      streams running or queued, all models, before 503 (256)\n"
    "                          [LSTMGEN_MAX_CONCURRENT]\n"
    "  --request-timeout S     seconds a generation may take, 0 = no limit (60)\n"
    "                          [LSTMGEN_REQUEST_TIMEOUT]\n"
    "  --log-format F          the log on stderr, requests and events: text, or json with one\n"
    "                          object a line (text) [LSTMGEN_LOG_FORMAT]\n"
    "  --role R                all (everything, the default); generate (generation replicas:\n"
    "                          no database, no jobs); train (corpora, jobs, publishing models;\n"
    "                          one per database) [LSTMGEN_ROLE]\n";

static const char *const role_names[] = {"all", "generate", "train"};

const char *server_role_name(int role)
{
    return role >= 0 && role <= ROLE_TRAIN ? role_names[role] : "?";
}

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int bad(const char *name, const char *value, const char *want)
{
    log_event("error", "serve", "%s must be %s, got '%s' (see 'lstmgen serve --help')", name, want,
              value);
    return 2;
}

static int parse_long(long *out, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int set_copy(char *dst, size_t cap, const char *name, const char *v)
{
    if (strlen(v) >= cap)
        return bad(name, v, "shorter");
    strcpy(dst, v);
    return 0;
}

/* "*", or origins (scheme://host[:port], nothing after) separated by commas and spaces. */
static int valid_origins(const char *v)
{
    if (strcmp(v, "*") == 0)
        return 1;
    int n = 0;
    while (*v) {
        v += strspn(v, " ,");
        size_t len = strcspn(v, " ,");
        if (!len)
            break;
        const char *sep = memchr(v, ':', len);
        if (!sep || len < (size_t)(sep - v) + 4 || strncmp(sep, "://", 3) != 0 ||
            memchr(sep + 3, '/', len - (size_t)(sep + 3 - v)) || memchr(v, '*', len))
            return 0;
        n++;
        v += len;
    }
    return n > 0;
}

/* The template with \n, \t and \\ turned into what they mean (a shell passes them as two
 * characters); nonzero if it does not fit or lacks {content}. */
static int unescape_template(char *dst, size_t cap, const char *v)
{
    size_t k = 0;
    for (; *v; v++) {
        char ch = *v;
        if (ch == '\\' && (v[1] == 'n' || v[1] == 't' || v[1] == '\\'))
            ch = *++v == 'n' ? '\n' : *v == 't' ? '\t' : '\\';
        if (k + 1 >= cap)
            return -1;
        dst[k++] = ch;
    }
    dst[k] = '\0';
    return strstr(dst, "{content}") ? 0 : -1;
}

/* Options that take no value as flags (--public-generate) and 1/true/0/false as variables. */
static int is_switch(const char *name)
{
    return strcmp(name, "public-generate") == 0 || strcmp(name, "public-metrics") == 0 ||
           strcmp(name, "auth-generate") == 0;
}

/* "max-batch" -> "LSTMGEN_MAX_BATCH" */
static void env_name(char *buf, size_t n, const char *name)
{
    size_t k = (size_t)snprintf(buf, n, "LSTMGEN_");
    for (; *name && k + 1 < n; name++, k++)
        buf[k] = *name == '-' ? '_' : (char)(*name - 32 * (*name >= 'a' && *name <= 'z'));
    buf[k] = '\0';
}

/* One option by name (the flag's name without dashes), from either source. */
static int apply(server_config *c, const char *name, const char *v)
{
    long n;
    if (strcmp(name, "host") == 0)
        return set_copy(c->host, sizeof c->host, "--host", v);
    if (strcmp(name, "port") == 0)
        return parse_long(&n, v, 0, 65535) ? bad("--port", v, "0..65535") : (c->port = (int)n, 0);
    if (strcmp(name, "models") == 0)
        return set_copy(c->models_dir, sizeof c->models_dir, "--models", v);
    if (strcmp(name, "db") == 0)
        return set_copy(c->db_path, sizeof c->db_path, "--db", v);
    if (strcmp(name, "default-model") == 0)
        return set_copy(c->default_model, sizeof c->default_model, "--default-model", v);
    if (strcmp(name, "api-key") == 0)
        return set_copy(c->api_key, sizeof c->api_key, "--api-key", v);
    if (is_switch(name)) {
        char var[64];
        env_name(var, sizeof var, name);
        if (strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "0") && strcmp(v, "false"))
            return bad(var, v, "1, true, 0 or false");
        int on = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
        if (strcmp(name, "public-generate") == 0)
            c->public_generate = on;
        else if (strcmp(name, "public-metrics") == 0)
            c->public_metrics = on;
        return 0; /* auth-generate: what it asked for is the default now */
    }
    if (strcmp(name, "cors-origin") == 0)
        return valid_origins(v) ? set_copy(c->cors_origin, sizeof c->cors_origin,
                                           "--cors-origin", v)
                                : bad("--cors-origin", v, "* or origins such as "
                                      "https://app.example.com, separated by commas");
    if (strcmp(name, "chat-template") == 0)
        return unescape_template(c->chat_template, sizeof c->chat_template, v)
                   ? bad("--chat-template", v, "shorter than 512 bytes and containing {content}")
                   : 0;
    if (strcmp(name, "http-threads") == 0)
        return parse_long(&n, v, 1, 100000) ? bad("--http-threads", v, "1..100000")
                                            : (c->http_threads = (int)n, 0);
    if (strcmp(name, "gen-threads") == 0)
        return parse_long(&n, v, 1, 64) ? bad("--gen-threads", v, "1..64")
                                        : (c->gen_threads = (int)n, 0);
    if (strcmp(name, "max-batch") == 0)
        return parse_long(&n, v, 1, 1024) ? bad("--max-batch", v, "1..1024")
                                          : (c->max_batch = (int)n, 0);
    if (strcmp(name, "train-threads") == 0)
        return parse_long(&n, v, 1, 16) ? bad("--train-threads", v, "1..16")
                                        : (c->train_threads = (int)n, 0);
    if (strcmp(name, "job-workers") == 0)
        return parse_long(&n, v, 1, 64) ? bad("--job-workers", v, "1..64")
                                        : (c->job_workers = (int)n, 0);
    if (strcmp(name, "max-length") == 0)
        return parse_long(&n, v, 1, 100000000) ? bad("--max-length", v, "1..100000000")
                                               : (c->max_length = (int)n, 0);
    if (strcmp(name, "max-body") == 0)
        return parse_long(&n, v, 1024, 1L << 40) ? bad("--max-body", v, "at least 1024")
                                                 : (c->max_body = (size_t)n, 0);
    if (strcmp(name, "max-concurrent") == 0)
        return parse_long(&n, v, 1, 65536) ? bad("--max-concurrent", v, "1..65536")
                                             : (c->max_concurrent = (int)n, 0);
    if (strcmp(name, "request-timeout") == 0) {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || !isfinite(d) || d < 0)
            return bad("--request-timeout", v, "a number of seconds >= 0");
        c->request_timeout = d;
        return 0;
    }
    if (strcmp(name, "role") == 0) {
        for (int r = 0; r <= ROLE_TRAIN; r++)
            if (strcmp(v, role_names[r]) == 0)
                return c->role = r, 0;
        return bad("--role", v, "all, generate or train");
    }
    if (strcmp(name, "log-format") == 0) {
        if (strcmp(v, "text") && strcmp(v, "json"))
            return bad("--log-format", v, "text or json");
        c->log_json = strcmp(v, "json") == 0;
        return 0;
    }
    return bad("option", name, "known");
}

static const char *const names[] = {
    "host", "port", "models", "db", "default-model", "api-key", "public-generate",
    "public-metrics", "auth-generate", "cors-origin", "chat-template",
    "http-threads", "gen-threads", "train-threads", "job-workers", "max-length", "max-body",
    "max-batch", "max-concurrent", "request-timeout", "log-format", "role",
};
#define N_NAMES (sizeof names / sizeof *names)

int config_log_json(int argc, char **argv)
{
    const char *v = getenv("LSTMGEN_LOG_FORMAT");
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--log-format") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (strncmp(argv[i], "--log-format=", 13) == 0)
            v = argv[i] + 13;
    }
    return v && strcmp(v, "json") == 0;
}

int config_parse(server_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    strcpy(c->host, "127.0.0.1");
    c->port = 8080;
    strcpy(c->models_dir, "./models");
    strcpy(c->db_path, "./lstmgen.db");
    strcpy(c->cors_origin, "*");
    strcpy(c->chat_template, "{content}\n");
    c->http_threads = 256;
    c->gen_threads = cores() < 64 ? cores() : 64;
    c->train_threads = cores() < 16 ? cores() : 16;
    c->job_workers = 1;
    c->max_length = 10000;
    c->max_body = 64u << 20;
    c->max_batch = 64;
    c->max_concurrent = 256;
    c->request_timeout = 60;

    for (size_t i = 0; i < N_NAMES; i++) {
        char env[64];
        env_name(env, sizeof env, names[i]);
        const char *v = getenv(env);
        if (v && *v) {
            int rc = apply(c, names[i], v);
            if (rc)
                return rc;
        }
    }

    struct option longopts[N_NAMES + 2];
    for (size_t i = 0; i < N_NAMES; i++) {
        longopts[i] = (struct option){names[i], is_switch(names[i]) ? no_argument
                                                                    : required_argument,
                                      0, (int)i + 1};
    }
    longopts[N_NAMES] = (struct option){"help", no_argument, 0, 'h'};
    longopts[N_NAMES + 1] = (struct option){0, 0, 0, 0};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (opt < 1 || opt > (int)N_NAMES) {
            log_event("error", "serve", "unknown or incomplete option '%s' (see 'lstmgen serve "
                      "--help')", argv[optind - 1]);
            return 2;
        }
        const char *name = names[opt - 1];
        int rc = apply(c, name, is_switch(name) ? "1" : optarg);
        if (rc)
            return rc;
    }
    if (optind < argc) {
        log_event("error", "serve", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    return -1;
}
