/* corpus: text -> code points -> indices, and the train/validation split. */
#include "corpus.h"

#include "err.h"
#include "sha256.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const unknown_names[] = {"error", "drop", "replace"};

const char *corpus_unknown_name(int policy)
{
    return policy >= 0 && policy <= CORPUS_UNKNOWN_REPLACE ? unknown_names[policy] : "?";
}

int corpus_unknown_parse(const char *name)
{
    for (int i = 0; i <= CORPUS_UNKNOWN_REPLACE; i++)
        if (strcmp(name, unknown_names[i]) == 0)
            return i;
    return -1;
}

int corpus_unknown_spec_parse(const char *spec, int *policy, uint32_t *replacement)
{
    *replacement = 0;
    if (strncmp(spec, "replace=", 8) == 0) {
        const char *c = spec + 8;
        size_t n = strlen(c);
        *policy = CORPUS_UNKNOWN_REPLACE;
        return n > 0 && utf8_next(replacement, c, n) == n ? 0 : -1;
    }
    *policy = corpus_unknown_parse(spec);
    return *policy < 0 || *policy == CORPUS_UNKNOWN_REPLACE ? -1 : 0;
}

typedef struct missing {
    uint32_t cp;
    size_t count;
} missing;

static int by_count(const void *a, const void *b)
{
    const missing *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1; /* most frequent first */
    return (x->cp > y->cp) - (x->cp < y->cp);
}

static int by_code_point(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* CORE_EVOCAB with the characters of cps[0, n) outside voc, most frequent first. Sorted and
 * counted in runs: a corpus can lack thousands of distinct characters (Chinese text for an
 * English model), which a search per character would make quadratic. */
static int name_missing(const uint32_t *cps, size_t n, const vocab *voc, char *err, size_t errlen)
{
    size_t total = 0, n_m = 0, runs = 0;
    uint32_t *out = malloc((n ? n : 1) * sizeof *out);
    if (!out)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (vocab_index(voc, cps[i]) < 0)
            out[total++] = cps[i];
    qsort(out, total, sizeof *out, by_code_point);
    for (size_t i = 0; i < total; i++)
        runs += i == 0 || out[i] != out[i - 1];
    missing *m = malloc((runs ? runs : 1) * sizeof *m);
    if (!m) {
        free(out);
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < total; i++) {
        if (n_m == 0 || m[n_m - 1].cp != out[i])
            m[n_m++] = (missing){out[i], 0};
        m[n_m - 1].count++;
    }
    free(out);
    qsort(m, n_m, sizeof *m, by_count);
    char list[512] = "";
    size_t used = 0;
    for (size_t k = 0; k < n_m && k < 8 && used < sizeof list; k++) {
        char ch[5] = {0};
        utf8_encode(ch, m[k].cp);
        used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s' (U+%04X) x%zu",
                                 k ? ", " : "", m[k].cp < 0x20 ? "?" : ch, (unsigned)m[k].cp,
                                 m[k].count);
    }
    int rc = core_errf(err, errlen, CORE_EVOCAB,
                       "the corpus has %zu distinct character(s) (%zu in all) that the "
                       "model's vocabulary lacks: %s%s; drop them, or replace them with one "
                       "of its characters", n_m, total, list, n_m > 8 ? ", ..." : "");
    free(m);
    return rc;
}

int corpus_init(corpus *c, const char *text, size_t len, int lowercase, double val_fraction,
                const vocab *voc_or_null, char *err, size_t errlen)
{
    return corpus_init_fixed(c, text, len, lowercase, val_fraction, voc_or_null,
                             CORPUS_UNKNOWN_ERROR, 0, err, errlen);
}

int corpus_init_fixed(corpus *c, const char *text, size_t len, int lowercase, double val_fraction,
                      const vocab *voc, int policy, uint32_t replacement, char *err,
                      size_t errlen)
{
    if (!(val_fraction >= 0.0 && val_fraction <= 0.5))
        return core_errf(err, errlen, CORE_ERANGE, "val_fraction must be in [0, 0.5], got %g",
                         val_fraction);
    memset(c, 0, sizeof *c);
    uint32_t *cps = NULL;
    size_t n = 0;
    int rc = utf8_decode(&cps, &n, NULL, text, len, err, errlen);
    if (rc)
        return rc;
    if (n == 0) {
        free(cps);
        return core_errf(err, errlen, CORE_EINVAL, "the corpus is empty");
    }
    if (lowercase)
        for (size_t i = 0; i < n; i++)
            cps[i] = utf8_lower(cps[i]);
    if (voc)
        rc = vocab_init(&c->voc, voc->chars, voc->V, err, errlen);
    else
        rc = vocab_build(&c->voc, cps, n, err, errlen);
    if (rc)
        goto fail;
    if (voc && policy == CORPUS_UNKNOWN_REPLACE) {
        if (vocab_index(voc, replacement) < 0) {
            char ch[5] = {0};
            utf8_encode(ch, replacement);
            rc = core_errf(err, errlen, CORE_EINVAL, "the replacement '%s' (U+%04X) is not in "
                           "the model's vocabulary", ch, (unsigned)replacement);
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            if (vocab_index(voc, cps[i]) < 0)
                cps[i] = replacement;
    } else if (voc && policy == CORPUS_UNKNOWN_ERROR) {
        for (size_t i = 0; i < n && !rc; i++)
            if (vocab_index(voc, cps[i]) < 0)
                rc = name_missing(cps, n, voc, err, errlen);
        if (rc)
            goto fail;
    }
    c->ids = malloc(n * sizeof *c->ids);
    if (!c->ids) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for %zu characters", n);
        goto fail;
    }
    size_t k;
    rc = vocab_encode(c->ids, &k, NULL, &c->voc, cps, n, policy == CORPUS_UNKNOWN_DROP, err,
                      errlen);
    if (rc)
        goto fail;
    if (k == 0) {
        rc = core_errf(err, errlen, CORE_EINVAL, "no character of the corpus is in the "
                       "model's vocabulary");
        goto fail;
    }
    n = k; /* fewer when characters were dropped */
    c->n = n;
    c->n_train = n - (size_t)((double)n * val_fraction);
    unsigned char digest[SHA256_DIGEST_LEN];
    sha256_digest(digest, text, len);
    sha256_hex(c->sha256, digest);
    free(cps);
    return 0;
fail:
    free(cps);
    corpus_deinit(c);
    return rc;
}

void corpus_deinit(corpus *c)
{
    vocab_deinit(&c->voc);
    free(c->ids);
    c->ids = NULL;
    c->n = c->n_train = 0;
}

int corpus_read_file(char **out, size_t *len, const char *path, char *err, size_t errlen)
{
    int from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return core_errf(err, errlen, CORE_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger, cap *= 2;
    }
    int failed = ferror(f);
    if (!from_stdin)
        fclose(f);
    if (!buf)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory reading %s", path);
    if (failed) {
        free(buf);
        return core_errf(err, errlen, CORE_EIO, "error reading %s", path);
    }
    *out = buf;
    *len = n;
    return 0;
}
