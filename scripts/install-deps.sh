#!/usr/bin/env bash
# Installs the Debian 12 packages lstmgen needs to build and test, if any are missing.
# Runs apt-get only when something is missing, so it is quick on a prepared machine.
set -euo pipefail
packages=(build-essential pkg-config meson ninja-build libopenblas-dev libcjson-dev
          libmicrohttpd-dev libsqlite3-dev python3-torch python3-numpy curl)
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
