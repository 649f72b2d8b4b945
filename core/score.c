/* score: per-character log-probabilities of a text under a model, with top-n alternatives. */
#include "score.h"

#include "err.h"
#include "infer.h"
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void score_log_softmax(double *logp, const float *logits, int V)
{
    double mx = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > mx)
            mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < V; i++)
        sum += exp((double)logits[i] - mx); /* terms <= 1, the max exactly 1: sum in [1, V] */
    double lse = mx + log(sum);
    for (int i = 0; i < V; i++)
        logp[i] = (double)logits[i] - lse;
}

void score_top(score_alt *top, int n, const double *logp, int V)
{
    if (n <= 0)
        return;
    /* Insertion into a sorted list of n (n is small): strictly greater enters, so on ties the
     * earlier, lower index stays ahead. */
    int have = 0;
    for (int i = 0; i < V; i++) {
        if (have == n && !(logp[i] > top[n - 1].logprob))
            continue;
        int j = have < n ? have++ : n - 1;
        while (j > 0 && logp[i] > top[j - 1].logprob) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (score_alt){i, logp[i]};
    }
}

int score_text(score_result *res, const model *m, const char *text, size_t len, int top_n,
               int skip_unknown, char *err, size_t errlen)
{
    if (top_n < 0 || top_n > SCORE_MAX_TOP || top_n > m->V)
        return core_errf(err, errlen, CORE_ERANGE, "top_n must be 0..%d, got %d",
                         SCORE_MAX_TOP < m->V ? SCORE_MAX_TOP : m->V, top_n);
    int *ids = NULL;
    size_t n = 0;
    double *logprobs = NULL, *logp = NULL;
    score_alt *top = NULL;
    infer_state st = {0};
    infer_batch *b = NULL;

    char msg[256] = "";
    int rc = sample_encode_text(&ids, &n, m, text, len, skip_unknown, msg, sizeof msg);
    if (rc) {
        core_errf(err, errlen, rc, "text: %s", msg);
        return rc;
    }
    logprobs = malloc((n ? n : 1) * sizeof *logprobs);
    logp = malloc((size_t)m->V * sizeof *logp);
    if (top_n > 0)
        top = malloc((n ? n : 1) * (size_t)top_n * sizeof *top);
    if (!logprobs || !logp || (top_n > 0 && !top) || infer_state_init(&st, m) != 0 ||
        infer_batch_open(&b, m, 1) != 0) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory scoring %zu characters", n);
        goto cleanup;
    }

    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0) {
            logprobs[0] = NAN;
            for (int j = 0; j < top_n; j++)
                top[j] = (score_alt){-1, NAN};
        } else {
            /* st.logits holds the prediction after reading chars 0..i-1. */
            score_log_softmax(logp, st.logits, m->V);
            logprobs[i] = logp[ids[i]];
            total += logprobs[i];
            if (top_n > 0)
                score_top(top + i * (size_t)top_n, top_n, logp, m->V);
        }
        if (i + 1 < n)
            infer_step(b, &st, ids[i]);
    }

    res->n = n;
    res->ids = ids;
    res->logprobs = logprobs;
    res->top_n = top_n;
    res->top = top;
    res->total = total;
    ids = NULL, logprobs = NULL, top = NULL;

cleanup:
    infer_batch_free(b);
    infer_state_deinit(&st);
    free(top);
    free(logp);
    free(logprobs);
    free(ids);
    return rc;
}

void score_result_deinit(score_result *res)
{
    free(res->ids);
    free(res->logprobs);
    free(res->top);
    memset(res, 0, sizeof *res);
}

double score_mean_nats(const score_result *res)
{
    return res->n < 2 ? NAN : res->total / (double)(res->n - 1);
}
