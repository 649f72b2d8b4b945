/* genstream: one generation as a state machine that a caller steps one character at a time, so
 * that a scheduler can advance many of them with one batched step (infer_batch_step) and a lone
 * caller (sample_generate) with a batch of one, through the same code.
 *
 * Each round the caller asks the stream what it needs:
 *   genstream_ready(g)  1: its logits hold a prediction: call genstream_predict (no step)
 *   genstream_input(g)  else: the character to feed in this step, and whether it wants logits;
 *                       after the step, call genstream_stepped
 * until genstream_done(g). A sequence-regime stream (stateful) reads its seed once, then feeds
 * back every character it draws; a window-regime stream re-reads its last maxlen characters from
 * the zero state before each one (Chollet's generation loop), one character per step.
 * What it produces accumulates in g->text; the first g->safe bytes are final (whole characters,
 * never part of a stop string that may still complete), so a caller streams text[delivered..safe).
 * Not thread-safe: one thread steps a stream at a time. */
#ifndef CORE_GENSTREAM_H
#define CORE_GENSTREAM_H

#include "infer.h"
#include "sample.h"
#include "score.h"

#include <stddef.h>

typedef struct genstream {
    const model *m;
    infer_state st;
    sampler smp;
    int mode;             /* SAMPLE_MODE_STATEFUL or SAMPLE_MODE_WINDOW */
    int length;           /* characters to generate */
    const char *const *stop; /* borrowed: the request's, valid for the stream's life */
    size_t *stop_len;
    int n_stop;

    int *seed;            /* (n_seed) the seed text's vocabulary indices */
    size_t n_seed, fed;   /* reading the seed: characters fed so far */
    int scoring_seed;     /* reading the seed statefully with a logprob for every character */
    int *ring;            /* window mode: the last maxlen characters, character i at i % maxlen */
    size_t hist, replay;  /* window mode: characters so far; the next one to re-read */
    int next;             /* stateful: the drawn character to feed next, -1 none */
    int ready;            /* logits hold the prediction of the next character */

    char *text;           /* the continuation so far (not NUL-terminated until done) */
    size_t len, cap, safe;
    size_t chars;         /* characters generated (those in text after a stop cut) */
    int finish;           /* -1 while running, then enum sample_finish */

    /* logprobs (req->want_logprobs): per character of [seed if scored] + continuation */
    int top_n;
    size_t n_lp, cap_lp;
    int *lp_id;           /* (n_lp) the character */
    double *lp;           /* (n_lp) ln P(char | all before); NAN: the text's first character */
    score_alt *lp_top;    /* (n_lp, top_n) most probable alternatives; {-1, NAN} rows for NAN */
    double *logp;         /* (V) scratch */
} genstream;

/* Validates req against m exactly as genstream_init will read it (temperature, top_k, top_p,
 * length, mode, stop strings, top_logprobs, the seed text's UTF-8 and vocabulary), without
 * allocating a stream: every generation route calls it before anything starts. On failure *field
 * (if not NULL) names the sample_request field at fault: "temperature", "top_k", "top_p",
 * "length", "mode", "stop", "top_logprobs" or "seed_text"; the code is CORE_ERANGE,
 * CORE_EINVAL, CORE_EUTF8, CORE_EVOCAB or CORE_ENOMEM, the message in err. */
int sample_request_check(const sample_request *req, const model *m, const char **field, char *err,
                         size_t errlen);

/* A stream for req on m (checked as sample_request_check). It borrows m and req->stop (they
 * must outlive it); seed_text is encoded and copied. g is untouched on failure. */
int genstream_init(genstream *g, const model *m, const sample_request *req, char *err,
                   size_t errlen);
/* Frees what g owns; safe on a zeroed stream. */
void genstream_deinit(genstream *g);

/* A copy of src (ready, before its first draw: the seed read once for n choices) whose draws
 * come from a fresh RNG seeded with seed. CORE_ENOMEM; dst untouched on failure. */
int genstream_fork(genstream *dst, const genstream *src, uint64_t seed);

static inline int genstream_done(const genstream *g) { return g->finish >= 0; }
static inline int genstream_ready(const genstream *g) { return g->ready && g->finish < 0; }

/* The character to feed in the next step (not ready, not done), and whether the step must
 * leave next-character logits in g->st.logits. */
int genstream_input(const genstream *g, int *want_logits);
/* The step that fed genstream_input's character has run. */
void genstream_stepped(genstream *g);
/* Acts on the prediction in g->st.logits (when ready): draws the next character, appends it,
 * records its logprob, ends the stream on a stop string or the length. CORE_ENOMEM (the
 * stream is then done, cancelled) when the text cannot grow. */
int genstream_predict(genstream *g);
/* Ends the stream now (a cancel, a timeout, a gone client): finish = SAMPLE_FINISH_CANCELLED,
 * and whatever was held back for a stop string is released (safe = len). */
void genstream_cancel(genstream *g);

#endif
