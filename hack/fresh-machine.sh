#!/usr/bin/env bash
# A new user's first run, on this machine made fresh as far as the project is concerned:
#   1. stops what this checkout runs (`make cluster-down`, `make down`);
#   2. purges the Debian packages the project installed (hack/apt.sh lists each one it
#      installs in /var/lib/clusterip-guard/apt-installed; the node's runtime and the image
#      builders are purged even without that record), then `apt-get autoremove --purge`
#      for what they pulled in, and buildah's image store;
#   3. removes the project's caches (~/.cache/clusterip-guard: the control plane, helm,
#      cert-manager), pip's cache, and Go's build and module caches, which only our builds
#      fill on a machine of this kind (KEEP_GO_CACHES=1 keeps them), this checkout's
#      virtualenv, .dev/ and wheelhouse/;
#   4. clones main (what has been committed, nothing else) into a temporary folder and runs,
#      there, the README's two commands as a newcomer types them, with nothing in between:
#      `make demo` (cold; its cluster keeps running), `make test` (cold; it stops the demo's
#      cluster, saying so, for its own nodes), then `make demo` (warm, after the tests) and
#      `make demo` again (on the cluster the first left running), timing each; checks that
#      `make test` left no process of the project behind, and prints the four figures; then
#      `make cluster-down` and removes the clone.
# Exits non-zero when any of them fails. Root, Linux; about 40 minutes on 2 cores.
#
#   FRESH_KEEP=1     keep the clone (its path is printed; kept anyway when a step fails)
#   FRESH_BRANCH     what to clone (default main)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
branch=${FRESH_BRANCH:-main}

say() { printf '\nfresh-machine: %s\n' "$*" >&2; }

if [[ $(id -u) != 0 ]]; then
    echo "fresh-machine: needs root (it purges Debian packages)" >&2
    exit 2
fi
git rev-parse --verify --quiet "$branch" >/dev/null || {
    echo "fresh-machine: no branch $branch in $root" >&2
    exit 2
}

say "1. stopping what this checkout runs"
python3 hack/cluster/cluster.py --dir .dev down >/dev/null 2>&1 || true
python3 hack/controlplane/localcluster down --dir .dev >/dev/null 2>&1 || true

say "2. purging the Debian packages the project installed"
ours=(containerd runc containernetworking-plugins buildah debootstrap busybox-static)
record=/var/lib/clusterip-guard/apt-installed
if [[ -f $record ]]; then mapfile -t -O "${#ours[@]}" ours <"$record"; fi
purge=()
for package in $(printf '%s\n' "${ours[@]}" | sort -u); do
    if dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        purge+=("$package")
    fi
done
if command -v buildah >/dev/null; then
    buildah rm --all >/dev/null 2>&1 || true
    buildah rmi --all --force >/dev/null 2>&1 || true
fi
if ((${#purge[@]})); then
    echo "purge: ${purge[*]}" >&2
    apt-get -q -o DPkg::Lock::Timeout=600 purge -y "${purge[@]}" >/dev/null
    apt-get -q -o DPkg::Lock::Timeout=600 autoremove --purge -y >/dev/null
fi
rm -rf "$record" /var/lib/containers /run/containers /etc/containers

say "3. removing the project's caches, virtualenv and build outputs"
cache=${CLUSTERIP_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clusterip-guard}
removed=("$cache" "${XDG_CACHE_HOME:-$HOME/.cache}/pip" .venv .dev wheelhouse)
if [[ ${KEEP_GO_CACHES:-0} != 1 ]] && command -v go >/dev/null; then
    removed+=("$(go env GOCACHE)" "$(go env GOMODCACHE)")
    # The module cache is read-only by design: make it removable first.
    chmod -R u+w "$(go env GOMODCACHE)" 2>/dev/null || true
fi
for path in "${removed[@]}"; do
    if [[ -e $path ]]; then
        echo "remove: $path" >&2
        rm -rf --one-file-system "$path"
    fi
done

say "4. a fresh clone of $branch, and the README's two commands"
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterip-guard-fresh.XXXXXX")
clone=$work/clusterip-guard
cleanup() {
    local status=$?
    (cd "$clone" 2>/dev/null && make cluster-down >/dev/null 2>&1 && make down >/dev/null 2>&1) || true
    if [[ ${FRESH_KEEP:-0} == 1 || $status != 0 ]]; then
        echo "fresh-machine: the clone is kept in $clone" >&2
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
git clone --quiet --no-local --branch "$branch" "$root" "$clone"
cd "$clone"
logs=$work/logs
mkdir -p "$logs"

timed() {
    # timed NAME COMMAND...: runs it with its output in $logs/NAME.log; prints the seconds.
    local name=$1 started=$SECONDS
    shift
    if ! "$@" >"$logs/$name.log" 2>&1; then
        tail -n 40 "$logs/$name.log" >&2
        echo "fresh-machine: $name FAILED after $((SECONDS - started)) s (log: $logs/$name.log)" >&2
        exit 1
    fi
    echo $((SECONDS - started))
}
minutes() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

say "make demo (cold)"
cold_demo=$(timed demo-cold make demo)
echo "cold make demo: $(minutes "$cold_demo")" >&2
say "make test (cold), the demo's cluster still running"
cold_test=$(timed test-cold make test)
echo "cold make test: $(minutes "$cold_test") ($(grep -Eo '[0-9]+ passed[^=]*' "$logs/test-cold.log" | tail -n 1))" >&2
left=$(pgrep -f -- "$clone|pytest-of-" || true)
if [[ -n $left ]]; then
    ps -o pid,args -p "${left//$'\n'/,}" >&2 || true
    echo "fresh-machine: make test left processes running" >&2
    exit 1
fi
say "make demo (warm)"
warm_demo=$(timed demo-warm make demo)
say "make demo (again, on its running cluster)"
again_demo=$(timed demo-again make demo)

cat <<EOF

fresh-machine: $(git rev-parse --short HEAD) on $(nproc) cores, $(date -u +%Y-%m-%d)
  cold make demo   $(minutes "$cold_demo")
  cold make test   $(minutes "$cold_test")
  warm make demo   $(minutes "$warm_demo")
  make demo again  $(minutes "$again_demo")
EOF
