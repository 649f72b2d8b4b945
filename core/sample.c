/* sample: temperature, top-k and nucleus sampling, and seeded generation in two modes (stateful
 * and the book's re-read window), with stop strings, streaming and cancellation. */
#include "sample.h"

#include "err.h"
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

static int check_request(const sample_request *req, char *err, size_t errlen)
{
    sample_options opt = {req->temperature, req->top_k, req->top_p};
    int rc = sample_options_check(&opt, err, errlen);
    if (rc)
        return rc;
    if (req->length < 0)
        return core_errf(err, errlen, CORE_ERANGE, "length must be >= 0, got %d", req->length);
    if (req->mode < SAMPLE_MODE_AUTO || req->mode > SAMPLE_MODE_WINDOW)
        return core_errf(err, errlen, CORE_ERANGE, "unknown mode %d", req->mode);
    if (req->n_stop < 0)
        return core_errf(err, errlen, CORE_ERANGE, "n_stop must be >= 0, got %d", req->n_stop);
    if (req->n_stop > 0 && !req->stop)
        return core_errf(err, errlen, CORE_EINVAL, "stop is NULL but n_stop is %d", req->n_stop);
    for (int i = 0; i < req->n_stop; i++) {
        const char *s = req->stop[i];
        if (!s || !*s)
            return core_errf(err, errlen, CORE_EINVAL, "stop[%d] is empty", i);
        /* A valid stop string starts on a character boundary, so matches and held-back tails
         * never split a character. */
        size_t n = strlen(s);
        for (size_t off = 0; off < n;) {
            uint32_t cp;
            size_t l = utf8_next(&cp, s + off, n - off);
            if (l == 0)
                return core_errf(err, errlen, CORE_EUTF8,
                                 "stop[%d]: invalid UTF-8 at byte offset %zu", i, off);
            off += l;
        }
    }
    return 0;
}

/* The zero state's output, fc applied to h = 0: just fc_b. */
static void zero_state_logits(infer_state *st, const model *m)
{
    memcpy(st->logits, m->p.fc_b, (size_t)m->V * sizeof *st->logits);
}

/* The book's step: from the zero state, read the last maxlen of the hist ids ever appended to
 * ring (a ring buffer of maxlen, id j at j % maxlen), leaving the next-character logits. */
static void window_logits(infer_state *st, const model *m, const int *ring, size_t hist,
                          size_t maxlen)
{
    infer_state_reset(st);
    if (hist == 0) {
        zero_state_logits(st, m);
        return;
    }
    for (size_t j = hist > maxlen ? hist - maxlen : 0; j < hist; j++)
        infer_step(st, m, ring[j % maxlen]);
}

/* Length of the longest stop string that text ends with, or 0. */
static size_t stop_match(const char *text, size_t len, const char *const *stop, const size_t *slen,
                         int n_stop)
{
    size_t best = 0;
    for (int i = 0; i < n_stop; i++)
        if (slen[i] > best && slen[i] <= len && memcmp(text + len - slen[i], stop[i], slen[i]) == 0)
            best = slen[i];
    return best;
}

/* Length of the longest tail of the n bytes at tail that is a proper prefix of a stop string:
 * the text that may still become a match and so must not be emitted yet. */
static size_t stop_holdback(const char *tail, size_t n, const char *const *stop, const size_t *slen,
                            int n_stop)
{
    size_t hold = 0;
    for (int i = 0; i < n_stop; i++)
        for (size_t j = slen[i] - 1 < n ? slen[i] - 1 : n; j > hold; j--)
            if (memcmp(tail + n - j, stop[i], j) == 0) {
                hold = j;
                break;
            }
    return hold;
}

static int text_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    char *p = realloc(*buf, cap2);
    if (!p)
        return CORE_ENOMEM;
    *buf = p;
    *cap = cap2;
    return 0;
}

static int cancelled(const sample_request *req) { return req->cancel && *req->cancel; }

int sample_generate(sample_result *res, const model *m, const sample_request *req, char *err,
                    size_t errlen)
{
    int rc = check_request(req, err, errlen);
    if (rc)
        return rc;
    int mode = req->mode;
    if (mode == SAMPLE_MODE_AUTO)
        mode = m->cfg.regime == REGIME_SEQUENCE ? SAMPLE_MODE_STATEFUL : SAMPLE_MODE_WINDOW;

    int *ids = NULL, *ring = NULL;
    size_t n_ids = 0, *slen = NULL, len = 0, cap = 0;
    char *text = NULL;
    infer_state st = {0};
    sampler smp = {0};

    char msg[256] = "";
    rc = sample_encode_text(&ids, &n_ids, m, req->seed_text, req->seed_len, req->skip_unknown, msg,
                            sizeof msg);
    if (rc) {
        core_errf(err, errlen, rc, "seed text: %s", msg);
        goto cleanup;
    }
    sample_options opt = {req->temperature, req->top_k, req->top_p};
    rc = sampler_init(&smp, m->V, &opt, req->seed, err, errlen);
    if (rc)
        goto cleanup;
    rc = infer_state_init(&st, m);
    if (rc) {
        core_errf(err, errlen, rc, "out of memory for the inference state");
        goto cleanup;
    }
    size_t maxlen = (size_t)m->cfg.maxlen;
    slen = malloc((size_t)req->n_stop * sizeof *slen + 1);
    ring = mode == SAMPLE_MODE_WINDOW ? malloc(maxlen * sizeof *ring) : NULL;
    /* Sized for ASCII output; grows by doubling for wider characters. */
    size_t guess = (size_t)req->length + 1;
    rc = text_reserve(&text, &cap, guess < (1u << 20) ? guess : (1u << 20));
    if (!slen || (mode == SAMPLE_MODE_WINDOW && !ring) || rc) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for generation");
        goto cleanup;
    }
    for (int i = 0; i < req->n_stop; i++)
        slen[i] = strlen(req->stop[i]);

    int finish = SAMPLE_FINISH_LENGTH, emit_failed = 0;
    size_t hist = n_ids; /* WINDOW: characters read or generated so far */
    if (mode == SAMPLE_MODE_WINDOW) {
        for (size_t j = n_ids > maxlen ? n_ids - maxlen : 0; j < n_ids; j++)
            ring[j % maxlen] = ids[j];
    } else if (n_ids == 0) {
        zero_state_logits(&st, m);
    } else {
        for (size_t j = 0; j < n_ids && !cancelled(req); j++)
            infer_step(&st, m, ids[j]);
    }
    if (cancelled(req))
        finish = SAMPLE_FINISH_CANCELLED;

    size_t emitted = 0;
    int prev = -1;
    for (int i = 0; i < req->length && finish == SAMPLE_FINISH_LENGTH; i++) {
        if (cancelled(req)) {
            finish = SAMPLE_FINISH_CANCELLED;
            break;
        }
        if (mode == SAMPLE_MODE_WINDOW)
            window_logits(&st, m, ring, hist, maxlen);
        else if (prev >= 0)
            infer_step(&st, m, prev);
        int id = sample_next(&smp, st.logits);
        prev = id;
        if (mode == SAMPLE_MODE_WINDOW)
            ring[hist++ % maxlen] = id;

        char u[4];
        size_t ulen = utf8_encode(u, m->voc.chars[id]);
        if (text_reserve(&text, &cap, len + ulen + 1)) {
            rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory after %zu bytes of text", len);
            goto cleanup;
        }
        memcpy(text + len, u, ulen);
        len += ulen;

        size_t cut = stop_match(text, len, req->stop, slen, req->n_stop);
        if (cut) {
            len -= cut;
            finish = SAMPLE_FINISH_STOP;
            break;
        }
        if (req->emit) {
            size_t safe = len - stop_holdback(text + emitted, len - emitted, req->stop, slen,
                                              req->n_stop);
            if (safe > emitted) {
                emit_failed = req->emit(req->emit_ctx, text + emitted, safe - emitted) != 0;
                emitted = safe;
                if (emit_failed)
                    finish = SAMPLE_FINISH_CANCELLED;
            }
        }
    }
    /* Whatever was held back for a stop string that never completed. */
    if (req->emit && !emit_failed && len > emitted)
        if (req->emit(req->emit_ctx, text + emitted, len - emitted) != 0)
            finish = SAMPLE_FINISH_CANCELLED;
    text[len] = '\0';

    size_t chars = 0;
    for (size_t j = 0; j < len; j++)
        chars += ((unsigned char)text[j] & 0xC0) != 0x80; /* count lead bytes */
    res->text = text;
    res->text_len = len;
    res->seed_chars = n_ids;
    res->generated_chars = chars;
    res->finish_reason = finish;
    res->mode = mode;
    text = NULL;
    rc = 0;

cleanup:
    free(text);
    free(slen);
    free(ring);
    infer_state_deinit(&st);
    sampler_deinit(&smp);
    free(ids);
    return rc;
}

void sample_result_deinit(sample_result *res)
{
    free(res->text);
    memset(res, 0, sizeof *res);
}
