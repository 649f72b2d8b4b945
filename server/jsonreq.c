/* jsonreq: strict field readers over cJSON. */
#include "jsonreq.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* The offset of a \u0000 escape inside a JSON string, or (size_t)-1. cJSON would end the string
 * there and silently drop the rest, so such a body is refused instead. */
static size_t find_escaped_nul(const char *s, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\' && i + 1 < n) {
            if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                return i;
            i++; /* the escaped character */
        }
    }
    return (size_t)-1;
}

cJSON *json_body_or_reply(request *r)
{
    const char *ct = http_header(r, "Content-Type");
    if (ct) {
        size_t n = strcspn(ct, ";");
        int json = (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
                   (n >= 5 && strncasecmp(ct + n - 5, "+json", 5) == 0) ||
                   (n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0);
        if (!json) {
            reply_error(r, 415, "unsupported_media_type", NULL,
                        "expected a JSON body (Content-Type: application/json), got '%.*s'",
                        (int)(n > 100 ? 100 : n), ct);
            return NULL;
        }
    }
    if (!r->body || r->body_len == 0) {
        reply_error(r, 400, "invalid_json", NULL,
                    "the request body is empty; expected a JSON object");
        return NULL;
    }
    size_t nul = find_escaped_nul(r->body, r->body_len);
    if (nul != (size_t)-1) {
        reply_error(r, 400, "invalid_json", NULL, "\\u0000 at byte %zu: strings cannot hold NUL "
                    "characters here", nul);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t pos =
            at && at >= r->body && at <= r->body + r->body_len ? (size_t)(at - r->body) : 0;
        reply_error(r, 400, "invalid_json", NULL, "malformed JSON at byte %zu", pos);
        return NULL;
    }
    /* cJSON stops at the end of the first value: anything but whitespace after it is an error */
    for (const char *p = end; p && p < r->body + r->body_len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(root);
            reply_error(r, 400, "invalid_json", NULL, "malformed JSON at byte %zu: trailing data",
                        (size_t)(p - r->body));
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        reply_error(r, 400, "invalid_json", NULL, "the body must be a JSON object");
        return NULL;
    }
    return root;
}

int json_known_fields_or_reply(request *r, const cJSON *obj, const char *const *allowed)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, c->string) == 0;
        if (!ok) {
            reply_error(r, 400, "unknown_field", c->string, "unknown field '%.100s'", c->string);
            return 1;
        }
    }
    return 0;
}

static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int json_string_or_reply(request *r, const cJSON *obj, const char *name, const char **out)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsString(v)) {
        reply_error(r, 400, "invalid_type", name, "%s must be a string", name);
        return 1;
    }
    *out = v->valuestring;
    return 0;
}

int json_number_or_reply(request *r, const cJSON *obj, const char *name, double *out, double lo,
                         double hi)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v)) {
        reply_error(r, 400, "invalid_type", name, "%s must be a number", name);
        return 1;
    }
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) {
        reply_error(r, 400, "out_of_range", name,
                    "%s must be a finite number from %g to %g, got %g", name, lo, hi, d);
        return 1;
    }
    *out = d;
    return 0;
}

int json_int_or_reply(request *r, const cJSON *obj, const char *name, long long *out, long long lo,
                      long long hi)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        v->valuedouble != floor(v->valuedouble)) {
        reply_error(r, 400, "invalid_type", name, "%s must be an integer", name);
        return 1;
    }
    double d = v->valuedouble;
    if (d < (double)lo || d > (double)hi) {
        reply_error(r, 400, "out_of_range", name, "%s must be from %lld to %lld, got %.17g", name,
                    lo, hi, d);
        return 1;
    }
    *out = (long long)d;
    return 0;
}

int json_bool_or_reply(request *r, const cJSON *obj, const char *name, int *out)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v)) {
        reply_error(r, 400, "invalid_type", name, "%s must be true or false", name);
        return 1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

int json_strings_or_reply(request *r, const cJSON *obj, const char *name, const char **out, int max,
                          int *n)
{
    const cJSON *v = field(obj, name);
    *n = 0;
    if (!v)
        return 0;
    if (cJSON_IsString(v)) {
        if (!*v->valuestring) {
            reply_error(r, 400, "out_of_range", name, "%s must not be empty", name);
            return 1;
        }
        out[(*n)++] = v->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        reply_error(r, 400, "invalid_type", name, "%s must be a string or an array of strings",
                    name);
        return 1;
    }
    for (const cJSON *c = v->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !*c->valuestring) {
            reply_error(r, 400, "invalid_type", name, "%s must hold non-empty strings", name);
            return 1;
        }
        if (*n == max) {
            reply_error(r, 400, "out_of_range", name, "%s holds at most %d strings", name, max);
            return 1;
        }
        out[(*n)++] = c->valuestring;
    }
    return 0;
}

int json_seed_or_reply(request *r, const cJSON *obj, const char *name, uint64_t *out, int *given)
{
    long long v = -1;
    if (json_int_or_reply(r, obj, name, &v, 0, 9007199254740992LL))
        return 1;
    if (v >= 0) {
        *out = (uint64_t)v;
        *given = 1;
    }
    return 0;
}

int json_unknown_chars_or_reply(request *r, const cJSON *obj, int *skip)
{
    const char *v = "error";
    if (json_string_or_reply(r, obj, "unknown_chars", &v))
        return 1;
    *skip = strcmp(v, "skip") == 0;
    if (!*skip && strcmp(v, "error") != 0)
        return reply_error(r, 400, "out_of_range", "unknown_chars", "unknown_chars must be "
                           "\"error\" or \"skip\""), 1;
    return 0;
}
