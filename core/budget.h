/* budget: what a time budget trains. A short budget needs a model small enough to learn in it; a
 * long one on a small text needs regularisation. With max_seconds and no model size, train_run
 * asks budget_plan, which measures how many characters a second this machine trains each
 * candidate size on the corpus, and takes the largest that the budget can feed
 * BUDGET_CHARS_PER_PARAM characters per parameter, or fewer: where the recurrent layers hold
 * most of the parameters, a deeper model with dropout at BUDGET_DROPOUT_PASSES passes over the
 * text and BUDGET_DROPOUT_CHARS_PER_PARAM; where the output layer does (a large vocabulary), a
 * single layer at BUDGET_OUTPUT_CHARS_PER_PARAM. It then
 * sets what the user left unset: batch (so the budget holds at least BUDGET_MIN_STEPS optimizer
 * steps), seq_len, the peak learning rate, and dropout (from the passes over the text the budget
 * will make and the characters per parameter). The constants come from bench/budget.sh's runs
 * (100 kB of Shakespeare in 40 and 120 s, Nietzsche in 120 and 600 s, 1 MB of Chinese in 300 s):
 * there, more and faster steps (batch 16, lr 0.008) beat larger batches and char-rnn's 0.002,
 * and 100 kB stopped improving after about 25 passes without dropout. With max_seconds and
 * neither epochs nor lr_decay, the learning rate follows budget_lr: a linear warm-up, then a
 * cosine down to BUDGET_LR_FLOOR of its peak at the step the budget is expected to end, an
 * estimate train_run refines as it measures its own speed. A short text with a long budget is
 * learned in BUDGET_MAX_PASSES passes: the size is chosen for those, and the run ends after
 * them. Options the user gave are never changed. */
#ifndef CORE_BUDGET_H
#define CORE_BUDGET_H

#include "corpus.h"
#include "train.h"

#include <stddef.h>

#define BUDGET_CHARS_PER_PARAM 20.0 /* training characters per parameter the size is chosen for */
#define BUDGET_MIN_STEPS 10000      /* optimizer steps a budget should hold: batches shrink */
#define BUDGET_MIN_BATCH 16         /* ... down to this */
#define BUDGET_LR_ADAM 0.008        /* Adam's peak rate up to 256 units, less for wider */
#define BUDGET_SEQ_LEN 64           /* truncated-BPTT length when the size is chosen */
#define BUDGET_LR_FLOOR 0.1         /* the schedule ends at this fraction of lr */
#define BUDGET_WARMUP_MAX 100       /* warm-up steps at most (a fiftieth of the plan below that) */
#define BUDGET_MAX_PASSES 25.0      /* passes over the text a budget plans at most: beyond, a
                                       model without dropout only overfits; the run ends early */
#define BUDGET_DROPOUT_PASSES 8.0   /* a model of 2+ layers with dropout learns from passing over
                                       the text this often ... */
#define BUDGET_DROPOUT_CHARS_PER_PARAM 4.0 /* ... and this many characters per parameter, fewer
                                       than BUDGET_CHARS_PER_PARAM (the bundled 2 x 384 model,
                                       dropout 0.4, was best on Nietzsche after 12 passes, 3.8) */
#define BUDGET_OUTPUT_CHARS_PER_PARAM 4.0 /* a single layer whose output layer holds most of
                                       its parameters (a large vocabulary) learns from this
                                       many (1 MB of Chinese in 300 s, budget.c) */
#define BUDGET_TRAIN_SHARE 0.92     /* of max_seconds planned for training steps; the rest for
                                       measuring, validation, samples and checkpoints */

/* The model the budget trains. With o->auto_size, chooses cfg (layers, hidden, dropout,
 * seq_len) and batch among those not in o->given_mask, writing them into o; in every case
 * measures the speed of o's model on the corpus and fills p (p->steps: the steps the schedule
 * starts from). threads as dpnet_init takes them. CORE_ENOMEM, or a model_new error. */
int budget_plan(train_plan *p, train_options *o, const corpus *c, int threads, char *err,
                size_t errlen);

/* The characters a size (L x H, vocabulary V) needs to qualify: BUDGET_CHARS_PER_PARAM per
 * parameter, or fewer, by where the parameters are.
 * - Mostly in the recurrent layers (a small vocabulary): a deeper model, which dropout between
 *   its layers keeps from memorising the text, needs BUDGET_DROPOUT_PASSES passes over the text
 *   (pass_chars each) and BUDGET_DROPOUT_CHARS_PER_PARAM per parameter, unless dropout is
 *   ruled out (dropout_allowed 0).
 * - Mostly in the output layer (a large vocabulary), which dropout does not reach: a single
 *   layer needs BUDGET_OUTPUT_CHARS_PER_PARAM per parameter, and a deeper one no fewer than
 *   BUDGET_CHARS_PER_PARAM. */
double budget_chars_needed(int V, int H, int L, int dropout_allowed, double pass_chars);

/* The learning rate of optimizer step `step` (0-based) of a run planned for plan_steps. */
float budget_lr(float lr, long long step, long long plan_steps);

/* The plan as one JSON object (what --json, jobs and the checkpoint's "plan" show), in a buffer
 * of BUDGET_PLAN_JSON_MAX bytes: the fields and the plan's why, escaped. */
#define BUDGET_PLAN_JSON_MAX 1536
void budget_plan_json(char *buf, size_t n, const train_plan *p);

#endif
