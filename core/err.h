/* err: the error codes every core/ function returns (0 on success, a negative code on failure).
 * One table, CORE_ERR_MAP, generates the enum, the names and the messages (libuv's UV_ERRNO_MAP).
 * Functions that read files or user input also fill an optional caller-owned message buffer that
 * says where the problem is; the code says what it is. */
#ifndef CORE_ERR_H
#define CORE_ERR_H

#include <stddef.h>

#define CORE_ERR_MAP(X)                                                 \
    X(ENOMEM, -1, "out of memory")                                      \
    X(EINVAL, -2, "invalid argument")                                   \
    X(EIO, -3, "input/output error")                                    \
    X(EFORMAT, -4, "bad file format")                                   \
    X(ERANGE, -5, "value out of range")                                 \
    X(EDIVERGED, -6, "training diverged")                               \
    X(EUTF8, -7, "invalid UTF-8")                                       \
    X(EVOCAB, -8, "character not in the vocabulary")                    \
    X(ECANCELLED, -9, "cancelled")                                      \
    X(ENOTFOUND, -10, "not found")

enum core_err {
    CORE_OK = 0,
#define CORE__ERR_ENUM(name, value, msg) CORE_##name = value,
    CORE_ERR_MAP(CORE__ERR_ENUM)
#undef CORE__ERR_ENUM
};

/* "out of memory" etc.; "unknown error" for a code not in the table. Never NULL. */
const char *core_strerror(int code);
/* "ENOMEM" etc.; "EUNKNOWN" for a code not in the table. Never NULL. */
const char *core_errname(int code);

/* Writes a printf-style message into err (when err is not NULL and errlen > 0) and returns code,
 * so a failure path is one line: `return core_errf(err, errlen, CORE_EFORMAT, "...", ...);` */
int core_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
