"""The Helm chart, rendered by the pinned helm, for the tests that read what it makes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT
from tests.support.tools import helm

CHART = ROOT / "charts" / "clusterip-guard"
Manifest = dict[str, Any]


# What `helm install` learns from a cluster's discovery that serves ServiceCIDR (1.33+);
# `helm template` alone assumes no such API.
SERVES_SERVICE_CIDRS = ("networking.k8s.io/v1/ServiceCIDR",)


def render(
    *values: str,
    release: str = "clusterip-guard",
    namespace: str = "clusterip-guard",
    api_versions: tuple[str, ...] = (),
) -> list[Manifest]:
    run = subprocess.run(
        [str(helm()), "template", release, str(CHART), "--namespace", namespace,
         *(f"--set={value}" for value in values),
         *(f"--api-versions={version}" for version in api_versions)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def the(kind: str, documents: list[Manifest], name: str | None = None) -> Manifest:
    found = [
        doc
        for doc in documents
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


POLICY_FILE_FLAG = "--policy-file="


def mounted_policy(pod: Manifest, documents: list[Manifest]) -> str:
    """The text a bootstrap Pod's --policy-file names: the key of the ConfigMap it mounts."""
    (container,) = pod["containers"]
    (path,) = [a.removeprefix(POLICY_FILE_FLAG) for a in container["args"]
               if a.startswith(POLICY_FILE_FLAG)]  # fmt: skip
    folder, _, key = path.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    text: str = the("ConfigMap", documents, volume["configMap"]["name"])["data"][key]
    return text


def args_run_here(pod: Manifest, documents: list[Manifest], folder: Path) -> list[str]:
    """A bootstrap Pod's arguments, to run here: the policy it mounts written to `folder`
    (--policy-file names the mount), --wait-ready-seconds left out."""
    args = [a for a in pod["containers"][0]["args"] if not a.startswith("--wait-ready")]
    if not any(a.startswith(POLICY_FILE_FLAG) for a in args):
        return args
    policy = folder / "policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(mounted_policy(pod, documents))
    return [f"{POLICY_FILE_FLAG}{policy}" if a.startswith(POLICY_FILE_FLAG) else a for a in args]
