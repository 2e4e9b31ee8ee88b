#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the modules pinned in go.mod, once per version.
#
# Prints the folder holding the binaries (kube-apiserver, etcd, kubectl) on its last line.
# Honours, as envtest users expect:
#   KUBEBUILDER_ASSETS          a folder that already has kube-apiserver and etcd: used as is
#   TEST_ASSET_KUBE_APISERVER   a kube-apiserver binary to use instead of building one
#   TEST_ASSET_ETCD             an etcd binary to use instead of building one
#   CLUSTERIP_GUARD_CACHE       where built binaries are kept (default ~/.cache/clusterip-guard)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

module_version() {
    # The version go.mod resolved for a module, without building anything.
    (cd "$here" && go list -m -f '{{.Version}}' "$1")
}

link_kubectl() {
    local dir=$1
    if [[ ! -x "$dir/kubectl" ]] && command -v kubectl >/dev/null; then
        ln -sf "$(command -v kubectl)" "$dir/kubectl"
    fi
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    for binary in kube-apiserver etcd; do
        if [[ ! -x "$KUBEBUILDER_ASSETS/$binary" ]]; then
            echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $binary" >&2
            exit 2
        fi
    done
    echo "$KUBEBUILDER_ASSETS"
    exit 0
fi

kube_version=$(module_version k8s.io/kubernetes)
etcd_version=$(module_version go.etcd.io/etcd/server/v3)
cache=${CLUSTERIP_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clusterip-guard}
assets="$cache/controlplane/kube-$kube_version-etcd-$etcd_version"
mkdir -p "$assets"

build() {
    # build NAME PACKAGE LDFLAGS
    local name=$1 package=$2 ldflags=$3
    if [[ -x "$assets/$name" ]]; then
        return
    fi
    echo ">> building $name from $package (first run only; kube-apiserver takes about 6 minutes on 2 cores)" >&2
    local started=$SECONDS
    (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$assets/$name.partial" "$package")
    mv "$assets/$name.partial" "$assets/$name"
    echo ">> built $name in $((SECONDS - started))s -> $assets/$name" >&2
}

version_pkg=k8s.io/component-base/version
kube_ldflags="-s -w \
 -X $version_pkg.gitVersion=$kube_version \
 -X $version_pkg.gitMajor=$(echo "$kube_version" | sed -E 's/^v([0-9]+)\..*/\1/') \
 -X $version_pkg.gitMinor=$(echo "$kube_version" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/') \
 -X $version_pkg.gitTreeState=clean \
 -X $version_pkg.buildDate=1970-01-01T00:00:00Z"

if [[ -n "${TEST_ASSET_KUBE_APISERVER:-}" ]]; then
    ln -sf "$TEST_ASSET_KUBE_APISERVER" "$assets/kube-apiserver"
else
    build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
fi
if [[ -n "${TEST_ASSET_ETCD:-}" ]]; then
    ln -sf "$TEST_ASSET_ETCD" "$assets/etcd"
else
    build etcd go.etcd.io/etcd/server/v3 "-s -w"
fi
link_kubectl "$assets"
echo "$assets"
