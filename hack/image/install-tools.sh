#!/usr/bin/env bash
# Installs what building the image needs on a Debian host (root): buildah and debootstrap.
# Another engineer may be running apt at the same time, so wait for the dpkg lock instead
# of failing on it. Does nothing when both are already there.
set -euo pipefail
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
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
