#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each for SECONDS (default 60)
# from its seed corpus in tests/fuzz/corpus/TARGET (copied: the repository's stays as it is).
# A crash fails the run; its input is left in build-fuzz/ (crash-*): once fixed, copy it into
# tests/fuzz/corpus/TARGET/ so that the fuzz_corpus tests replay it from then on.
# usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang >/dev/null || { echo "needs clang (apt-get install clang)"; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null
fi
targets=(checkpoint text routes)
meson compile -C build-fuzz "${targets[@]/#/tests/fuzz/fuzz_}" >/dev/null
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in "${targets[@]}"; do
    work=build-fuzz/corpus-$t
    mkdir -p "$work"
    cp tests/fuzz/corpus/"$t"/* "$work"/
    echo "fuzz_$t for ${seconds}s from $(ls "$work" | wc -l) inputs"
    if ! (cd build-fuzz && tests/fuzz/fuzz_$t -max_total_time="$seconds" -max_len=65536 \
              -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 "corpus-$t" >"fuzz-$t.log" 2>&1); then
        echo "fuzz_$t FAILED: build-fuzz/fuzz-$t.log, the input in build-fuzz/crash-*"
        tail -n 30 build-fuzz/fuzz-$t.log
        status=1
    fi
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' build-fuzz/fuzz-$t.log | tail -n 2 || true
done
exit $status
