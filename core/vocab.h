/* vocab: the model's alphabet, the sorted set of distinct code points of a corpus. Index i of the
 * softmax is the i-th smallest code point, so a vocabulary is fully described by its list. */
#ifndef CORE_VOCAB_H
#define CORE_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#define VOCAB_MAX 65536 /* generous: hongloumeng.txt has about 4,400 */

typedef struct vocab {
    int V;           /* number of characters */
    uint32_t *chars; /* (V) code points, strictly increasing */
} vocab;

/* Builds the vocabulary of the n code points in text. Fails with CORE_EINVAL on an empty text and
 * CORE_ERANGE beyond VOCAB_MAX characters; v is untouched on failure. */
int vocab_build(vocab *v, const uint32_t *text, size_t n, char *err, size_t errlen);

/* Initialises v from an explicit list (copied); it must be strictly increasing valid code
 * points. */
int vocab_init(vocab *v, const uint32_t *chars, int V, char *err, size_t errlen);

/* Releases v's storage; safe on a zeroed vocab. */
void vocab_deinit(vocab *v);

/* The index of code point cp, or -1 if it is not in the vocabulary. O(log V); thread-safe. */
int vocab_index(const vocab *v, uint32_t cp);

/* Maps n code points to indices in ids. With skip_unknown, unknown characters are dropped and
 * *n_out says how many ids were written; otherwise the first one fails with CORE_EVOCAB, a message
 * naming it and its position, and *bad_pos (if not NULL) set to its index in text. */
int vocab_encode(int *ids, size_t *n_out, size_t *bad_pos, const vocab *v, const uint32_t *text,
                 size_t n, int skip_unknown, char *err, size_t errlen);

#endif
