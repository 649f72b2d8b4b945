/* checkpoint: safetensors writer and validating reader. The writer streams the data section
 * twice, once into SHA-256 and once into the file, so it never holds a second copy of the
 * weights. The reader checks the whole file (header, metadata, every tensor, both checksums,
 * finiteness) before it allocates the model, so a bad file costs nothing but a message.
 * Assumes a little-endian host with IEEE-754 floats, like PyTorch's own safetensors writer. */
#include "checkpoint.h"

#include "err.h"
#include "json.h"
#include "sha256.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_FORMAT "lstmgen-1"
#define CKPT_HEADER_MAX 100000000u /* bytes: safetensors' own limit against hostile headers */
#define CKPT_MODEL_TENSORS_MAX (4 * MODEL_MAX_LAYERS + 2)
#define CKPT_EXTRA_PREFIX "optim."

/* Metadata keys the checkpoint owns; the model's own entries with these names are not saved. */
static const char *const reserved_keys[] = {
    "format",  "vocab",  "lowercase", "regime",  "maxlen",      "step",
    "seq_len", "layers", "hidden",    "dropout", "data_sha256", "header_sha256",
};

static int is_reserved(const char *key)
{
    for (size_t i = 0; i < sizeof reserved_keys / sizeof *reserved_keys; i++)
        if (strcmp(key, reserved_keys[i]) == 0)
            return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// tensor tables shared by the writer and the reader

typedef struct tensor_spec {
    char name[CKPT_NAME_MAX];
    int ndim;
    int64_t shape[4]; /* as in the file (PyTorch's layout) */
    int vdim;         /* the dimension that is V, or -1; for error messages */
    float *data;      /* the tensor in memory, NULL when only names and shapes are wanted */
    int transposed;   /* data holds the (shape[1], shape[0]) transpose: w_ih[0] */
} tensor_spec;

static void spec_set(tensor_spec *t, int ndim, int64_t d0, int64_t d1, int vdim, float *data,
                     int transposed)
{
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = t->shape[3] = 0;
    t->vdim = vdim;
    t->data = data;
    t->transposed = transposed;
}

/* Fills s with the model's tensors in file order and returns how many; p may be NULL. */
static int model_specs(tensor_spec *s, const model_params *p, int V, int H, int L)
{
    int n = 0;
    int64_t G = 4 * (int64_t)H;
    for (int l = 0; l < L; l++) {
        int64_t in = l == 0 ? V : H;
        snprintf(s[n].name, CKPT_NAME_MAX, "lstm.weight_ih_l%d", l);
        spec_set(&s[n++], 2, G, in, l == 0 ? 1 : -1, p ? p->w_ih[l] : NULL, l == 0);
        snprintf(s[n].name, CKPT_NAME_MAX, "lstm.weight_hh_l%d", l);
        spec_set(&s[n++], 2, G, H, -1, p ? p->w_hh[l] : NULL, 0);
        snprintf(s[n].name, CKPT_NAME_MAX, "lstm.bias_ih_l%d", l);
        spec_set(&s[n++], 1, G, 0, -1, p ? p->b_ih[l] : NULL, 0);
        snprintf(s[n].name, CKPT_NAME_MAX, "lstm.bias_hh_l%d", l);
        spec_set(&s[n++], 1, G, 0, -1, p ? p->b_hh[l] : NULL, 0);
    }
    snprintf(s[n].name, CKPT_NAME_MAX, "fc.weight");
    spec_set(&s[n++], 2, V, H, 0, p ? p->fc_w : NULL, 0);
    snprintf(s[n].name, CKPT_NAME_MAX, "fc.bias");
    spec_set(&s[n++], 1, V, 0, 0, p ? p->fc_b : NULL, 0);
    return n;
}

/* Elements in a shape, or -1 if the count (or its size in bytes) overflows. Dimensions are
 * checked to be non-negative by the callers. */
static int64_t shape_count(const int64_t *shape, int ndim)
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

static void shape_str(char *out, size_t outlen, const int64_t *shape, int ndim)
{
    size_t k = (size_t)snprintf(out, outlen, "[");
    for (int i = 0; i < ndim && k < outlen; i++)
        k += (size_t)snprintf(out + k, outlen - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < outlen)
        snprintf(out + k, outlen - k, "]");
}

/* Index of the first NaN or infinity in count little-endian floats at p (possibly unaligned),
 * or count. Tests the exponent bits, so it holds even under -ffinite-math-only. */
static size_t first_nonfinite(const unsigned char *p, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        if ((u & 0x7f800000u) == 0x7f800000u)
            return i;
    }
    return count;
}

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next(&cp, s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

// ----------------------------------------------------------------------------
// header text

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom; /* sticky: checked once at the end instead of after every append */
} strbuf;

static void sb_putn(strbuf *b, const char *s, size_t n)
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

static void sb_puts(strbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static __attribute__((format(printf, 2, 3))) void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[128]; /* only numbers and tensor names are printed this way */
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp)
        b->oom = 1; /* cannot happen for our formats; fail loudly rather than truncate */
    else
        sb_putn(b, tmp, (size_t)k);
}

/* Appends s (n bytes of valid UTF-8) as a quoted JSON string. Control characters become
 * \u00XX; everything else above them, including non-ASCII, is written raw. */
static void sb_put_json_string(strbuf *b, const char *s, size_t n)
{
    sb_putn(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_putn(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_putn(b, esc, 2);
        } else {
            sb_printf(b, "\\u%04x", c);
        }
        run = i + 1;
    }
    sb_putn(b, s + run, n - run);
    sb_putn(b, "\"", 1);
}

static void sb_put_meta(strbuf *b, const char *key, const char *value)
{
    sb_putn(b, ",", b->len > 0 && b->s[b->len - 1] != '{');
    sb_put_json_string(b, key, strlen(key));
    sb_putn(b, ":", 1);
    sb_put_json_string(b, value, strlen(value));
}

/* The vocabulary as a JSON array of one-character strings, itself stored as a metadata string. */
static char *vocab_json(const vocab *v)
{
    strbuf b = {0};
    sb_putn(&b, "[", 1);
    for (int i = 0; i < v->V; i++) {
        char ch[4];
        size_t k = utf8_encode(ch, v->chars[i]);
        if (i > 0)
            sb_putn(&b, ",", 1);
        sb_put_json_string(&b, ch, k);
    }
    sb_putn(&b, "]", 1);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

// ----------------------------------------------------------------------------
// saving

/* Where the data section goes: a running hash, a file, or both. */
typedef struct sink {
    sha256_ctx *sha;
    FILE *f;
} sink;

static int sink_put(sink *k, const void *p, size_t n)
{
    if (k->sha)
        sha256_update(k->sha, p, n);
    if (k->f && n > 0 && fwrite(p, 1, n, k->f) != n)
        return -1;
    return 0;
}

/* Emits every tensor's bytes in file order. row is scratch for one row of a transposed tensor. */
static int emit_data(sink *k, const tensor_spec *t, int n, float *row)
{
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)shape_count(t[i].shape, t[i].ndim);
        if (!t[i].transposed) {
            if (sink_put(k, t[i].data, count * sizeof(float)))
                return -1;
            continue;
        }
        /* The file holds (rows, cols); memory holds (cols, rows). One file row at a time. */
        size_t rows = (size_t)t[i].shape[0], cols = (size_t)t[i].shape[1];
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++)
                row[c] = t[i].data[c * rows + r];
            if (sink_put(k, row, cols * sizeof(float)))
                return -1;
        }
    }
    return 0;
}

/* Checks the caller's extra tensors: names that load back as extras, sane shapes, data present. */
static int check_extras(const ckpt_tensor *extra, int n_extra, char *err, size_t errlen)
{
    for (int i = 0; i < n_extra; i++) {
        const ckpt_tensor *t = &extra[i];
        if (!memchr(t->name, '\0', CKPT_NAME_MAX))
            return core_errf(err, errlen, CORE_EINVAL, "extra tensor %d has an unterminated name",
                             i);
        if (strncmp(t->name, CKPT_EXTRA_PREFIX, strlen(CKPT_EXTRA_PREFIX)) != 0 ||
            !valid_utf8(t->name, strlen(t->name)))
            return core_errf(err, errlen, CORE_EINVAL,
                             "extra tensor name \"%s\" must be UTF-8 starting with \"%s\"", t->name,
                             CKPT_EXTRA_PREFIX);
        for (int j = 0; j < i; j++)
            if (strcmp(extra[j].name, t->name) == 0)
                return core_errf(err, errlen, CORE_EINVAL, "extra tensor \"%s\" appears twice",
                                 t->name);
        if (t->ndim < 1 || t->ndim > 4)
            return core_errf(err, errlen, CORE_EINVAL,
                             "extra tensor %s has %d dimensions, not 1..4", t->name, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return core_errf(err, errlen, CORE_EINVAL,
                                 "extra tensor %s has a negative dimension", t->name);
        int64_t count = shape_count(t->shape, t->ndim);
        if (count < 0)
            return core_errf(err, errlen, CORE_EINVAL, "extra tensor %s is too large", t->name);
        if (count > 0 && !t->data)
            return core_errf(err, errlen, CORE_EINVAL, "extra tensor %s has no data", t->name);
    }
    return 0;
}

/* The header JSON, padded with spaces so the data section starts at a multiple of 8. Its
 * header_sha256 covers all N header bytes with that value's own 64 digits read as '0's. */
static char *build_header(size_t *out_len, const model *m, const tensor_spec *t, int n,
                          const char *data_hex)
{
    char *voc = vocab_json(&m->voc);
    if (!voc)
        return NULL;
    const model_config *c = &m->cfg;
    strbuf b = {0};
    sb_puts(&b, "{\"__metadata__\":{");
    sb_put_meta(&b, "format", CKPT_FORMAT);
    sb_put_meta(&b, "vocab", voc);
    sb_put_meta(&b, "lowercase", c->lowercase ? "true" : "false");
    sb_put_meta(&b, "regime", model_regime_name(c->regime));
    char num[64];
    const char *int_keys[] = {"maxlen", "step", "seq_len", "layers", "hidden"};
    const int int_vals[] = {c->maxlen, c->step, c->seq_len, c->L, c->H};
    for (int i = 0; i < 5; i++) {
        snprintf(num, sizeof num, "%d", int_vals[i]);
        sb_put_meta(&b, int_keys[i], num);
    }
    snprintf(num, sizeof num, "%.9g", (double)c->dropout); /* 9 digits round-trip any float */
    sb_put_meta(&b, "dropout", num);
    sb_put_meta(&b, "data_sha256", data_hex);
    char zeros[SHA256_HEX_LEN + 1];
    memset(zeros, '0', SHA256_HEX_LEN);
    zeros[SHA256_HEX_LEN] = '\0';
    sb_put_meta(&b, "header_sha256", zeros);
    size_t hash_at = b.len - 1 - SHA256_HEX_LEN; /* the first of the zeros */
    for (int i = 0; i < m->n_meta; i++)
        if (!is_reserved(m->meta_keys[i]))
            sb_put_meta(&b, m->meta_keys[i], m->meta_vals[i]);
    sb_puts(&b, "}");
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)shape_count(t[i].shape, t[i].ndim) * sizeof(float);
        sb_puts(&b, ",");
        sb_put_json_string(&b, t[i].name, strlen(t[i].name));
        sb_puts(&b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++)
            sb_printf(&b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                  (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    sb_puts(&b, "}");
    while ((8 + b.len) % 8 != 0)
        sb_putn(&b, " ", 1);
    free(voc);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256_digest(digest, b.s, b.len);
    sha256_hex(hex, digest);
    memcpy(b.s + hash_at, hex, SHA256_HEX_LEN);
    *out_len = b.len;
    return b.s;
}

/* fsync of the directory makes the rename itself durable. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    if (rc && errno == EINVAL)
        rc = 0; /* the file system cannot sync directories; nothing more we can do */
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int checkpoint_save(const char *path, const model *m, const ckpt_tensor *extra, int n_extra,
                    char *err, size_t errlen)
{
    if (!path || !m || n_extra < 0 || (n_extra > 0 && !extra))
        return core_errf(err, errlen, CORE_EINVAL, "checkpoint_save: invalid arguments");
    char msg[200];
    if (model_config_check(&m->cfg, msg, sizeof msg) || m->V != m->voc.V || m->V < 1)
        return core_errf(err, errlen, CORE_EINVAL, "checkpoint_save: inconsistent model");
    int rc = check_extras(extra, n_extra, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < m->n_meta; i++)
        if (!valid_utf8(m->meta_keys[i], strlen(m->meta_keys[i])) ||
            !valid_utf8(m->meta_vals[i], strlen(m->meta_vals[i])))
            return core_errf(err, errlen, CORE_EINVAL, "metadata entry \"%s\" is not valid UTF-8",
                             m->meta_keys[i]);

    tensor_spec *t = malloc((CKPT_MODEL_TENSORS_MAX + (size_t)n_extra) * sizeof *t);
    float *row = malloc(((size_t)m->V > 0 ? (size_t)m->V : 1) * sizeof *row);
    char *header = NULL, *tmp = NULL;
    FILE *f = NULL;
    if (!t || !row) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory saving %s", path);
        goto done;
    }
    int n = model_specs(t, &m->p, m->V, m->cfg.H, m->cfg.L);
    for (int i = 0; i < n_extra; i++) {
        memcpy(t[n].name, extra[i].name, CKPT_NAME_MAX);
        t[n].ndim = extra[i].ndim;
        memcpy(t[n].shape, extra[i].shape, sizeof t[n].shape);
        t[n].vdim = -1;
        t[n].data = extra[i].data;
        t[n++].transposed = 0;
    }
    /* A file with a NaN would be refused by checkpoint_load, so refuse to write one. */
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)shape_count(t[i].shape, t[i].ndim);
        size_t bad = first_nonfinite((const unsigned char *)t[i].data, count);
        if (bad < count) {
            rc = core_errf(err, errlen, CORE_ERANGE,
                           "tensor %s has a non-finite value at index %zu", t[i].name, bad);
            goto done;
        }
    }

    sha256_ctx sha;
    sha256_init(&sha);
    sink hash_only = {&sha, NULL};
    emit_data(&hash_only, t, n, row);
    unsigned char digest[SHA256_DIGEST_LEN];
    char data_hex[SHA256_HEX_LEN + 1];
    sha256_final(&sha, digest);
    sha256_hex(data_hex, digest);
    size_t header_len;
    header = build_header(&header_len, m, t, n, data_hex);
    if (!header) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory building the header of %s", path);
        goto done;
    }

    size_t plen = strlen(path);
    tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory saving %s", path);
        goto done;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot create a temporary file for %s: %s", path,
                       strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto done;
    }
    /* mkstemp makes the file 0600; checkpoints are meant to be shared like any other data. */
    if (fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "wb"))) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        goto remove_tmp;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) /* little-endian whatever the host */
        len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    sink to_file = {NULL, f};
    if (sink_put(&to_file, len8, 8) || sink_put(&to_file, header, header_len) ||
        emit_data(&to_file, t, n, row) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", path, strerror(errno));
        fclose(f);
        goto remove_tmp;
    }
    if (fclose(f) != 0) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", path, strerror(errno));
        goto remove_tmp;
    }
    if (rename(tmp, path) != 0) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
        goto remove_tmp;
    }
    if (sync_dir(path) != 0) {
        /* The new file is in place but its directory entry may not survive a crash. */
        rc = core_errf(err, errlen, CORE_EIO, "wrote %s but could not sync its directory: %s", path,
                       strerror(errno));
        goto done;
    }
    rc = 0;
    goto done;
remove_tmp:
    unlink(tmp);
done:
    free(tmp);
    free(header);
    free(row);
    free(t);
    return rc;
}

// ----------------------------------------------------------------------------
// loading: metadata

/* A decimal integer with the JSON grammar (no '+', spaces or leading zeros) that fits an int. */
static int meta_int(int *out, const json_value *meta, const char *key, char *err, size_t errlen)
{
    const json_value *v = json_get(meta, key);
    if (!v)
        return core_errf(err, errlen, CORE_EFORMAT, "__metadata__ has no \"%s\"", key);
    const char *s = v->str;
    int neg = s[0] == '-';
    const char *d = s + neg;
    long long x = 0;
    int ok = d[0] >= '0' && d[0] <= '9' && !(d[0] == '0' && d[1] != '\0');
    for (; ok && *d; d++) {
        ok = *d >= '0' && *d <= '9' && x <= (INT_MAX - (*d - '0')) / 10;
        x = x * 10 + (*d - '0');
    }
    if (!ok || d != v->str + v->len)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "__metadata__ \"%s\" is \"%.40s\", not an integer", key, s);
    *out = (int)(neg ? -x : x);
    return 0;
}

static int meta_choice(int *out, const json_value *meta, const char *key, const char *a,
                       const char *b, char *err, size_t errlen)
{
    const json_value *v = json_get(meta, key);
    if (!v)
        return core_errf(err, errlen, CORE_EFORMAT, "__metadata__ has no \"%s\"", key);
    if (strcmp(v->str, a) != 0 && strcmp(v->str, b) != 0)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "__metadata__ \"%s\" is \"%.40s\", not %s or %s", key, v->str, a, b);
    *out = strcmp(v->str, b) == 0;
    return 0;
}

static int meta_config(model_config *cfg, const json_value *meta, char *err, size_t errlen)
{
    model_config c = {0};
    int rc;
    if ((rc = meta_int(&c.L, meta, "layers", err, errlen)) ||
        (rc = meta_int(&c.H, meta, "hidden", err, errlen)) ||
        (rc = meta_int(&c.maxlen, meta, "maxlen", err, errlen)) ||
        (rc = meta_int(&c.step, meta, "step", err, errlen)) ||
        (rc = meta_int(&c.seq_len, meta, "seq_len", err, errlen)) ||
        (rc = meta_choice(&c.lowercase, meta, "lowercase", "false", "true", err, errlen)) ||
        (rc = meta_choice(&c.regime, meta, "regime", model_regime_names[0],
                          model_regime_names[1], err, errlen)))
        return rc;
    const json_value *v = json_get(meta, "dropout");
    if (!v)
        return core_errf(err, errlen, CORE_EFORMAT, "__metadata__ has no \"dropout\"");
    /* Only plain decimal syntax: strtof alone would also take "nan", "inf", hex and spaces. */
    char *end = v->str;
    int ok = v->len > 0 && strspn(v->str, "0123456789.eE+-") == v->len;
    if (ok) {
        errno = 0;
        c.dropout = strtof(v->str, &end);
        ok = end == v->str + v->len && errno == 0;
    }
    if (!ok)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "__metadata__ \"dropout\" is \"%.40s\", not a number", v->str);
    char msg[200];
    if (model_config_check(&c, msg, sizeof msg))
        return core_errf(err, errlen, CORE_EFORMAT, "bad configuration in __metadata__: %s", msg);
    *cfg = c;
    return 0;
}

/* Parses the "vocab" metadata string: a JSON array of one-character strings, strictly
 * increasing by code point. *chars is malloc'ed on success. */
static int meta_vocab(uint32_t **chars, int *V, const json_value *meta, char *err, size_t errlen)
{
    const json_value *v = json_get(meta, "vocab");
    if (!v)
        return core_errf(err, errlen, CORE_EFORMAT, "__metadata__ has no \"vocab\"");
    json_value *arr;
    size_t off;
    char msg[160];
    int rc = json_parse(&arr, v->str, v->len, &off, msg, sizeof msg);
    if (rc)
        return rc == CORE_ENOMEM
                   ? core_errf(err, errlen, rc, "out of memory reading the vocab")
                   : core_errf(err, errlen, CORE_EFORMAT, "vocab is not valid JSON: %s", msg);
    uint32_t *cps = NULL;
    if (arr->type != JSON_ARRAY) {
        rc = core_errf(err, errlen, CORE_EFORMAT, "vocab is not a JSON array");
        goto done;
    }
    if (arr->n == 0 || arr->n > VOCAB_MAX) {
        rc = core_errf(err, errlen, CORE_EFORMAT, "vocab has %zu characters; 1..%d are supported",
                       arr->n, VOCAB_MAX);
        goto done;
    }
    cps = malloc(arr->n * sizeof *cps);
    if (!cps) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory reading the vocab");
        goto done;
    }
    for (size_t i = 0; i < arr->n; i++) {
        const json_value *e = &arr->items[i];
        if (e->type != JSON_STRING || e->len == 0 || utf8_next(&cps[i], e->str, e->len) != e->len) {
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "vocab entry %zu is not a one-character string", i);
            goto done;
        }
        if (i > 0 && cps[i] <= cps[i - 1]) {
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "vocab is not strictly increasing at entry %zu (U+%04X after U+%04X)", i,
                           (unsigned)cps[i], (unsigned)cps[i - 1]);
            goto done;
        }
    }
    *chars = cps;
    *V = (int)arr->n;
    cps = NULL;
    rc = 0;
done:
    free(cps);
    json_free(arr);
    return rc;
}

static int is_lower_hex(const json_value *v)
{
    if (v->len != SHA256_HEX_LEN)
        return 0;
    for (size_t i = 0; i < v->len; i++)
        if (!((v->str[i] >= '0' && v->str[i] <= '9') || (v->str[i] >= 'a' && v->str[i] <= 'f')))
            return 0;
    return 1;
}

/* Checks __metadata__'s shape: an object of strings without NULs, the right format, and both
 * checksums as 64 lowercase hex digits. */
static int meta_check(const json_value *meta, char *err, size_t errlen)
{
    if (!meta)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "header has no __metadata__; not an lstmgen checkpoint");
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
    const json_value *f = json_get(meta, "format");
    if (!f)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "__metadata__ has no \"format\"; not an lstmgen checkpoint");
    if (strcmp(f->str, CKPT_FORMAT) != 0)
        return core_errf(err, errlen, CORE_EFORMAT, "format is \"%.40s\", expected \"%s\"", f->str,
                         CKPT_FORMAT);
    const char *sums[] = {"data_sha256", "header_sha256"};
    for (int i = 0; i < 2; i++) {
        const json_value *v = json_get(meta, sums[i]);
        if (!v)
            return core_errf(err, errlen, CORE_EFORMAT, "__metadata__ has no \"%s\"", sums[i]);
        if (!is_lower_hex(v))
            return core_errf(err, errlen, CORE_EFORMAT, "%s is not 64 lowercase hex digits",
                             sums[i]);
    }
    return 0;
}

/* header_sha256 is the hash of the N header bytes with its own 64 digits read as '0's. */
static int check_header_sum(const unsigned char *hdr, size_t N, const json_value *v, char *err,
                            size_t errlen)
{
    size_t at = v->offset; /* the opening quote */
    if (at > N || N - at < SHA256_HEX_LEN + 2 || hdr[at + 1 + SHA256_HEX_LEN] != '"' ||
        memcmp(hdr + at + 1, v->str, SHA256_HEX_LEN) != 0)
        return core_errf(err, errlen, CORE_EFORMAT, "header_sha256 is written with escapes");
    char zeros[SHA256_HEX_LEN];
    memset(zeros, '0', sizeof zeros);
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, hdr, at + 1);
    sha256_update(&c, zeros, sizeof zeros);
    sha256_update(&c, hdr + at + 1 + SHA256_HEX_LEN, N - at - 1 - SHA256_HEX_LEN);
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256_final(&c, digest);
    sha256_hex(hex, digest);
    if (memcmp(hex, v->str, SHA256_HEX_LEN) != 0)
        return core_errf(
            err, errlen, CORE_EFORMAT,
            "header checksum mismatch: header_sha256 is %.64s but the header hashes to "
            "%s; the header is corrupt or was edited",
            v->str, hex);
    return 0;
}

// ----------------------------------------------------------------------------
// loading: tensors

typedef struct found_tensor {
    const char *name; /* borrowed from the JSON tree */
    int spec;         /* index into the model's specs, or -1 for an extra tensor */
    int ndim;
    int64_t shape[4];
    uint64_t begin, end; /* byte offsets in the data section */
} found_tensor;

/* One header entry {"dtype":"F32","shape":[...],"data_offsets":[b,e]}, checked on its own. */
static int tensor_entry(found_tensor *ft, const char *name, const json_value *v, uint64_t data_size,
                        char *err, size_t errlen)
{
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
    if (shape->n > 4)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: shape has %zu dimensions; at most 4", name, shape->n);
    ft->ndim = (int)shape->n;
    for (size_t d = 0; d < shape->n; d++) {
        const json_value *x = &shape->items[d];
        if (x->type != JSON_NUMBER || !x->is_integer || x->integer < 0)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "tensor %s: shape entries must be non-negative integers", name);
        ft->shape[d] = x->integer;
    }
    int64_t count = shape_count(ft->shape, ft->ndim);
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
    ft->begin = (uint64_t)offs->items[0].integer;
    ft->end = (uint64_t)offs->items[1].integer;
    if (ft->end < ft->begin)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: data_offsets [%llu, %llu] end before they begin", name,
                         (unsigned long long)ft->begin, (unsigned long long)ft->end);
    if (ft->end > data_size)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: data_offsets [%llu, %llu] outside the %llu-byte data section",
                         name, (unsigned long long)ft->begin, (unsigned long long)ft->end,
                         (unsigned long long)data_size);
    if (ft->end - ft->begin != (uint64_t)count * 4)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "tensor %s: data_offsets span %llu bytes but its shape needs %llu", name,
                         (unsigned long long)(ft->end - ft->begin), (unsigned long long)count * 4);
    return 0;
}

/* Checks a model tensor's shape against the one V, H and L demand. */
static int check_shape(const found_tensor *ft, const tensor_spec *s, int V, int H, int L, char *err,
                       size_t errlen)
{
    int same = ft->ndim == s->ndim, v_only = same && s->vdim >= 0;
    for (int d = 0; same && d < s->ndim; d++) {
        if (ft->shape[d] != s->shape[d]) {
            same = 0;
            v_only = v_only && d == s->vdim;
        }
    }
    if (same)
        return 0;
    char got[80], want[80];
    shape_str(got, sizeof got, ft->shape, ft->ndim);
    shape_str(want, sizeof want, s->shape, s->ndim);
    if (v_only)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "vocabulary has %d characters but %s has shape %s", V, s->name, got);
    return core_errf(err, errlen, CORE_EFORMAT,
                     "tensor %s has shape %s; a model with %d characters, hidden %d and %d layers "
                     "needs %s",
                     s->name, got, V, H, L, want);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const found_tensor *x = *(const found_tensor *const *)a, *y = *(const found_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must tile the data section: sorted by offset, each starts where the last ended. */
static int check_tiling(found_tensor *ft, size_t n, uint64_t data_size, char *err, size_t errlen)
{
    found_tensor **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory checking tensor offsets");
    for (size_t i = 0; i < n; i++)
        order[i] = &ft[i];
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

static void copy_tensor(const tensor_spec *s, const unsigned char *src)
{
    if (!s->transposed) {
        memcpy(s->data, src, (size_t)shape_count(s->shape, s->ndim) * sizeof(float));
        return;
    }
    /* The file holds (rows, cols), PyTorch's (4H, V); memory wants (cols, rows). */
    size_t rows = (size_t)s->shape[0], cols = (size_t)s->shape[1];
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            memcpy(&s->data[c * rows + r], src + 4 * (r * cols + c), sizeof(float));
}

void checkpoint_extra_free(ckpt_tensor *extra, int n_extra)
{
    if (!extra)
        return;
    for (int i = 0; i < n_extra; i++)
        free(extra[i].data);
    free(extra);
}

int checkpoint_parse(model **out, ckpt_tensor **extra, int *n_extra, const unsigned char *buf,
                     size_t n, char *err, size_t errlen)
{
    if (!out || (!buf && n > 0) || (extra && !n_extra))
        return core_errf(err, errlen, CORE_EINVAL, "checkpoint_parse: invalid arguments");
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
    if (N > CKPT_HEADER_MAX)
        return core_errf(err, errlen, CORE_EFORMAT, "header length %llu exceeds the %u-byte limit",
                         (unsigned long long)N, CKPT_HEADER_MAX);
    const unsigned char *hdr = buf + 8, *data = buf + 8 + N;
    uint64_t data_size = n - 8 - N;

    json_value *root = NULL;
    found_tensor *ft = NULL;
    uint32_t *chars = NULL;
    model *m = NULL;
    ckpt_tensor *ex = NULL;
    int n_ex = 0;
    size_t off;
    char msg[200];
    int rc = json_parse(&root, (const char *)hdr, N, &off, msg, sizeof msg);
    if (rc) {
        if (rc == CORE_ENOMEM)
            return core_errf(err, errlen, rc, "out of memory reading the header");
        return core_errf(err, errlen, CORE_EFORMAT,
                         "header is not valid JSON: %s (file offset %zu)", msg, (size_t)8 + off);
    }
    if (root->type != JSON_OBJECT) {
        rc = core_errf(err, errlen, CORE_EFORMAT, "header is not a JSON object");
        goto done;
    }
    const json_value *meta = json_get(root, "__metadata__");
    if ((rc = meta_check(meta, err, errlen)))
        goto done;
    int V = 0; /* set by meta_vocab; initialised for the compiler's flow analysis */
    model_config cfg = {0};
    if ((rc = meta_vocab(&chars, &V, meta, err, errlen)) ||
        (rc = meta_config(&cfg, meta, err, errlen)))
        goto done;

    tensor_spec specs[CKPT_MODEL_TENSORS_MAX];
    int n_specs = model_specs(specs, NULL, V, cfg.H, cfg.L);
    int seen[CKPT_MODEL_TENSORS_MAX] = {0};
    ft = calloc(root->n ? root->n : 1, sizeof *ft);
    if (!ft) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory reading the header");
        goto done;
    }
    size_t n_ft = 0;
    for (size_t i = 0; i < root->n; i++) {
        const char *name = root->keys[i];
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if (strlen(name) != root->key_lens[i]) {
            rc = core_errf(err, errlen, CORE_EFORMAT, "a tensor name contains a NUL character");
            goto done;
        }
        found_tensor *t = &ft[n_ft++];
        t->name = name;
        t->spec = -1;
        for (int k = 0; k < n_specs && t->spec < 0; k++)
            if (strcmp(name, specs[k].name) == 0)
                t->spec = k;
        if (t->spec < 0 && strncmp(name, CKPT_EXTRA_PREFIX, strlen(CKPT_EXTRA_PREFIX)) != 0) {
            rc =
                core_errf(err, errlen, CORE_EFORMAT,
                          "unknown tensor \"%.60s\" (a model with %d layers has lstm.*_l0..l%d and "
                          "fc.*; extra tensors must start with \"%s\")",
                          name, cfg.L, cfg.L - 1, CKPT_EXTRA_PREFIX);
            goto done;
        }
        if (t->spec < 0 && root->key_lens[i] >= CKPT_NAME_MAX) {
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "tensor name \"%.60s...\" is longer than %d bytes", name,
                           CKPT_NAME_MAX - 1);
            goto done;
        }
        if ((rc = tensor_entry(t, name, &root->items[i], data_size, err, errlen)))
            goto done;
        if (t->spec >= 0) {
            if ((rc = check_shape(t, &specs[t->spec], V, cfg.H, cfg.L, err, errlen)))
                goto done;
            seen[t->spec] = 1;
        } else if (t->ndim < 1) {
            rc = core_errf(err, errlen, CORE_EFORMAT, "extra tensor %s has no dimensions", name);
            goto done;
        } else {
            n_ex++;
        }
    }
    for (int k = 0; k < n_specs; k++) {
        if (!seen[k]) {
            rc = core_errf(err, errlen, CORE_EFORMAT, "missing tensor %s", specs[k].name);
            goto done;
        }
    }
    if ((rc = check_tiling(ft, n_ft, data_size, err, errlen)) ||
        (rc = check_header_sum(hdr, N, json_get(meta, "header_sha256"), err, errlen)))
        goto done;
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256_digest(digest, data, data_size);
    sha256_hex(hex, digest);
    const char *want = json_get(meta, "data_sha256")->str;
    if (strcmp(hex, want) != 0) {
        rc = core_errf(err, errlen, CORE_EFORMAT,
                       "data checksum mismatch: data_sha256 is %s but the data hashes to %s; the "
                       "file is corrupt",
                       want, hex);
        goto done;
    }
    for (size_t i = 0; i < n_ft; i++) {
        size_t count = (size_t)(ft[i].end - ft[i].begin) / 4;
        size_t bad = first_nonfinite(data + ft[i].begin, count);
        if (bad < count) {
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "tensor %s has a non-finite value at index %zu", ft[i].name, bad);
            goto done;
        }
    }

    // Everything is valid: build the outputs.
    vocab voc = {V, chars};
    if ((rc = model_new(&m, &cfg, &voc, msg, sizeof msg))) {
        rc = core_errf(err, errlen, rc == CORE_ENOMEM ? rc : CORE_EFORMAT, "%s", msg);
        goto done;
    }
    model_specs(specs, &m->p, V, cfg.H, cfg.L);
    for (size_t i = 0; i < n_ft; i++)
        if (ft[i].spec >= 0)
            copy_tensor(&specs[ft[i].spec], data + ft[i].begin);
    for (size_t i = 0; i < meta->n; i++) {
        if (!is_reserved(meta->keys[i]) && model_meta_set(m, meta->keys[i], meta->items[i].str)) {
            rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory copying metadata");
            goto done;
        }
    }
    if (extra) {
        ex = calloc(n_ex ? (size_t)n_ex : 1, sizeof *ex);
        if (!ex) {
            rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for extra tensors");
            goto done;
        }
        int k = 0;
        for (size_t i = 0; i < n_ft; i++) {
            if (ft[i].spec >= 0)
                continue;
            ckpt_tensor *e = &ex[k++];
            size_t bytes = (size_t)(ft[i].end - ft[i].begin);
            snprintf(e->name, CKPT_NAME_MAX, "%s", ft[i].name);
            e->ndim = ft[i].ndim;
            memcpy(e->shape, ft[i].shape, sizeof e->shape);
            e->data = malloc(bytes ? bytes : 1);
            if (!e->data) {
                rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory for extra tensor %s",
                               e->name);
                goto done;
            }
            memcpy(e->data, data + ft[i].begin, bytes);
        }
        *extra = ex;
        *n_extra = n_ex;
        ex = NULL;
    }
    *out = m;
    m = NULL;
    rc = 0;
done:
    checkpoint_extra_free(ex, n_ex);
    model_free(m);
    free(chars);
    free(ft);
    json_free(root);
    return rc;
}

int checkpoint_load(model **out, ckpt_tensor **extra, int *n_extra, const char *path, char *err,
                    size_t errlen)
{
    if (!path)
        return core_errf(err, errlen, CORE_EINVAL, "checkpoint_load: no path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return core_errf(err, errlen, CORE_EIO, "cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    int rc;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = core_errf(err, errlen, CORE_EIO, "%s is not a regular file", path);
        goto done;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "%s is too large to load", path);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory reading %zu bytes of %s", size,
                       path);
        goto done;
    }
    if (fread(buf, 1, size, f) != size) {
        rc = ferror(f)
                 ? core_errf(err, errlen, CORE_EIO, "cannot read %s: %s", path, strerror(errno))
                 : core_errf(err, errlen, CORE_EIO, "%s shrank while it was being read", path);
        goto done;
    }
    char msg[512];
    rc = checkpoint_parse(out, extra, n_extra, buf, size, msg, sizeof msg);
    if (rc)
        core_errf(err, errlen, rc, "%s: %s", path, msg);
done:
    free(buf);
    fclose(f);
    return rc;
}
