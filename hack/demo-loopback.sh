#!/usr/bin/env bash
# `make demo` without a node: each mode as a user sees it from kubectl, on the local control plane.
# (No controllers run there: the Deployment is stored but its pods never start.)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export KUBECONFIG=${DEV_DIR:-.dev}/kubeconfig
k() { echo "\$ kubectl $*"; kubectl "$@"; echo; }
step() { printf '\n=== %s ===\n\n' "$1"; }
fresh_namespace() {  # namespaces never finish deleting here: a new name per run
    local ns="$1-$(date +%s)"
    kubectl create namespace "$ns" >/dev/null
    [[ -n "$2" ]] && kubectl label namespace "$ns" "clusterip-guard.io/mode=$2" >/dev/null
    echo "$ns"
}

step "mutate: the classic nginx NodePort, stored as ClusterIP"
ns=$(fresh_namespace shop mutate)
k get namespace "$ns" --show-labels
k -n "$ns" apply -f examples/nginx-nodeport.yaml
k -n "$ns" get service nginx -o custom-columns=NAME:.metadata.name,TYPE:.spec.type,CLUSTER-IP:.spec.clusterIP,PORTS:.spec.ports[*].port,NODE-PORTS:.spec.ports[*].nodePort,CONVERTED-FROM:.metadata.annotations.clusterip-guard\\.io/converted-from
k -n "$ns" get deployment nginx -o custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas

step "enforce: an exposed Service is denied, with the field and the fix"
ns=$(fresh_namespace payments enforce)
k -n "$ns" create service nodeport web --tcp=80:8080
k -n "$ns" create service loadbalancer web --tcp=80:8080
k -n "$ns" create service clusterip web --tcp=80:8080

step "audit: allowed, with a warning (and an audit-log annotation and a metric)"
ns=$(fresh_namespace legacy audit)
k -n "$ns" create service loadbalancer web --tcp=80:8080
k -n "$ns" get service web -o custom-columns=NAME:.metadata.name,TYPE:.spec.type

step "unlabelled namespace: not looked at (the default mode is off)"
ns=$(fresh_namespace sandbox "")
k -n "$ns" create service nodeport web --tcp=80:8080
k -n "$ns" get service web -o custom-columns=NAME:.metadata.name,TYPE:.spec.type,NODE-PORTS:.spec.ports[*].nodePort

step "offline: clusterip-guard check on the same manifest"
echo "\$ clusterip-guard check --mode mutate examples/nginx-nodeport.yaml"
.venv/bin/clusterip-guard check --mode mutate examples/nginx-nodeport.yaml
echo
echo "The control plane and the webhook keep running: KUBECONFIG=$KUBECONFIG kubectl ...; 'make down' stops them."
