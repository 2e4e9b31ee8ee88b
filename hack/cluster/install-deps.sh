#!/usr/bin/env bash
# Installs the Debian packages a local node needs (DESIGN §8): container runtime, CNI plugins,
# iptables for kube-proxy, and what builds images without a registry. Idempotent: packages
# already present are not fetched again. Waits for another apt run instead of failing.
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

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
fi
apt_opts=(-o DPkg::Lock::Timeout=600 -q)
echo ">> apt-get install ${missing[*]}" >&2
apt-get "${apt_opts[@]}" update >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2
