/* sample: turning next-character logits into characters, and generating text from a seed.
 * Temperature is Chollet's reweighting (Deep Learning with Python, 8.1): q_i = p_i^(1/T) / sum_j
 * p_j^(1/T) = softmax(log p / T), done in double in log space; then optional top-k and nucleus
 * (top-p, Holtzman et al. 2019) filters, then one inverse-CDF draw per character (llama2.c's
 * sampler). No allocation per character: a sampler owns its scratch, sized once for V. */
#ifndef CORE_SAMPLE_H
#define CORE_SAMPLE_H

#include "model.h"
#include "rng.h"

#include <stddef.h>
#include <stdint.h>

#define SAMPLE_MAX_STOPS 16 /* stop strings of one request (OpenAI's API allows 4) */
/* What a request or a command that names none gets: the model's own distribution, whole. */
#define SAMPLE_DEFAULT_LENGTH 200 /* characters */
#define SAMPLE_DEFAULT_TEMPERATURE 1.0
#define SAMPLE_DEFAULT_TOP_P 1.0  /* no nucleus cut */
#define SAMPLE_DEFAULT_TOP_K 0    /* no top-k cut */

// ----------------------------------------------------------------------------
// one character

/* Reweights a distribution given as log-probabilities (or logits: the same up to a constant) by
 * temperature T: q = softmax(logp / T), stable (the max is subtracted) and in double, so T = 0.01
 * keeps 1e-91-sized tails instead of underflowing. T = 0 gives a one-hot q at the argmax (ties go
 * to the lowest index). Needs n >= 1, T >= 0 and at least one finite logp; q may alias logp. */
void sample_reweight(double *q, const double *logp, int n, double T);

typedef struct sample_options {
    double temperature; /* finite, >= 0; 0 is greedy argmax */
    int top_k;          /* >= 0; 0 (or >= V) keeps everything */
    double top_p;       /* in (0, 1]; 1 keeps everything */
} sample_options;

/* 0 if opt is in range; CORE_ERANGE with a message naming the field otherwise. */
int sample_options_check(const sample_options *opt, char *err, size_t errlen);

/* One kept candidate: vocabulary index and its renormalised probability. */
typedef struct sample_cand {
    double p;
    int id;
} sample_cand;

/* Per-stream sampling state: options, RNG and scratch for V candidates. Not thread-safe; give
 * each stream its own. */
typedef struct sampler {
    sample_options opt;
    int V;
    rng r;
    sample_cand *cand; /* (V) scratch; after sample_filter, cand[0..n_cand) are the kept ones */
    int n_cand;
} sampler;

/* Checks opt (as sample_options_check), allocates scratch for V characters and seeds the RNG.
 * s is untouched on failure. */
int sampler_init(sampler *s, int V, const sample_options *opt, uint64_t seed, char *err,
                 size_t errlen);
/* Releases s; safe on a zeroed or already deinitialised sampler. */
void sampler_deinit(sampler *s);

/* Applies temperature -> top_k -> top_p to logits (V) and renormalises. Leaves the kept candidates
 * in s->cand[0..n) in draw order and returns n >= 1. The draw order is index order when neither
 * filter is on (nothing is sorted), otherwise most probable first with ties to the lower index.
 * top_p keeps the smallest most-probable prefix whose mass (renormalised after top_k) reaches
 * top_p. Temperature 0 keeps only the argmax. Draws nothing from the RNG. */
int sample_filter(sampler *s, const float *logits);

/* sample_filter, then one rng_uniform draw (none at temperature 0) mapped through the inverse CDF
 * of the kept candidates. Returns the chosen index in [0, V). */
int sample_next(sampler *s, const float *logits);

// ----------------------------------------------------------------------------
// generation

enum sample_mode {
    SAMPLE_MODE_AUTO = 0,     /* STATEFUL for REGIME_SEQUENCE models, WINDOW for REGIME_WINDOW */
    SAMPLE_MODE_STATEFUL = 1, /* read the seed once, then feed each new character: O(1) per char */
    SAMPLE_MODE_WINDOW = 2,   /* the book: per character, re-read the last maxlen characters from
                                 the zero state: O(maxlen) per char */
};

/* The modes' names in enum order ("auto", "stateful", "window"), NULL-terminated; the name of
 * one, and back (-1 for an unknown name). */
extern const char *const sample_mode_names[];
const char *sample_mode_name(int mode);
int sample_mode_parse(const char *name);

enum sample_finish {
    SAMPLE_FINISH_LENGTH = 0,    /* produced req->length characters */
    SAMPLE_FINISH_STOP = 1,      /* the generated text ended with a stop string */
    SAMPLE_FINISH_CANCELLED = 2, /* *req->cancel became nonzero, or emit returned nonzero */
};

/* Streaming callback: len bytes of whole UTF-8 characters (never a split sequence, never part of
 * a matched stop string). Return nonzero to stop generating (the client is gone). */
typedef int (*sample_emit_fn)(void *ctx, const char *utf8, size_t len);

/* "length", "stop", "cancelled" (the finish reasons' names, as /generate and the CLI print). */
const char *sample_finish_name(int finish);

typedef struct sample_request {
    const char *seed_text; /* UTF-8; may be NULL when seed_len is 0 */
    size_t seed_len;       /* bytes */
    int length;            /* characters to generate, >= 0 */
    double temperature;    /* as sample_options */
    int top_k;
    double top_p;
    uint64_t seed;          /* RNG seed: same model, request and seed give the same text */
    const char *const *stop; /* n_stop non-empty UTF-8 strings, NUL-terminated */
    int n_stop;
    int skip_unknown;       /* drop seed characters outside the vocabulary instead of failing */
    int mode;               /* enum sample_mode */
    sample_emit_fn emit;    /* may be NULL */
    void *emit_ctx;
    const volatile int *cancel; /* polled before each character (and while reading the seed);
                                   may be NULL */
    int want_logprobs;      /* genstream: record each generated character's log-probability */
    int top_logprobs;       /* with it: that many most probable alternatives, 0..SCORE_MAX_TOP */
    int echo_logprobs;      /* with it: score the seed text's characters too */
} sample_request;

typedef struct sample_result {
    char *text;             /* malloc'ed, NUL-terminated UTF-8: the continuation only, without the
                               seed text or a matched stop string */
    size_t text_len;        /* bytes in text */
    size_t seed_chars;      /* seed characters the model read (after dropping unknown ones) */
    size_t generated_chars; /* characters in text */
    int finish_reason;      /* enum sample_finish */
    int mode;               /* the mode that ran: SAMPLE_MODE_STATEFUL or SAMPLE_MODE_WINDOW */
} sample_result;

/* Maps UTF-8 text to vocabulary indices the way the model reads it: strict UTF-8 (CORE_EUTF8
 * naming the byte offset), lowercased by utf8_lower if m->cfg.lowercase, then looked up
 * (CORE_EVOCAB naming the character and its position in characters, unless skip_unknown, which
 * drops it). On success *ids is malloc'ed (caller frees; may be NULL when *n_ids is 0). */
int sample_encode_text(int **ids, size_t *n_ids, const model *m, const char *text, size_t len,
                       int skip_unknown, char *err, size_t errlen);

/* Generates req->length characters after req->seed_text: one genstream (genstream.h) stepped
 * alone, the same code and so the same bits as a stream in the server's batches. The seed is
 * encoded as sample_encode_text. An empty seed (or one whose characters were all skipped) starts
 * from the zero state, whose output is the fc layer at h = 0, so the first character is drawn
 * from softmax(fc_b). Generation stops early when the generated text ends with one of req->stop
 * (the longest matching one is cut off), or on cancellation. With emit, text is streamed as soon
 * as it cannot be the start of a stop string; the emitted chunks concatenate to res->text unless
 * emit itself asked to stop. Cancellation is not an error: it returns 0 with finish_reason
 * SAMPLE_FINISH_CANCELLED and the text made so far.
 * Errors: those of sample_request_check (CORE_ERANGE, CORE_EINVAL, CORE_EUTF8, CORE_EVOCAB; the
 * message names the field), CORE_ENOMEM. res is written only on success; free it with
 * sample_result_deinit. m is only read (thread-safe). */
int sample_generate(sample_result *res, const model *m, const sample_request *req, char *err,
                    size_t errlen);

/* Frees res->text and zeroes res; safe on a zeroed result. */
void sample_result_deinit(sample_result *res);

#endif
