#!/usr/bin/env bash
# The cert bootstrap a cluster admin runs once, and again safely (cron, CI, upgrades):
# makes the CA and serving certificate, stores them, registers clusterip-guard's webhooks.
# Same as `clusterip-guard bootstrap`; see `certs/bootstrap.sh --help`.
#   certs/bootstrap.sh --namespace clusterip-guard                  # in-cluster webhook (Secret)
#   certs/bootstrap.sh --url https://10.0.0.5:8443 --cert-dir ./tls # webhook outside the cluster
#   certs/bootstrap.sh --uninstall                                  # webhooks first, then Secrets
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if command -v clusterip-guard >/dev/null; then
    exec clusterip-guard bootstrap "$@"
elif [[ -x "$root/.venv/bin/clusterip-guard" ]]; then
    exec "$root/.venv/bin/clusterip-guard" bootstrap "$@"
fi
echo "certs/bootstrap.sh: clusterip-guard is not installed; run 'make setup' or 'pip install .'" >&2
exit 2
