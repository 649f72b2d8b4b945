/* utf8: strict UTF-8 <-> Unicode code points. Rejects overlong forms, surrogates, code points
 * above U+10FFFF and truncated sequences, and reports the byte offset of the first bad byte. */
#ifndef CORE_UTF8_H
#define CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes n bytes of s into a newly malloc'ed array of code points (*out, *out_len; the caller
 * frees *out). On invalid UTF-8 returns CORE_EUTF8 with *bad_offset (if not NULL) set to the offset
 * of the first byte of the bad sequence and a message in err; *out is untouched on failure. */
int utf8_decode(uint32_t **out, size_t *out_len, size_t *bad_offset, const char *s, size_t n,
                char *err, size_t errlen);

/* Length in bytes of the first valid UTF-8 sequence at s (n bytes available), writing its code
 * point to *cp; 0 if the bytes there are not valid UTF-8 (or n == 0). */
size_t utf8_next(uint32_t *cp, const char *s, size_t n);

/* Writes the UTF-8 encoding of cp (1 to 4 bytes, no terminator) to out; returns its length, or 0
 * if cp is not a Unicode scalar value. */
size_t utf8_encode(char out[4], uint32_t cp);

/* Encodes n code points into a newly malloc'ed NUL-terminated string (caller frees);
 * NULL if out of memory or a code point is invalid. */
char *utf8_encode_all(const uint32_t *cps, size_t n);

/* Simple lowercase mapping of one code point: ASCII, Latin-1, Latin Extended-A, Greek and
 * Cyrillic capitals. Code points without a simple lowercase form are returned unchanged. */
uint32_t utf8_lower(uint32_t cp);

#endif
