/* genstream: the request check, reading the seed, the two generation modes, stop strings and
 * logprobs of one stream, one character at a time. */
#include "genstream.h"

#include "err.h"
#include "utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// the request check

static int fail(const char **field, const char *name, int rc)
{
    if (field)
        *field = name;
    return rc;
}

int sample_request_check(const sample_request *req, const model *m, const char **field, char *err,
                         size_t errlen)
{
    sample_options opt = {req->temperature, req->top_k, req->top_p};
    int rc = sample_options_check(&opt, err, errlen);
    if (rc)
        return fail(field,
                    !isfinite(opt.temperature) || opt.temperature < 0 ? "temperature"
                    : opt.top_k < 0                                   ? "top_k"
                                                                      : "top_p",
                    rc);
    if (req->length < 0)
        return fail(field, "length",
                    core_errf(err, errlen, CORE_ERANGE, "length must be >= 0, got %d",
                              req->length));
    if (req->mode < SAMPLE_MODE_AUTO || req->mode > SAMPLE_MODE_WINDOW)
        return fail(field, "mode",
                    core_errf(err, errlen, CORE_ERANGE, "unknown mode %d", req->mode));
    if (req->want_logprobs &&
        (req->top_logprobs < 0 || req->top_logprobs > SCORE_MAX_TOP || req->top_logprobs > m->V))
        return fail(field, "top_logprobs",
                    core_errf(err, errlen, CORE_ERANGE, "top_logprobs must be 0..%d, got %d",
                              SCORE_MAX_TOP < m->V ? SCORE_MAX_TOP : m->V, req->top_logprobs));
    if (req->n_stop < 0 || req->n_stop > SAMPLE_MAX_STOPS)
        return fail(field, "stop",
                    core_errf(err, errlen, CORE_ERANGE, "n_stop must be 0..%d, got %d",
                              SAMPLE_MAX_STOPS, req->n_stop));
    if (req->n_stop > 0 && !req->stop)
        return fail(field, "stop",
                    core_errf(err, errlen, CORE_EINVAL, "stop is NULL but n_stop is %d",
                              req->n_stop));
    for (int i = 0; i < req->n_stop; i++) {
        const char *s = req->stop[i];
        if (!s || !*s)
            return fail(field, "stop",
                        core_errf(err, errlen, CORE_EINVAL, "stop[%d] is empty", i));
        /* A valid stop string starts on a character boundary, so matches and held-back tails
         * never split a character. */
        size_t n = strlen(s);
        for (size_t off = 0; off < n;) {
            uint32_t cp;
            size_t l = utf8_next(&cp, s + off, n - off);
            if (l == 0)
                return fail(field, "stop",
                            core_errf(err, errlen, CORE_EUTF8,
                                      "stop[%d]: invalid UTF-8 at byte offset %zu", i, off));
            off += l;
        }
    }
    int *ids = NULL;
    size_t n_ids;
    char msg[256] = "";
    rc = sample_encode_text(&ids, &n_ids, m, req->seed_text, req->seed_len, req->skip_unknown, msg,
                            sizeof msg);
    free(ids);
    if (rc)
        return fail(field, "seed_text", core_errf(err, errlen, rc, "seed text: %s", msg));
    return 0;
}

// ----------------------------------------------------------------------------
// state

static int text_reserve(genstream *g, size_t need)
{
    if (need <= g->cap)
        return 0;
    size_t cap = g->cap ? g->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(g->text, cap);
    if (!p)
        return CORE_ENOMEM;
    g->text = p;
    g->cap = cap;
    return 0;
}

static int lp_reserve(genstream *g, size_t need)
{
    if (need <= g->cap_lp)
        return 0;
    size_t cap = g->cap_lp ? g->cap_lp * 2 : 64;
    while (cap < need)
        cap *= 2;
    int *id = realloc(g->lp_id, cap * sizeof *id);
    if (id)
        g->lp_id = id;
    double *lp = realloc(g->lp, cap * sizeof *lp);
    if (lp)
        g->lp = lp;
    score_alt *top = g->top_n ? realloc(g->lp_top, cap * (size_t)g->top_n * sizeof *top) : NULL;
    if (top)
        g->lp_top = top;
    if (!id || !lp || (g->top_n && !top))
        return CORE_ENOMEM;
    g->cap_lp = cap;
    return 0;
}

/* Records the logprob of character id under the prediction in the logits (NAN without one). */
static int lp_record(genstream *g, int id, int predicted)
{
    if (lp_reserve(g, g->n_lp + 1))
        return CORE_ENOMEM;
    size_t i = g->n_lp++;
    score_alt *top = g->top_n ? g->lp_top + i * (size_t)g->top_n : NULL; /* NULL + 0 is UB */
    g->lp_id[i] = id;
    if (!predicted) {
        g->lp[i] = NAN;
        for (int k = 0; k < g->top_n; k++)
            top[k] = (score_alt){-1, NAN};
        return 0;
    }
    score_log_softmax(g->logp, g->st.logits, g->m->V);
    g->lp[i] = g->logp[id];
    score_top(top, g->top_n, g->logp, g->m->V);
    return 0;
}

/* Window mode: read the last maxlen characters (or all, if fewer) from the zero state. */
static void window_start(genstream *g)
{
    size_t maxlen = (size_t)g->m->cfg.maxlen;
    infer_state_reset(&g->st);
    g->replay = g->hist > maxlen ? g->hist - maxlen : 0;
    if (g->hist == 0) { /* nothing to read: the zero state's prediction */
        infer_zero_logits(g->st.logits, g->m);
        g->ready = 1;
    }
}

/* The seed is read: generation starts (or the stream ends, when there is nothing to make). */
static void seed_read(genstream *g)
{
    g->scoring_seed = 0;
    if (g->length == 0) {
        g->finish = SAMPLE_FINISH_LENGTH;
        return;
    }
    if (g->mode == SAMPLE_MODE_WINDOW) {
        window_start(g);
    } else {
        if (g->n_seed == 0)
            infer_zero_logits(g->st.logits, g->m);
        g->ready = 1;
    }
}

int genstream_init(genstream *g, const model *m, const sample_request *req, char *err,
                   size_t errlen)
{
    int rc = sample_request_check(req, m, NULL, err, errlen);
    if (rc)
        return rc;
    genstream s = {0};
    s.m = m;
    s.mode = req->mode != SAMPLE_MODE_AUTO ? req->mode
             : m->cfg.regime == REGIME_SEQUENCE ? SAMPLE_MODE_STATEFUL
                                                : SAMPLE_MODE_WINDOW;
    s.length = req->length;
    s.stop = req->stop;
    s.n_stop = req->n_stop;
    s.next = -1;
    s.finish = -1;
    s.top_n = req->want_logprobs ? req->top_logprobs : 0;
    char msg[256] = "";
    sample_options opt = {req->temperature, req->top_k, req->top_p};
    rc = sample_encode_text(&s.seed, &s.n_seed, m, req->seed_text, req->seed_len,
                            req->skip_unknown, msg, sizeof msg);
    if (rc) {
        core_errf(err, errlen, rc, "seed text: %s", msg);
        goto fail;
    }
    size_t maxlen = (size_t)m->cfg.maxlen;
    s.stop_len = malloc(((size_t)s.n_stop + 1) * sizeof *s.stop_len);
    s.ring = s.mode == SAMPLE_MODE_WINDOW ? malloc(maxlen * sizeof *s.ring) : NULL;
    s.logp = req->want_logprobs ? malloc((size_t)m->V * sizeof *s.logp) : NULL;
    /* sized for ASCII output; grows by doubling for wider characters */
    size_t guess = (size_t)s.length + 1;
    if (!s.stop_len || (s.mode == SAMPLE_MODE_WINDOW && !s.ring) ||
        (req->want_logprobs && (!s.logp || lp_reserve(&s, 1))) ||
        text_reserve(&s, guess < (1u << 20) ? guess : (1u << 20)) ||
        (rc = sampler_init(&s.smp, m->V, &opt, req->seed, err, errlen)) != 0 ||
        (rc = infer_state_init(&s.st, m)) != 0) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for a generation");
        goto fail;
    }
    for (int i = 0; i < s.n_stop; i++)
        s.stop_len[i] = strlen(s.stop[i]);

    if (s.mode == SAMPLE_MODE_WINDOW) /* the ring starts with the seed's last maxlen characters */
        for (size_t j = s.n_seed > maxlen ? s.n_seed - maxlen : 0; j < s.n_seed; j++)
            s.ring[j % maxlen] = s.seed[j];
    s.hist = s.n_seed;
    /* A stream that scores its seed reads it statefully (as score_text does), whatever its
     * mode; the window mode then starts over from the zero state. */
    s.scoring_seed = req->want_logprobs && req->echo_logprobs && s.n_seed > 0;
    if (s.scoring_seed && lp_record(&s, s.seed[0], 0)) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for a generation");
        goto fail;
    }
    if (!s.scoring_seed && (s.mode == SAMPLE_MODE_WINDOW || s.n_seed == 0 || s.length == 0))
        seed_read(&s); /* nothing to read statefully first */
    *g = s;
    return 0;
fail:
    genstream_deinit(&s);
    return rc;
}

void genstream_deinit(genstream *g)
{
    infer_state_deinit(&g->st);
    sampler_deinit(&g->smp);
    free(g->seed);
    free(g->stop_len);
    free(g->ring);
    free(g->text);
    free(g->lp_id);
    free(g->lp);
    free(g->lp_top);
    free(g->logp);
    memset(g, 0, sizeof *g);
}

static void *dup_bytes(const void *src, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

int genstream_fork(genstream *dst, const genstream *src, uint64_t seed)
{
    genstream g = *src;
    const model *m = src->m;
    size_t maxlen = (size_t)m->cfg.maxlen;
    g.st = (infer_state){0};
    g.smp = (sampler){0};
    g.seed = dup_bytes(src->seed, src->n_seed * sizeof *src->seed);
    g.stop_len = dup_bytes(src->stop_len, ((size_t)src->n_stop + 1) * sizeof *src->stop_len);
    g.ring = src->ring ? dup_bytes(src->ring, maxlen * sizeof *src->ring) : NULL;
    g.text = dup_bytes(src->text, src->cap);
    g.lp_id = src->lp_id ? dup_bytes(src->lp_id, src->cap_lp * sizeof *g.lp_id) : NULL;
    g.lp = src->lp ? dup_bytes(src->lp, src->cap_lp * sizeof *g.lp) : NULL;
    g.lp_top = src->lp_top ? dup_bytes(src->lp_top, src->cap_lp * (size_t)src->top_n *
                                                        sizeof *g.lp_top)
                           : NULL;
    g.logp = src->logp ? malloc((size_t)m->V * sizeof *g.logp) : NULL;
    int ok = g.seed && g.stop_len && (!src->ring || g.ring) && g.text &&
             (!src->lp_id || g.lp_id) && (!src->lp || g.lp) && (!src->lp_top || g.lp_top) &&
             (!src->logp || g.logp);
    if (ok && sampler_init(&g.smp, m->V, &src->smp.opt, seed, NULL, 0) != 0)
        ok = 0;
    if (ok && infer_state_init(&g.st, m) != 0)
        ok = 0;
    if (!ok) {
        genstream_deinit(&g);
        return CORE_ENOMEM;
    }
    infer_state_copy(&g.st, &src->st);
    *dst = g;
    return 0;
}

// ----------------------------------------------------------------------------
// stepping

int genstream_input(const genstream *g, int *want_logits)
{
    if (g->scoring_seed || (g->mode == SAMPLE_MODE_STATEFUL && g->fed < g->n_seed)) {
        /* every seed character's prediction is scored; otherwise only the last one matters */
        *want_logits = g->scoring_seed || g->fed + 1 == g->n_seed;
        return g->seed[g->fed];
    }
    if (g->mode == SAMPLE_MODE_WINDOW) {
        *want_logits = g->replay + 1 == g->hist;
        return g->ring[g->replay % (size_t)g->m->cfg.maxlen];
    }
    *want_logits = 1;
    return g->next;
}

void genstream_stepped(genstream *g)
{
    if (g->scoring_seed) {
        if (++g->fed < g->n_seed) {
            if (lp_record(g, g->seed[g->fed], 1)) {
                genstream_cancel(g);
                return;
            }
        } else {
            seed_read(g);
        }
        return;
    }
    if (g->mode == SAMPLE_MODE_STATEFUL && g->fed < g->n_seed) {
        if (++g->fed == g->n_seed)
            seed_read(g);
        return;
    }
    if (g->mode == SAMPLE_MODE_WINDOW) {
        if (++g->replay == g->hist)
            g->ready = 1;
        return;
    }
    g->ready = 1; /* fed back the last drawn character */
}

/* Length of the longest stop string that text ends with, or 0. */
static size_t stop_match(const genstream *g)
{
    size_t best = 0;
    for (int i = 0; i < g->n_stop; i++) {
        size_t n = g->stop_len[i];
        if (n > best && n <= g->len && memcmp(g->text + g->len - n, g->stop[i], n) == 0)
            best = n;
    }
    return best;
}

/* Length of the longest tail of text[from..len) that is a proper prefix of a stop string: the
 * text that may still become a match and so must not be delivered yet. */
static size_t stop_holdback(const genstream *g, size_t from)
{
    size_t hold = 0, n = g->len - from;
    const char *tail = g->text + from;
    for (int i = 0; i < g->n_stop; i++)
        for (size_t j = g->stop_len[i] - 1 < n ? g->stop_len[i] - 1 : n; j > hold; j--)
            if (memcmp(tail + n - j, g->stop[i], j) == 0) {
                hold = j;
                break;
            }
    return hold;
}

static size_t count_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t j = 0; j < n; j++)
        chars += ((unsigned char)s[j] & 0xC0) != 0x80; /* lead bytes */
    return chars;
}

int genstream_predict(genstream *g)
{
    g->ready = 0;
    int id = sample_next(&g->smp, g->st.logits);
    char u[4];
    size_t ulen = utf8_encode(u, g->m->voc.chars[id]);
    if (text_reserve(g, g->len + ulen + 1) || (g->logp && lp_record(g, id, 1))) {
        genstream_cancel(g);
        return CORE_ENOMEM;
    }
    memcpy(g->text + g->len, u, ulen);
    g->len += ulen;
    g->chars++;

    size_t cut = stop_match(g);
    if (cut) {
        size_t cut_chars = count_chars(g->text + g->len - cut, cut);
        g->len -= cut;
        g->chars -= cut_chars;
        if (g->logp)
            g->n_lp -= cut_chars;
        g->safe = g->len;
        g->finish = SAMPLE_FINISH_STOP;
        return 0;
    }
    if (g->chars == (size_t)g->length) {
        g->safe = g->len;
        g->finish = SAMPLE_FINISH_LENGTH;
        return 0;
    }
    /* only the text since the last delivery point can hold a stop string's beginning */
    g->safe = g->len - stop_holdback(g, g->safe);
    if (g->mode == SAMPLE_MODE_WINDOW) {
        size_t maxlen = (size_t)g->m->cfg.maxlen;
        g->ring[g->hist++ % maxlen] = id;
        window_start(g);
    } else {
        g->next = id;
    }
    return 0;
}

void genstream_cancel(genstream *g)
{
    if (g->finish >= 0)
        return;
    g->finish = SAMPLE_FINISH_CANCELLED;
    g->ready = 0;
    g->safe = g->len;
}
