/* corpus: text -> code points -> indices, and the train/validation split. */
#include "corpus.h"

#include "err.h"
#include "sha256.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int corpus_init(corpus *c, const char *text, size_t len, int lowercase, double val_fraction,
                const vocab *voc_or_null, char *err, size_t errlen)
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
    if (voc_or_null)
        rc = vocab_init(&c->voc, voc_or_null->chars, voc_or_null->V, err, errlen);
    else
        rc = vocab_build(&c->voc, cps, n, err, errlen);
    if (rc)
        goto fail;
    c->ids = malloc(n * sizeof *c->ids);
    if (!c->ids) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for %zu characters", n);
        goto fail;
    }
    size_t k;
    rc = vocab_encode(c->ids, &k, NULL, &c->voc, cps, n, 0, err, errlen);
    if (rc)
        goto fail;
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
