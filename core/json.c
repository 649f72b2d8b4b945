/* json: a recursive-descent parser over a bounded buffer. Every read goes through peek(), which
 * returns -1 at the end of the input, so no code path can run past s + n. Recursion depth is
 * capped at JSON_MAX_DEPTH, and a failed parse frees whatever it had built. */
#include "json.h"

#include "err.h"
#include "utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s;
    size_t n, pos;
    int depth;
    size_t err_offset;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, size_t offset, const char *what)
{
    p->err_offset = offset;
    return core_errf(p->err, p->errlen, CORE_EFORMAT, "%s at byte %zu", what, offset);
}

static int nomem(parser *p)
{
    p->err_offset = p->pos;
    return core_errf(p->err, p->errlen, CORE_ENOMEM, "out of memory parsing JSON at byte %zu",
                     p->pos);
}

static int peek(const parser *p)
{
    return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1;
}

static void skip_ws(parser *p)
{
    for (int c = peek(p); c == ' ' || c == '\t' || c == '\n' || c == '\r'; c = peek(p))
        p->pos++;
}

/* Frees what v owns, leaving v itself (which may live inside a parent's items) alone. */
static void release(json_value *v)
{
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        release(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
}

static int parse_value(parser *p, json_value *v);

// ----------------------------------------------------------------------------
// strings

static int hex4(const parser *p, size_t at, uint32_t *out)
{
    if (at > p->n || p->n - at < 4)
        return -1;
    uint32_t x = 0;
    for (size_t i = 0; i < 4; i++) {
        int c = (unsigned char)p->s[at + i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        x = x << 4 | (uint32_t)d;
    }
    *out = x;
    return 0;
}

/* Parses the string starting at the opening quote into a new NUL-terminated buffer. */
static int parse_string(parser *p, char **out, size_t *out_len)
{
    size_t start = p->pos++;
    /* First find the closing quote, so one allocation of the raw length suffices: every escape
     * decodes to fewer bytes than it takes in the input. */
    size_t end = p->pos;
    while (end < p->n && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n)
        return fail(p, start, "unterminated string");
    char *buf = malloc(end - p->pos + 1);
    if (!buf)
        return nomem(p);
    size_t len = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            free(buf);
            return fail(p, p->pos, "control character in string");
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t k = utf8_next(&cp, p->s + p->pos, end - p->pos);
            if (k == 0) {
                free(buf);
                return fail(p, p->pos, "invalid UTF-8 in string");
            }
            memcpy(buf + len, p->s + p->pos, k);
            len += k, p->pos += k;
            continue;
        }
        if (c != '\\') {
            buf[len++] = (char)c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        int e = (unsigned char)p->s[esc + 1]; /* esc + 1 < end: the scan above skipped it */
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != 0 && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            buf[len++] = decoded[simple - "\"\\/bfnrt"];
            p->pos += 2;
            continue;
        }
        if (e != 'u') {
            free(buf);
            return fail(p, esc, "invalid escape in string");
        }
        uint32_t cp, lo;
        if (esc + 6 > end || hex4(p, esc + 2, &cp)) {
            free(buf);
            return fail(p, esc, "invalid \\u escape in string");
        }
        p->pos = esc + 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(buf);
            return fail(p, esc, "lone low surrogate in string");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* A high surrogate must be followed by an escaped low one: UTF-16's pair. */
            if (p->pos + 6 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                hex4(p, p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                free(buf);
                return fail(p, esc, "high surrogate not followed by a low surrogate in string");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p->pos += 6;
        }
        len += utf8_encode(buf + len, cp);
    }
    p->pos = end + 1;
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

// ----------------------------------------------------------------------------
// numbers

static int digits(parser *p)
{
    size_t start = p->pos;
    for (int c = peek(p); c >= '0' && c <= '9'; c = peek(p))
        p->pos++;
    return p->pos > start;
}

static int parse_number(parser *p, json_value *v)
{
    size_t start = p->pos;
    int neg = peek(p) == '-';
    if (neg)
        p->pos++;
    size_t int_start = p->pos;
    if (peek(p) == '0') {
        p->pos++;
        if (peek(p) >= '0' && peek(p) <= '9')
            return fail(p, start, "leading zero in number");
    } else if (!digits(p)) {
        return fail(p, start, "invalid number");
    }
    size_t int_end = p->pos;
    int is_integer = 1;
    if (peek(p) == '.') {
        p->pos++;
        if (!digits(p))
            return fail(p, start, "invalid number: no digits after the decimal point");
        is_integer = 0;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!digits(p))
            return fail(p, start, "invalid number: no digits in the exponent");
        is_integer = 0;
    }
    /* Integers are accumulated exactly, since doubles lose them beyond 2^53. */
    int64_t x = 0;
    for (size_t i = int_start; is_integer && i < int_end; i++) {
        int d = p->s[i] - '0';
        if (x > (INT64_MAX - d) / 10)
            is_integer = 0; /* too large for int64: a number, not an integer */
        else
            x = x * 10 + d;
    }
    size_t len = p->pos - start;
    char small[64], *text = len < sizeof small ? small : malloc(len + 1);
    if (!text)
        return nomem(p);
    memcpy(text, p->s + start, len);
    text[len] = '\0';
    double d = strtod(text, NULL);
    if (text != small)
        free(text);
    if (!isfinite(d))
        return fail(p, start, "number out of range");
    v->type = JSON_NUMBER;
    v->number = d;
    v->is_integer = is_integer;
    v->integer = is_integer ? (neg ? -x : x) : 0;
    return 0;
}

// ----------------------------------------------------------------------------
// arrays and objects

/* Doubles the capacity of an array of elem-sized items; NULL (items untouched) on failure. */
static void *grow(void *items, size_t *cap, size_t elem)
{
    size_t cap2 = *cap ? 2 * *cap : 4;
    if (cap2 > SIZE_MAX / elem)
        return NULL;
    void *q = realloc(items, cap2 * elem);
    if (q)
        *cap = cap2;
    return q;
}

typedef struct key_ref {
    const char *key;
    size_t len, index;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Sorting the names keeps this O(n log n) on a hostile header with many members. */
static int check_duplicates(parser *p, const json_value *v)
{
    if (v->n < 2)
        return 0;
    key_ref *refs = malloc(v->n * sizeof *refs);
    if (!refs)
        return nomem(p);
    for (size_t i = 0; i < v->n; i++)
        refs[i] = (key_ref){v->keys[i], v->key_lens[i], i};
    qsort(refs, v->n, sizeof *refs, cmp_key_ref);
    int rc = 0;
    for (size_t i = 1; i < v->n && !rc; i++) {
        if (refs[i].len == refs[i - 1].len &&
            memcmp(refs[i].key, refs[i - 1].key, refs[i].len) == 0) {
            /* Point at the later of the two, whose value's offset we know. */
            size_t later = refs[i].index > refs[i - 1].index ? refs[i].index : refs[i - 1].index;
            rc = fail(p, v->items[later].offset, "duplicate object key");
        }
    }
    free(refs);
    return rc;
}

static int parse_array(parser *p, json_value *v)
{
    v->type = JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        return 0;
    }
    size_t cap = 0;
    for (;;) {
        if (v->n == cap) {
            json_value *q = grow(v->items, &cap, sizeof *q);
            if (!q)
                return nomem(p);
            v->items = q;
        }
        /* Counted before parsing, so a half-built element is released with its parent. */
        json_value *item = &v->items[v->n++];
        memset(item, 0, sizeof *item);
        int rc = parse_value(p, item);
        if (rc)
            return rc;
        skip_ws(p);
        int c = peek(p);
        if (c != ',' && c != ']')
            return fail(p, p->pos, c < 0 ? "unterminated array" : "expected ',' or ']'");
        p->pos++;
        if (c == ']')
            return 0;
        skip_ws(p);
    }
}

static int parse_object(parser *p, json_value *v)
{
    v->type = JSON_OBJECT;
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        return 0;
    }
    size_t cap = 0, kcap = 0, lcap = 0;
    for (;;) {
        if (peek(p) != '"')
            return fail(p, p->pos, peek(p) < 0 ? "unterminated object" : "expected a string key");
        if (v->n == cap) {
            json_value *q = grow(v->items, &cap, sizeof *q);
            if (!q)
                return nomem(p);
            v->items = q;
        }
        if (v->n == kcap) {
            char **q = grow(v->keys, &kcap, sizeof *q);
            if (!q)
                return nomem(p);
            v->keys = q;
        }
        if (v->n == lcap) {
            size_t *q = grow(v->key_lens, &lcap, sizeof *q);
            if (!q)
                return nomem(p);
            v->key_lens = q;
        }
        size_t i = v->n++;
        memset(&v->items[i], 0, sizeof v->items[i]);
        v->keys[i] = NULL;
        v->key_lens[i] = 0;
        int rc = parse_string(p, &v->keys[i], &v->key_lens[i]);
        if (rc)
            return rc;
        skip_ws(p);
        if (peek(p) != ':')
            return fail(p, p->pos, "expected ':' after an object key");
        p->pos++;
        skip_ws(p);
        rc = parse_value(p, &v->items[i]);
        if (rc)
            return rc;
        skip_ws(p);
        int c = peek(p);
        if (c != ',' && c != '}')
            return fail(p, p->pos, c < 0 ? "unterminated object" : "expected ',' or '}'");
        p->pos++;
        if (c == '}')
            return check_duplicates(p, v);
        skip_ws(p);
    }
}

// ----------------------------------------------------------------------------
// values

static int literal(parser *p, json_value *v, const char *word, int type)
{
    size_t k = strlen(word);
    if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
        return fail(p, p->pos, "invalid literal");
    p->pos += k;
    v->type = type;
    return 0;
}

static int parse_value(parser *p, json_value *v)
{
    v->offset = p->pos;
    int c = peek(p);
    switch (c) {
    case -1: return fail(p, p->pos, "unexpected end of input");
    case '"': v->type = JSON_STRING; return parse_string(p, &v->str, &v->len);
    case 't': return literal(p, v, "true", JSON_TRUE);
    case 'f': return literal(p, v, "false", JSON_FALSE);
    case 'n': return literal(p, v, "null", JSON_NULL);
    case '[':
    case '{': {
        if (p->depth >= JSON_MAX_DEPTH)
            return fail(p, p->pos, "nesting too deep");
        p->depth++;
        int rc = c == '[' ? parse_array(p, v) : parse_object(p, v);
        p->depth--;
        return rc;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, v);
        return fail(p, p->pos, "unexpected character");
    }
}

int json_parse(json_value **out, const char *s, size_t n, size_t *err_offset, char *err,
               size_t errlen)
{
    parser p = {.s = s, .n = n, .err = err, .errlen = errlen};
    json_value *v = calloc(1, sizeof *v);
    if (!v)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory parsing JSON");
    skip_ws(&p);
    int rc = parse_value(&p, v);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != n)
            rc = fail(&p, p.pos, "unexpected data after the JSON value");
    }
    if (rc) {
        if (err_offset)
            *err_offset = p.err_offset;
        json_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void json_free(json_value *v)
{
    if (!v)
        return;
    release(v);
    free(v);
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t k = strlen(key);
    for (size_t i = 0; i < obj->n; i++)
        if (obj->key_lens[i] == k && memcmp(obj->keys[i], key, k) == 0)
            return &obj->items[i];
    return NULL;
}
