"""The configuration files of the node's own containerd, its CNI network and its kubelet
(settings that mattered here: hack/cluster/README.md)."""

from __future__ import annotations

from localnode.base import (
    BRIDGE,
    CONTAINERD_STREAM_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    LOOPBACK,
    NODE_IP,
    PAUSE_IMAGE,
    POD_CIDR,
    Layout,
)


def containerd_config(layout: Layout) -> str:
    c = layout.containerd
    return f"""\
# Written by hack/cluster (localnode): a containerd of our own, never the system's.
version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = "{layout.socket}"

[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE here: without this every sandbox fails ("can't get final child's PID").
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "{LOOPBACK}"
  stream_server_port = "{CONTAINERD_STREAM_PORT}"
  # Network namespaces under our state folder, not /run/netns.
  netns_mounts_under_state_dir = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{c / "runc"}"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.cni / "net.d"}"
    max_conf_num = 1
"""


def cni_config(layout: Layout) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "clusterip-guard",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: Layout) -> dict[str, object]:
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": LOOPBACK,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "cgroupDriver": "cgroupfs",  # runc's SystemdCgroup = false: no systemd here
        "failSwapOn": False,
        "failCgroupV1": False,  # cgroup v1 machine; support ends around 1.38 (README)
        "podCIDR": POD_CIDR,
        "resolvConf": "",  # no cluster DNS; pods get no resolv.conf from the host
        "podLogsDir": str(layout.work / "pod-logs"),
        "volumePluginDir": str(layout.kubelet / "volume-plugins"),
        "staticPodPath": "",
        "imageGCHighThresholdPercent": 100,  # images cannot be pulled back: never collect them
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "maxPods": 60,
        "serializeImagePulls": False,
        # A changed ConfigMap reaches mounted volumes at the next pod sync: every 10 s instead
        # of the default minute, so a policy change shows within seconds in tests and demos.
        "syncFrequency": "10s",
    }
