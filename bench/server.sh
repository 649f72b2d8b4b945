#!/usr/bin/env bash
# Load test of POST /generate with wrk, in one run: the bundled 2 x 384 model (200 characters a
# request) and a 1 x 128 model (500), at 1, 8, 32 and 128 connections, with batching on (the
# default --max-batch) and off (--max-batch 1), beside PyTorch stepping the same-sized LSTM for
# as many streams as one tensor batch (no HTTP, 2 threads). Not a test; the machine should be
# otherwise idle. Usage: bench/server.sh [--avx2] [SECONDS] [CORPUS]
#   --avx2   what an AVX2-only machine runs: LSTMGEN_SIMD=avx2 OPENBLAS_CORETYPE=Haswell
#   CORPUS   text for the 1 x 128 model (trained for 20 s; its quality does not matter here)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --avx2 ]; then
    export LSTMGEN_SIMD=avx2 OPENBLAS_CORETYPE=Haswell
    shift
fi
seconds=${1:-10}
corpus=${2:-../shared/corpora/nietzsche.txt}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build lstmgen >/dev/null
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
out=$tmp/results
mkdir -p "$tmp/models"
cp models/default.safetensors "$tmp/models/"
build/lstmgen train --corpus "$corpus" --lowercase --regime sequence --layers 1 --hidden 128 \
    --max-seconds 20 --quiet --sample-chars 0 --out "$tmp/models/small.safetensors" >/dev/null 2>&1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for batching in on off; do
    flags=(--max-concurrent 1024)
    [ $batching = off ] && flags+=(--max-batch 1)
    build/lstmgen serve --port "$port" --models "$tmp/models" --db "$tmp/db" "${flags[@]}" \
        2>"$tmp/log" &
    pid=$!
    for _ in $(seq 1 50); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
    for model in default:200 small:500; do
        name=${model%%:*} length=${model##*:}
        # warm-up (not counted): the model loads, caches and the scheduler's threads settle
        MODEL=$name LENGTH=$length wrk -t 2 -c 8 -d 3s -s bench/wrk_generate.lua \
            "http://127.0.0.1:$port" >/dev/null
        for c in 1 8 32 128; do
            line=$(MODEL=$name LENGTH=$length wrk -t $((c < 2 ? 1 : 2)) -c $c -d "${seconds}s" --timeout 30s \
                       -s bench/wrk_generate.lua "http://127.0.0.1:$port" | tail -n 1)
            echo "{\"bench\": \"server\", \"model\": \"$name\", \"batching\": \"$batching\", \"connections\": $c, \"result\": $line}" | tee -a "$out"
        done
    done
    echo "RSS after the load (batching $batching): $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
    kill $pid; wait $pid 2>/dev/null || true
    pid=
done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 /usr/bin/python3 bench/bench_torch_gen.py \
        "$((seconds / 2 > 2 ? seconds / 2 : 2))" 2:384,1:128 1,8,32,128 | tee -a "$out"
else
    echo "python3-torch is not installed: no PyTorch baseline" >&2
fi
/usr/bin/python3 - "$out" "${LSTMGEN_SIMD:-native}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def server(model, batching, c):
    for r in rows:
        if r["bench"] == "server" and (r["model"], r["batching"], r["connections"]) == (model, batching, c):
            return r["result"]
def torch(model, b):
    for r in rows:
        if r["bench"] == "torch_gen" and (r["model"], r["B"]) == (model, b):
            return r["chars_per_sec"]
print(f"\nkernels: {sys.argv[2]}; requests/s, characters/s and latency (ms) of POST /generate")
print(f"{'model':<14} {'conn':>4} | {'batched: req/s':>14} {'chars/s':>9} {'p50':>6} {'p99':>6} |"
      f" {'--max-batch 1: req/s':>20} {'chars/s':>9} {'p50':>6} {'p99':>6} | {'ratio':>5} |"
      f" {'PyTorch chars/s':>15}")
for model, shape in (("default", "2x384"), ("small", "1x128")):
    for c in (1, 8, 32, 128):
        on, off, pt = server(model, "on", c), server(model, "off", c), torch(shape, c)
        if not on or not off:
            continue
        print(f"{model + ' ' + shape:<14} {c:>4} | {on['requests_per_sec']:>14.1f} {on['chars_per_sec']:>9.0f}"
              f" {on['p50_ms']:>6.0f} {on['p99_ms']:>6.0f} | {off['requests_per_sec']:>20.1f}"
              f" {off['chars_per_sec']:>9.0f} {off['p50_ms']:>6.0f} {off['p99_ms']:>6.0f} |"
              f" {on['requests_per_sec'] / max(off['requests_per_sec'], 1e-9):>4.1f}x |"
              f" {pt if pt else float('nan'):>15.0f}")
errors = sum(r["result"]["errors"] for r in rows if r["bench"] == "server")
print(f"\nerrors (non-2xx, timeouts): {errors}; PyTorch: the same LSTM, one tensor batch of as many "
      "streams as connections, 2 threads, no HTTP")
PY
