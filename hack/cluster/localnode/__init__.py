"""The real node behind hack/cluster/cluster.py: `base` (names, ports, layout, state), `configs`
(containerd, CNI, kubelet), `api` (PKI, kubeconfigs, API requests), `host` (bridge, iptables,
mounts, cgroups), `images`, `up`, `down`, `cli`."""
