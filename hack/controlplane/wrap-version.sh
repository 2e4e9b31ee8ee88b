#!/usr/bin/env bash
# Writes the wrapper module that pins an older Kubernetes release's kube-apiserver:
#
#   wrap-version.sh v1.33.13    -> hack/controlplane/versions/v1.33.13/{go.mod,go.sum}
#
# k8s.io/kubernetes requires its staging modules at v0.0.0; each is replaced by its published
# release (v1.33.13 -> v0.33.13). The list of staging modules differs per release, so it is
# read from that release's own go.mod. The result is committed: build.sh --kubernetes VERSION
# builds from it, so every build of a version uses the same dependencies.
# Only kube-apiserver: an older version's control plane runs with the pinned etcd
# (hack/controlplane/go.mod), and the node stays on the pinned release.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${1:-}
if [[ ! $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
    echo "usage: $0 v1.MINOR.PATCH (a Kubernetes release)" >&2
    exit 2
fi
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
folder="$here/versions/$version"

upstream_gomod=$(cd "$here" && go mod download -json "k8s.io/kubernetes@$version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
mapfile -t staging < <(sed -nE 's#^[[:space:]]*(k8s\.io/[a-z0-9-]+) => \./staging/src/.*#\1#p' "$upstream_gomod" | sort -u)
if ((${#staging[@]} == 0)); then
    echo "$0: no staging modules in $upstream_gomod" >&2
    exit 1
fi

mkdir -p "$folder"
{
    echo "// Wrapper module: pins Kubernetes $version's kube-apiserver for \`make test-versions\`"
    echo "// (docs/versions.md). Written by hack/controlplane/wrap-version.sh $version; do not edit."
    echo "module github.com/clusterip-guard/clusterip-guard/hack/controlplane/versions/$version"
    echo
    echo "go 1.26.0"
    echo
    echo "tool k8s.io/kubernetes/cmd/kube-apiserver"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    for module in "${staging[@]}"; do
        printf '\t%s => %s %s\n' "$module" "$module" "$staging_version"
    done
    echo ")"
} >"$folder/go.mod"
rm -f "$folder/go.sum"
(cd "$folder" && go mod tidy)
echo "$folder"
