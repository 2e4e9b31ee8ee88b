#!/usr/bin/env bash
# An nginx image for the exercise clusterip-guard grew out of, without a registry: Debian
# bookworm minbase with Debian's nginx-light package, made by debootstrap and committed with
# buildah, exported as an archive the node imports. Cached: does nothing when the archive
# exists (FORCE=1 rebuilds it).
#
#   NGINX_IMAGE    name inside the archive (default localhost/nginx-debian:bookworm)
#   NGINX_ARCHIVE  where the archive goes (default .dev/images/nginx-debian.tar)
#   MIRROR         Debian mirror (default: the archive this machine's apt sources name)
set -euo pipefail
cd "$(dirname "$0")/../.."
NGINX_IMAGE=${NGINX_IMAGE:-localhost/nginx-debian:bookworm}
NGINX_ARCHIVE=${NGINX_ARCHIVE:-.dev/images/nginx-debian.tar}
SUITE=bookworm

if [[ ${FORCE:-0} != 1 && -s $NGINX_ARCHIVE ]]; then
    echo "hack/image: $NGINX_IMAGE is cached in $NGINX_ARCHIVE"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "hack/image: building images here needs root (debootstrap, buildah)" >&2
    exit 1
fi
hack/image/install-tools.sh
MIRROR=${MIRROR:-$(hack/apt.sh mirror)}

work=$(mktemp -d "${TMPDIR:-/tmp}/nginx-image.XXXXXX")
container=""
cleanup() {
    if [[ -n $container ]]; then buildah rm "$container" >/dev/null || true; fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

rootfs="$work/rootfs"
echo "hack/image: debootstrap $SUITE (minbase + nginx-light) into $rootfs"
debootstrap --variant=minbase --include=nginx-light "$SUITE" "$rootfs" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/tmp/* "$rootfs"/var/log/*
mkdir -p "$rootfs/var/log/nginx"
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

container=$(buildah from scratch)
buildah copy --quiet "$container" "$rootfs" / >/dev/null
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --entrypoint '["nginx", "-g", "daemon off;"]' \
    --port 80 \
    --label "org.opencontainers.image.description=Debian $SUITE nginx-light (Debian's package), made by debootstrap" \
    "$container"
buildah commit --quiet --rm "$container" "$NGINX_IMAGE" >/dev/null
container=""
mkdir -p "$(dirname "$NGINX_ARCHIVE")"
rm -f "$NGINX_ARCHIVE"
buildah push --quiet "$NGINX_IMAGE" "oci-archive:$NGINX_ARCHIVE:$NGINX_IMAGE"
echo "hack/image: $NGINX_IMAGE -> $NGINX_ARCHIVE ($(du -h "$NGINX_ARCHIVE" | cut -f1))"
