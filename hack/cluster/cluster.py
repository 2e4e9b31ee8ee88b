"""A real single-node Kubernetes cluster on this machine: the chart, the demo and in-cluster tests.

    python3 hack/cluster/cluster.py up    [--dir .dev]   # returns when the node is Ready
    python3 hack/cluster/cluster.py down  [--dir .dev]   # stops and undoes all that `up` did
    python3 hack/cluster/cluster.py import ARCHIVE           # an image archive (`make image`)
    python3 hack/cluster/cluster.py image REF FOLDER [--busybox] -- ENTRYPOINT [ARG ...]
                                          # an image of FOLDER (plus Debian's static busybox and
                                          # its applets in /bin with --busybox), built with
                                          # buildah from scratch and imported into the node

`up` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (its own
config, root, state and socket under DIR/cluster), the kubelet and kube-proxy (iptables mode),
with a bridge CNI on POD_CIDR whose gateway is the node IP. Binaries come from
`hack/controlplane/build.sh node`. The admin kubeconfig is DIR/cluster/kubeconfig; kubectl and
helm are copied to DIR/bin. Everything `up` changes on the host is recorded in
DIR/cluster/state.json as it goes, so `down` (also run when `up` fails) can undo it.

The code is the `localnode` package beside this file; what it shares with the local control
plane (processes, PKI, kubeconfigs, state, etcd and API-server flags) is hack/hostkit. `up` needs
the project's virtualenv (`make setup`; the PKI uses cryptography): run by another Python, this
script runs itself again with .venv/bin/python when there is one (`down` and `check` need only
the standard library).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE.parent.parent / ".venv" / "bin" / "python"


def _in_the_virtualenv() -> None:
    """Run again with the project's virtualenv unless this Python has what `up` needs."""
    try:
        import cryptography  # noqa: F401, PLC0415
    except ImportError:
        if VENV_PYTHON.exists():
            os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])


if __name__ == "__main__":
    _in_the_virtualenv()
    sys.path[:0] = [str(HERE), str(HERE.parent)]  # localnode, hostkit
    from localnode.cli import main

    sys.exit(main())
