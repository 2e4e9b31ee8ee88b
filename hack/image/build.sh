#!/usr/bin/env bash
# `make image`: builds clusterip-guard:<version> from the Dockerfile with buildah, without any
# image registry, and exports it as an archive that `ctr -n k8s.io images import` accepts.
#   1. the local base image, once (hack/image/base.sh; cached);
#   2. the wheelhouse on the host (hack/image/wheelhouse.sh; dependencies cached);
#   3. buildah bud, chroot isolation (crun fails on this host's hybrid cgroups, and oci
#      isolation would leave bridges and iptables chains behind), with its layer cache;
#   4. the archive: .dev/images/clusterip-guard.tar (oci-archive).
#
#   BASE_IMAGE    base for both stages (default: the local debootstrap one from step 1)
#   IMAGE         image name (default clusterip-guard); the tag is the project's version
#   ARCHIVE       where the archive goes (default .dev/images/clusterip-guard.tar)
#   IMAGE_SOURCE  org.opencontainers.image.source (default: the git remote, if any)
set -euo pipefail
cd "$(dirname "$0")/../.."
export BASE_IMAGE=${BASE_IMAGE:-localhost/clusterip-guard-base:bookworm}
IMAGE=${IMAGE:-clusterip-guard}
ARCHIVE=${ARCHIVE:-.dev/images/clusterip-guard.tar}
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
source_url=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo unknown)}

if [[ $(id -u) != 0 ]]; then
    echo "hack/image: building images here needs root (buildah with chroot isolation)" >&2
    exit 1
fi
hack/image/install-tools.sh
hack/image/base.sh
hack/image/wheelhouse.sh

echo "hack/image: buildah bud $IMAGE:$version (base $BASE_IMAGE)"
buildah bud --quiet --layers --isolation chroot \
    --build-arg "BASE=$BASE_IMAGE" \
    --build-arg "VERSION=$version" \
    --build-arg "SOURCE=$source_url" \
    --tag "$IMAGE:$version" . >/dev/null

mkdir -p "$(dirname "$ARCHIVE")"
# Exporting compresses every layer (~10 s): skip it when the archive holds this very image.
image_id=$(buildah inspect --type image --format '{{.FromImageID}}' "localhost/$IMAGE:$version")
if [[ ! -s $ARCHIVE || $(cat "$ARCHIVE.id" 2>/dev/null) != "$image_id $IMAGE:$version" ]]; then
    rm -f "$ARCHIVE" "$ARCHIVE.id"
    # The name inside is the one the kubelet asks for with `image: clusterip-guard:<version>`.
    buildah push --quiet "localhost/$IMAGE:$version" \
        "oci-archive:$ARCHIVE:docker.io/library/$IMAGE:$version"
    echo "$image_id $IMAGE:$version" >"$ARCHIVE.id"
fi
size=$(buildah images --format '{{.Size}}' "localhost/$IMAGE:$version")
echo "hack/image: $IMAGE:$version ($size) -> $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
