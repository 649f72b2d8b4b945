/* err: names and messages of the core error codes, generated from CORE_ERR_MAP. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *core_strerror(int code)
{
    switch (code) {
    case CORE_OK: return "success";
#define CORE__ERR_MSG(name, value, msg) case CORE_##name: return msg;
    CORE_ERR_MAP(CORE__ERR_MSG)
#undef CORE__ERR_MSG
    }
    return "unknown error";
}

const char *core_errname(int code)
{
    switch (code) {
    case CORE_OK: return "OK";
#define CORE__ERR_NAME(name, value, msg) case CORE_##name: return #name;
    CORE_ERR_MAP(CORE__ERR_NAME)
#undef CORE__ERR_NAME
    }
    return "EUNKNOWN";
}

int core_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
