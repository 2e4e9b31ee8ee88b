#!/usr/bin/env bash
# `make demo` on a real node: clusterip-guard installed by its Helm chart from the image the
# Dockerfile builds, then the classic exercise: nginx with three replicas behind a NodePort
# Service, which in a `mutate` namespace is stored as ClusterIP and answers only inside.
# What it shows are the commands a cluster admin types, and their output.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dev=${DEV_DIR:-.dev}
node_ip=10.244.0.1
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
nginx_image=localhost/nginx-debian:bookworm

show() { echo "\$ $*"; "$@" 2>&1; echo; }  # as a terminal shows it: stderr in its place
step() { printf '\n=== %s ===\n\n' "$1"; }

step "a one-node cluster on this machine, and the images (no registry: built here, imported)"
mkdir -p "$dev"
dev=$(cd "$dev" && pwd)
# The images build (network and disk) while the node's binaries compile (CPU): on a fresh
# machine that overlap saves minutes.
(hack/image/build.sh && hack/image/nginx.sh) >"$dev/demo-images.log" 2>&1 &
images=$!
python3 hack/cluster/cluster.py --dir "$dev" up
export KUBECONFIG=$dev/cluster/kubeconfig PATH=$dev/bin:$root/.venv/bin:$PATH
wait "$images" || { cat "$dev/demo-images.log" >&2; exit 1; }
python3 hack/cluster/cluster.py --dir "$dev" import .dev/images/clusterip-guard.tar
python3 hack/cluster/cluster.py --dir "$dev" import .dev/images/nginx-debian.tar
# A second run starts the exercise afresh.
kubectl delete namespace shop sandbox --ignore-not-found --wait=true >/dev/null

step "install: what a cluster admin types"
show helm upgrade --install clusterip-guard charts/clusterip-guard \
    --namespace clusterip-guard --create-namespace --wait
show kubectl -n clusterip-guard get pods
show helm test clusterip-guard --namespace clusterip-guard

step "the exercise: nginx behind a NodePort Service, in a namespace in mutate mode"
echo "(no registry here: the example's nginx:1.27 is swapped for Debian's nginx, built above)"
show kubectl create namespace shop
show kubectl label namespace shop clusterip-guard.io/mode=mutate
echo "\$ sed 's#nginx:1.27#$nginx_image#' examples/nginx-nodeport.yaml | kubectl -n shop apply -f -"
sed "s#nginx:1.27#$nginx_image#" examples/nginx-nodeport.yaml | kubectl -n shop apply -f -
echo
show kubectl -n shop rollout status deployment/nginx --timeout=180s
show kubectl -n shop get deployment,service

step "inside the cluster: a Pod gets nginx's page through the ClusterIP"
ip=$(kubectl -n shop get service nginx -o jsonpath='{.spec.clusterIP}')
# kube-proxy programs a new Service within a second or two: the client retries meanwhile.
fetch="import time, urllib.request
for attempt in range(30):
    try:
        page = urllib.request.urlopen('http://$ip/', timeout=5).read().decode()
        break
    except OSError:
        time.sleep(1)
print([line for line in page.splitlines() if '<h1>' in line][0])"
# Run, wait, then read its log: `kubectl run -i` loses the output of a Pod that finishes
# before kubectl has attached to it.
show kubectl -n shop run client --restart=Never --image="clusterip-guard:$version" \
    --image-pull-policy=Never --command -- python3 -c "$fetch"
show kubectl -n shop wait pod/client --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s
show kubectl -n shop logs client
kubectl -n shop delete pod client --wait=false >/dev/null

step "outside the cluster: nothing answers on the node port"
echo "\$ curl -sS --max-time 3 http://$node_ip:30080/"
curl -sS --max-time 3 "http://$node_ip:30080/" 2>&1 || true
echo

step "the same manifest in a namespace nobody labelled: the node port answers"
show kubectl create namespace sandbox
echo "\$ sed 's#nginx:1.27#$nginx_image#' examples/nginx-nodeport.yaml | kubectl -n sandbox apply -f -"
sed "s#nginx:1.27#$nginx_image#" examples/nginx-nodeport.yaml | kubectl -n sandbox apply -f -
echo
show kubectl -n sandbox rollout status deployment/nginx --timeout=180s
show kubectl -n sandbox get service nginx
echo "\$ curl -sS --max-time 3 http://$node_ip:30080/ | grep '<h1>'"
for _ in $(seq 1 30); do
    if curl -sS --max-time 3 "http://$node_ip:30080/" 2>/dev/null | grep '<h1>'; then break; fi
    sleep 1
done
echo

step "what already exists: the exposed Services, in the terminal and as PolicyReports"
# The CLI the README installs (make setup put it in .venv).
show clusterip-guard scan
show clusterip-guard scan --write-reports --install-crds
show kubectl get policyreports -A

step "fix one, and see it pass"
show kubectl -n sandbox patch service nginx --type=json -p \
    '[{"op":"replace","path":"/spec/type","value":"ClusterIP"},{"op":"remove","path":"/spec/ports/0/nodePort"},{"op":"remove","path":"/spec/externalTrafficPolicy"}]'
show clusterip-guard scan --write-reports
show kubectl get policyreports -A
echo "The cluster keeps running: export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH"
down="make cluster-down"
[[ $dev != "$root/.dev" ]] && down="make cluster-down DEV=$dev"
echo "'$down' stops it and undoes every change it made to this machine."
