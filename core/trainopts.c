/* trainopts: the table, its accessors and the rules between options. */
#include "trainopts.h"

#include "err.h"
#include "model.h"
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(TOPT_COUNT <= 32, "train_options.given_mask holds one bit per option");

const train_opt train_opts[TOPT_COUNT] = {
    [TOPT_REGIME] = {"regime", TOPT_CHOICE, 0, 1, model_regime_names,
                     "window: the book's recipe, windows of maxlen characters every step, loss "
                     "on the next character (Deep Learning with Python, chapter 8). sequence: "
                     "char-rnn's, contiguous seq_len chunks, loss at every character, state "
                     "carried across batches; it generates in O(1) per character, so it is the "
                     "better choice for serving",
                     .architecture = 1},
    [TOPT_LAYERS] = {"layers", TOPT_INT, 1, MODEL_MAX_LAYERS, NULL,
                     "LSTM layers: one in the book's recipe, two in char-rnn's",
                     .architecture = 1},
    [TOPT_HIDDEN] = {"hidden", TOPT_INT, MODEL_MIN_HIDDEN, MODEL_MAX_HIDDEN, NULL,
                     "units per layer: the book's 128 for window; 256 for sequence, enough for a "
                     "few MB of text without overfitting quickly",
                     .architecture = 1},
    [TOPT_DROPOUT] = {"dropout", TOPT_NUM, 0, MODEL_MAX_DROPOUT, NULL,
                      "dropout between layers: light regularisation for two; with one layer it "
                      "is 0 unless set"},
    [TOPT_MAXLEN] = {"maxlen", TOPT_INT, 1, MODEL_MAX_LENGTH, NULL,
                     "window length (window regime; also the window of window-mode "
                     "generation), the book's",
                     .architecture = 1},
    [TOPT_STEP] = {"step", TOPT_INT, 1, MODEL_MAX_LENGTH, NULL,
                   "characters between window starts (window regime), the book's"},
    [TOPT_SEQ_LEN] = {"seq_len", TOPT_INT, 1, MODEL_MAX_LENGTH, NULL,
                      "truncated-BPTT length (sequence regime): long enough to learn word and "
                      "phrase structure, short enough to train fast"},
    [TOPT_BATCH] = {"batch", TOPT_INT, 1, 65536, NULL,
                    "sequences per batch: the book's for window"},
    [TOPT_EPOCHS] = {"epochs", TOPT_INT, 1, 1000000, NULL,
                     "passes over the text: the book's samples read well after 20; with "
                     "max_seconds and no epochs, training goes on until the time runs out"},
    [TOPT_OPTIMIZER] = {"optimizer", TOPT_CHOICE, 0, 1, optim_names,
                        "rmsprop (Keras's defaults: rho 0.9, eps 1e-7), the book's; or adam, "
                        "char-rnn's"},
    [TOPT_LR] = {"lr", TOPT_NUM, 1e-9, 10, NULL,
                 "learning rate, the book's with RMSprop and char-rnn's with Adam; choosing "
                 "the other optimizer without lr gives that one's default"},
    [TOPT_LR_DECAY] = {"lr_decay", TOPT_NUM, 1e-6, 1, NULL,
                       "the rate is multiplied by this every epoch (1: constant, as the "
                       "book)"},
    [TOPT_CLIP] = {"clip", TOPT_NUM, 0, 1e6, NULL,
                   "clip the global gradient norm at this, 0 = off: off in the book, 5 in "
                   "char-rnn, since long BPTT can explode"},
    [TOPT_VAL_FRACTION] = {"val_fraction", TOPT_NUM, 0, 0.5, NULL,
                           "held out from the end of the text for validation: enough to pick "
                           "the best epoch; 0 trains on everything, as the book does"},
    [TOPT_LOWERCASE] = {"lowercase", TOPT_BOOL, 0, 1, NULL,
                        "lowercase the text first, as the book does: fewer characters to learn; "
                        "prompts are then lowercased too",
                        .architecture = 1},
    [TOPT_SEED] = {"seed", TOPT_INT, 0, 9007199254740992.0, NULL,
                   "initialisation, shuffling and dropout: the same corpus, options, seed and "
                   "threads give a bit-identical checkpoint"},
    [TOPT_MAX_SECONDS] = {"max_seconds", TOPT_NUM, 0, 1e9, NULL,
                          "stop cleanly after this many seconds, keeping what was learned "
                          "(0: no limit). The main knob: without layers or hidden, the size "
                          "(and batch, seq_len, dropout unless given) is chosen for the budget "
                          "from the text's length and the speed measured on this machine, in "
                          "the sequence regime unless regime is given; without epochs or "
                          "lr_decay, the rate warms up, then decays to the deadline"},
    [TOPT_SAMPLE_CHARS] = {"sample_chars", TOPT_INT, 0, 100000, NULL,
                           "characters per temperature in each epoch's samples (0: none)"},
};

int train_opt_find(const char *name)
{
    for (int id = 0; id < TOPT_COUNT; id++) {
        const char *a = train_opts[id].name, *b = name;
        while (*a && (*a == *b || (*a == '_' && *b == '-')))
            a++, b++;
        if (!*a && !*b)
            return id;
    }
    return -1;
}

double train_opt_get(const train_options *o, int id)
{
    switch (id) {
    case TOPT_REGIME: return o->cfg.regime;
    case TOPT_LAYERS: return o->cfg.L;
    case TOPT_HIDDEN: return o->cfg.H;
    case TOPT_DROPOUT: return o->cfg.dropout;
    case TOPT_MAXLEN: return o->cfg.maxlen;
    case TOPT_STEP: return o->cfg.step;
    case TOPT_SEQ_LEN: return o->cfg.seq_len;
    case TOPT_BATCH: return o->batch;
    case TOPT_EPOCHS: return o->epochs;
    case TOPT_OPTIMIZER: return o->optimizer;
    case TOPT_LR: return o->lr;
    case TOPT_LR_DECAY: return o->lr_decay;
    case TOPT_CLIP: return o->clip;
    case TOPT_VAL_FRACTION: return o->val_fraction;
    case TOPT_LOWERCASE: return o->cfg.lowercase;
    case TOPT_SEED: return (double)o->seed;
    case TOPT_MAX_SECONDS: return o->max_seconds;
    case TOPT_SAMPLE_CHARS: return o->sample_chars;
    }
    return NAN;
}

static void set(train_options *o, int id, double v)
{
    switch (id) {
    case TOPT_REGIME: o->cfg.regime = (int)v; break;
    case TOPT_LAYERS: o->cfg.L = (int)v; break;
    case TOPT_HIDDEN: o->cfg.H = (int)v; break;
    case TOPT_DROPOUT: o->cfg.dropout = (float)v; break;
    case TOPT_MAXLEN: o->cfg.maxlen = (int)v; break;
    case TOPT_STEP: o->cfg.step = (int)v; break;
    case TOPT_SEQ_LEN: o->cfg.seq_len = (int)v; break;
    case TOPT_BATCH: o->batch = (int)v; break;
    case TOPT_EPOCHS: o->epochs = (int)v; break;
    case TOPT_OPTIMIZER: o->optimizer = (int)v; break;
    case TOPT_LR: o->lr = (float)v; break;
    case TOPT_LR_DECAY: o->lr_decay = (float)v; break;
    case TOPT_CLIP: o->clip = (float)v; break;
    case TOPT_VAL_FRACTION: o->val_fraction = v; break;
    case TOPT_LOWERCASE: o->cfg.lowercase = v != 0; break;
    case TOPT_SEED: o->seed = (uint64_t)v; break;
    case TOPT_MAX_SECONDS: o->max_seconds = v; break;
    case TOPT_SAMPLE_CHARS: o->sample_chars = (int)v; break;
    }
}

/* "window or sequence" */
static void list_choices(char *buf, size_t n, const char *const *c)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; c[i] && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s",
                                 i == 0 ? "" : c[i + 1] ? ", " : " or ", c[i]);
}

int train_opt_check(int id, double v, char *err, size_t errlen)
{
    const train_opt *t = &train_opts[id];
    char what[160];
    switch (t->kind) {
    case TOPT_INT:
    case TOPT_NUM:
        /* a NUM may be held as a float (lr 0.99 is 0.99000001f): bounds to the same precision */
        if (t->kind == TOPT_INT ? v >= t->lo && v <= t->hi && v == floor(v)
                                : isfinite(v) && (float)v >= (float)t->lo && (float)v <= (float)t->hi)
            return 0;
        return core_errf(err, errlen, CORE_ERANGE, "%s must be %s from %.10g to %.10g, got %.10g",
                         t->name, t->kind == TOPT_INT ? "an integer" : "a number", t->lo, t->hi,
                         v);
    case TOPT_BOOL:
        if (v == 0 || v == 1)
            return 0;
        return core_errf(err, errlen, CORE_ERANGE, "%s must be true or false", t->name);
    default:
        list_choices(what, sizeof what, t->choices);
        if (v == floor(v) && v >= t->lo && v <= t->hi)
            return 0;
        return core_errf(err, errlen, CORE_ERANGE, "%s must be %s", t->name, what);
    }
}

int train_opt_parse(int id, const char *text, double *v, char *err, size_t errlen)
{
    const train_opt *t = &train_opts[id];
    if (t->kind == TOPT_CHOICE || t->kind == TOPT_BOOL) {
        static const char *const bools[] = {"false", "true", NULL};
        const char *const *c = t->kind == TOPT_BOOL ? bools : t->choices;
        for (int i = 0; c[i]; i++)
            if (strcmp(c[i], text) == 0) {
                *v = i;
                return 0;
            }
        char what[160];
        list_choices(what, sizeof what, c);
        return core_errf(err, errlen, CORE_ERANGE, "%s must be %s, got '%s'", t->name, what,
                         text);
    }
    char *end;
    double x = strtod(text, &end);
    if (end == text || *end)
        return core_errf(err, errlen, CORE_ERANGE, "%s must be %s from %.10g to %.10g, got '%s'",
                         t->name, t->kind == TOPT_INT ? "an integer" : "a number", t->lo, t->hi,
                         text);
    int rc = train_opt_check(id, x, err, errlen);
    if (rc == 0)
        *v = x;
    return rc;
}

int train_opts_build(train_options *o, const int *given, const double *value, const char **field,
                     char *err, size_t errlen)
{
    train_options_default(o);
    for (int id = 0; id < TOPT_COUNT; id++) {
        int rc = given[id] ? train_opt_check(id, value[id], err, errlen) : 0;
        if (rc) {
            if (field)
                *field = train_opts[id].name;
            return rc;
        }
    }
    /* A time budget without a size: train_run chooses it (budget.h), in the sequence regime
     * unless another was given (it learns from every character, so it learns fastest). */
    int budget = given[TOPT_MAX_SECONDS] && value[TOPT_MAX_SECONDS] > 0;
    int auto_size = budget && !given[TOPT_LAYERS] && !given[TOPT_HIDDEN];
    /* the regime decides the other defaults, so it comes first */
    train_options_regime_defaults(o, given[TOPT_REGIME] ? (int)value[TOPT_REGIME]
                                     : auto_size        ? REGIME_SEQUENCE
                                                        : REGIME_WINDOW);
    for (int id = 0; id < TOPT_COUNT; id++)
        if (given[id]) {
            set(o, id, value[id]);
            o->given_mask |= 1u << id;
        }
    o->auto_size = auto_size;
    o->budget_schedule = budget && !given[TOPT_EPOCHS] && !given[TOPT_LR_DECAY];
    /* the rules between options, for the ones left unset */
    if (given[TOPT_OPTIMIZER] && !given[TOPT_LR])
        o->lr = o->optimizer == OPTIM_ADAM ? 0.002f : 0.01f;
    if (!given[TOPT_DROPOUT] && o->cfg.L == 1)
        o->cfg.dropout = 0.0f;
    if (!given[TOPT_EPOCHS] && o->max_seconds > 0)
        o->epochs = 1000000;
    return 0;
}

double train_opt_default(int id, int regime)
{
    int given[TOPT_COUNT] = {0};
    double value[TOPT_COUNT] = {0};
    given[TOPT_REGIME] = 1, value[TOPT_REGIME] = regime;
    train_options o;
    train_opts_build(&o, given, value, NULL, NULL, 0);
    return train_opt_get(&o, id);
}

void train_opt_format(char *buf, size_t n, int id, double v)
{
    const train_opt *t = &train_opts[id];
    if (t->kind == TOPT_CHOICE)
        snprintf(buf, n, "%s", t->choices[(int)v]);
    else if (t->kind == TOPT_BOOL)
        snprintf(buf, n, "%s", v ? "true" : "false");
    else
        snprintf(buf, n, t->kind == TOPT_NUM ? "%.7g" : "%.10g", v); /* NUMs are floats */
}

int train_opts_adopt_model(int *given, double *value, const model_config *cfg,
                           const char **field, char *err, size_t errlen)
{
    train_options model = {.cfg = *cfg}; /* to read cfg's values by option id */
    for (int id = 0; id < TOPT_COUNT; id++) {
        /* maxlen means something only to a window model */
        if (!train_opts[id].architecture || (id == TOPT_MAXLEN && cfg->regime != REGIME_WINDOW))
            continue;
        double v = train_opt_get(&model, id);
        if (given[id] && value[id] != v) {
            char want[32];
            train_opt_format(want, sizeof want, id, v);
            if (field)
                *field = train_opts[id].name;
            return core_errf(err, errlen, CORE_EINVAL, "%s: the model being fine-tuned has %s; "
                             "fine-tuning keeps its architecture", train_opts[id].name, want);
        }
        given[id] = 1;
        value[id] = v;
    }
    return 0;
}
