/* cmd_train: `lstmgen train`, options to train_options, progress on the terminal, one line (or
 * JSON object) per epoch on stdout. */
#include "cli.h"

#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "optim.h"
#include "train.h"
#include "trainopts.h"

#include <cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The options that are the command line's own; the training options come from the table in
 * core/trainopts.c (--NAME for hyperparameters.NAME, '-' for '_'). */
enum { OPT_CORPUS = 256, OPT_OUT, OPT_THREADS, OPT_RESUME, OPT_INIT, OPT_UNKNOWN, OPT_JSON,
       OPT_QUIET, OPT_SAMPLES_EVERY, OPT_OPTIONS_JSON, OPT_HELP, OPT_TABLE = 512 };
static const struct cli_opt {
    const char *name, *arg, *help;
    int key;
} cli_opts[] = {
    {"corpus", "FILE", "UTF-8 text to learn from (required, unless --resume: the checkpoint "
                       "names its corpus, and the text must still be the same)",
     OPT_CORPUS},
    {"out", "CKPT", "checkpoint path (default: the corpus name with .safetensors, here; with "
                    "--resume, the file it continues)",
     OPT_OUT},
    {"threads", "N", "OpenBLAS threads (default: OpenBLAS's own, one per core)", OPT_THREADS},
    {"resume", "CKPT", "continue from a latest-state checkpoint (NAME.latest.safetensors) exactly "
                       "where it stopped: the model, the options and the epoch target come from "
                       "it; --epochs may change the target, --max-seconds gives a new budget",
     OPT_RESUME},
    {"init", "MODEL", "fine-tune: start from MODEL's weights (a file, or a name in the models "
                      "folders as sample --model finds it), with its vocabulary and "
                      "architecture; the checkpoint records it as its parent",
     OPT_INIT},
    {"unknown-chars", "HOW", "with --init, corpus characters MODEL's vocabulary lacks: error "
                             "(default: the message names them), drop, or replace=C (each "
                             "becomes C, one of its characters)",
     OPT_UNKNOWN},
    {"json", NULL, "one JSON object per epoch on stdout, nothing else there (with a time budget, its plan as \"plan\")", OPT_JSON},
    {"quiet", NULL, "no progress bar", OPT_QUIET},
    {"samples-every", "N", "print the epoch's samples every N epochs and when the run ends "
                           "(default 5; 0: never; --json has them every epoch)",
     OPT_SAMPLES_EVERY},
    {"options-json", NULL, "print the training options (names, types, ranges, defaults, help) "
                           "as JSON and exit: what the jobs API's hyperparameters take",
     OPT_OPTIONS_JSON},
    {"help", NULL, "this text", OPT_HELP},
};
#define N_CLI_OPTS (sizeof cli_opts / sizeof *cli_opts)

/* The table's messages start with the option's name: spelled as on the command line. */
static char *dashed(char *msg)
{
    for (char *p = msg; *p && *p != ' '; p++)
        if (*p == '_')
            *p = '-';
    return msg;
}

/* "  --name ARG" padded to 23 columns, then text wrapped at 98 with that indent. */
static void help_line(const char *name, const char *arg, const char *text)
{
    char head[64];
    int n = snprintf(head, sizeof head, "  --%s%s%s", name, arg ? " " : "", arg ? arg : "");
    for (char *p = head; *p; p++)
        if (*p == '_')
            *p = '-';
    fputs(head, stdout);
    int col = n;
    if (col > 22) {
        fputc('\n', stdout);
        col = 0;
    }
    const char *w = text;
    int first = 1;
    while (*w) {
        size_t len = strcspn(w, " ");
        if (!first && col + 1 + (int)len > 98) {
            fputc('\n', stdout);
            col = 0;
        }
        if (col < 23) {
            printf("%*s", 23 - col, "");
            col = 23;
            first = 1;
        }
        printf("%s%.*s", first ? "" : " ", (int)len, w);
        col += (int)len + !first;
        first = 0;
        w += len;
        while (*w == ' ')
            w++;
    }
    fputc('\n', stdout);
}

static void print_help(void)
{
    fputs("usage: lstmgen train --corpus FILE [--out CKPT] [options]\n\n"
          "Trains a character-level LSTM on a UTF-8 text and writes a safetensors checkpoint at "
          "the end\nof every epoch. With a validation split, CKPT holds the epoch with the best "
          "validation loss\nand CKPT's .latest file the latest state (for --resume). Options "
          "left unset take the\ndefaults of the regime; the jobs API takes the same options as "
          "hyperparameters.\n\n", stdout);
    for (size_t i = 0; i < N_CLI_OPTS; i++)
        help_line(cli_opts[i].name, cli_opts[i].arg, cli_opts[i].help);
    fputc('\n', stdout);
    for (int id = 0; id < TOPT_COUNT; id++) {
        const train_opt *t = &train_opts[id];
        char text[1024], w[32], q[32];
        train_opt_format(w, sizeof w, id, train_opt_default(id, REGIME_WINDOW));
        train_opt_format(q, sizeof q, id, train_opt_default(id, REGIME_SEQUENCE));
        int n = snprintf(text, sizeof text, "%s.", t->help);
        if (t->kind == TOPT_INT || t->kind == TOPT_NUM)
            n += snprintf(text + n, sizeof text - (size_t)n,
                          t->kind == TOPT_INT ? " %.0f to %.0f." : " %g to %g.", t->lo, t->hi);
        if (id != TOPT_REGIME)
            snprintf(text + n, sizeof text - (size_t)n, strcmp(w, q) ? " Default %s (window), %s "
                     "(sequence)." : " Default %s.", w, q);
        else
            snprintf(text + n, sizeof text - (size_t)n, " Default %s.", w);
        const char *arg = t->kind == TOPT_BOOL ? NULL : t->kind == TOPT_INT ? "N"
                                                       : t->kind == TOPT_NUM ? "X" : "NAME";
        help_line(t->name, arg, text);
    }
}

/* The table as JSON: what docs/API.md and docs/openapi.json are checked against. */
static void print_options_json(void)
{
    static const char *const types[] = {"integer", "number", "boolean", "string"};
    cJSON *arr = cJSON_CreateArray();
    for (int id = 0; id < TOPT_COUNT; id++) {
        const train_opt *t = &train_opts[id];
        cJSON *o = cJSON_CreateObject(), *d = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "type", types[t->kind]);
        if (t->kind == TOPT_INT) { /* as integers: a double would print 2^53 rounded */
            char lo[32], hi[32];
            snprintf(lo, sizeof lo, "%.0f", t->lo);
            snprintf(hi, sizeof hi, "%.0f", t->hi);
            cJSON_AddRawToObject(o, "minimum", lo);
            cJSON_AddRawToObject(o, "maximum", hi);
        } else if (t->kind == TOPT_NUM) {
            cJSON_AddNumberToObject(o, "minimum", t->lo);
            cJSON_AddNumberToObject(o, "maximum", t->hi);
        }
        if (t->kind == TOPT_CHOICE) {
            cJSON *e = cJSON_AddArrayToObject(o, "enum");
            for (int i = 0; t->choices[i]; i++)
                cJSON_AddItemToArray(e, cJSON_CreateString(t->choices[i]));
        }
        for (int regime = REGIME_WINDOW; regime <= REGIME_SEQUENCE; regime++) {
            char v[32];
            train_opt_format(v, sizeof v, id, train_opt_default(id, regime));
            const char *key = model_regime_name(regime);
            if (t->kind == TOPT_CHOICE)
                cJSON_AddStringToObject(d, key, v);
            else if (t->kind == TOPT_BOOL)
                cJSON_AddBoolToObject(d, key, strcmp(v, "true") == 0);
            else
                cJSON_AddNumberToObject(d, key, atof(v));
        }
        cJSON_AddItemToObject(o, "default", d);
        cJSON_AddStringToObject(o, "help", t->help);
        if (t->architecture) /* fine-tuning keeps it */
            cJSON_AddTrueToObject(o, "architecture");
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(arr);
    if (text)
        puts(text);
    cJSON_free(text);
    cJSON_Delete(arr);
}

typedef struct train_cli {
    int json, quiet, tty;
    int samples_every;
    double last_bar;
} train_cli;

/* A sample on one line: newlines and tabs shown as \n and \t. */
static void print_escaped(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", stdout);
        else if (*s == '\t')
            fputs("\\t", stdout);
        else
            putchar(*s);
    }
}

static volatile sig_atomic_t interrupted;
static volatile int cancel_flag;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    cancel_flag = 1;
}

static void fmt_duration(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%.0fs", s);
}

static void on_progress(void *ctx, const train_progress *p)
{
    train_cli *c = ctx;
    if (c->quiet || !c->tty)
        return;
    char eta[32];
    fmt_duration(eta, sizeof eta, p->eta);
    int width = 30, filled = (int)(width * (double)p->batch / (double)p->batches);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[width] = '\0';
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %lld/%lld loss %.4f  %.0f chars/s  ETA %s", p->epoch,
            p->epochs, bar, p->batch, p->batches, p->loss, p->chars_per_sec, eta);
    fflush(stderr);
}

/* Before training, what a time budget chose and why: on stderr, so --json's stdout stays its
 * epochs (which carry the plan as "plan"). */
static void on_plan(void *ctx, const train_plan *p)
{
    train_cli *c = ctx;
    if (!c->quiet)
        fprintf(stderr, "plan: %s\n", p->why);
}

static void on_epoch(void *ctx, const train_epoch_report *r)
{
    train_cli *c = ctx;
    if (c->tty && !c->quiet)
        fprintf(stderr, "\r\033[K");
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", r->epoch);
        cJSON_AddNumberToObject(o, "epochs", r->epochs);
        cJSON_AddBoolToObject(o, "partial", r->partial);
        cJSON_AddNumberToObject(o, "train_loss", r->train_loss);
        if (isnan(r->val_loss))
            cJSON_AddNullToObject(o, "val_loss");
        else
            cJSON_AddNumberToObject(o, "val_loss", r->val_loss);
        cJSON_AddBoolToObject(o, "best", r->best);
        cJSON_AddNumberToObject(o, "lr", r->lr);
        cJSON_AddNumberToObject(o, "seconds", r->seconds);
        cJSON_AddNumberToObject(o, "elapsed", r->elapsed);
        cJSON_AddNumberToObject(o, "eta", r->eta);
        cJSON_AddNumberToObject(o, "chars_per_sec", r->chars_per_sec);
        cJSON_AddNumberToObject(o, "seqs_per_sec", r->seqs_per_sec);
        cJSON *plan = r->plan_json ? cJSON_Parse(r->plan_json) : NULL;
        if (plan)
            cJSON_AddItemToObject(o, "plan", plan);
        if (r->n_samples) {
            cJSON_AddStringToObject(o, "sample_seed", r->sample_seed);
            cJSON *s = cJSON_AddObjectToObject(o, "samples");
            for (int k = 0; k < r->n_samples; k++) {
                char key[16];
                snprintf(key, sizeof key, "%.1f", r->temps[k]);
                cJSON_AddStringToObject(s, key, r->samples[k]);
            }
        }
        char *text = cJSON_PrintUnformatted(o);
        if (text)
            puts(text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else {
        char el[32], eta[32];
        fmt_duration(el, sizeof el, r->elapsed);
        fmt_duration(eta, sizeof eta, r->eta);
        printf("epoch %d/%d%s  train %.4f", r->epoch, r->epochs, r->partial ? " (partial)" : "",
               r->train_loss);
        if (!isnan(r->val_loss))
            printf("  val %.4f%s", r->val_loss, r->best ? " *" : "");
        printf("  nats/char  %.0f chars/s  %.1fs  elapsed %s  ETA %s\n", r->chars_per_sec,
               r->seconds, el, eta);
        int last = r->partial || r->epoch == r->epochs;
        if (r->n_samples && c->samples_every > 0 &&
            (r->epoch % c->samples_every == 0 || last)) {
            fputs("  seed: \"", stdout);
            print_escaped(r->sample_seed);
            fputs("\"\n", stdout);
            for (int k = 0; k < r->n_samples; k++) {
                printf("  T=%.1f: ", r->temps[k]);
                print_escaped(r->samples[k]);
                putchar('\n');
            }
        }
    }
    fflush(stdout);
}

/* For --resume without --corpus or --out: the corpus the checkpoint names (its metadata keeps
 * the path the run was started with) and the file it continues (NAME.safetensors beside
 * NAME.latest.safetensors). Nonzero exit code (after a message) if the checkpoint cannot say. */
static int resume_defaults(const char *resume, char **corpus, char **out)
{
    char err[512];
    model *m = NULL;
    if (checkpoint_load(&m, NULL, NULL, resume, err, sizeof err)) {
        fprintf(stderr, "lstmgen train: %s\n", err);
        return EXIT_RUNTIME;
    }
    int rc = EXIT_OK;
    if (corpus) {
        const char *path = model_meta_get(m, "corpus_path");
        if (!path)
            rc = usage_error("train", "%s does not say where its corpus is (it was made before "
                             "checkpoints kept the path): give --corpus", resume);
        else if (!(*corpus = strdup(path)))
            rc = EXIT_RUNTIME;
    }
    if (out && rc == EXIT_OK) {
        const char *tail = ".latest.safetensors";
        size_t len = strlen(resume), tl = strlen(tail);
        *out = malloc(len + 1);
        if (!*out)
            rc = EXIT_RUNTIME;
        else if (len > tl && strcmp(resume + len - tl, tail) == 0)
            sprintf(*out, "%.*s.safetensors", (int)(len - tl), resume);
        else
            strcpy(*out, resume); /* no validation split: the file is both */
    }
    model_free(m);
    return rc;
}

static char *default_out(const char *corpus)
{
    const char *base = strrchr(corpus, '/');
    base = base ? base + 1 : corpus;
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        len = (size_t)(dot - base);
    char *out = malloc(len + sizeof ".safetensors");
    if (out)
        sprintf(out, "%.*s.safetensors", (int)len, base);
    return out;
}

int cmd_train(int argc, char **argv)
{
    struct option longopts[N_CLI_OPTS + TOPT_COUNT + 1];
    size_t n_long = 0;
    for (size_t i = 0; i < N_CLI_OPTS; i++)
        longopts[n_long++] = (struct option){cli_opts[i].name,
                                             cli_opts[i].arg ? required_argument : no_argument, 0,
                                             cli_opts[i].key};
    char names[TOPT_COUNT][32]; /* --seq-len for seq_len */
    for (int id = 0; id < TOPT_COUNT; id++) {
        snprintf(names[id], sizeof names[id], "%s", train_opts[id].name);
        for (char *p = names[id]; *p; p++)
            *p = *p == '_' ? '-' : *p;
        longopts[n_long++] = (struct option){
            names[id], train_opts[id].kind == TOPT_BOOL ? no_argument : required_argument, 0,
            OPT_TABLE + id};
    }
    longopts[n_long] = (struct option){0, 0, 0, 0};

    const char *cmd = "train";
    const char *corpus_path = NULL, *out = NULL, *resume = NULL, *init = NULL, *unknown = NULL;
    int given[TOPT_COUNT] = {0}, threads = 0;
    double value[TOPT_COUNT] = {0};
    train_cli c = {.samples_every = 5};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char err[256];
        if (opt >= OPT_TABLE && opt < OPT_TABLE + TOPT_COUNT) {
            int id = opt - OPT_TABLE;
            given[id] = 1;
            if (train_opts[id].kind == TOPT_BOOL)
                value[id] = 1;
            else if (train_opt_parse(id, optarg, &value[id], err, sizeof err))
                return usage_error(cmd, "--%s", dashed(err));
            continue;
        }
        switch (opt) {
        case OPT_CORPUS: corpus_path = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_RESUME: resume = optarg; break;
        case OPT_INIT: init = optarg; break;
        case OPT_UNKNOWN: unknown = optarg; break;
        case OPT_THREADS:
            if (arg_int(&threads, cmd, "threads", optarg, 1, 256))
                return EXIT_USAGE;
            break;
        case OPT_JSON: c.json = 1; break;
        case OPT_QUIET: c.quiet = 1; break;
        case OPT_SAMPLES_EVERY:
            if (arg_int(&c.samples_every, cmd, "samples-every", optarg, 0, 1000000))
                return EXIT_USAGE;
            break;
        case OPT_OPTIONS_JSON: print_options_json(); return EXIT_OK;
        case 'h':
        case OPT_HELP: print_help(); return EXIT_OK;
        default:
            return usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (init && resume)
        return usage_error(cmd, "--init starts a new run from a model; --resume continues one");
    if (unknown && !init)
        return usage_error(cmd, "--unknown-chars applies to --init (a new model's vocabulary "
                                "is its corpus's)");
    /* a resume continues its own run: its corpus, its file, its epoch target */
    char *found_corpus = NULL, *resume_out = NULL;
    if (resume && (!corpus_path || !out)) {
        int rc = resume_defaults(resume, corpus_path ? NULL : &found_corpus,
                                 out ? NULL : &resume_out);
        if (rc)
            return rc;
        corpus_path = corpus_path ? corpus_path : found_corpus;
        out = out ? out : resume_out;
    }
    if (!corpus_path)
        return usage_error(cmd, "--corpus FILE is required"); /* nothing was found to free */
    int policy = CORPUS_UNKNOWN_ERROR;
    uint32_t replacement = 0;
    if (unknown && corpus_unknown_spec_parse(unknown, &policy, &replacement))
        return usage_error(cmd, "--unknown-chars must be error, drop or replace=C (one "
                                "character), got '%s'", unknown);
    char init_path[4200];
    if (init) { /* the run takes the model's architecture, and its regime's defaults */
        model_path(init_path, sizeof init_path, init);
        model *m;
        char ierr[512];
        if (checkpoint_load(&m, NULL, NULL, init_path, ierr, sizeof ierr)) {
            fprintf(stderr, "lstmgen train: --init: %s\n", ierr);
            return EXIT_RUNTIME;
        }
        int arc = train_opts_adopt_model(given, value, &m->cfg, NULL, ierr, sizeof ierr);
        model_free(m);
        if (arc)
            return usage_error(cmd, "--%s", dashed(ierr));
    }

    train_options o;
    const char *field = NULL;
    char berr[256];
    if (train_opts_build(&o, given, value, &field, berr, sizeof berr)) {
        free(found_corpus);
        free(resume_out);
        return usage_error(cmd, "--%s", dashed(berr));
    }
    o.init = init ? init_path : NULL;
    o.unknown_chars = policy;
    o.replacement = replacement;
    o.threads = threads;
    o.resume = resume;
    if (resume && !given[TOPT_EPOCHS])
        o.epochs = 0; /* the resumed run's own target */
    char corpus_abs[PATH_MAX];
    o.corpus_path = realpath(corpus_path, corpus_abs) ? corpus_abs : corpus_path;

    char *out_alloc = NULL;
    if (!out)
        out = out_alloc = default_out(corpus_path);
    if (!out)
        return EXIT_RUNTIME;
    o.out = out;
    c.tty = isatty(STDERR_FILENO);
    o.on_progress = on_progress;
    o.on_epoch = on_epoch;
    o.on_plan = on_plan;
    o.ctx = &c;
    o.cancel = &cancel_flag;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    char err[512];
    char *text = NULL;
    size_t len = 0;
    int rc = corpus_read_file(&text, &len, corpus_path, err, sizeof err);
    train_result res;
    if (rc == 0)
        rc = train_run(&res, &o, text, len, err, sizeof err);
    free(text);
    if (c.tty && !c.quiet)
        fprintf(stderr, "\r\033[K");
    if (rc) {
        fprintf(stderr, "lstmgen train: %s\n", err);
        free(out_alloc);
        free(found_corpus);
        free(resume_out);
        return EXIT_RUNTIME;
    }
    if (!c.json) {
        char latest[4096];
        train_latest_path(latest, sizeof latest, out);
        if (isnan(res.best_val_loss))
            fprintf(stderr, "wrote %s (%d epochs, %.1fs%s)\n", out, res.epochs_done, res.seconds,
                    res.stopped ? ", stopped early" : "");
        else
            fprintf(stderr, "wrote %s (best val loss %.4f) and %s (%d epochs, %.1fs%s)\n", out,
                    res.best_val_loss, latest, res.epochs_done, res.seconds,
                    res.stopped ? ", stopped early" : "");
    }
    free(out_alloc);
    free(found_corpus);
    free(resume_out);
    return interrupted ? 130 : EXIT_OK;
}
