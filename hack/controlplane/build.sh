#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the modules pinned in go.mod, once per version.
#
#   build.sh        kube-apiserver, etcd (and a link to the machine's kubectl if none was built)
#   build.sh node   also kube-controller-manager, kube-scheduler, kubelet, kube-proxy and
#                   kubectl from the same pinned module, and helm from its own wrapper module
#                   (hack/helm), for `make cluster` (docs/design.md, "The local control plane")
#   build.sh --kubernetes VERSION
#                   another release's kube-apiserver, from its wrapper module in
#                   versions/VERSION (wrap-version.sh writes one), beside the pinned etcd:
#                   the control plane of `make test-versions` (docs/versions.md). The pinned
#                   release's own VERSION is the plain build. The node is only ever pinned.
#
# Prints the folder holding the binaries on its last line.
# Honours, as envtest users expect:
#   KUBEBUILDER_ASSETS          a folder that already has kube-apiserver and etcd: used as is
#                               (plain mode only; `node` always builds into the cache)
#   TEST_ASSET_KUBE_APISERVER   a kube-apiserver binary to use instead of building one
#   TEST_ASSET_ETCD             an etcd binary to use instead of building one
#   CLUSTERIP_GUARD_CACHE       where built binaries are kept (default ~/.cache/clusterip-guard)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    echo "usage: $0 [node] [--kubernetes VERSION]" >&2
    exit 2
}
mode="" wanted_version=""
while (($#)); do
    case "$1" in
        node) mode=node ;;
        --kubernetes)
            (($# >= 2)) || usage
            wanted_version=$2
            shift
            ;;
        --kubernetes=*) wanted_version=${1#--kubernetes=} ;;
        *) usage ;;
    esac
    shift
done

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

if [[ -n "${KUBEBUILDER_ASSETS:-}" && "$mode" != node ]]; then
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
pinned_assets="$cache/controlplane/kube-$kube_version-etcd-$etcd_version"
kube_module=$here
if [[ -n $wanted_version && $wanted_version != "$kube_version" ]]; then
    kube_module="$here/versions/$wanted_version"
    if [[ ! -f $kube_module/go.mod ]]; then
        echo "$0: no wrapper module for Kubernetes $wanted_version in $kube_module (hack/controlplane/wrap-version.sh $wanted_version writes one)" >&2
        exit 2
    fi
    if [[ $mode == node ]]; then
        echo "$0: the node is built from the pinned release $kube_version only, not $wanted_version" >&2
        exit 2
    fi
    kube_version=$(cd "$kube_module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
fi
assets="$cache/controlplane/kube-$kube_version-etcd-$etcd_version"
mkdir -p "$assets"
# One build at a time per folder: a second build.sh (another worktree, a test) waits here,
# then finds the binaries built.
exec 9>"$assets/.build.lock"
flock 9

build() {
    # build NAME PACKAGE LDFLAGS [MODULE_DIR [OUTPUT]]
    local name=$1 package=$2 ldflags=$3 module=${4:-$here} output=${5:-$assets/$1}
    # A plain run links the machine's kubectl here when none was built: the node needs ours.
    if [[ -x "$output" && ! ($mode == node && $name == kubectl && -L "$output") ]]; then
        return
    fi
    echo ">> building $name from $package (first run only: 1-6 minutes each on 2 cores)" >&2
    local started=$SECONDS
    mkdir -p "$(dirname "$output")"
    (cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$output.partial.$$" "$package")
    mv -f "$output.partial.$$" "$output"
    echo ">> built $name in $((SECONDS - started))s -> $output" >&2
}

version_pkg=k8s.io/component-base/version
kube_ldflags="-s -w \
 -X $version_pkg.gitVersion=$kube_version \
 -X $version_pkg.gitMajor=$(echo "$kube_version" | sed -E 's/^v([0-9]+)\..*/\1/') \
 -X $version_pkg.gitMinor=$(echo "$kube_version" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/') \
 -X $version_pkg.gitTreeState=clean \
 -X $version_pkg.buildDate=1970-01-01T00:00:00Z"

build_together() {
    # build_together LDFLAGS NAME=PACKAGE...: one `go build` for several binaries of this
    # module, so that they compile and link in parallel (on a cold machine the links of six
    # large binaries, one after another, were minutes). Binaries already built are skipped.
    local ldflags=$1 wanted=() names=() entry
    shift
    for entry in "$@"; do
        local name=${entry%%=*} output="$assets/${entry%%=*}"
        if [[ -x "$output" && ! ($name == kubectl && -L "$output") ]]; then continue; fi
        names+=("$name")
        wanted+=("${entry#*=}")
    done
    ((${#wanted[@]})) || return 0
    echo ">> building ${names[*]} together (first run only: about 6 minutes on 2 cores)" >&2
    local started=$SECONDS scratch
    scratch=$(mktemp -d "$assets/.partial.XXXXXX")
    (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$scratch/" "${wanted[@]}")
    # go build names each binary after its package's last path element, or the one before
    # a major-version suffix (go.etcd.io/etcd/server/v3 -> server).
    for entry in "$@"; do
        local name=${entry%%=*} package=${entry#*=} base
        base=$(basename "$package")
        if [[ $base =~ ^v[0-9]+$ ]]; then base=$(basename "$(dirname "$package")"); fi
        local built="$scratch/$base"
        if [[ -x "$built" ]]; then mv -f "$built" "$assets/$name"; fi
    done
    rm -rf "$scratch"
    echo ">> built ${names[*]} in $((SECONDS - started))s -> $assets" >&2
}

if [[ "$mode" == node && -z "${TEST_ASSET_KUBE_APISERVER:-}${TEST_ASSET_ETCD:-}" ]]; then
    build_together "$kube_ldflags" \
        kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
        etcd=go.etcd.io/etcd/server/v3 \
        kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
        kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
        kubelet=k8s.io/kubernetes/cmd/kubelet \
        kube-proxy=k8s.io/kubernetes/cmd/kube-proxy \
        kubectl=k8s.io/kubernetes/cmd/kubectl
fi
if [[ -n "${TEST_ASSET_KUBE_APISERVER:-}" ]]; then
    ln -sf "$TEST_ASSET_KUBE_APISERVER" "$assets/kube-apiserver"
else
    build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags" "$kube_module"
fi
if [[ -n "${TEST_ASSET_ETCD:-}" ]]; then
    ln -sf "$TEST_ASSET_ETCD" "$assets/etcd"
elif [[ $assets != "$pinned_assets" ]]; then
    # Another release's API server runs beside the pinned etcd, built once into its folder.
    build etcd go.etcd.io/etcd/server/v3 "-s -w" "$here" "$pinned_assets/etcd"
    ln -sfn "$pinned_assets/etcd" "$assets/etcd"
else
    build etcd go.etcd.io/etcd/server/v3 "-s -w"
fi
if [[ "$mode" == node ]]; then
    for command in kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
        build "$command" "k8s.io/kubernetes/cmd/$command" "$kube_ldflags"
    done
    # helm has its own version; it is kept per version and linked into the folder.
    helm_module="$here/../helm"
    helm_version=$(cd "$helm_module" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
    helm_binary="$cache/helm/helm-$helm_version/helm"
    build helm helm.sh/helm/v4/cmd/helm \
        "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
        "$helm_module" "$helm_binary"
    ln -sfn "$helm_binary" "$assets/helm"
else
    link_kubectl "$assets"
fi
echo "$assets"
