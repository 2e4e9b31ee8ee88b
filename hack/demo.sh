#!/usr/bin/env bash
# `make demo`: on a machine that can run a real node, the exercise clusterip-guard grew out of,
# installed by Helm (hack/demo-node.sh); elsewhere, each mode on the local control plane
# (hack/demo-loopback.sh), saying why. DEMO=loopback chooses the second.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ ${DEMO:-node} != loopback ]]; then
    if why=$(python3 hack/cluster/cluster.py check 2>&1); then
        exec hack/demo-node.sh
    fi
    echo "make demo: $why"
    echo "make demo: showing the webhook beside the local control plane instead (no Pods run there)"
    echo
fi
hack/up.sh || exit
exec hack/demo-loopback.sh
