/* utf8: strict decoding per RFC 3629 (the table of well-formed byte sequences in Unicode 3.9). */
#include "utf8.h"

#include "err.h"

#include <stdlib.h>

size_t utf8_next(uint32_t *cp, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t len;
    uint32_t min, c;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2, min = 0x80, c = p[0] & 0x1Fu;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4, min = 0x10000, c = p[0] & 0x07u;
    } else {
        return 0; /* continuation byte, 0xC0/0xC1 (always overlong) or 0xF5..0xFF */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0; /* overlong, out of range, or a UTF-16 surrogate */
    *cp = c;
    return len;
}

int utf8_decode(uint32_t **out, size_t *out_len, size_t *bad_offset, const char *s, size_t n,
                char *err, size_t errlen)
{
    uint32_t *cps = malloc((n ? n : 1) * sizeof *cps); /* at most one code point per byte */
    if (!cps)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory decoding %zu bytes", n);
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_next(&cps[count], s + i, n - i);
        if (len == 0) {
            free(cps);
            if (bad_offset)
                *bad_offset = i;
            return core_errf(err, errlen, CORE_EUTF8,
                             "invalid UTF-8 at byte offset %zu (byte 0x%02X)", i,
                             (unsigned)(unsigned char)s[i]);
        }
        i += len;
        count++;
    }
    *out = cps;
    *out_len = count;
    return 0;
}

size_t utf8_encode(char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

char *utf8_encode_all(const uint32_t *cps, size_t n)
{
    char *s = malloc(4 * n + 1);
    if (!s)
        return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = utf8_encode(s + len, cps[i]);
        if (k == 0) {
            free(s);
            return NULL;
        }
        len += k;
    }
    s[len] = '\0';
    return s;
}

uint32_t utf8_lower(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp < 0xC0)
        return cp;
    if (cp <= 0xDE && cp != 0xD7) /* Latin-1 capitals, except the multiplication sign */
        return cp + 32;
    if (cp >= 0x100 && cp <= 0x137 && cp % 2 == 0) /* Latin Extended-A pairs */
        return cp + 1;
    if (cp >= 0x139 && cp <= 0x148 && cp % 2 == 1)
        return cp + 1;
    if (cp >= 0x14A && cp <= 0x177 && cp % 2 == 0)
        return cp + 1;
    if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) /* Greek capitals */
        return cp + 32;
    if (cp >= 0x410 && cp <= 0x42F) /* Cyrillic basic capitals */
        return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    return cp;
}
