/* safetensors: header writer and validating container reader (float32 only). */
#include "safetensors.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- writing

void st_buf_putn(st_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->s, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void st_buf_puts(st_buf *b, const char *s)
{
    st_buf_putn(b, s, strlen(s));
}

static __attribute__((format(printf, 2, 3))) void buf_printf(st_buf *b, const char *fmt, ...)
{
    char tmp[64]; /* only numbers are printed this way */
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp)
        b->oom = 1; /* cannot happen for our formats; fail loudly rather than truncate */
    else
        st_buf_putn(b, tmp, (size_t)k);
}

void st_buf_json_string(st_buf *b, const char *s, size_t n)
{
    st_buf_putn(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        st_buf_putn(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            st_buf_putn(b, esc, 2);
        } else {
            buf_printf(b, "\\u%04x", c);
        }
        run = i + 1;
    }
    st_buf_putn(b, s + run, n - run);
    st_buf_putn(b, "\"", 1);
}

void st_header_begin(st_buf *b)
{
    st_buf_puts(b, "{\"__metadata__\":{");
    b->meta_open = 1;
}

size_t st_header_meta(st_buf *b, const char *key, const char *value)
{
    st_buf_putn(b, ",", b->len > 0 && b->s[b->len - 1] != '{');
    st_buf_json_string(b, key, strlen(key));
    st_buf_putn(b, ":", 1);
    size_t at = b->len + 1;
    st_buf_json_string(b, value, strlen(value));
    return at;
}

static void close_meta(st_buf *b)
{
    if (b->meta_open)
        st_buf_puts(b, "}");
    b->meta_open = 0;
}

void st_header_tensor(st_buf *b, const char *name, int ndim, const int64_t *shape,
                      uint64_t *offset)
{
    close_meta(b);
    uint64_t bytes = (uint64_t)st_shape_count(shape, ndim) * sizeof(float);
    st_buf_puts(b, ",");
    st_buf_json_string(b, name, strlen(name));
    st_buf_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < ndim; d++)
        buf_printf(b, "%s%lld", d ? "," : "", (long long)shape[d]);
    buf_printf(b, "],\"data_offsets\":[%llu,", (unsigned long long)*offset);
    buf_printf(b, "%llu]}", (unsigned long long)(*offset + bytes));
    *offset += bytes;
}

int st_header_end(st_buf *b)
{
    close_meta(b);
    st_buf_puts(b, "}");
    while ((8 + b->len) % 8 != 0)
        st_buf_putn(b, " ", 1);
    if (!b->oom)
        return 0;
    free(b->s);
    memset(b, 0, sizeof *b);
    return -1;
}

void st_length_bytes(unsigned char out[8], uint64_t header_len)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(header_len >> (8 * i));
}

// ---- helpers

int64_t st_shape_count(const int64_t *shape, int ndim)
{
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && count > (UINT64_MAX / 4) / d)
            return -1;
        count *= d;
    }
    return count > SIZE_MAX / sizeof(float) || count > INT64_MAX / 4 ? -1 : (int64_t)count;
}

void st_shape_str(char *out, size_t outlen, const int64_t *shape, int ndim)
{
    size_t k = (size_t)snprintf(out, outlen, "[");
    for (int i = 0; i < ndim && k < outlen; i++)
        k += (size_t)snprintf(out + k, outlen - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < outlen)
        snprintf(out + k, outlen - k, "]");
}

size_t st_first_nonfinite(const unsigned char *p, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        if ((u & 0x7f800000u) == 0x7f800000u)
            return i;
    }
    return count;
}

// ---- reading

/* "__metadata__", when present: an object whose values are strings, with no NUL anywhere. */
static int check_metadata(const json_value *meta, char *err, size_t errlen)
{
    if (meta->type != JSON_OBJECT)
        return core_errf(err, errlen, CORE_EFORMAT, "__metadata__ is not an object");
    for (size_t i = 0; i < meta->n; i++) {
        if (meta->items[i].type != JSON_STRING)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "__metadata__ value of \"%.60s\" is not a string", meta->keys[i]);
        if (strlen(meta->keys[i]) != meta->key_lens[i] ||
            strlen(meta->items[i].str) != meta->items[i].len)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "__metadata__ entry \"%.60s\" contains a NUL", meta->keys[i]);
    }
    return 0;
}

/* One header entry {"dtype":"F32","shape":[...],"data_offsets":[b,e]}, checked on its own. */
static int parse_entry(st_entry *e, const json_value *v, uint64_t data_size, char *err,
                       size_t errlen)
{
    const char *name = e->name;
    if (v->type != JSON_OBJECT)
        return core_errf(err, errlen, CORE_EFORMAT, "tensor %s: entry is not an object", name);
    const json_value *dtype = json_get(v, "dtype"), *shape = json_get(v, "shape");
    const json_value *offs = json_get(v, "data_offsets");
    if (v->n != 3 || !dtype || !shape || !offs)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: entry must have exactly dtype, shape and data_offsets", name);
    if (dtype->type != JSON_STRING || strcmp(dtype->str, "F32") != 0)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: dtype is %.20s; only F32 is supported", name,
                         dtype->type == JSON_STRING ? dtype->str : "not a string");
    if (shape->type != JSON_ARRAY)
        return core_errf(err, errlen, CORE_EFORMAT, "tensor %s: shape is not an array", name);
    if (shape->n > ST_MAX_DIMS)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: shape has %zu dimensions; at most %d", name, shape->n,
                         ST_MAX_DIMS);
    e->ndim = (int)shape->n;
    for (size_t d = 0; d < shape->n; d++) {
        const json_value *x = &shape->items[d];
        if (x->type != JSON_NUMBER || !x->is_integer || x->integer < 0)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "tensor %s: shape entries must be non-negative integers", name);
        e->shape[d] = x->integer;
    }
    int64_t count = st_shape_count(e->shape, e->ndim);
    if (count < 0)
        return core_errf(err, errlen, CORE_EFORMAT, "tensor %s: shape is too large", name);
    if (offs->type != JSON_ARRAY || offs->n != 2)
        return core_errf(err, errlen, CORE_EFORMAT, "tensor %s: data_offsets is not a pair", name);
    for (int i = 0; i < 2; i++) {
        const json_value *x = &offs->items[i];
        if (x->type != JSON_NUMBER || !x->is_integer || x->integer < 0)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "tensor %s: data_offsets must be non-negative integers", name);
    }
    e->begin = (uint64_t)offs->items[0].integer;
    e->end = (uint64_t)offs->items[1].integer;
    if (e->end < e->begin)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: data_offsets [%llu, %llu] end before they begin", name,
                         (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: data_offsets [%llu, %llu] outside the %llu-byte data section",
                         name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         (unsigned long long)data_size);
    if (e->end - e->begin != (uint64_t)count * 4)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: data_offsets span %llu bytes but its shape needs %llu", name,
                         (unsigned long long)(e->end - e->begin), (unsigned long long)count * 4);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must tile the data section: sorted by offset, each starts where the last ended. */
static int check_tiling(st_entry *t, size_t n, uint64_t data_size, char *err, size_t errlen)
{
    st_entry **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory checking tensor offsets");
    for (size_t i = 0; i < n; i++)
        order[i] = &t[i];
    qsort(order, n, sizeof *order, cmp_by_offset);
    int rc = 0;
    uint64_t pos = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (order[i]->begin < pos)
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "tensors %s and %s overlap in the data section", order[i - 1]->name,
                           order[i]->name);
        else if (order[i]->begin > pos)
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "data section has unused bytes %llu..%llu before tensor %s",
                           (unsigned long long)pos, (unsigned long long)order[i]->begin,
                           order[i]->name);
        pos = order[i]->end;
    }
    if (!rc && pos != data_size)
        rc = core_errf(err, errlen, CORE_EFORMAT,
                       "data section has %llu bytes but the tensors cover %llu",
                       (unsigned long long)data_size, (unsigned long long)pos);
    free(order);
    return rc;
}

int st_parse(st_file *f, const unsigned char *buf, size_t n, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (n < 8)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "file is %zu bytes, too short for the 8-byte header length", n);
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--)
        N = N << 8 | buf[i];
    if (N > n - 8)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "header length %llu exceeds the %zu bytes after the length field; "
                         "the file is truncated or not a safetensors file",
                         (unsigned long long)N, n - 8);
    if (N > ST_HEADER_MAX)
        return core_errf(err, errlen, CORE_EFORMAT, "header length %llu exceeds the %u-byte limit",
                         (unsigned long long)N, ST_HEADER_MAX);
    st_file s = {buf + 8, N, buf + 8 + N, n - 8 - N, NULL, NULL, NULL, 0};
    size_t off;
    char msg[200];
    int rc = json_parse(&s.root, (const char *)s.header, N, &off, msg, sizeof msg);
    if (rc) {
        if (rc == CORE_ENOMEM)
            return core_errf(err, errlen, rc, "out of memory reading the header");
        return core_errf(err, errlen, CORE_EFORMAT,
                         "header is not valid JSON: %s (file offset %zu)", msg, (size_t)8 + off);
    }
    if (s.root->type != JSON_OBJECT) {
        rc = core_errf(err, errlen, CORE_EFORMAT, "header is not a JSON object");
        goto fail;
    }
    s.meta = json_get(s.root, "__metadata__");
    if (s.meta && (rc = check_metadata(s.meta, err, errlen)))
        goto fail;
    s.tensors = calloc(s.root->n ? s.root->n : 1, sizeof *s.tensors);
    if (!s.tensors) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory reading the header");
        goto fail;
    }
    for (size_t i = 0; i < s.root->n; i++) {
        const char *name = s.root->keys[i];
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if (strlen(name) != s.root->key_lens[i]) {
            rc = core_errf(err, errlen, CORE_EFORMAT, "a tensor name contains a NUL character");
            goto fail;
        }
        st_entry *e = &s.tensors[s.n_tensors++];
        e->name = name;
        e->name_len = s.root->key_lens[i];
        if ((rc = parse_entry(e, &s.root->items[i], s.data_size, err, errlen)))
            goto fail;
    }
    if ((rc = check_tiling(s.tensors, s.n_tensors, s.data_size, err, errlen)))
        goto fail;
    *f = s;
    return 0;
fail:
    st_file_free(&s);
    return rc;
}

void st_file_free(st_file *f)
{
    json_free(f->root);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}
