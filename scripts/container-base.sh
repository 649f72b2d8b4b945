#!/usr/bin/env bash
# What the container tests (tests/container_check.sh, tests/deploy/test_compose.py) need on a
# Debian 12 machine that has a Debian mirror but no container registry: rootful podman with runc,
# podman-compose, and local debian:bookworm and debian:bookworm-slim base images, made once with
# debootstrap from the machine's own mirror. Quick when all of it is there already.
# Never fails the caller: where something cannot be had it says why, and those tests then skip
# with their reason.
set -uo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"   # netavark calls iptables
say() { echo "container-base: $*"; }
[ "$(id -u)" = 0 ] || { say "not root, so no rootful podman: the container tests will skip"; exit 0; }

packages=(podman runc podman-compose netavark aardvark-dns iptables uidmap debootstrap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } \
        >/tmp/container-base.apt.log 2>&1; then
        tail -5 /tmp/container-base.apt.log
        say "apt-get failed: the container tests will skip"
        exit 0
    fi
fi

if podman image exists debian:bookworm-slim && podman image exists debian:bookworm; then
    exit 0
fi
# The first plain Debian archive among apt's sources (one-line or deb822 form), so that the
# image's own apt-get reaches the same mirror as the machine's.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^\s*#' |
         grep -oE '(https?|file)://[^ ]+' | sed 's:/*$::' | grep -E '/debian$' | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d /var/tmp/lstmgen-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
say "debootstrap bookworm from $mirror (once; about a minute)"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/container-base.log 2>&1; then
    tail -5 /tmp/container-base.log
    say "debootstrap failed: the container tests will skip"
    exit 0
fi
# as in Debian's own images: updates and security fixes, no package lists or caches inside
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$mirror" "$mirror" "$mirror" > "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
if ! tar --numeric-owner -C "$rootfs" -c . |
        podman import --quiet --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - docker.io/library/debian:bookworm-slim >/dev/null; then
    say "podman import failed: the container tests will skip"
    exit 0
fi
podman tag docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm
say "made debian:bookworm-slim and debian:bookworm ($(podman image inspect -f '{{.Size}}' \
    debian:bookworm-slim | awk '{printf "%.0f MB", $1 / 1e6}'))"
