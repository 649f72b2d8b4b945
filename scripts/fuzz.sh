#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each for SECONDS (default 60)
# from a seed corpus made of the test suite's own files. Crashes are saved in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang >/dev/null || { echo "needs clang (apt-get install clang)"; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null
fi
meson compile -C build-fuzz tests/fuzz/fuzz_checkpoint tests/fuzz/fuzz_text >/dev/null
mkdir -p build-fuzz/corpus-checkpoint build-fuzz/corpus-text
# seeds: a real checkpoint and some text
[ -f models/default.safetensors ] && cp models/default.safetensors build-fuzz/corpus-checkpoint/
printf 'the meaning of life is \xe7\xba\xa2\xe6\xa5\xbc\xe6\xa2\xa6' > build-fuzz/corpus-text/seed
for t in checkpoint text; do
    echo "fuzz_$t for ${seconds}s"
    (cd build-fuzz && tests/fuzz/fuzz_$t -max_total_time="$seconds" -max_len=65536 \
        "corpus-$t" 2>&1 | tail -n 3)
done
