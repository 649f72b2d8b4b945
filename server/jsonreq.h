/* jsonreq: reading a request's JSON body and its fields, answering 400/415 naming the field when
 * something is wrong. Helpers named ..._or_reply have already replied when they return nonzero
 * (or NULL): the handler just returns. */
#ifndef SERVER_JSONREQ_H
#define SERVER_JSONREQ_H

#include "http.h"

#include <stdint.h>

/* The body as a JSON object, or NULL after a 415 (a Content-Type that is not JSON; curl's
 * default application/x-www-form-urlencoded is accepted, since `curl -d '{...}'` sends it) or a
 * 400 (malformed JSON, with the byte offset; not an object). Caller deletes it. */
cJSON *json_body_or_reply(request *r);

/* Fails (400) on a member of obj not listed in allowed (NULL-terminated): typos get an answer. */
int json_known_fields_or_reply(request *r, const cJSON *obj, const char *const *allowed);

/* Each leaves *out untouched when the field is absent (or null, where allowed), so the caller
 * sets defaults first. Numbers must be finite and within [lo, hi]; integers must be whole. */
int json_string_or_reply(request *r, const cJSON *obj, const char *field, const char **out);
int json_number_or_reply(request *r, const cJSON *obj, const char *field, double *out, double lo,
                         double hi);
int json_int_or_reply(request *r, const cJSON *obj, const char *field, long long *out, long long lo,
                      long long hi);
int json_bool_or_reply(request *r, const cJSON *obj, const char *field, int *out);
/* A string or an array of up to max non-empty strings; *out points into obj (valid while it
 * lives), *n their count. */
int json_strings_or_reply(request *r, const cJSON *obj, const char *field, const char **out,
                          int max, int *n);
/* A seed: an integer in [0, 2^53] (exact in JSON). */
int json_seed_or_reply(request *r, const cJSON *obj, const char *field, uint64_t *out, int *given);
/* "unknown_chars": "error" (the default: *skip = 0) or "skip" (*skip = 1), what to do with
 * characters outside a model's vocabulary. */
int json_unknown_chars_or_reply(request *r, const cJSON *obj, int *skip);

#endif
