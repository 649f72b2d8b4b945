#!/bin/sh
# core/ is the engine: it may include libc, libm and cblas.h, never the server's libraries.
# The compiler would not notice a slip (the headers are installed), so this test does.
core=${1:?usage: check_core_deps.sh CORE_DIR}
bad=$(grep -nE '#\s*include\s*[<"](microhttpd|cJSON|cjson/cJSON|sqlite3)\.h[>"]' "$core"/*.c "$core"/*.h)
if [ -n "$bad" ]; then
    echo "core/ must not include server libraries:"
    echo "$bad"
    exit 1
fi
if grep -nE '\b(exit|abort)\s*\(' "$core"/*.c; then
    echo "core/ must not exit or abort: return an error code instead"
    exit 1
fi
echo "core/ includes only libc, libm and cblas.h"
