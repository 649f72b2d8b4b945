/* log: every line the server writes on stderr, in the format --log-format asks for: plain text
 * ("lstmgen serve: ...", "POST /generate 200 1.2ms"), or one JSON object a line. Thread-safe. */
#ifndef SERVER_LOG_H
#define SERVER_LOG_H

/* Set at startup, before any thread starts (serve.c sets it before and after parsing options). */
void log_set_json(int json);

/* An event of the server (level "info" or "error"; source: "serve", "jobs", "libmicrohttpd").
 * Text: `lstmgen serve: MESSAGE`; JSON: {"time", "level", "source", "message"}. */
void log_event(const char *level, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One answered request. Text: `METHOD PATH STATUS 1.2ms`; JSON: {"time", "method", "path",
 * "status", "ms"}. */
void log_access(const char *method, const char *path, int status, double ms);

#endif
