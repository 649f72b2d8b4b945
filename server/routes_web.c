/* routes_web: the web app (web/: a page, its ES modules, its styles), compiled into the binary by
 * tools/embed_web.py, so the server needs no files at run time. Served without the API key: the
 * page itself holds no data, then asks for the key and sends it with every API call. */
#include "routes.h"

#include <string.h>

typedef struct web_asset {
    const char *name; /* file name in web/ */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset;

#include "web_assets.h" /* generated: static const web_asset web_assets[] */

/* {file} is one path segment, so a name with a slash never gets here: no traversal to guard. */
static int serve(request *r, const char *name)
{
    for (size_t i = 0; i < sizeof web_assets / sizeof *web_assets; i++) {
        const web_asset *f = &web_assets[i];
        if (strcmp(f->name, name) == 0)
            /* revalidated on every load: a new binary's page must not mix with old modules */
            return reply_text_headers(r, 200, f->type, (const char *)f->data, f->len,
                                      (const char *const[]){"Cache-Control", "no-cache", NULL});
    }
    return reply_error(r, 404, "not_found", "file", "the web app has no file '%s'", name);
}

int route_web_index(request *r)
{
    return serve(r, "index.html");
}

int route_web_asset(request *r)
{
    return serve(r, r->params[0]);
}
