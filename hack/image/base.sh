#!/usr/bin/env bash
# Builds the local base image once: Debian bookworm minbase with python3 (3.11.2), made by
# debootstrap from Debian's archive and committed with buildah. No image registry is needed.
# Cached: does nothing when the image already exists (FORCE=1 rebuilds it).
#
#   BASE_IMAGE       name of the image (default localhost/clusterip-guard-base:bookworm)
#   MIRROR           Debian mirror (default: the archive this machine's apt sources name)
#   SECURITY_MIRROR  Debian security archive (default: the one they name; none: no updates)
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE_IMAGE=${BASE_IMAGE:-localhost/clusterip-guard-base:bookworm}
SUITE=bookworm

if [[ ${FORCE:-0} != 1 ]] && buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "hack/image: base $BASE_IMAGE is cached"
    exit 0
fi
hack/image/install-tools.sh
MIRROR=${MIRROR:-$(hack/apt.sh mirror)}
SECURITY_MIRROR=${SECURITY_MIRROR:-$(hack/apt.sh security-mirror)}

work=$(mktemp -d "${TMPDIR:-/tmp}/clusterip-guard-base.XXXXXX")
container=""
cleanup() {
    if [[ -n $container ]]; then buildah rm "$container" >/dev/null || true; fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

rootfs="$work/rootfs"
echo "hack/image: debootstrap $SUITE (minbase + python3) into $rootfs"
# Only python3: the Dockerfile makes its venv with --without-pip and runs pip from its wheel
# in the wheelhouse, so neither stage needs python3-venv (ensurepip and the pip and
# setuptools wheels it bundles) and the final stage has no pip at all.
debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
# Security updates: debootstrap only knows the release itself.
if [[ -n $SECURITY_MIRROR ]]; then
    echo "deb $SECURITY_MIRROR $SUITE-security main" >"$rootfs/etc/apt/sources.list.d/security.list"
fi
chroot "$rootfs" /bin/sh -c \
    'apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq -y upgrade && apt-get -qq clean' \
    >>"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
# What a container never needs: package lists and caches, logs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
# debootstrap leaves the host's resolv.conf and hostname; the runtime provides its own.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

container=$(buildah from scratch)
buildah copy --quiet "$container" "$rootfs" / >/dev/null
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --cmd /bin/bash \
    --label org.opencontainers.image.title=clusterip-guard-base \
    --label "org.opencontainers.image.description=Debian $SUITE minbase with python3, made by debootstrap" \
    "$container"
buildah commit --quiet --rm "$container" "$BASE_IMAGE" >/dev/null
container=""
echo "hack/image: made base $BASE_IMAGE ($(buildah inspect --type image --format '{{.FromImageID}}' "$BASE_IMAGE" | cut -c1-12))"
