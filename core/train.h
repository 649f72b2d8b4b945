/* train: the training loop. Two regimes (model.h): the book's windows, shuffled every epoch, with
 * the loss at the last step; and char-rnn's contiguous sequences, B parallel streams through the
 * text with the state carried between batches (truncated BPTT). Writes a checkpoint at the end of
 * every epoch and when it stops early; a run resumed from its latest checkpoint continues exactly
 * as if it had never stopped (weights, optimizer moments, data position, carried state; the
 * shuffles and dropout masks are functions of the seed and the position, not of a stored rng). */
#ifndef CORE_TRAIN_H
#define CORE_TRAIN_H

#include "model.h"

#include <stdint.h>

typedef struct train_progress {
    int epoch, epochs;          /* epoch is 1-based */
    long long batch, batches;   /* batches done in this epoch, and its total */
    double loss;                /* mean training loss of this epoch so far (nats per char) */
    double fraction;            /* of the whole run */
    double elapsed, eta;        /* seconds */
    double chars_per_sec;       /* input characters through the network per second */
} train_progress;

#define TRAIN_N_TEMPS 4

typedef struct train_epoch_report {
    int epoch, epochs;
    int partial;                /* stopped before the end of the epoch */
    double train_loss;          /* nats per predicted character */
    double val_loss;            /* NAN without a validation split */
    int best;                   /* written to out as the best model so far */
    double lr;
    double seconds, elapsed, eta;
    double chars_per_sec, seqs_per_sec;
    const char
        *sample_seed; /* the samples' seed text; these strings live until the callback returns */
    const char *samples[TRAIN_N_TEMPS];
    double temps[TRAIN_N_TEMPS];
    int n_samples;
    const char *plan_json;      /* with a time budget, the plan (budget_plan_json), else NULL */
} train_epoch_report;

/* What a time budget trains (budget.h): the size and schedule train_run chose, and why. */
typedef struct train_plan {
    int chose_size;           /* layers, hidden, batch, seq_len, dropout were chosen, not given */
    model_config cfg;
    int batch;
    float lr;                 /* the peak of the schedule */
    double chars_per_sec;     /* measured for cfg on this machine before training */
    double budget_chars;      /* characters the budget should train on at that rate */
    double passes;            /* passes over the training text (its windows) budget_chars makes */
    long long steps;          /* optimizer steps the schedule first planned for */
    int ends_early;           /* the text allows fewer steps than the time: the run stops after
                                 `steps` (BUDGET_MAX_PASSES passes), before the deadline */
    char why[768];            /* one or two sentences, for people */
} train_plan;

typedef void (*train_progress_fn)(void *ctx, const train_progress *p);
typedef void (*train_epoch_fn)(void *ctx, const train_epoch_report *r);
typedef void (*train_plan_fn)(void *ctx, const train_plan *p);

typedef struct train_options {
    model_config cfg;
    int batch;
    int epochs;               /* epochs in all, counting those done before a resume; 0 with
                                 resume: the resumed run's own target */
    float lr;
    float lr_decay;           /* the learning rate of epoch e (0-based) is lr * lr_decay^e */
    float clip;               /* global gradient norm limit; 0 = off */
    int optimizer;            /* enum optim_kind */
    double val_fraction;
    uint64_t seed;
    int threads;              /* OpenBLAS threads; 0 leaves the current setting */
    double max_seconds;       /* stop cleanly after this long; 0 = no limit */
    /* With max_seconds (budget.h; train_opts_build sets these from what was given): */
    int auto_size;            /* choose layers and hidden, and batch, seq_len, dropout unless
                                 given_mask has them, from the corpus and measured speed */
    int budget_schedule;      /* the learning rate warms up, then decays to the deadline
                                 (instead of lr_decay per epoch) */
    uint32_t given_mask;      /* bit id (enum train_opt_id) set: the user gave that option */
    int sample_chars;         /* characters per temperature in the epoch samples; 0 = none */
    const char *out;          /* checkpoint path */
    const char *resume;       /* a latest-state checkpoint to continue from, or NULL */
    const char *init;         /* fine-tuning: a checkpoint whose weights, vocabulary and
                                 architecture (train_opts_adopt_model) the run starts from;
                                 NULL: fresh weights. Ignored with resume. */
    int unknown_chars;        /* with init: corpus characters outside its vocabulary, enum
                                 corpus_unknown (error, drop, replace) */
    uint32_t replacement;     /* CORPUS_UNKNOWN_REPLACE: the character they become */
    const char *corpus_path;  /* recorded in the checkpoint, so a resume can find the text;
                                 may be NULL */
    train_progress_fn on_progress; /* may be NULL; called a few times a second */
    train_epoch_fn on_epoch;  /* may be NULL */
    train_plan_fn on_plan;    /* may be NULL; called once, before training, with a budget */
    void *ctx;
    const volatile int *cancel; /* may be NULL; nonzero stops like the time budget */
} train_options;

typedef struct train_result {
    int epochs_done;          /* whole epochs completed, counting those before a resume */
    double train_loss;        /* of the last (possibly partial) epoch */
    double val_loss;          /* of the last evaluation; NAN without a split */
    double best_val_loss;     /* NAN without a split */
    int stopped;              /* 0 finished, 1 time budget, 2 cancelled */
    double seconds;
} train_result;

/* The book's recipe: 1 layer of 128, windows of 60 every 3, batch 128, RMSprop lr 0.01. */
void train_options_default(train_options *o);

/* Sets the options that differ between the regimes to that regime's defaults: the book's for
 * window (1 x 128, batch 128, RMSprop 0.01, no clipping, no dropout), char-rnn's for sequence
 * (2 x 256, batch 64, Adam 0.002, clip 5, dropout 0.1). The caller then applies what the user
 * set. */
void train_options_regime_defaults(train_options *o, int regime);

/* 0 if the training options are in range (batch, epochs, lr, lr_decay, clip, optimizer,
 * max_seconds, threads, sample_chars, out; and the model configuration); CORE_ERANGE or
 * CORE_EINVAL with a message naming the option otherwise. */
int train_options_check(const train_options *o, char *err, size_t errlen);

/* Where the latest state goes when out holds the best model:
 * "x.safetensors" -> "x.latest.safetensors". */
void train_latest_path(char *buf, size_t n, const char *out);

/* Trains on len bytes of UTF-8 text. With a validation split, o->out holds the epoch with the best
 * validation loss and train_latest_path(o->out) the latest state (with optimizer state, for
 * --resume); without one, o->out holds the latest state. Errors: CORE_EUTF8/CORE_EVOCAB (corpus),
 * CORE_ERANGE (options; the message names it), CORE_EINVAL (corpus too small for the options),
 * CORE_EDIVERGED (NaN or exploding loss; the files written before stay intact), CORE_EIO,
 * CORE_EFORMAT (resume file), CORE_ENOMEM. A cancel is not an error: res->stopped says so. */
int train_run(train_result *res, const train_options *o, const char *text, size_t len, char *err,
              size_t errlen);

#endif
