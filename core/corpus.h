/* corpus: a training text as the model sees it: decoded from strict UTF-8, optionally lowercased,
 * mapped to vocabulary indices, and split into training and validation parts (the validation
 * part is the end of the text, so it is text the model never trained on, not a shuffled sample). */
#ifndef CORE_CORPUS_H
#define CORE_CORPUS_H

#include "vocab.h"

#include <stddef.h>

typedef struct corpus {
    vocab voc;
    int *ids;         /* (n) the whole text as vocabulary indices */
    size_t n;
    size_t n_train;   /* ids[0, n_train) train; ids[n_train, n) validation */
    char sha256[65];  /* hex SHA-256 of the raw bytes, before any lowercasing */
} corpus;

/* Decodes len bytes of text (CORE_EUTF8 naming the byte offset of the first bad byte), lowercases
 * if asked, and builds the vocabulary from the whole text, or uses voc_or_null's (then a
 * character outside it is CORE_EVOCAB). The last floor(n * val_fraction) characters are held out;
 * val_fraction must be in [0, 0.5]. */
int corpus_init(corpus *c, const char *text, size_t len, int lowercase, double val_fraction,
                const vocab *voc_or_null, char *err, size_t errlen);

/* What a fixed vocabulary (fine-tuning) does with characters it lacks. */
enum corpus_unknown {
    CORPUS_UNKNOWN_ERROR = 0, /* refuse the corpus, naming them */
    CORPUS_UNKNOWN_DROP,      /* leave them out */
    CORPUS_UNKNOWN_REPLACE,   /* turn each into one character of the vocabulary */
};
const char *corpus_unknown_name(int policy);
int corpus_unknown_parse(const char *name); /* -1 if unknown */
/* "error", "drop" or "replace=C" (C one character) as written by a user: 0, or -1 if it is
 * none of these. */
int corpus_unknown_spec_parse(const char *spec, int *policy, uint32_t *replacement);

/* corpus_init with voc's characters: the others as policy says. CORE_EVOCAB names up to eight
 * of them with their counts (most frequent first); CORE_EINVAL if replacement is not in voc. */
int corpus_init_fixed(corpus *c, const char *text, size_t len, int lowercase, double val_fraction,
                      const vocab *voc, int policy, uint32_t replacement, char *err,
                      size_t errlen);
void corpus_deinit(corpus *c);

/* Reads a whole file ("-": standard input) into a malloc'ed buffer (caller frees); CORE_EIO
 * naming the path. */
int corpus_read_file(char **out, size_t *len, const char *path, char *err, size_t errlen);

#endif
