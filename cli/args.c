/* args: strict parsing of option values, so "--lr 1e-2x" or "--length -5" is a usage error. */
#include "cli.h"

#include "registry.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lstmgen %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'lstmgen %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int arg_int(int *out, const char *cmd, const char *name, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return usage_error(cmd, "--%s must be an integer from %ld to %ld, got '%s'", name, lo, hi,
                           s);
    *out = (int)v;
    return 0;
}

int arg_u64(uint64_t *out, const char *cmd, const char *name, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return usage_error(cmd, "--%s must be a non-negative integer, got '%s'", name, s);
    *out = (uint64_t)v;
    return 0;
}

int arg_double(double *out, const char *cmd, const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return usage_error(cmd, "--%s must be a number from %g to %g, got '%s'", name, lo, hi, s);
    *out = v;
    return 0;
}

void model_path(char *buf, size_t n, const char *arg)
{
    struct stat st;
    snprintf(buf, n, "%s", arg);
    if (stat(arg, &st) == 0 || !registry_name_ok(arg))
        return;
    const char *dirs = getenv("LSTMGEN_MODELS");
    registry *r;
    if (registry_new(&r, dirs && *dirs ? dirs : "./models"))
        return;
    char path[4200];
    registry_path(r, arg, path, sizeof path);
    if (stat(path, &st) == 0)
        snprintf(buf, n, "%s", path);
    registry_free(r);
}
