/* safetensors: the file format PyTorch and the Hugging Face tools read, for float32 tensors.
 * Layout: 8-byte little-endian header length N, N bytes of JSON header, then the data section.
 * The header is an object: an optional "__metadata__" object of string values, and one entry per
 * tensor, {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}, offsets relative to the data
 * section, which the tensors tile exactly. This file knows the container only; what lstmgen
 * stores in it (tensor names, metadata keys, checksums) is checkpoint.c's. */
#ifndef CORE_SAFETENSORS_H
#define CORE_SAFETENSORS_H

#include "json.h"

#include <stddef.h>
#include <stdint.h>

#define ST_HEADER_MAX 100000000u /* bytes: safetensors' own limit against hostile headers */
#define ST_MAX_DIMS 4

// ---- writing: the header is built as text, then the caller writes
//      st_length_bytes(N), the header, and the tensors' bytes in the order given.

/* A growing string; oom is sticky, checked once at the end instead of after every append. */
typedef struct st_buf {
    char *s;
    size_t len, cap;
    int oom;
    int meta_open; /* st_header_*: the "__metadata__" object is not closed yet */
} st_buf;

void st_buf_putn(st_buf *b, const char *s, size_t n);
void st_buf_puts(st_buf *b, const char *s);
/* s (n bytes of valid UTF-8) as a quoted JSON string: '"' and '\\' escaped, control characters
 * as \u00XX, everything else raw. */
void st_buf_json_string(st_buf *b, const char *s, size_t n);

/* Opens the header and its "__metadata__" object. */
void st_header_begin(st_buf *b);
/* One metadata entry (both UTF-8); only between st_header_begin and the first tensor. Returns
 * the offset in b->s of the value's first character (after its quote). */
size_t st_header_meta(st_buf *b, const char *key, const char *value);
/* One F32 tensor's entry (closing the metadata before the first); *offset is where its bytes
 * begin in the data section and is advanced past them. */
void st_header_tensor(st_buf *b, const char *name, int ndim, const int64_t *shape,
                      uint64_t *offset);
/* Closes the header and pads it with spaces so the data section starts at a multiple of 8.
 * 0, or -1 when memory ran out at any step (b->s is then freed). */
int st_header_end(st_buf *b);

/* The 8-byte length field, little-endian whatever the host. */
void st_length_bytes(unsigned char out[8], uint64_t header_len);

// ---- reading

typedef struct st_entry {
    const char *name; /* borrowed from the header's JSON tree, without NULs */
    size_t name_len;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets in the data section; end - begin = 4 * elements */
} st_entry;

typedef struct st_file {
    const unsigned char *header; /* the N header bytes, within the caller's buffer */
    uint64_t header_len;
    const unsigned char *data; /* the data section, within the caller's buffer */
    uint64_t data_size;
    json_value *root;          /* owned */
    const json_value *meta;    /* "__metadata__": an object of strings without NULs; or NULL */
    st_entry *tensors;         /* owned; in header order */
    size_t n_tensors;
} st_file;

/* Parses and checks the container in the n bytes at buf (which must outlive *f): the length,
 * the header's JSON, the metadata's shape, every entry (F32, at most ST_MAX_DIMS non-negative
 * dimensions, offsets that match the shape and stay inside the data section), and that the
 * tensors tile the data section without gaps or overlaps. CORE_EFORMAT (or CORE_ENOMEM) with a
 * message naming what is wrong; *f is zeroed then. */
int st_parse(st_file *f, const unsigned char *buf, size_t n, char *err, size_t errlen);
void st_file_free(st_file *f);

// ---- helpers for both directions

/* Elements in a shape, or -1 if the count (or its size in bytes) overflows. The dimensions must
 * be non-negative. */
int64_t st_shape_count(const int64_t *shape, int ndim);
/* "[a, b]" */
void st_shape_str(char *out, size_t outlen, const int64_t *shape, int ndim);
/* Index of the first NaN or infinity among count little-endian floats at p (possibly unaligned),
 * or count. Tests the exponent bits, so it holds even under -ffinite-math-only. */
size_t st_first_nonfinite(const unsigned char *p, size_t count);

#endif
