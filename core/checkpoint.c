/* checkpoint: lstmgen's models in safetensors files (the container is safetensors.c; the atomic
 * replacement fsutil.c). This file is the schema: which tensors a model has and in which layout,
 * the metadata keys, and two checksums. The writer streams the data section twice, once into
 * SHA-256 and once into the file, so it never holds a second copy of the weights. The reader
 * checks the whole file (container, metadata, every tensor's shape, both checksums, finiteness)
 * before it allocates the model, so a bad file costs nothing but a message.
 * Assumes a little-endian host with IEEE-754 floats, like PyTorch's own safetensors writer. */
#include "checkpoint.h"

#include "err.h"
#include "fsutil.h"
#include "json.h"
#include "safetensors.h"
#include "sha256.h"
#include "utf8.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CKPT_FORMAT "lstmgen-1"
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

/* The vocabulary as a JSON array of one-character strings, itself stored as a metadata string. */
static char *vocab_json(const vocab *v)
{
    st_buf b = {0};
    st_buf_putn(&b, "[", 1);
    for (int i = 0; i < v->V; i++) {
        char ch[4];
        size_t k = utf8_encode(ch, v->chars[i]);
        if (i > 0)
            st_buf_putn(&b, ",", 1);
        st_buf_json_string(&b, ch, k);
    }
    st_buf_putn(&b, "]", 1);
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
        size_t count = (size_t)st_shape_count(t[i].shape, t[i].ndim);
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
        int64_t count = st_shape_count(t->shape, t->ndim);
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
    st_buf b = {0};
    st_header_begin(&b);
    st_header_meta(&b, "format", CKPT_FORMAT);
    st_header_meta(&b, "vocab", voc);
    st_header_meta(&b, "lowercase", c->lowercase ? "true" : "false");
    st_header_meta(&b, "regime", model_regime_name(c->regime));
    char num[64];
    const char *int_keys[] = {"maxlen", "step", "seq_len", "layers", "hidden"};
    const int int_vals[] = {c->maxlen, c->step, c->seq_len, c->L, c->H};
    for (int i = 0; i < 5; i++) {
        snprintf(num, sizeof num, "%d", int_vals[i]);
        st_header_meta(&b, int_keys[i], num);
    }
    snprintf(num, sizeof num, "%.9g", (double)c->dropout); /* 9 digits round-trip any float */
    st_header_meta(&b, "dropout", num);
    st_header_meta(&b, "data_sha256", data_hex);
    char zeros[SHA256_HEX_LEN + 1];
    memset(zeros, '0', SHA256_HEX_LEN);
    zeros[SHA256_HEX_LEN] = '\0';
    size_t hash_at = st_header_meta(&b, "header_sha256", zeros);
    for (int i = 0; i < m->n_meta; i++)
        if (!is_reserved(m->meta_keys[i]))
            st_header_meta(&b, m->meta_keys[i], m->meta_vals[i]);
    uint64_t offset = 0;
    for (int i = 0; i < n; i++)
        st_header_tensor(&b, t[i].name, t[i].ndim, t[i].shape, &offset);
    free(voc);
    if (st_header_end(&b) != 0)
        return NULL;
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256_digest(digest, b.s, b.len);
    sha256_hex(hex, digest);
    memcpy(b.s + hash_at, hex, SHA256_HEX_LEN);
    *out_len = b.len;
    return b.s;
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
    char *header = NULL;
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
        size_t count = (size_t)st_shape_count(t[i].shape, t[i].ndim);
        size_t bad = st_first_nonfinite((const unsigned char *)t[i].data, count);
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

    fs_atomic file;
    if ((rc = fs_atomic_open(&file, path, err, errlen)))
        goto done;
    unsigned char len8[8];
    st_length_bytes(len8, header_len);
    sink to_file = {NULL, file.f};
    if (sink_put(&to_file, len8, 8) || sink_put(&to_file, header, header_len) ||
        emit_data(&to_file, t, n, row)) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", path, strerror(errno));
        fs_atomic_abort(&file);
        goto done;
    }
    rc = fs_atomic_commit(&file, err, errlen);
done:
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

/* Checks that __metadata__ (whose values safetensors.c has checked are strings) is lstmgen's:
 * the right format, and both checksums as 64 lowercase hex digits. */
static int meta_check(const json_value *meta, char *err, size_t errlen)
{
    if (!meta)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "header has no __metadata__; not an lstmgen checkpoint");
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

/* Checks a model tensor's shape against the one V, H and L demand. */
static int check_shape(const st_entry *ft, const tensor_spec *s, int V, int H, int L, char *err,
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
    st_shape_str(got, sizeof got, ft->shape, ft->ndim);
    st_shape_str(want, sizeof want, s->shape, s->ndim);
    if (v_only)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "vocabulary has %d characters but %s has shape %s", V, s->name, got);
    return core_errf(err, errlen, CORE_EFORMAT,
                     "tensor %s has shape %s; a model with %d characters, hidden %d and %d layers "
                     "needs %s",
                     s->name, got, V, H, L, want);
}

static void copy_tensor(const tensor_spec *s, const unsigned char *src)
{
    if (!s->transposed) {
        memcpy(s->data, src, (size_t)st_shape_count(s->shape, s->ndim) * sizeof(float));
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

/* The file's tensor names against the model's: spec[i] = the model tensor st->tensors[i] is, or -1
 * for an extra tensor; *n_extra counts those. */
static int match_tensors(int *spec, int *n_extra, const st_file *st, const tensor_spec *specs,
                         int n_specs, int V, const model_config *cfg, char *err, size_t errlen)
{
    int seen[CKPT_MODEL_TENSORS_MAX] = {0}, rc;
    *n_extra = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const st_entry *t = &st->tensors[i];
        spec[i] = -1;
        for (int k = 0; k < n_specs && spec[i] < 0; k++)
            if (strcmp(t->name, specs[k].name) == 0)
                spec[i] = k;
        if (spec[i] >= 0) {
            if ((rc = check_shape(t, &specs[spec[i]], V, cfg->H, cfg->L, err, errlen)))
                return rc;
            seen[spec[i]] = 1;
            continue;
        }
        if (strncmp(t->name, CKPT_EXTRA_PREFIX, strlen(CKPT_EXTRA_PREFIX)) != 0)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "unknown tensor \"%.60s\" (a model with %d layers has lstm.*_l0..l%d "
                             "and fc.*; extra tensors must start with \"%s\")",
                             t->name, cfg->L, cfg->L - 1, CKPT_EXTRA_PREFIX);
        if (t->name_len >= CKPT_NAME_MAX)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "tensor name \"%.60s...\" is longer than %d bytes", t->name,
                             CKPT_NAME_MAX - 1);
        if (t->ndim < 1)
            return core_errf(err, errlen, CORE_EFORMAT, "extra tensor %s has no dimensions",
                             t->name);
        (*n_extra)++;
    }
    for (int k = 0; k < n_specs; k++)
        if (!seen[k])
            return core_errf(err, errlen, CORE_EFORMAT, "missing tensor %s", specs[k].name);
    return 0;
}

/* The data checksum, then every value finite. */
static int check_data(const st_file *st, const json_value *meta, char *err, size_t errlen)
{
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    sha256_digest(digest, st->data, st->data_size);
    sha256_hex(hex, digest);
    const char *want = json_get(meta, "data_sha256")->str;
    if (strcmp(hex, want) != 0)
        return core_errf(err, errlen, CORE_EFORMAT,
                         "data checksum mismatch: data_sha256 is %s but the data hashes to %s; the "
                         "file is corrupt",
                         want, hex);
    for (size_t i = 0; i < st->n_tensors; i++) {
        const st_entry *t = &st->tensors[i];
        size_t count = (size_t)(t->end - t->begin) / 4;
        size_t bad = st_first_nonfinite(st->data + t->begin, count);
        if (bad < count)
            return core_errf(err, errlen, CORE_EFORMAT,
                             "tensor %s has a non-finite value at index %zu", t->name, bad);
    }
    return 0;
}

/* The extra tensors, copied out of the file. */
static int copy_extras(ckpt_tensor **out, const st_file *st, const int *spec, int n_extra,
                       char *err, size_t errlen)
{
    ckpt_tensor *ex = calloc(n_extra ? (size_t)n_extra : 1, sizeof *ex);
    if (!ex)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory for extra tensors");
    int k = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        if (spec[i] >= 0)
            continue;
        const st_entry *t = &st->tensors[i];
        ckpt_tensor *e = &ex[k++];
        size_t bytes = (size_t)(t->end - t->begin);
        snprintf(e->name, CKPT_NAME_MAX, "%s", t->name);
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->data = malloc(bytes ? bytes : 1);
        if (!e->data) {
            checkpoint_extra_free(ex, n_extra);
            return core_errf(err, errlen, CORE_ENOMEM, "out of memory for extra tensor %s",
                             t->name);
        }
        memcpy(e->data, st->data + t->begin, bytes);
    }
    *out = ex;
    return 0;
}

int checkpoint_parse(model **out, ckpt_tensor **extra, int *n_extra, const unsigned char *buf,
                     size_t n, char *err, size_t errlen)
{
    if (!out || (!buf && n > 0) || (extra && !n_extra))
        return core_errf(err, errlen, CORE_EINVAL, "checkpoint_parse: invalid arguments");
    st_file st;
    int rc = st_parse(&st, buf, n, err, errlen);
    if (rc)
        return rc;
    const json_value *meta = st.meta;
    uint32_t *chars = NULL;
    int *spec = NULL;
    model *m = NULL;
    int V = 0, n_ex = 0;
    model_config cfg = {0};
    if ((rc = meta_check(meta, err, errlen)) || (rc = meta_vocab(&chars, &V, meta, err, errlen)) ||
        (rc = meta_config(&cfg, meta, err, errlen)))
        goto done;
    tensor_spec specs[CKPT_MODEL_TENSORS_MAX];
    int n_specs = model_specs(specs, NULL, V, cfg.H, cfg.L);
    spec = malloc((st.n_tensors ? st.n_tensors : 1) * sizeof *spec);
    if (!spec) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory reading the header");
        goto done;
    }
    if ((rc = match_tensors(spec, &n_ex, &st, specs, n_specs, V, &cfg, err, errlen)) ||
        (rc = check_header_sum(st.header, st.header_len, json_get(meta, "header_sha256"), err,
                               errlen)) ||
        (rc = check_data(&st, meta, err, errlen)))
        goto done;

    // Everything is valid: build the outputs.
    char msg[200];
    vocab voc = {V, chars};
    if ((rc = model_new(&m, &cfg, &voc, msg, sizeof msg))) {
        rc = core_errf(err, errlen, rc == CORE_ENOMEM ? rc : CORE_EFORMAT, "%s", msg);
        goto done;
    }
    model_specs(specs, &m->p, V, cfg.H, cfg.L);
    for (size_t i = 0; i < st.n_tensors; i++)
        if (spec[i] >= 0)
            copy_tensor(&specs[spec[i]], st.data + st.tensors[i].begin);
    for (size_t i = 0; i < meta->n; i++) {
        if (!is_reserved(meta->keys[i]) && model_meta_set(m, meta->keys[i], meta->items[i].str)) {
            rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory copying metadata");
            goto done;
        }
    }
    if (extra) {
        if ((rc = copy_extras(extra, &st, spec, n_ex, err, errlen)))
            goto done;
        *n_extra = n_ex;
    }
    *out = m;
    m = NULL;
    rc = 0;
done:
    model_free(m);
    free(spec);
    free(chars);
    st_file_free(&st);
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
