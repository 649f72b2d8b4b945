/* json: a small strict JSON (RFC 8259) parser into a tree, for checkpoint headers. It rejects
 * everything the grammar does not allow (comments, trailing commas, leading zeros, control
 * characters and invalid UTF-8 in strings, lone surrogates, duplicate object keys) and reports the
 * byte offset of the first error. It never reads outside the n input bytes, which need no NUL
 * terminator. No serializer: the writers in core/ print their JSON directly. */
#ifndef CORE_JSON_H
#define CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Nesting limit for arrays and objects; deeper input is rejected rather than recursed into. */
#define JSON_MAX_DEPTH 64

enum json_type {
    JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT,
};

typedef struct json_value {
    int type;                 /* enum json_type */
    size_t offset;            /* byte offset of the value's first character in the input */
    double number;            /* JSON_NUMBER */
    int is_integer;           /* JSON_NUMBER written without fraction or exponent, fitting int64 */
    int64_t integer;          /* JSON_NUMBER when is_integer */
    char *str;                /* JSON_STRING: decoded UTF-8, NUL-terminated */
    size_t len;               /* JSON_STRING: bytes in str; \u0000 decodes to an embedded NUL */
    size_t n;                 /* JSON_ARRAY, JSON_OBJECT: number of elements or members */
    struct json_value *items; /* (n) array elements, or object member values in input order */
    char **keys;              /* JSON_OBJECT: (n) decoded member names, NUL-terminated */
    size_t *key_lens;         /* JSON_OBJECT: (n) bytes in each name */
} json_value;

/* Parses the n bytes at s, which must hold exactly one JSON value with optional surrounding
 * whitespace. On success *out is a new tree (json_free it). On failure returns CORE_EFORMAT (or
 * CORE_ENOMEM) with *err_offset (if not NULL) set to the byte offset of the problem and a message
 * in err; *out is untouched. Numbers are converted with strtod, so LC_NUMERIC must be "C". */
int json_parse(json_value **out, const char *s, size_t n, size_t *err_offset, char *err,
               size_t errlen);

/* Frees a tree from json_parse; json_free(NULL) is a no-op. */
void json_free(json_value *v);

/* The value of member key in object obj, or NULL if obj is not an object or has no such member.
 * Linear in the number of members. The pointer is valid until the tree is freed. */
const json_value *json_get(const json_value *obj, const char *key);

#endif
