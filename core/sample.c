/* sample: temperature, top-k and nucleus sampling, and seeded generation in two modes (stateful
 * and the book's re-read window), with stop strings, streaming and cancellation. */
#include "sample.h"

#include "err.h"
#include "genstream.h"
#include "infer.h"
#include "utf8.h"
#include "vocab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// one character

void sample_reweight(double *q, const double *logp, int n, double T)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logp[i] > logp[best])
            best = i;
    double mx = logp[best];
    if (T == 0.0) {
        for (int i = 0; i < n; i++)
            q[i] = 0.0;
        q[best] = 1.0;
        return;
    }
    /* p^(1/T) / sum = exp((log p - max) / T) / sum: every term is <= 1 and the max is exactly 1,
     * so the sum is in [1, n] and nothing overflows; tiny tails stay as (double) denormals. */
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        q[i] = exp((logp[i] - mx) / T);
        sum += q[i];
    }
    for (int i = 0; i < n; i++)
        q[i] /= sum;
}

int sample_options_check(const sample_options *o, char *err, size_t errlen)
{
    if (!isfinite(o->temperature) || o->temperature < 0.0)
        return core_errf(err, errlen, CORE_ERANGE, "temperature must be finite and >= 0, got %g",
                         o->temperature);
    if (o->top_k < 0)
        return core_errf(err, errlen, CORE_ERANGE, "top_k must be >= 0, got %d", o->top_k);
    if (!(o->top_p > 0.0 && o->top_p <= 1.0)) /* also rejects NaN */
        return core_errf(err, errlen, CORE_ERANGE, "top_p must be in (0, 1], got %g", o->top_p);
    return 0;
}

int sampler_init(sampler *s, int V, const sample_options *opt, uint64_t seed, char *err,
                 size_t errlen)
{
    int rc = sample_options_check(opt, err, errlen);
    if (rc)
        return rc;
    if (V < 1)
        return core_errf(err, errlen, CORE_ERANGE, "vocabulary size must be >= 1, got %d", V);
    sample_cand *cand = malloc((size_t)V * sizeof *cand);
    if (!cand)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory for a %d-character sampler", V);
    memset(s, 0, sizeof *s);
    s->opt = *opt;
    s->V = V;
    s->cand = cand;
    rng_seed(&s->r, seed);
    return 0;
}

void sampler_deinit(sampler *s)
{
    free(s->cand);
    memset(s, 0, sizeof *s);
}

/* The total order of "more probable": higher p, ties to the lower index. Being total makes the
 * kept set and the draw order independent of how the selection or sort moved things around. */
static int cand_better(const sample_cand *a, const sample_cand *b)
{
    return a->p > b->p || (a->p == b->p && a->id < b->id);
}

static int cand_cmp_desc(const void *pa, const void *pb)
{
    const sample_cand *a = pa, *b = pb;
    return cand_better(a, b) ? -1 : (cand_better(b, a) ? 1 : 0);
}

/* Sift-down for a heap whose root is the least probable entry. */
static void heap_sift(sample_cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_better(&h[w], &h[l]))
            w = l;
        if (r < n && cand_better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        sample_cand t = h[i];
        h[i] = h[w], h[w] = t;
        i = w;
    }
}

/* Moves the k most probable of c[0..V) to c[0..k), most probable first: a size-k heap over one
 * pass, then heapsort of the k, O(V log k) instead of sorting all V. 0 < k < V. */
static void select_top_k(sample_cand *c, int V, int k)
{
    for (int i = k / 2 - 1; i >= 0; i--)
        heap_sift(c, k, i);
    for (int i = k; i < V; i++) {
        if (cand_better(&c[i], &c[0])) {
            c[0] = c[i];
            heap_sift(c, k, 0);
        }
    }
    for (int n = k - 1; n > 0; n--) { /* the least probable goes last */
        sample_cand t = c[0];
        c[0] = c[n], c[n] = t;
        heap_sift(c, n, 0);
    }
}

/* Moves to the front every entry that can be in the top_p nucleus and returns their count.
 * Entries below cutoff = (1 - top_p) / (V - 1) of the mass are at most V - 1 (the max is always
 * kept) and so hold less than 1 - top_p together: the nucleus lies among the others (llama2.c's
 * trick), and only those need sorting. */
static int nucleus_candidates(sample_cand *c, int V, double total, double top_p, int best)
{
    if (V == 1)
        return 1;
    double cutoff = (1.0 - top_p) / (V - 1) * total;
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (c[i].p >= cutoff || c[i].id == best) {
            sample_cand t = c[n];
            c[n++] = c[i], c[i] = t;
        }
    }
    return n;
}

int sample_filter(sampler *s, const float *logits)
{
    int V = s->V;
    sample_cand *c = s->cand;
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best])
            best = i;
    if (s->opt.temperature == 0.0) {
        c[0] = (sample_cand){1.0, best};
        return s->n_cand = 1;
    }

    /* Temperature, as sample_reweight, left unnormalised: e_i = exp((z_i - z_max) / T) <= 1. */
    double zmax = logits[best], T = s->opt.temperature, total = 0.0;
    for (int i = 0; i < V; i++) {
        double e = exp(((double)logits[i] - zmax) / T);
        c[i] = (sample_cand){e, i};
        total += e;
    }

    int n = V, k = s->opt.top_k, use_p = s->opt.top_p < 1.0;
    if (k > 0 && k < V) {
        select_top_k(c, V, k);
        n = k;
        total = 0.0; /* top_p then applies to the top-k distribution, renormalised */
        for (int i = 0; i < n; i++)
            total += c[i].p;
    } else if (use_p) {
        n = nucleus_candidates(c, V, total, s->opt.top_p, best);
        qsort(c, (size_t)n, sizeof *c, cand_cmp_desc);
    }
    if (use_p) {
        /* Smallest most-probable prefix reaching top_p of the mass. If rounding keeps the sum just
         * short of it, all n candidates stay, which is still deterministic. */
        double want = s->opt.top_p * total, acc = 0.0;
        for (int i = 0; i < n; i++) {
            acc += c[i].p;
            if (acc >= want) {
                n = i + 1;
                break;
            }
        }
    }

    double kept = 0.0;
    for (int i = 0; i < n; i++)
        kept += c[i].p;
    for (int i = 0; i < n; i++)
        c[i].p /= kept;
    return s->n_cand = n;
}

int sample_next(sampler *s, const float *logits)
{
    int n = sample_filter(s, logits);
    const sample_cand *c = s->cand;
    if (s->opt.temperature == 0.0)
        return c[0].id;
    double u = rng_uniform(&s->r), acc = 0.0;
    int last = c[0].id;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (c[i].p > 0.0)
            last = c[i].id;
        if (u < acc)
            return c[i].id;
    }
    return last; /* the renormalised sum fell a rounding error short of u */
}

// ----------------------------------------------------------------------------
// generation

const char *const sample_mode_names[] = {"auto", "stateful", "window", NULL};

const char *sample_mode_name(int mode)
{
    return mode >= SAMPLE_MODE_AUTO && mode <= SAMPLE_MODE_WINDOW ? sample_mode_names[mode]
                                                                   : "auto";
}

int sample_mode_parse(const char *name)
{
    for (int i = 0; sample_mode_names[i]; i++)
        if (strcmp(name, sample_mode_names[i]) == 0)
            return i;
    return -1;
}

const char *sample_finish_name(int finish)
{
    static const char *const names[] = {"length", "stop", "cancelled"};
    return finish >= 0 && finish <= SAMPLE_FINISH_CANCELLED ? names[finish] : "length";
}

int sample_encode_text(int **ids, size_t *n_ids, const model *m, const char *text, size_t len,
                       int skip_unknown, char *err, size_t errlen)
{
    uint32_t *cps;
    size_t n;
    int rc = utf8_decode(&cps, &n, NULL, len ? text : "", len, err, errlen);
    if (rc)
        return rc;
    if (m->cfg.lowercase)
        for (size_t i = 0; i < n; i++)
            cps[i] = utf8_lower(cps[i]);
    int *out = malloc((n ? n : 1) * sizeof *out);
    if (!out) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory encoding %zu characters", n);
        goto cleanup;
    }
    size_t k;
    rc = vocab_encode(out, &k, NULL, &m->voc, cps, n, skip_unknown, err, errlen);
    if (rc) {
        free(out);
        goto cleanup;
    }
    *ids = out;
    *n_ids = k;
cleanup:
    free(cps);
    return rc;
}

static int cancelled(const sample_request *req) { return req->cancel && *req->cancel; }

int sample_generate(sample_result *res, const model *m, const sample_request *req, char *err,
                    size_t errlen)
{
    genstream g;
    int rc = genstream_init(&g, m, req, err, errlen);
    if (rc)
        return rc;
    infer_batch *b = NULL;
    if (infer_batch_open(&b, m, 1)) {
        genstream_deinit(&g);
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory for the inference state");
    }
    size_t emitted = 0;
    int emit_failed = 0;
    while (!genstream_done(&g)) {
        if (cancelled(req)) {
            genstream_cancel(&g);
        } else if (genstream_ready(&g)) {
            if (genstream_predict(&g)) {
                rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory after %zu bytes of text",
                               g.len);
                goto cleanup;
            }
        } else {
            infer_row row = {&g.st, 0, 0};
            row.id = genstream_input(&g, &row.want_logits);
            infer_batch_step(b, &row, 1, NULL);
            genstream_stepped(&g);
        }
        if (req->emit && !emit_failed && g.safe > emitted) {
            emit_failed = req->emit(req->emit_ctx, g.text + emitted, g.safe - emitted) != 0;
            emitted = g.safe;
            if (emit_failed)
                genstream_cancel(&g);
        }
    }
    g.text[g.len] = '\0'; /* text_reserve kept room for it */
    res->text = g.text;
    res->text_len = g.len;
    res->seed_chars = g.n_seed;
    res->generated_chars = g.chars;
    res->finish_reason = g.finish;
    res->mode = g.mode;
    g.text = NULL;
    rc = 0;
cleanup:
    infer_batch_free(b);
    genstream_deinit(&g);
    return rc;
}

void sample_result_deinit(sample_result *res)
{
    free(res->text);
    memset(res, 0, sizeof *res);
}
