"""What the API server under test serves: its release and the APIs its discovery lists.

`make test-versions` runs the same suites against older releases (docs/versions.md); a test
that needs an API only some releases serve uses the fixture that skips it, saying which API and
which release has it, where the API server does not serve it (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.kubectl import Kubectl


@dataclass(frozen=True)
class ServedRelease:
    version: str  # the API server's gitVersion, e.g. v1.35.4
    api_versions: frozenset[str]  # "group/version" and "group/version/Kind", as helm takes them

    def serves(self, api_version: str) -> bool:
        return api_version in self.api_versions

    def helm_flags(self) -> list[str]:
        """What `helm install` learns from this API server, for `helm template`."""
        return [
            f"--kube-version={self.version}",
            *(f"--api-versions={entry}" for entry in sorted(self.api_versions)),
        ]


MUTATING_POLICY = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"
SERVICE_CIDR = "networking.k8s.io/v1/ServiceCIDR"
# The APIs a test may need that not every supported release serves, with the first release
# that serves each (the native engine's and the Service-range policy's own checks say the same;
# tests/e2e/test_versions_e2e.py holds each release of the matrix to it).
RELEASE_SERVING = {MUTATING_POLICY: (1, 36), SERVICE_CIDR: (1, 33)}


def _get(kubectl: Kubectl, path: str) -> Any:
    return json.loads(kubectl("get", "--raw", path).stdout)


def read_served_release(kubectl: Kubectl) -> ServedRelease:
    version = _get(kubectl, "/version")["gitVersion"]
    entries: set[str] = set()
    group_versions = ["v1"]
    for group in _get(kubectl, "/apis")["groups"]:
        group_versions += [served["groupVersion"] for served in group["versions"]]
    for group_version in group_versions:
        path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        entries.add(group_version)
        for resource in _get(kubectl, path)["resources"]:
            if "/" not in resource["name"]:  # subresources are not kinds of their own
                entries.add(f"{group_version}/{resource['kind']}")
    return ServedRelease(version=version, api_versions=frozenset(entries))


def missing_reason(version: str, api_version: str) -> str:
    major, minor = RELEASE_SERVING[api_version]
    return f"Kubernetes {version} does not serve {api_version} (Kubernetes {major}.{minor} has it)"


def minor_of(version: str) -> tuple[int, int]:
    """(1, 35) of v1.35.4 (and of v1.35.4-rc.0)."""
    major, minor, *_ = version.lstrip("v").split(".")
    return int(major), int(minor)
