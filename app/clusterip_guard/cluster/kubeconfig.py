"""Which cluster: the kubeconfig files to read, found as kubectl finds them, and checked so
that a broken one is one line naming the file and what is wrong.

kubectl's precedence (client-go's clientcmd): `--kubeconfig FILE`; else the files `$KUBECONFIG`
lists (merged, the first to set a value wins, missing ones skipped); else `~/.kube/config`;
else, in a pod, its service account. So a CI job in a pod bootstraps another cluster by
giving `--kubeconfig` or `$KUBECONFIG`.

No Kubernetes client here: `cluster.client` hands what this finds to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusterip_guard.cluster.errors import KubeconfigError
from clusterip_guard.yamltext import YAMLTextError, load_yaml

IN_CLUSTER_HOST_ENV = "KUBERNETES_SERVICE_HOST"
IN_CLUSTER_PORT_ENV = "KUBERNETES_SERVICE_PORT"
KUBECONFIG_ENV = "KUBECONFIG"
DEFAULT_KUBECONFIG = Path(".kube") / "config"  # below $HOME
NAMED_LISTS = ("clusters", "contexts", "users")

PRECEDENCE_HELP = (
    "kubeconfig file (default, as kubectl: the files $KUBECONFIG lists, else "
    "~/.kube/config, else in a pod its service account)"
)


@dataclass(frozen=True)
class KubeconfigSource:
    """Where the credentials come from: kubeconfig files, or (none) the pod's service account."""

    files: tuple[Path, ...]
    origin: str  # "--kubeconfig", "$KUBECONFIG", "~/.kube/config", "in-cluster"

    @property
    def in_cluster(self) -> bool:
        return not self.files

    def describe(self) -> str:
        if self.in_cluster:
            return "the pod's service account"
        shown = os.pathsep.join(str(f) for f in self.files)
        origin = f" (from {self.origin})" if self.origin != "--kubeconfig" else ""
        return f"kubeconfig {shown}{origin}"


def kubeconfig_source(explicit: str | None, environ: Mapping[str, str]) -> KubeconfigSource:
    """The kubeconfig kubectl would use, or a KubeconfigError that says what to give."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise KubeconfigError(f"--kubeconfig {explicit} {what}; give a kubeconfig file")
        return KubeconfigSource((path,), "--kubeconfig")
    listed = [p for p in environ.get(KUBECONFIG_ENV, "").split(os.pathsep) if p]
    if listed:
        found = tuple(Path(p).expanduser() for p in listed if Path(p).expanduser().is_file())
        if not found:
            raise KubeconfigError(
                f"${KUBECONFIG_ENV} names {os.pathsep.join(listed)}, and no such file exists; "
                f"fix ${KUBECONFIG_ENV} or give --kubeconfig"
            )
        return KubeconfigSource(found, f"${KUBECONFIG_ENV}")
    home = environ.get("HOME")
    default = (Path(home) if home else Path.home()) / DEFAULT_KUBECONFIG
    if default.is_file():
        return KubeconfigSource((default,), "~/.kube/config")
    if environ.get(IN_CLUSTER_HOST_ENV) and environ.get(IN_CLUSTER_PORT_ENV):
        return KubeconfigSource((), "in-cluster")
    raise KubeconfigError(
        f"no kubeconfig: {default} does not exist and ${KUBECONFIG_ENV} is not set; "
        f"give --kubeconfig FILE (in a pod, its service account is used)"
    )


def check_kubeconfig(source: KubeconfigSource, context: str | None) -> None:
    """Read every file as the client will, and say in one line what would make it fail."""
    contexts: list[str] = []
    current: str | None = None
    for path in source.files:
        document = _read(path)
        for key in NAMED_LISTS:
            names = _names(path, document, key)
            if key == "contexts":
                contexts += names
        value = document.get("current-context")
        if value is not None and not isinstance(value, str):
            raise KubeconfigError(f"kubeconfig {path}: current-context must be a string")
        if current is None and value:
            current = value  # the first file to set it wins, as in kubectl
    where = source.describe()
    if not contexts:
        raise KubeconfigError(
            f"{where} has no contexts: nothing names the cluster and user to use "
            f"(kubectl config set-context adds one)"
        )
    if context is not None and context not in contexts:
        raise KubeconfigError(
            f"--context {context}: no such context in {where} (it has: {', '.join(contexts)})"
        )
    if context is None and not current:
        raise KubeconfigError(
            f"{where} sets no current-context; give --context (one of: {', '.join(contexts)})"
        )
    if context is None and current not in contexts:
        raise KubeconfigError(
            f"{where}: current-context {current} is not one of its contexts "
            f"({', '.join(contexts)}); fix it or give --context"
        )


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise KubeconfigError(f"kubeconfig {path}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise KubeconfigError(f"kubeconfig {path}: cannot read: {error.strerror}") from None
    try:
        document = load_yaml(text)
    except YAMLTextError as error:
        raise KubeconfigError(f"kubeconfig {path}: {error}") from None
    if not isinstance(document, dict):
        what = "empty" if document is None else "not a mapping"
        raise KubeconfigError(
            f"kubeconfig {path}: {what}; a kubeconfig has apiVersion: v1, kind: Config, "
            f"clusters, users and contexts (kubectl config view shows one)"
        )
    return document


def _names(path: Path, document: Mapping[str, Any], key: str) -> list[str]:
    entries = document.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise KubeconfigError(f"kubeconfig {path}: {key} must be a list")
    names: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(
                f"kubeconfig {path}: {key}[{index}] must be a mapping with a name"
            )
        names.append(entry["name"])
    return names
