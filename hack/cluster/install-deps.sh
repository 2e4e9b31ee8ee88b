#!/usr/bin/env bash
# Installs the Debian packages a local node needs (docs/design.md, "The local control plane"): container runtime, CNI plugins,
# iptables for kube-proxy, and what builds images without a registry. Idempotent: packages
# already present are not fetched again; hack/apt.sh waits for any other apt run.
set -euo pipefail

packages=(
    containerd                  # CRI runtime (1.6 on bookworm)
    runc                        # OCI runtime under containerd
    containernetworking-plugins # bridge, host-local, portmap, loopback in /usr/lib/cni
    iptables                    # kube-proxy (iptables mode), portmap, kubelet canaries
    iproute2                    # ip link/addr for the bridge and node address
    buildah                     # builds images without a daemon or registry
    debootstrap                 # a Debian base when an image needs one
    busybox-static              # the client and HTTP server images
    gcc libc6-dev               # the pause binary (static C)
    procps                      # sysctl, ps
    util-linux                  # mount, umount, flock
    openssl                     # the throwaway certificates
)

exec "$(dirname "$0")/../apt.sh" install "${packages[@]}"
