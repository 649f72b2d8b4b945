/* cors: the allow-list and the preflight's header check. */
#include "cors.h"

#include <string.h>
#include <strings.h>

const char *cors_allow_origin(const char *configured, const char *origin)
{
    if (strcmp(configured, "*") == 0)
        return "*";
    if (!origin || !*origin)
        return NULL;
    size_t want = strlen(origin);
    for (const char *p = configured; *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (len == want && strncasecmp(p, origin, len) == 0)
            return origin;
        p += len;
    }
    return NULL;
}

/* RFC 9110's tchar */
static int is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

int cors_header_list_valid(const char *list)
{
    int names = 0;
    for (const unsigned char *p = (const unsigned char *)list; *p;) {
        if (*p == ',' || *p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        if (!is_token_char(*p))
            return 0;
        while (is_token_char(*p))
            p++;
        names++;
    }
    return names > 0 && strlen(list) <= 2048;
}
