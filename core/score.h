/* score: how probable a text is under a model: per-character natural-log probabilities, read
 * statefully from the zero state over the whole text, plus the most probable alternatives at each
 * position (for OpenAI-style logprobs). Log-softmax is computed in double, max subtracted. */
#ifndef CORE_SCORE_H
#define CORE_SCORE_H

#include "model.h"

#include <stddef.h>

#define SCORE_MAX_TOP 20 /* alternatives per position; OpenAI allows 5 */

/* A character (vocabulary index) and its log-probability. */
typedef struct score_alt {
    int id;
    double logprob;
} score_alt;

typedef struct score_result {
    size_t n;         /* characters read (after dropping unknown ones under skip_unknown) */
    int *ids;         /* (n) vocabulary index of each character */
    double *logprobs; /* (n) ln P(char i | chars 0..i-1); logprobs[0] is NAN: the first character
                         has no prediction */
    int top_n;        /* alternatives per position */
    score_alt *top;   /* (n, top_n), most probable first, ties to the lower index; row 0 is
                         {-1, NAN}; NULL when top_n is 0 */
    double total;     /* sum of logprobs[1..n); 0 when n < 2 */
} score_result;

/* Scores len bytes of UTF-8 text. The text is read as sample_encode_text does (strict UTF-8,
 * lowercased if the model was trained lowercased, unknown characters an error unless
 * skip_unknown): feed char 0 from the zero state, take char 1's log-probability from the
 * resulting logits, feed char 1, and so on. top_n in 0..SCORE_MAX_TOP (and at most V) asks for
 * that many alternatives at positions 1..n-1. An empty text scores as n = 0.
 * Errors: CORE_ERANGE (top_n), CORE_EUTF8, CORE_EVOCAB (with a message naming the offset or the
 * character and its position), CORE_ENOMEM. res is written only on success; free it with
 * score_result_deinit. m is only read (thread-safe). */
int score_text(score_result *res, const model *m, const char *text, size_t len, int top_n,
               int skip_unknown, char *err, size_t errlen);

/* Frees what res owns and zeroes it; safe on a zeroed result. */
void score_result_deinit(score_result *res);

/* Mean log-probability per predicted character, total / (n - 1), in nats; NAN when n < 2. */
double score_mean_nats(const score_result *res);

/* logp = log_softmax(logits) over V entries, in double: z - max - log(sum exp(z - max)). */
void score_log_softmax(double *logp, const float *logits, int V);

/* The n most probable entries of logp (V), most probable first, ties to the lower index.
 * 0 <= n <= V. */
void score_top(score_alt *top, int n, const double *logp, int V);

#endif
