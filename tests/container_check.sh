#!/usr/bin/env bash
# container_check: builds the Dockerfile and checks the container as a user would run it: it
# answers /healthz and POST /generate with the bundled model, and exits 0 within 10 s of SIGTERM.
# Uses docker, or rootful podman where there is no Docker engine (set CONTAINER=podman|docker).
# Skips (exit 77) when neither can run containers here.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
engine=${CONTAINER:-}
if [ -z "$engine" ]; then
    if docker info >/dev/null 2>&1; then engine=docker
    elif command -v podman >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then engine=podman
    else echo "SKIP: no docker engine or rootful podman"; exit 77; fi
fi
extra=()
if [ "$engine" = podman ]; then
    # podman here: runc (crun refuses this host's cgroup layout), explicit ulimits, and only local
    # base images (scripts/container-base.sh makes debian:bookworm{,-slim} once)
    export PATH="$PATH:/usr/sbin:/sbin"   # netavark calls iptables
    engine="podman --runtime runc"
    extra=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
    for base in debian:bookworm debian:bookworm-slim; do
        podman image exists "$base" || {
            echo "SKIP: no local $base image for podman (scripts/container-base.sh makes it)"; exit 77; }
    done
    # a machine where podman is installed but cannot run a container (no privileges for it)
    probe=$(timeout 120 $engine run --rm "${extra[@]}" debian:bookworm-slim true 2>&1) ||
        { echo "SKIP: podman cannot run a container here: $(echo "$probe" | tail -1)"; exit 77; }
fi
image=lstmgen-check:$$
name=lstmgen-check-$$
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { $engine rm -f "$name" >/dev/null 2>&1; $engine rmi -f "$image" >/dev/null 2>&1; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; $engine logs "$name" 2>&1 | tail -20; exit 1; }

echo "building $image with $engine"
build_args=()
[ ${#extra[@]} -gt 0 ] && build_args=(--pull=never --format docker "${extra[@]}")
$engine build "${build_args[@]}" -t "$image" "$root" >/tmp/container_check.$$.log 2>&1 \
    || { tail -30 /tmp/container_check.$$.log; fail "build"; }
rm -f /tmp/container_check.$$.log
size=$($engine image inspect -f '{{.Size}}' "$image")
echo "image size: $((size / 1000000)) MB"
$engine run -d --name "$name" "${extra[@]}" -p "127.0.0.1:$port:8080" "$image" >/dev/null || fail "run"
for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.5
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "no /healthz"
out=$(curl -s -X POST "http://127.0.0.1:$port/generate" \
      -d '{"seed_text": "the meaning of life is ", "length": 200, "temperature": 0.5}')
echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r["text"]) == 200, r; print("generate ok:", r["text"][:60])' \
    || fail "generate: $out"
user=$($engine exec "$name" id -u)
[ "$user" != 0 ] || fail "runs as root"
start=$(date +%s)
$engine stop -t 10 "$name" >/dev/null
code=$($engine inspect -f '{{.State.ExitCode}}' "$name")
took=$(( $(date +%s) - start ))
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$took" -lt 10 ] || fail "took ${took}s to stop"
echo "ok: healthz, generate, non-root (uid $user), SIGTERM -> exit 0 in ${took}s"
