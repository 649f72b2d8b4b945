/* trainopts: the training options as one table: each option's name, type, range, help, its
 * defaults (from train_options_regime_defaults) and, in train_opts_build, the rules between
 * them. The command line (`lstmgen train --NAME`, '-' for '_'), the jobs API
 * (`hyperparameters.NAME`), `lstmgen train --help` and `--options-json` all read this table;
 * tests/test_options.py holds docs/API.md and docs/openapi.json to it. */
#ifndef CORE_TRAINOPTS_H
#define CORE_TRAINOPTS_H

#include "train.h"

#include <stddef.h>

enum train_opt_id {
    TOPT_REGIME, TOPT_LAYERS, TOPT_HIDDEN, TOPT_DROPOUT, TOPT_MAXLEN, TOPT_STEP, TOPT_SEQ_LEN,
    TOPT_BATCH, TOPT_EPOCHS, TOPT_OPTIMIZER, TOPT_LR, TOPT_LR_DECAY, TOPT_CLIP,
    TOPT_VAL_FRACTION, TOPT_LOWERCASE, TOPT_SEED, TOPT_MAX_SECONDS, TOPT_SAMPLE_CHARS,
    TOPT_COUNT
};

enum train_opt_kind {
    TOPT_INT,    /* a whole number in [lo, hi] */
    TOPT_NUM,    /* a number in [lo, hi] */
    TOPT_BOOL,   /* true or false (a flag on the command line) */
    TOPT_CHOICE, /* one of choices[], the value its index */
};

typedef struct train_opt {
    const char *name;            /* "seq_len" */
    int kind;                    /* enum train_opt_kind */
    double lo, hi;               /* TOPT_INT, TOPT_NUM */
    const char *const *choices;  /* TOPT_CHOICE: NULL-terminated, index = value */
    const char *help;            /* what it does, and why the default is what it is */
    int architecture;            /* part of a model's architecture: fine-tuning keeps the
                                    checkpoint's value (train_opts_adopt_model) */
} train_opt;

/* Indexed by enum train_opt_id. */
extern const train_opt train_opts[TOPT_COUNT];

/* The option called name ("seq_len", or "seq-len" as on the command line), or -1. */
int train_opt_find(const char *name);

/* Option id's value in o, as a double (a choice's index, a flag's 0 or 1). */
double train_opt_get(const train_options *o, int id);

/* Parses the command line's text for option id into *v: a number in range, a choice's name,
 * "true"/"false" for a flag. CORE_ERANGE with a message saying what was expected. */
int train_opt_parse(int id, const char *text, double *v, char *err, size_t errlen);

/* 0 if v is a value option id accepts: in range, whole where it must be, a known choice. */
int train_opt_check(int id, double v, char *err, size_t errlen);

/* Options from what a user gave: given[id] says whether value[id] was set. The regime's defaults
 * come first, then each given value (checked: CORE_ERANGE naming it, *field set to its name),
 * then the rules between options that were not given:
 *  - another optimizer's learning rate is that optimizer's default (RMSprop 0.01, Adam 0.002);
 *  - one layer has no dropout (dropout acts between layers);
 *  - a time budget without epochs trains until it runs out;
 *  - a time budget without layers or hidden lets train_run choose the size (auto_size, in the
 *    sequence regime unless one was given), and without epochs or lr_decay it schedules the
 *    rate to end at the deadline (budget_schedule); given_mask records what was given.
 * out, resume, threads, callbacks and cancel are left as train_options_default sets them. */
int train_opts_build(train_options *o, const int *given, const double *value, const char **field,
                     char *err, size_t errlen);

/* Fine-tuning keeps a checkpoint's architecture: the options marked architecture (regime,
 * layers, hidden, maxlen for a window model, lowercase) become given with cfg's values, before
 * train_opts_build (so the regime's defaults are its own). A different value given for one of
 * them is CORE_EINVAL, *field naming it. */
int train_opts_adopt_model(int *given, double *value, const model_config *cfg,
                           const char **field, char *err, size_t errlen);

/* The default of option id in a regime (what train_opts_build gives when nothing is set). */
double train_opt_default(int id, int regime);

/* The value of option id written as a user would write it ("adam", "true", "0.002"). */
void train_opt_format(char *buf, size_t n, int id, double v);

#endif
