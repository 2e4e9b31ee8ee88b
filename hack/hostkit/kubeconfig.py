"""How a client reaches a cluster of ours: kubeconfigs (certificates embedded, one cluster,
user and context) and the TLS context of a client certificate."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path


def kubeconfig(
    server: str, *, ca_file: Path, cert_file: Path, key_file: Path, cluster: str, user: str
) -> dict[str, object]:
    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": data(ca_file)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": data(cert_file),
                    "client-key-data": data(key_file),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }


def write_kubeconfig(path: Path, config: dict[str, object]) -> Path:
    """Written as JSON (which is YAML), readable by its owner only: it holds a private key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def client_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS that trusts the cluster's CA only and presents this client certificate."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(str(cert_file), str(key_file))
    return context
