#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test twice: in the release build, then in an
# AddressSanitizer + UndefinedBehaviorSanitizer build where any sanitizer report fails the run;
# then fuzzes each libFuzzer target for 30 s (clang, ASan, UBSan) from its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

setup() { # DIR [meson options...]
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null
    else meson setup "$dir" "$@" >/dev/null; fi
}

setup build
meson compile -C build
meson test -C build --print-errorlogs --no-suite soak

setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
meson compile -C build-asan
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# the image is the release build: no point building it again here; the soak runs here only
meson test -C build-asan --print-errorlogs --timeout-multiplier 4 --no-suite container

# libFuzzer, 30 s a target from tests/fuzz/corpus (a crash fails the run; see scripts/fuzz.sh)
scripts/fuzz.sh 30
