/* vocab: sorted code points; lookups are binary searches, which beat a hash table at these
 * sizes. */
#include "vocab.h"

#include "err.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int vocab_build(vocab *v, const uint32_t *text, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return core_errf(err, errlen, CORE_EINVAL,
                         "empty text: no characters to build a vocabulary");
    uint32_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory building a vocabulary");
    memcpy(sorted, text, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u32);
    size_t V = 0;
    for (size_t i = 0; i < n; i++)
        if (V == 0 || sorted[i] != sorted[V - 1])
            sorted[V++] = sorted[i];
    if (V > VOCAB_MAX) {
        free(sorted);
        return core_errf(err, errlen, CORE_ERANGE,
                         "%zu distinct characters; at most %d are supported", V, VOCAB_MAX);
    }
    uint32_t *chars = realloc(sorted, V * sizeof *chars);
    v->chars = chars ? chars : sorted;
    v->V = (int)V;
    return 0;
}

int vocab_init(vocab *v, const uint32_t *chars, int V, char *err, size_t errlen)
{
    if (V < 1 || V > VOCAB_MAX)
        return core_errf(err, errlen, CORE_ERANGE, "vocabulary size %d outside 1..%d", V,
                         VOCAB_MAX);
    for (int i = 0; i < V; i++) {
        char buf[4];
        if (utf8_encode(buf, chars[i]) == 0)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "vocabulary entry %d is not a valid character", i);
        if (i > 0 && chars[i] <= chars[i - 1])
            return core_errf(err, errlen, CORE_EFORMAT,
                             "vocabulary is not strictly increasing at entry %d", i);
    }
    uint32_t *copy = malloc((size_t)V * sizeof *copy);
    if (!copy)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory");
    memcpy(copy, chars, (size_t)V * sizeof *copy);
    v->chars = copy;
    v->V = V;
    return 0;
}

void vocab_deinit(vocab *v)
{
    free(v->chars);
    v->chars = NULL;
    v->V = 0;
}

int vocab_index(const vocab *v, uint32_t cp)
{
    int lo = 0, hi = v->V - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (v->chars[mid] == cp)
            return mid;
        if (v->chars[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int vocab_encode(int *ids, size_t *n_out, size_t *bad_pos, const vocab *v, const uint32_t *text,
                 size_t n, int skip_unknown, char *err, size_t errlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int id = vocab_index(v, text[i]);
        if (id >= 0) {
            ids[k++] = id;
        } else if (!skip_unknown) {
            char buf[5] = {0};
            utf8_encode(buf, text[i]);
            if (bad_pos)
                *bad_pos = i;
            return core_errf(
                err, errlen, CORE_EVOCAB,
                "character '%s' (U+%04X) at position %zu is not in the model's vocabulary",
                (text[i] >= 0x20 && text[i] != 0x7F) ? buf : "?", (unsigned)text[i], i);
        }
    }
    *n_out = k;
    return 0;
}
