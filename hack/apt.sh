#!/usr/bin/env bash
# Every apt call the project makes goes through here. apt is shared by everything on the
# machine: two apt runs at once fail on its locks (dpkg's, and the package lists' one, which
# `apt-get update` takes and `DPkg::Lock::Timeout` does not cover), so this
#   - runs one of the project's apt calls at a time (a flock of our own, waited for),
#   - waits for dpkg's lock when another program holds it (DPkg::Lock::Timeout),
#   - retries `apt-get update` while another program holds the lists' lock,
#   - updates the lists once when they are missing or stale, or when a package has no
#     candidate in them, and never otherwise.
#
#   hack/apt.sh install PACKAGE...   install those not installed (root); nothing when all are
#   hack/apt.sh mirror               the Debian archive the machine's apt sources name
#   hack/apt.sh security-mirror      the Debian security archive they name (empty if none)
#
#   APT_LOCK_TIMEOUT   seconds to wait for any lock (default 600)
#   APT_LISTS_MAX_AGE  lists older than this many seconds are refreshed first (default 86400)
#
# The packages it installed are listed in /var/lib/clusterip-guard/apt-installed, so that
# hack/fresh-machine.sh purges exactly those and never a package the machine came with.
#
# The mirror is read from apt's own configuration, so that an image is made from whatever
# mirror this machine is configured to use; no address is written in the repository.
set -euo pipefail

timeout=${APT_LOCK_TIMEOUT:-600}
max_age=${APT_LISTS_MAX_AGE:-86400}
lists=/var/lib/apt/lists
record=/var/lib/clusterip-guard/apt-installed
apt_get=(apt-get -q -o "DPkg::Lock::Timeout=$timeout" -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive

say() { echo "hack/apt: $*" >&2; }

installed() {
    dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

lists_fresh() {
    # Fresh: package lists exist and the newest is younger than APT_LISTS_MAX_AGE.
    local newest
    newest=$(find "$lists" -maxdepth 1 -name '*_Packages*' -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1)
    [[ -n $newest ]] && (($(date +%s) - ${newest%.*} < max_age))
}

update_lists() {
    # `apt-get update`, retried while another program holds the lists' lock.
    local deadline=$((SECONDS + timeout)) output waiting=0
    while true; do
        if output=$("${apt_get[@]}" update 2>&1); then
            return 0
        fi
        if [[ $output != *"Could not get lock"* ]] || ((SECONDS >= deadline)); then
            printf '%s\n' "$output" | tail -n 5 >&2
            say "apt-get update failed"
            return 1
        fi
        if ((waiting == 0)); then
            say "another program holds the package lists' lock: waiting for it"
            waiting=1
        fi
        sleep 2
    done
}

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $candidate && $candidate != "(none)" ]]
}

serialised() {
    # Run "$@" holding the project's own apt lock (one of our apt calls at a time).
    local lock_dir=/run/lock
    [[ -d $lock_dir ]] || lock_dir=/tmp
    exec 8>"$lock_dir/clusterip-guard-apt.lock"
    if ! flock -w "$timeout" 8; then
        say "another apt call of this project held the lock for ${timeout}s"
        return 1
    fi
    "$@"
}

missing_of() {
    # The packages among "$@" that are not installed, one a line.
    local package
    for package in "$@"; do
        installed "$package" || echo "$package"
    done
}

install_now() {
    local missing
    # Checked again under the lock: a build running beside us may have installed them.
    mapfile -t missing < <(missing_of "$@")
    ((${#missing[@]})) || return 0
    local updated=0
    if ! lists_fresh; then
        say "package lists missing or stale: apt-get update"
        update_lists
        updated=1
    fi
    for package in "${missing[@]}"; do
        if ! has_candidate "$package" && ((updated == 0)); then
            say "$package has no candidate in the package lists: apt-get update"
            update_lists
            updated=1
        fi
    done
    say "apt-get install ${missing[*]}"
    "${apt_get[@]}" install -y --no-install-recommends "${missing[@]}" >&2
    # What this project installed, for hack/fresh-machine.sh to purge (and nothing else).
    mkdir -p "$(dirname "$record")"
    printf '%s\n' "${missing[@]}" >>"$record"
}

install() {
    local missing
    mapfile -t missing < <(missing_of "$@")
    ((${#missing[@]})) || return 0
    if [[ $(id -u) != 0 ]]; then
        say "need root to install: ${missing[*]}"
        return 1
    fi
    serialised install_now "${missing[@]}"
}

archive_of() {
    # The archive root (before /dists/) of the first Packages index with this label.
    local label=$1 base
    base=$(apt-get indextargets --format '$(BASE_URI)' "Label: $label" 'Created-By: Packages' | head -n 1)
    if [[ -z $base ]] && [[ $(id -u) == 0 ]] && ! lists_fresh; then
        # indextargets reads the lists' Release files: a machine without lists has none yet.
        serialised update_lists
        base=$(apt-get indextargets --format '$(BASE_URI)' "Label: $label" 'Created-By: Packages' | head -n 1)
    fi
    echo "${base%%/dists/*}"
}

case ${1:-} in
    install)
        shift
        (($# > 0)) || { say "usage: $0 install PACKAGE..."; exit 2; }
        install "$@"
        ;;
    mirror)
        mirror=$(archive_of Debian)
        [[ -n $mirror ]] || { say "the machine's apt sources name no Debian archive"; exit 1; }
        echo "$mirror"
        ;;
    security-mirror)
        archive_of Debian-Security
        ;;
    *)
        say "usage: $0 install PACKAGE... | mirror | security-mirror"
        exit 2
        ;;
esac
