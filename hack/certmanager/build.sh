#!/usr/bin/env bash
# Builds our cert-manager command (main.go: the controllers and the cainjector) from the
# release pinned in go.mod, once per version and source, into the cache; prints its path last.
#   CLUSTERIP_GUARD_CACHE   where built binaries are kept (default ~/.cache/clusterip-guard)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/cert-manager/cert-manager)
# Our main is part of what is built: a change to it (or to go.sum) is a new binary.
source=$(cd "$here" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
cache=${CLUSTERIP_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clusterip-guard}
folder="$cache/certmanager/cert-manager-$version-$source"
binary="$folder/certmanager"
mkdir -p "$folder"
# One build at a time per folder: a second build.sh (another worktree, a test) waits here,
# then finds the binary built.
exec 9>"$folder/.build.lock"
flock 9

if [[ ! -x "$binary" ]]; then
    echo ">> building certmanager (cert-manager $version) (first run only: about 3 minutes on 2 cores)" >&2
    started=$SECONDS
    (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary.partial.$$" .)
    mv -f "$binary.partial.$$" "$binary"
    echo ">> built certmanager in $((SECONDS - started))s -> $binary" >&2
fi
echo "$binary"
