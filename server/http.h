/* http: the libmicrohttpd glue. One thread per connection (so a handler may wait for its
 * generation), request bodies gathered up to --max-body, a route table with path parameters,
 * 404/405/OPTIONS answered generically, CORS and Bearer-key checks, and the only two places
 * that write error responses (reply_error) and access-log lines. */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct app;
struct MHD_Connection;
struct MHD_Daemon;

#define HTTP_MAX_PARAMS 2
/* Bytes of request header fields (names, values, ": " and CRLF each) past which a request is
 * answered 431 headers_too_large, before anything else. GET /props reports it. */
#define HTTP_MAX_HEADER_BYTES (32 * 1024)

typedef struct request {
    struct app *app;
    struct MHD_Connection *conn;
    const char *method;
    char *path;                 /* URL path without the query string */
    char *body;                 /* NUL-terminated */
    size_t body_len;
    int body_too_large;
    double t0;                  /* monotonic seconds at arrival */
    int status;                 /* of the response queued, for the log and metrics */
    const char *route;          /* the route pattern, for metrics ("unmatched" if none) */
    int openai;                 /* /v1/...: errors also carry OpenAI's type and param */
    char params[HTTP_MAX_PARAMS][128]; /* decoded {name} path segments, in order */
    /* without a connection (conn NULL: an in-process caller such as the fuzz harness) */
    const char *const *args;    /* query arguments: name, value pairs, NULL-terminated */
    const char *const *headers; /* request headers, likewise */
    char *captured;             /* the response body, malloc'ed, NUL-terminated */
    size_t captured_len;
} request;

typedef int (*route_fn)(request *r);

/* Starts the daemon on cfg's host and port; NULL with a message on stderr if it cannot. */
struct MHD_Daemon *http_start(struct app *app);
/* Stops accepting connections (in-flight requests go on). */
void http_quiesce(struct MHD_Daemon *d);
void http_stop(struct MHD_Daemon *d);

/* Routes r and answers it: 404/405/OPTIONS, the API key, a shutdown, the body limit, then the
 * route's handler. With r->conn NULL nothing goes to a socket: r->status and r->captured hold
 * the answer (a stream read to its end). r->app, method, path, body and body_len must be set. */
int http_handle(request *r);

/* Value of a query-string argument, or NULL. Valid until the request ends. */
const char *http_query(request *r, const char *key);
/* Value of a request header, or NULL. */
const char *http_header(request *r, const char *name);
/* The client's socket, for a handler that waits on it with poll (-1 if unknown). */
int http_client_fd(request *r);

/* Queue a response. Each returns 0 (the handler's return value). body is taken over. */
int reply_json_take(request *r, int status, cJSON *body);
int reply_text(request *r, int status, const char *content_type, const char *text, size_t len);
/* reply_text with more headers: NULL-terminated name, value pairs (up to 6). */
int reply_text_headers(request *r, int status, const char *content_type, const char *text,
                       size_t len, const char *const *headers);
/* {"error": {"code", "message", "type", "param"}}; control characters are stripped from the
 * message, and the error is counted and logged. param names the offending field, or NULL. */
int reply_error(request *r, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* 503 with Retry-After: code is "overloaded" (too much work queued, or shutting down) or
 * "database_busy". */
int reply_busy(request *r, int retry_after, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What a reply_events read callback returns when the body is complete. */
#define HTTP_EVENTS_END ((ssize_t)-1)
/* Queues a text/event-stream response whose body read() produces on the connection's own thread
 * (it may block until there is more), with X-Request-Id when id is not NULL (a generation's id,
 * so that another connection can cancel it with DELETE /generations/{id} while it streams).
 * done(cls) runs when the response is dropped: sent in full, the client gone, or this call
 * failing. */
int reply_events(request *r, ssize_t (*read)(void *cls, uint64_t pos, char *buf, size_t max),
                 void *cls, void (*done)(void *cls), const char *id);

#endif
