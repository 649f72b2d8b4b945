/* cmd_train: `lstmgen train`, options to train_options, progress on the terminal, one line (or
 * JSON object) per epoch on stdout. */
#include "cli.h"

#include "corpus.h"
#include "err.h"
#include "optim.h"
#include "train.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "usage: lstmgen train --corpus FILE [--out CKPT] [options]\n"
    "\n"
    "Trains a character-level LSTM on a UTF-8 text and writes a safetensors checkpoint at the end\n"
    "of every epoch. With a validation split, CKPT holds the epoch with the best validation loss\n"
    "and CKPT's .latest file the latest state (for --resume).\n"
    "\n"
    "  --corpus FILE        UTF-8 text to learn from (required)\n"
    "  --out CKPT           checkpoint path (default: the corpus name with .safetensors, here)\n"
    "  --regime R           window (default): the book's recipe, windows of --maxlen characters\n"
    "                       every --step, loss on the next character only; the exact setup of\n"
    "                       Deep Learning with Python, chapter 8.\n"
    "                       sequence: char-rnn's recipe, contiguous --seq-len chunks, loss at\n"
    "                       every character, state carried across batches; generates in O(1)\n"
    "                       per character, so it is the better choice for serving.\n"
    "  --layers N           LSTM layers, 1..4 (window: 1, the book; sequence: 2, char-rnn)\n"
    "  --hidden N           units per layer, 8..2048 (window: 128, the book; sequence: 256,\n"
    "                       enough for a few MB of text without overfitting quickly)\n"
    "  --dropout P          between layers, in [0, 1) (window: 0; sequence: 0.1, light\n"
    "                       regularisation for 2 layers)\n"
    "  --maxlen N           window length (60, the book)\n"
    "  --step N             characters between windows (3, the book)\n"
    "  --seq-len N          BPTT length for the sequence regime (100: long enough to learn\n"
    "                       word and phrase structure, short enough to train fast)\n"
    "  --batch N            sequences per batch (window: 128, the book; sequence: 64)\n"
    "  --epochs N           passes over the text (20: the book's samples read well after 20)\n"
    "  --lr X               learning rate (window: 0.01 with RMSprop, the book; sequence:\n"
    "                       0.002 with Adam)\n"
    "  --optimizer O        rmsprop (Keras defaults: rho 0.9, eps 1e-7) or adam\n"
    "                       (window: rmsprop; sequence: adam)\n"
    "  --lr-decay X         multiply the learning rate by X every epoch (1: none, the book)\n"
    "  --clip X             clip the global gradient norm at X, 0 = off (window: 0, the book;\n"
    "                       sequence: 5, as char-rnn, since long BPTT can explode)\n"
    "  --val-fraction X     held out from the end of the text, in [0, 0.5] (0.05: enough text\n"
    "                       to pick the best epoch; 0 trains on everything, as the book does)\n"
    "  --lowercase          lowercase the text first (the book does; fewer characters to learn)\n"
    "  --seed N             initialisation, shuffling and dropout (1); with the same corpus,\n"
    "                       options, seed and --threads the checkpoint is bit-identical (set\n"
    "                       SOURCE_DATE_EPOCH to pin its creation time too)\n"
    "  --threads N          OpenBLAS threads (default: OpenBLAS's own, one per core)\n"
    "  --max-seconds S      stop cleanly after S seconds, saving the checkpoint; without\n"
    "                       --epochs, train until then\n"
    "  --resume CKPT        continue from a latest-state checkpoint exactly where it stopped\n"
    "                       (model and training options come from it; --epochs may be raised)\n"
    "  --sample-chars N     characters per temperature in the epoch samples (200; 0 = none)\n"
    "  --json               one JSON object per epoch on stdout, nothing else there\n"
    "  --quiet              no progress bar\n";

typedef struct train_cli {
    int json, quiet, tty;
    double last_bar;
} train_cli;

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
        if (r->n_samples) {
            printf("  seed: \"%s\"\n", r->sample_seed);
            for (int k = 0; k < r->n_samples; k++)
                printf("  T=%.1f: %s\n", r->temps[k], r->samples[k]);
        }
    }
    fflush(stdout);
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
    static const struct option longopts[] = {
        {"corpus", required_argument, 0, 'c'},  {"out", required_argument, 0, 'o'},
        {"regime", required_argument, 0, 'r'},  {"layers", required_argument, 0, 'L'},
        {"hidden", required_argument, 0, 'H'},  {"dropout", required_argument, 0, 'd'},
        {"maxlen", required_argument, 0, 'm'},  {"step", required_argument, 0, 's'},
        {"seq-len", required_argument, 0, 'q'}, {"batch", required_argument, 0, 'b'},
        {"epochs", required_argument, 0, 'e'},  {"lr", required_argument, 0, 'l'},
        {"optimizer", required_argument, 0, 'O'}, {"lr-decay", required_argument, 0, 'D'},
        {"clip", required_argument, 0, 'C'},    {"val-fraction", required_argument, 0, 'v'},
        {"lowercase", no_argument, 0, 'w'},     {"seed", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'}, {"max-seconds", required_argument, 0, 'x'},
        {"resume", required_argument, 0, 'R'},  {"sample-chars", required_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},          {"quiet", no_argument, 0, 'Q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *cmd = "train";
    train_options o;
    train_options_default(&o);
    const char *corpus_path = NULL, *out = NULL, *resume = NULL;
    int regime = REGIME_WINDOW;
    /* options left unset take the regime's defaults */
    int layers = -1, hidden = -1, batch = -1, epochs = -1, optimizer = -1;
    double dropout = -1, lr = -1, clip = -1, d;
    train_cli c = {0};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case 'c': corpus_path = optarg; break;
        case 'o': out = optarg; break;
        case 'R': resume = optarg; break;
        case 'r':
            if (strcmp(optarg, "window") == 0)
                regime = REGIME_WINDOW;
            else if (strcmp(optarg, "sequence") == 0)
                regime = REGIME_SEQUENCE;
            else
                return usage_error(cmd, "--regime must be window or sequence, got '%s'", optarg);
            break;
        case 'L': bad = arg_int(&layers, cmd, "layers", optarg, 1, 4); break;
        case 'H': bad = arg_int(&hidden, cmd, "hidden", optarg, 8, 2048); break;
        case 'd': bad = arg_double(&dropout, cmd, "dropout", optarg, 0, 0.99); break;
        case 'm': bad = arg_int(&o.cfg.maxlen, cmd, "maxlen", optarg, 1, 100000); break;
        case 's': bad = arg_int(&o.cfg.step, cmd, "step", optarg, 1, 100000); break;
        case 'q': bad = arg_int(&o.cfg.seq_len, cmd, "seq-len", optarg, 1, 100000); break;
        case 'b': bad = arg_int(&batch, cmd, "batch", optarg, 1, 65536); break;
        case 'e': bad = arg_int(&epochs, cmd, "epochs", optarg, 1, 1000000); break;
        case 'l': bad = arg_double(&lr, cmd, "lr", optarg, 1e-9, 10); break;
        case 'O':
            if ((optimizer = optim_parse(optarg)) < 0)
                return usage_error(cmd, "--optimizer must be rmsprop or adam, got '%s'", optarg);
            break;
        case 'D':
            bad = arg_double(&d, cmd, "lr-decay", optarg, 1e-6, 1);
            o.lr_decay = (float)d;
            break;
        case 'C': bad = arg_double(&clip, cmd, "clip", optarg, 0, 1e6); break;
        case 'v': bad = arg_double(&o.val_fraction, cmd, "val-fraction", optarg, 0, 0.5); break;
        case 'w': o.cfg.lowercase = 1; break;
        case 'S': bad = arg_u64(&o.seed, cmd, "seed", optarg); break;
        case 't': bad = arg_int(&o.threads, cmd, "threads", optarg, 1, 256); break;
        case 'x': bad = arg_double(&o.max_seconds, cmd, "max-seconds", optarg, 0.001, 1e9); break;
        case 'n': bad = arg_int(&o.sample_chars, cmd, "sample-chars", optarg, 0, 100000); break;
        case 'j': c.json = 1; break;
        case 'Q': c.quiet = 1; break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default:
            return usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!corpus_path)
        return usage_error(cmd, "--corpus FILE is required");

    train_options_regime_defaults(&o, regime);
    if (layers > 0)
        o.cfg.L = layers;
    if (hidden > 0)
        o.cfg.H = hidden;
    if (dropout >= 0)
        o.cfg.dropout = (float)dropout;
    else if (o.cfg.L == 1)
        o.cfg.dropout = 0.0f; /* dropout acts between layers: none with one */
    if (batch > 0)
        o.batch = batch;
    if (optimizer >= 0 && optimizer != o.optimizer) /* its own default learning rate */
        o.lr = optimizer == OPTIM_ADAM ? 0.002f : 0.01f;
    if (optimizer >= 0)
        o.optimizer = optimizer;
    if (lr > 0)
        o.lr = (float)lr;
    if (clip >= 0)
        o.clip = (float)clip;
    o.epochs = epochs > 0 ? epochs : (o.max_seconds > 0 ? 1000000 : 20);
    o.resume = resume;

    char *out_alloc = NULL;
    if (!out)
        out = out_alloc = default_out(corpus_path);
    if (!out)
        return EXIT_RUNTIME;
    o.out = out;
    c.tty = isatty(STDERR_FILENO);
    o.on_progress = on_progress;
    o.on_epoch = on_epoch;
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
    return interrupted ? 130 : EXIT_OK;
}
