/* budget: measuring candidate sizes, choosing one, and the budget's learning-rate schedule. */
#include "budget.h"

#include "dpnet.h"
#include "err.h"
#include "model.h"
#include "optim.h"
#include "trainopts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The sizes a budget chooses from, tried from the fewest parameters up (for this vocabulary):
 * one layer while the budget is small, then two and three, wider. */
static const struct {
    int L, H;
} candidates[] = {{1, 64},  {1, 128}, {2, 128}, {1, 192}, {1, 256}, {2, 192}, {2, 256},
                  {2, 384}, {2, 512}, {3, 512}, {3, 768}, {3, 1024}};
#define N_CANDIDATES (int)(sizeof candidates / sizeof *candidates)

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Parameters that learn from every character: all but the first layer's input rows, which a
 * character only touches one of (as scaling studies leave out embeddings). */
static double learning_params(int V, int H, int L)
{
    return (double)model_param_count(V, H, L) - 4.0 * H * V;
}

/* Dropout's reach decides the allowance (budget.h): measured on Chinese in 300 s, 1 x 256 reached
 * 4.046 nats, 1 x 128 4.062, and 2 x 128 with dropout 0.33 only 4.188. */
double budget_chars_needed(int V, int H, int L, int dropout_allowed, double pass_chars)
{
    double params = learning_params(V, H, L), output = (double)H * V + V;
    double need = BUDGET_CHARS_PER_PARAM * params;
    int output_heavy = output >= params - output;
    if (!output_heavy && L > 1 && dropout_allowed)
        need = fmin(need, fmax(BUDGET_DROPOUT_PASSES * pass_chars,
                               BUDGET_DROPOUT_CHARS_PER_PARAM * params));
    if (output_heavy && L == 1)
        need = fmin(need, BUDGET_OUTPUT_CHARS_PER_PARAM * params);
    return need;
}

/* Characters a second this machine trains cfg at batch B on the corpus: a few real training
 * steps (forward, backward, clipping, the optimizer) after one to warm up, for at most about
 * `limit` seconds. */
static int measure(double *chars_per_sec, const model_config *cfg, const corpus *c, int B,
                   int optimizer, int threads, double limit, char *err, size_t errlen)
{
    int seq = cfg->regime == REGIME_SEQUENCE;
    int T = seq ? cfg->seq_len : cfg->maxlen;
    model *m = NULL;
    dpnet d;
    optim opt;
    int rc = model_new(&m, cfg, &c->voc, err, errlen);
    if (rc)
        return rc;
    model_init_weights(m, 1);
    float *grads = calloc(m->n_params, sizeof *grads);
    int *ids = malloc((size_t)T * B * sizeof *ids), *targets = malloc((size_t)T * B * sizeof *ids);
    int have_net = 0, have_opt = 0;
    if (!grads || !ids || !targets)
        goto nomem;
    if (dpnet_init(&d, threads, m->V, cfg->H, cfg->L, B, T, seq, cfg->dropout, m->n_params))
        goto nomem;
    have_net = 1;
    if (optim_init(&opt, optimizer, m->n_params))
        goto nomem;
    have_opt = 1;
    /* B streams spread over the training text (the content changes nothing but realism) */
    size_t n = c->n_train > 1 ? c->n_train - 1 : 1, stride = n / (size_t)B + 1;
    for (int j = 0; j < B; j++)
        for (int t = 0; t < T; t++) {
            size_t at = ((size_t)j * stride + (size_t)t) % n;
            ids[t * B + j] = c->ids[at];
            if (seq || t == T - 1)
                targets[seq ? t * B + j : j] = c->ids[at + 1];
        }
    /* The fastest step, not the mean: on a shared machine a step now and then waits for the
     * CPU, and a mean over this few steps swung by a quarter from run to run (Nietzsche, 120 s,
     * chose 2 x 128, 1 x 256 and 2 x 192 in three runs), while the choice wants this machine's
     * speed. The schedule follows the speed the run then measures. */
    double start = 0, fastest = INFINITY;
    for (int k = 0;; k++) {
        double step_start = seconds_now();
        if (k == 1)
            start = step_start;
        dpnet_zero_state(&d);
        dpnet_step(&d, &m->p, ids, targets, B, T, cfg->dropout > 0, (uint64_t)k, grads);
        optim_clip(grads, m->n_params, 5.0);
        optim_step(&opt, m->params, grads, 1e-4f);
        double now = seconds_now();
        if (k >= 1 && now - step_start < fastest)
            fastest = now - step_start;
        if (k >= 1 && (k >= 32 || now - start > limit || (k >= 2 && now - start > limit / 4)))
            break;
    }
    *chars_per_sec = (double)B * T / fastest;
    goto done;
nomem:
    rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory measuring a model size");
done:
    if (have_opt)
        optim_deinit(&opt);
    if (have_net)
        dpnet_deinit(&d);
    free(grads);
    free(ids);
    free(targets);
    model_free(m);
    return rc;
}

static int given(const train_options *o, int id) { return (o->given_mask >> id) & 1u; }

/* Candidates in order of learning parameters for this vocabulary (the output layer, V x H,
 * weighs more as the vocabulary grows). */
static void order_candidates(int *order, int V)
{
    for (int i = 0; i < N_CANDIDATES; i++) {
        int j = i;
        double p = learning_params(V, candidates[i].H, candidates[i].L);
        for (; j > 0 && learning_params(V, candidates[order[j - 1]].H,
                                        candidates[order[j - 1]].L) > p; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
}

/* The batch: the largest power of two from BUDGET_MIN_BATCH to 64 that leaves the budget
 * BUDGET_MIN_STEPS steps of T characters, and streams long enough for the text. The budget is
 * `chars` at BUDGET_MIN_BATCH; when time limits it (not the text), a batch k times larger trains
 * about k^0.4 times faster (1 x 192 on Nietzsche here: 84k, 110k and 154k characters/s at 16, 32
 * and 64), but takes k times the characters a step. */
static int choose_batch(double chars, int by_time, int T, size_t n_train)
{
    int B = 64;
    while (B > BUDGET_MIN_BATCH &&
           chars * (by_time ? pow((double)B / BUDGET_MIN_BATCH, 0.4) : 1) / ((double)B * T) <
               BUDGET_MIN_STEPS)
        B /= 2;
    while (B > 1 && (n_train - 1) / (size_t)B < (size_t)T * 2)
        B /= 2;
    return B;
}

int budget_plan(train_plan *p, train_options *o, const corpus *c, int threads, char *err,
                size_t errlen)
{
    memset(p, 0, sizeof *p);
    double train_seconds = o->max_seconds * BUDGET_TRAIN_SHARE;
    /* measuring takes at most about 3% of the budget, spread over the sizes it tries */
    double limit = fmax(0.05, o->max_seconds * 0.006);
    int V = c->voc.V, seq = o->cfg.regime == REGIME_SEQUENCE;
    /* characters through the network in one pass over the text (a window regime's windows
     * overlap: maxlen characters every step), and what the text takes before more passes only
     * overfit */
    double pass_chars = fmax(1.0, seq ? (double)c->n_train
                                      : (double)c->n_train / o->cfg.step * o->cfg.maxlen);
    double text_chars = BUDGET_MAX_PASSES * pass_chars;
    int rc;
    if (o->auto_size) {
        if (seq && !given(o, TOPT_SEQ_LEN))
            o->cfg.seq_len = BUDGET_SEQ_LEN;
        int T = seq ? o->cfg.seq_len : o->cfg.maxlen;
        int B = given(o, TOPT_BATCH) ? o->batch : choose_batch(0, 1, T, c->n_train);
        int order[N_CANDIDATES], chosen = -1;
        double chosen_rate = 0;
        int dropout_allowed = !(given(o, TOPT_DROPOUT) && o->cfg.dropout == 0.0f);
        order_candidates(order, V);
        for (int k = 0; k < N_CANDIDATES; k++) {
            model_config cfg = o->cfg;
            cfg.L = candidates[order[k]].L;
            cfg.H = candidates[order[k]].H;
            cfg.dropout = cfg.L > 1 && given(o, TOPT_DROPOUT) ? o->cfg.dropout : 0.0f;
            double params = learning_params(V, cfg.H, cfg.L);
            /* a size far beyond the last one's reach is not worth measuring (a deeper one
             * further on may still qualify by the passes) */
            if (chosen >= 0) {
                double guess = chosen_rate *
                               learning_params(V, candidates[chosen].H, candidates[chosen].L) /
                               params * train_seconds;
                if (fmin(guess, text_chars) <
                    budget_chars_needed(V, cfg.H, cfg.L, dropout_allowed, pass_chars) / 2)
                    continue;
            }
            double rate;
            rc = measure(&rate, &cfg, c, B, o->optimizer, threads, limit, err, errlen);
            if (rc)
                return rc;
            /* the smallest size is taken even when too big: nothing smaller to choose */
            if (fmin(rate * train_seconds, text_chars) >=
                    budget_chars_needed(V, cfg.H, cfg.L, dropout_allowed, pass_chars) ||
                chosen < 0)
                chosen = order[k], chosen_rate = rate;
        }
        o->cfg.L = candidates[chosen].L;
        o->cfg.H = candidates[chosen].H;
        double chars = chosen_rate * train_seconds;
        if (!given(o, TOPT_BATCH))
            o->batch = choose_batch(fmin(chars, text_chars), chars < text_chars, T, c->n_train);
        /* short budgets learn most with a high rate, which the warm-up makes safe; models
         * wider than those measured want a lower one */
        if (!given(o, TOPT_LR) && !given(o, TOPT_OPTIMIZER) && o->optimizer == OPTIM_ADAM)
            o->lr = (float)(BUDGET_LR_ADAM * fmin(1.0, sqrt(256.0 / o->cfg.H)));
        double passes = fmin(chars, text_chars) / pass_chars;
        /* between layers only: a few passes need none; more as passes repeat the text and as
         * the characters per parameter fall below BUDGET_CHARS_PER_PARAM */
        double per_param = fmin(chars, text_chars) / learning_params(V, o->cfg.H, o->cfg.L);
        double short_of = fmax(1.0, BUDGET_CHARS_PER_PARAM / per_param);
        if (!given(o, TOPT_DROPOUT))
            o->cfg.dropout = o->cfg.L == 1 || passes <= 2
                                 ? 0.0f
                                 : (float)fmin(0.4, 0.05 * log2(passes) + 0.1 * log2(short_of));
        p->chose_size = 1;
    }
    /* the speed of what will be trained, at its batch, for the schedule */
    rc = measure(&p->chars_per_sec, &o->cfg, c, o->batch, o->optimizer, threads, limit, err,
                 errlen);
    if (rc)
        return rc;
    int T = seq ? o->cfg.seq_len : o->cfg.maxlen;
    p->cfg = o->cfg;
    p->batch = o->batch;
    p->lr = o->lr;
    p->budget_chars = p->chars_per_sec * train_seconds;
    if (p->chose_size && p->budget_chars > text_chars) {
        p->budget_chars = text_chars;
        p->ends_early = 1;
    }
    p->passes = p->budget_chars / pass_chars;
    p->steps = (long long)(p->budget_chars / ((double)o->batch * T)) + 1;
    double params = learning_params(V, o->cfg.H, o->cfg.L);
    char early[160] = "";
    if (p->ends_early)
        snprintf(early, sizeof early, " (the text is learned in %.0f passes, after which more "
                 "would only overfit: the run ends then, in about %.0f s)", BUDGET_MAX_PASSES,
                 p->budget_chars / p->chars_per_sec / BUDGET_TRAIN_SHARE);
    if (p->chose_size)
        snprintf(p->why, sizeof p->why,
                 "%.0f s at %.0f characters/s measured here train %d x %d (%.0fk parameters) on "
                 "%.1fM characters, %.1f passes over the text, %.1f per parameter%s: the largest "
                 "size with %.0f characters per parameter, or a deeper one with dropout at %.0f "
                 "passes over the text and %.0f per parameter (where the output layer holds most "
                 "parameters: one layer at %.0f); batch %d, seq_len %d, "
                 "dropout %.2g; lr %.3g warms up, then decays to %.2g of it at the end",
                 o->max_seconds, p->chars_per_sec, o->cfg.L, o->cfg.H, params / 1e3,
                 p->budget_chars / 1e6, p->passes, p->budget_chars / params, early,
                 BUDGET_CHARS_PER_PARAM, BUDGET_DROPOUT_PASSES, BUDGET_DROPOUT_CHARS_PER_PARAM,
                 BUDGET_OUTPUT_CHARS_PER_PARAM, o->batch, o->cfg.seq_len, o->cfg.dropout, o->lr,
                 BUDGET_LR_FLOOR);
    else
        snprintf(p->why, sizeof p->why,
                 "the size was given; %.0f s at %.0f characters/s measured here is %.1fM "
                 "characters (%.1f passes, %.0f per parameter)%s",
                 o->max_seconds, p->chars_per_sec, p->budget_chars / 1e6, p->passes,
                 p->budget_chars / params,
                 o->budget_schedule ? "; lr warms up, then decays to the deadline" : "");
    return 0;
}

float budget_lr(float lr, long long step, long long plan_steps)
{
    long long warm = plan_steps / 50 < BUDGET_WARMUP_MAX ? plan_steps / 50 : BUDGET_WARMUP_MAX;
    if (step < warm)
        return lr * (float)(step + 1) / (float)warm;
    double done = plan_steps > warm ? (double)(step - warm) / (double)(plan_steps - warm) : 1;
    if (done > 1)
        done = 1;
    return lr * (float)(BUDGET_LR_FLOOR + (1 - BUDGET_LR_FLOOR) * 0.5 * (1 + cos(M_PI * done)));
}

void budget_plan_json(char *buf, size_t n, const train_plan *p)
{
    /* why is our own text: no quotes, backslashes or control characters to escape */
    snprintf(buf, n,
             "{\"chose_size\":%s,\"regime\":\"%s\",\"layers\":%d,\"hidden\":%d,\"batch\":%d,"
             "\"seq_len\":%d,\"dropout\":%.4g,\"lr\":%.6g,\"lr_floor\":%g,"
             "\"chars_per_sec\":%.0f,\"budget_chars\":%.0f,\"passes\":%.3g,\"steps\":%lld,"
             "\"ends_early\":%s,\"why\":\"%s\"}",
             p->chose_size ? "true" : "false", model_regime_name(p->cfg.regime), p->cfg.L,
             p->cfg.H, p->batch, p->cfg.seq_len, p->cfg.dropout, p->lr, BUDGET_LR_FLOOR,
             p->chars_per_sec, p->budget_chars, p->passes, p->steps,
             p->ends_early ? "true" : "false", p->why);
}
