#!/usr/bin/env bash
# Installs the Debian 12 packages lstmgen needs, if any are missing: to build and serve by
# default, and with --test also what the tests use (python3 with PyTorch as the reference, clang
# for libFuzzer).
# Runs apt-get only when something is missing, so it is quick on a prepared machine.
set -euo pipefail
packages=(build-essential pkg-config meson ninja-build python3 libopenblas-dev libcjson-dev
          libmicrohttpd-dev libsqlite3-dev)
[ "${1:-}" = --test ] && packages+=(python3-torch python3-numpy curl clang)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
