#!/usr/bin/env bash
# Installs the Debian 12 packages lstmgen needs, if any are missing: to build and serve by
# default, and with --test also what the tests use (python3 with PyTorch as the reference, clang
# for libFuzzer, Chromium, Node.js and tests/web's npm packages for the web app's browser test,
# podman and local base images for the container tests: scripts/container-base.sh).
# Runs apt-get and npm only when something is missing, so it is quick on a prepared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
test=""
[ "${1:-}" = --test ] && test=1
packages=(build-essential pkg-config meson ninja-build python3 libopenblas-dev libcjson-dev
          libmicrohttpd-dev libsqlite3-dev)
if [ -n "$test" ]; then
    packages+=(python3-torch python3-numpy curl clang chromium)
    # Any Node.js with npm will do (a machine may have a newer one than Debian's, from elsewhere).
    command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# tests/web's packages (playwright-core drives Debian's Chromium; it downloads no browser), again
# when package-lock.json is newer than the last install.
if [ -n "$test" ] && [ tests/web/package-lock.json -nt tests/web/node_modules/.package-lock.json ]; then
    echo "installing tests/web's npm packages"
    npm ci --prefix tests/web --no-audit --no-fund
fi
# The container tests' podman, podman-compose and local base images (as root; else they skip).
[ -n "$test" ] && scripts/container-base.sh
exit 0
