#!/usr/bin/env bash
# `make up`: the local control plane, the cert bootstrap (url mode) and the webhook, ready.
# Idempotent: what already runs is left running. `make down` stops all of it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dev=${DEV_DIR:-.dev}
port=${WEBHOOK_PORT:-8443}
python=.venv/bin/python
guard=.venv/bin/clusterip-guard
export KUBECONFIG="$dev/kubeconfig"

$python hack/controlplane/localcluster up --dir "$dev" ${KUBERNETES:+--kubernetes "$KUBERNETES"}

# Certificates for a webhook on 127.0.0.1, registered with the API server (caBundle set).
$guard bootstrap --url "https://127.0.0.1:$port" --cert-dir "$dev/certs" \
    --ip 127.0.0.1 --host localhost --default-mode "${DEFAULT_MODE:-off}"

ready() { curl -fsS --cacert "$dev/certs/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; }
if ready; then
    echo "webhook already serving on https://127.0.0.1:$port"
    exit 0
fi
nohup $guard serve --cert-file "$dev/certs/tls.crt" --key-file "$dev/certs/tls.key" \
    --host 127.0.0.1 --port "$port" --metrics-port "${METRICS_PORT:-9090}" --shutdown-delay 0 \
    >"$dev/webhook.log" 2>&1 &
pid=$!
$python hack/controlplane/localcluster record-pid --dir "$dev" "$pid" >/dev/null
for _ in $(seq 1 100); do
    if ready; then
        echo "webhook serving on https://127.0.0.1:$port (pid $pid, log $dev/webhook.log)"
        echo "export KUBECONFIG=$dev/kubeconfig"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "webhook exited; see $dev/webhook.log" >&2; tail -5 "$dev/webhook.log" >&2; exit 2; }
    sleep 0.1
done
echo "webhook not ready after 10s; see $dev/webhook.log" >&2
exit 2
