#!/usr/bin/env bash
# Load test of POST /generate (200 characters) with wrk: 32 connections for SECONDS against the
# server serving MODELS_DIR, on a free loopback port; prints wrk's figures and the server's
# memory. Not a test. Usage: bench/server.sh [MODELS_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-models}
seconds=${2:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build lstmgen >/dev/null
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
build/lstmgen serve --port "$port" --models "$tmp/models:$models" --db "$tmp/db" \
    --max-concurrent 256 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 50); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -s -X POST "localhost:$port/generate" -d '{"seed_text": "warm ", "length": 10}' >/dev/null
echo "RSS with the model loaded, idle: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
wrk -t 2 -c 32 -d "${seconds}s" -s bench/wrk_generate.lua "http://127.0.0.1:$port" | tail -n 1
echo "RSS after the load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
