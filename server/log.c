/* log: formats the lines; fprintf on stderr writes each whole. */
#include "log.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int as_json;

void log_set_json(int json) { as_json = json; }

static cJSON *record(void)
{
    cJSON *o = cJSON_CreateObject();
    time_t t = time(NULL);
    struct tm tm;
    char ts[32];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, "time", ts);
    return o;
}

static void print(cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        fprintf(stderr, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
}

void log_event(const char *level, const char *source, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[strcspn(msg, "\r\n")] = '\0'; /* one line: libmicrohttpd ends its messages with one */
    if (!as_json) {
        fprintf(stderr, "lstmgen serve: %s%s%s\n", strcmp(source, "serve") ? source : "",
                strcmp(source, "serve") ? ": " : "", msg);
        return;
    }
    cJSON *o = record();
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "source", source);
    cJSON_AddStringToObject(o, "message", msg);
    print(o);
}

void log_access(const char *method, const char *path, int status, double ms)
{
    if (!as_json) {
        fprintf(stderr, "%s %s %d %.1fms\n", method, path, status, ms);
        return;
    }
    cJSON *o = record();
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "ms", (double)(long long)(ms * 1000) / 1000);
    print(o);
}
