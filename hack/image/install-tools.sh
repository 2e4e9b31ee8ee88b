#!/usr/bin/env bash
# Installs Debian packages the image work needs (root), each named by the command it gives:
# by default buildah and debootstrap (to build); `install-tools.sh containerd` adds containerd,
# ctr and runc (to run the image in tests). Does nothing when all are there; hack/apt.sh waits
# for any other apt run (another build of ours, or another program) instead of failing.
set -euo pipefail
(($# > 0)) || set -- buildah debootstrap
packages=()
for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    case $tool in
        containerd | ctr) packages+=(containerd runc) ;;
        *) packages+=("$tool") ;;
    esac
done
((${#packages[@]})) || exit 0
exec "$(dirname "$0")/../apt.sh" install "${packages[@]}"
