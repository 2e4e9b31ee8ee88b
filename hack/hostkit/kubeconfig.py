"""Kubeconfigs for a cluster of ours: certificates embedded, one cluster, user and context."""

from __future__ import annotations

import base64
import json
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
