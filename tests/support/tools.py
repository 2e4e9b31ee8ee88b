"""The pinned tools the tests drive: helm and kubectl of the pinned Kubernetes release, and
cert-manager (its published CRDs, and its controllers and cainjector as one command of ours).
Built or fetched once, from the project's own files."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

from tests.support.paths import ROOT

BUILD = ROOT / "hack" / "controlplane" / "build.sh"
CERT_MANAGER_BUILD = ROOT / "hack" / "certmanager" / "build.sh"
# cert-manager's CRDs, as its v1.21.2 release defines them (deploy/crds in its Go module),
# fetched through the Go module proxy and checked against the Go checksum database: the same
# release hack/certmanager/go.mod builds the controllers from.
CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.21.2"
# Gateway API's CRDs, as its v1.6.3 release defines them (config/crd in its Go module), fetched
# the same way. The experimental channel: it serves every route kind (TCPRoute, UDPRoute and
# TLSRoute are not in the standard channel's CRDs of every release) and their older versions.
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.6.3"


@functools.cache
def node_assets() -> Path:
    """The folder with every pinned binary (`build.sh node`: helm, kubectl, the node's)."""
    run = subprocess.run(
        ["bash", str(BUILD), "node"], stdout=subprocess.PIPE, text=True, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(f"{BUILD} node failed with exit code {run.returncode}; see its output")
    return Path(run.stdout.strip().splitlines()[-1])


def helm() -> Path:
    return node_assets() / "helm"


def kubectl() -> Path:
    return node_assets() / "kubectl"


@functools.cache
def go_module_dir(module: str, version: str) -> Path:
    """A module's files as the Go module proxy serves them, checked against the checksum
    database (fetched once into the module cache)."""
    download = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True, text=True, check=False, cwd=ROOT / "hack" / "controlplane",
    )  # fmt: skip
    if download.returncode != 0:
        raise RuntimeError(f"cannot fetch {module}@{version}: {download.stdout}{download.stderr}")
    return Path(json.loads(download.stdout)["Dir"])


def cert_manager_crds() -> list[Path]:
    folder = go_module_dir(CERT_MANAGER_MODULE, CERT_MANAGER_VERSION) / "deploy" / "crds"
    return sorted(folder.glob("cert-manager.io_*.yaml"))


def gateway_api_crds() -> list[Path]:
    """The experimental channel's CRDs of group gateway.networking.k8s.io (not the channel's
    own ValidatingAdmissionPolicy that guards CRD upgrades, nor the x-k8s.io group's)."""
    folder = go_module_dir(GATEWAY_API_MODULE, GATEWAY_API_VERSION) / "config" / "crd"
    found = sorted((folder / "experimental").glob("gateway.networking.k8s.io_*.yaml"))
    return [path for path in found if "_vap_" not in path.name]


@functools.cache
def cert_manager_command() -> Path:
    """hack/certmanager's command: `controller` and `cainjector`, each with --kubeconfig."""
    run = subprocess.run(
        ["bash", str(CERT_MANAGER_BUILD)], stdout=subprocess.PIPE, text=True, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(
            f"{CERT_MANAGER_BUILD} failed with exit code {run.returncode}; see its output"
        )
    return Path(run.stdout.strip().splitlines()[-1])
