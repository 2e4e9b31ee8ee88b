#!/usr/bin/env bash
# Installs Debian packages the image work needs (root), each named by the command it gives:
# by default buildah and debootstrap (to build); `install-tools.sh containerd` adds containerd,
# ctr and runc (to run the image in tests). Another engineer may be running apt at the same
# time, so it waits for the dpkg lock instead of failing on it. Does nothing when all are there.
set -euo pipefail
(($# > 0)) || set -- buildah debootstrap
need=()
for tool in "$@"; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
if ((${#need[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "hack/image: ${need[*]} missing and not root: install them with apt-get" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt_get=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
# apt-get update holds the lists lock, not the dpkg lock: retry it a few times as well.
for try in 1 2 3 4 5; do
    "${apt_get[@]}" update -qq && break
    echo "hack/image: apt-get update failed (try $try), waiting" >&2
    sleep 10
done
"${apt_get[@]}" install -y -qq --no-install-recommends "${need[@]}"
