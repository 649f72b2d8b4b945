/* http: libmicrohttpd glue. Ownership: a request lives from the first callback of a connection's
 * request to the completion notification; response bodies are handed to MHD with MUST_FREE
 * (malloc'ed by us or by cJSON_Print, whose allocator is malloc). */
#include "http.h"

#include "app.h"
#include "cors.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ----------------------------------------------------------------------------
// responses

/* CORS on every answer: an allowed origin's page may read it and these two headers. Where the
 * answer depends on the Origin (an allow-list), caches must keep one copy per origin. */
static void add_common_headers(request *r, struct MHD_Response *resp)
{
    const char *configured = r->app->cfg.cors_origin;
    const char *allow = cors_allow_origin(configured, http_header(r, "Origin"));
    if (allow) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Retry-After, X-Request-Id");
    }
    if (strcmp(configured, "*") != 0) {
        if (strcmp(r->method, "OPTIONS") != 0) /* a preflight sends its own, longer Vary */
            MHD_add_response_header(resp, "Vary", "Origin");
        if (allow) /* a listed origin may also send cookies or HTTP auth, if it ever needs to */
            MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    }
}

static void capture(request *r, int status, const char *body, size_t len)
{
    r->status = status;
    free(r->captured);
    r->captured = malloc(len + 1);
    if (r->captured) {
        if (len)
            memcpy(r->captured, body, len);
        r->captured[len] = '\0';
        r->captured_len = len;
    }
}

/* Every buffered response goes out here: len bytes of body (freed here when take), headers as
 * NULL-terminated name, value pairs, and the CORS headers. A request without a connection (an
 * in-process caller: the fuzz harness) keeps status and body in r->captured instead. */
static int respond(request *r, int status, char *body, size_t len, int take,
                   const char *const *headers)
{
    if (!r->conn) {
        capture(r, status, body, len);
        if (take)
            free(body);
        return 0;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        if (take)
            free(body);
        return 0;
    }
    for (; headers && headers[0]; headers += 2)
        MHD_add_response_header(resp, headers[0], headers[1]);
    add_common_headers(r, resp);
    r->status = status;
    MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return 0;
}

int reply_text(request *r, int status, const char *content_type, const char *text, size_t len)
{
    return reply_text_headers(r, status, content_type, text, len, NULL);
}

int reply_text_headers(request *r, int status, const char *content_type, const char *text,
                       size_t len, const char *const *headers)
{
    const char *all[16] = {"Content-Type", content_type};
    for (int i = 2; headers && headers[0] && i < 14; i += 2, headers += 2)
        all[i] = headers[0], all[i + 1] = headers[1];
    return respond(r, status, (char *)text, len, 0, all);
}

/* body printed, its terminator turned into a newline (curl output ends on a new line) */
static int respond_json(request *r, int status, cJSON *body, const char *const *extra)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return reply_text(r, 500, "application/json",
                          "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}", 56);
    size_t len = strlen(text);
    text[len] = '\n';
    const char *headers[8] = {"Content-Type", "application/json"};
    for (int i = 2; extra && *extra && i < 6; i++)
        headers[i] = *extra++;
    return respond(r, status, text, len + 1, 1, headers);
}

int reply_json_take(request *r, int status, cJSON *body)
{
    return respond_json(r, status, body, NULL);
}

static const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    case 429:
    case 503: return "overloaded_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static cJSON *error_body(int status, const char *code, const char *param, const char *fmt,
                         va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++) /* one line in logs and clients: no control characters */
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            *p = ' ';
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", error_type(status));
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    return root;
}

int reply_error(request *r, int status, const char *code, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cJSON *body = error_body(status, code, param, fmt, ap);
    va_end(ap);
    return reply_json_take(r, status, body);
}

int reply_busy(request *r, int retry_after, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cJSON *body = error_body(503, code, NULL, fmt, ap);
    va_end(ap);
    char secs[16];
    snprintf(secs, sizeof secs, "%d", retry_after);
    return respond_json(r, 503, body, (const char *const[]){"Retry-After", secs, NULL});
}

// ----------------------------------------------------------------------------
// streamed responses

int reply_events(request *r, ssize_t (*read)(void *cls, uint64_t pos, char *buf, size_t max),
                 void *cls, void (*done)(void *cls), const char *id)
{
    if (!r->conn) { /* in process: the whole stream, read to its end now */
        char *all = NULL, chunk[4096];
        size_t len = 0;
        ssize_t n;
        while ((n = read(cls, len, chunk, sizeof chunk)) > 0) {
            char *more = realloc(all, len + (size_t)n);
            if (!more)
                break;
            all = more;
            memcpy(all + len, chunk, (size_t)n);
            len += (size_t)n;
        }
        done(cls);
        capture(r, 200, all ? all : "", len);
        free(all);
        return 0;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read, cls, done);
    if (!resp) {
        done(cls);
        return reply_error(r, 500, "internal", NULL, "out of memory");
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: pass events at once */
    if (id)
        MHD_add_response_header(resp, "X-Request-Id", id);
    add_common_headers(r, resp);
    r->status = 200;
    MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return 0;
}

// ----------------------------------------------------------------------------
// request helpers

const char *http_query(request *r, const char *key)
{
    if (r->conn)
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
    for (const char *const *q = r->args; q && q[0]; q += 2)
        if (strcmp(q[0], key) == 0)
            return q[1];
    return NULL;
}

const char *http_header(request *r, const char *name)
{
    if (r->conn)
        return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
    for (const char *const *h = r->headers; h && h[0]; h += 2)
        if (strcasecmp(h[0], name) == 0)
            return h[1];
    return NULL;
}

int http_client_fd(request *r)
{
    if (!r->conn)
        return -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* Compares in time independent of where the strings differ (the key must not leak by timing). */
static int equal_constant_time(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)((i < la ? (unsigned char)a[i] : 0) ^ (unsigned char)b[i]);
    return diff == 0;
}

static int authorized(request *r, int auth)
{
    const server_config *c = &r->app->cfg;
    if (!c->api_key[0] || auth == AUTH_NONE || (auth == AUTH_GENERATE && c->public_generate) ||
        (auth == AUTH_METRICS && c->public_metrics))
        return 1;
    const char *h = http_header(r, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    return equal_constant_time(h + 7, c->api_key);
}

// ----------------------------------------------------------------------------
// routing

/* Matches path against pattern, filling r->params; 1 on a match. */
static int match(request *r, const char *pattern, const char *path)
{
    int np = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *end = strchr(pattern, '}');
            size_t seg = strcspn(path, "/");
            if (!end || seg == 0 || seg >= sizeof r->params[0] || np == HTTP_MAX_PARAMS)
                return 0;
            memcpy(r->params[np], path, seg);
            r->params[np++][seg] = '\0';
            pattern = end + 1;
            path += seg;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

int http_handle(request *r)
{
    const route *found = NULL;
    char allow[128] = "";
    for (int i = 0; i < n_routes; i++) {
        if (!match(r, routes[i].pattern, r->path))
            continue;
        r->route = routes[i].pattern;
        /* HEAD is GET without the body, which libmicrohttpd leaves out by itself */
        const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
        if (strcmp(routes[i].method, method) == 0)
            found = &routes[i];
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
    }
    r->openai = strncmp(r->path, "/v1/", 4) == 0;
    if (!allow[0]) {
        r->route = "unmatched";
        return reply_error(r, 404, "not_found", NULL, "no route for %s %s", r->method, r->path);
    }
    if (strcmp(r->method, "OPTIONS") == 0) { /* CORS preflight */
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, ", OPTIONS");
        /* the headers the browser asks for, when they are header names: the official clients
         * send their own (x-stainless-os, openai-organization...), and a fixed list fails them */
        const char *asked = http_header(r, "Access-Control-Request-Headers");
        int echo = asked && cors_header_list_valid(asked);
        const char *vary = strcmp(r->app->cfg.cors_origin, "*") == 0
                               ? "Access-Control-Request-Headers"
                               : "Origin, Access-Control-Request-Headers";
        return respond(r, 204, NULL, 0, 0,
                       (const char *const[]){"Access-Control-Allow-Methods", allow,
                                             "Access-Control-Allow-Headers",
                                             echo ? asked : "Authorization, Content-Type",
                                             "Access-Control-Max-Age", "86400", "Allow", allow,
                                             "Vary", vary, NULL});
    }
    if (!found) {
        char body[256];
        int len = snprintf(body, sizeof body,
                           "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"%s is not "
                           "allowed on %s; allowed: %s\",\"type\":\"invalid_request_error\","
                           "\"param\":null}}\n",
                           r->method, r->route, allow);
        return respond(r, 405, body, (size_t)len < sizeof body ? (size_t)len : sizeof body - 1,
                       0, (const char *const[]){"Content-Type", "application/json", "Allow",
                                                allow, NULL});
    }
    if (!authorized(r, found->auth)) {
        static const char body[] =
            "{\"error\":{\"code\":\"unauthorized\",\"message\":\"missing or wrong API key: "
            "send Authorization: Bearer KEY\",\"type\":\"authentication_error\",\"param\":null}}\n";
        return respond(r, 401, (char *)body, sizeof body - 1, 0,
                       (const char *const[]){"Content-Type", "application/json",
                                             "WWW-Authenticate", "Bearer", NULL});
    }
    /* Past one machine: a replica serves generation, the trainer corpora and jobs. */
    int role = r->app->cfg.role;
    int mine = role == ROLE_GENERATE ? SERVED_GENERATE : role == ROLE_TRAIN ? SERVED_TRAIN
                                                                            : SERVED_BOTH;
    if (!(found->served & mine))
        return reply_error(r, 421, "wrong_role", NULL, "this server runs --role %s: %s %s is "
                           "served by the %s", server_role_name(role), r->method, found->pattern,
                           found->served == SERVED_TRAIN ? "trainer (--role train)"
                                                         : "generation replicas (--role generate)");
    /* Shutting down: health checks still answer (readyz says "stopping"); the rest waits. */
    if (r->app->stopping && !found->while_stopping)
        return reply_busy(r, 5, "overloaded", "the server is shutting down");
    if (r->body_too_large)
        return reply_error(r, 413, "body_too_large", NULL, "the request body exceeds %zu bytes",
                           r->app->cfg.max_body);
    return found->fn(r);
}

// ----------------------------------------------------------------------------
// libmicrohttpd callbacks

/* libmicrohttpd's memory pool per connection, which must hold a whole request head: large enough
 * that a head far past HTTP_MAX_HEADER_BYTES still reaches on_request and gets our JSON 431.
 * Only a head past the pool (about this size) gets libmicrohttpd's own answer, an HTML 431. The
 * cost is at most this much per open connection (--http-threads of them). */
#define HTTP_CONNECTION_MEMORY (256 * 1024)

static enum MHD_Result add_field_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    app *a = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->app = a, r->conn = conn, r->method = method, r->t0 = now_mono();
        r->route = "unmatched";
        r->path = strdup(url);
        *con_cls = r;
        __atomic_add_fetch(&a->in_flight, 1, __ATOMIC_SEQ_CST); /* until on_completed */
        if (!r->path)
            return MHD_NO;
        size_t fields = 0;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, add_field_bytes, &fields);
        if (fields > HTTP_MAX_HEADER_BYTES) {
            reply_error(r, 431, "headers_too_large", NULL, "the request's header fields take %zu "
                        "bytes; the limit is %d", fields, HTTP_MAX_HEADER_BYTES);
            return MHD_YES;
        }
        /* Refuse an announced oversized body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > a->cfg.max_body) {
            r->body_too_large = 1;
            r->route = "unmatched";
            reply_error(r, 413, "body_too_large", NULL, "the request body exceeds %zu bytes",
                        a->cfg.max_body);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->status)
            return MHD_YES; /* already answered (413): drain */
        if (r->body_len + n > a->cfg.max_body) {
            r->body_too_large = 1;
            return MHD_YES;
        }
        char *p = realloc(r->body, r->body_len + n + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + r->body_len, upload, n);
        r->body = p;
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    }
    if (r->status)
        return MHD_YES;
    http_handle(r);
    return r->status ? MHD_YES : MHD_NO;
}

/* libmicrohttpd's own messages ("Failed to send data ..."): one line each, in the log's format. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_event("error", "libmicrohttpd", "%s", msg);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn;
    request *r = *con_cls;
    if (!r)
        return;
    double secs = now_mono() - r->t0;
    /* a response cut off (the client left mid-stream) is not the 200 it started as */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status >= 200 && r->status < 300)
        r->status = 499;
    if (r->status) {
        metrics_request(r->app->metrics, r->method, r->route, r->status, secs);
        log_access(r->method, r->path ? r->path : "", r->status, secs * 1000);
    }
    __atomic_sub_fetch(&r->app->in_flight, 1, __ATOMIC_SEQ_CST);
    free(r->path);
    free(r->body);
    free(r->captured);
    free(r);
    *con_cls = NULL;
}

struct MHD_Daemon *http_start(app *a)
{
    const server_config *c = &a->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", c->port);
    int gai = getaddrinfo(c->host, port, &hints, &ai);
    if (gai) {
        log_event("error", "serve", "--host %s: %s (give a numeric address)", c->host,
                  gai_strerror(gai));
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)c->port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        a, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->http_threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
        MHD_OPTION_END);
    /* no SO_REUSEPORT: a second server on a port in use must fail, not share it */
    if (!d)
        log_event("error", "serve", "cannot listen on %s:%d: %s%s", c->host, c->port,
                  strerror(errno),
                  errno == EADDRINUSE ? " (another server, lstmgen or not, has the port)" : "");
    freeaddrinfo(ai);
    return d;
}

void http_quiesce(struct MHD_Daemon *d) { MHD_quiesce_daemon(d); }

void http_stop(struct MHD_Daemon *d) { MHD_stop_daemon(d); }
