"""Session fixtures for the end-to-end tests: one real control plane for the whole run.

They fail, never skip, when the control plane cannot start: a claim about the API server that
was not checked against one is not a passed test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from localcluster import ControlPlane, start
from localcluster.launcher import wanted_kubernetes
from tests.support.gateway_api import install_crds
from tests.support.kubectl import Kubectl
from tests.support.served import (
    MUTATING_POLICY,
    SERVICE_CIDR,
    ServedRelease,
    missing_reason,
    read_served_release,
)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with start(tmp_path_factory.mktemp("controlplane")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def api_client(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(control_plane.kubeconfig)
    )
    yield api
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    return Kubectl(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def served_release(kubectl: Kubectl) -> ServedRelease:
    """The API server's release and what its discovery lists (make test-versions runs these
    suites against older releases)."""
    return read_served_release(kubectl)


def _require(served: ServedRelease, api_version: str) -> None:
    """Skip on an older release the matrix names (CLUSTERIP_GUARD_KUBERNETES); the pinned
    release serves every API, so there a missing one fails the test instead of hiding."""
    if not served.serves(api_version):
        if wanted_kubernetes() is None:
            pytest.fail(f"the pinned release: {missing_reason(served.version, api_version)}")
        pytest.skip(missing_reason(served.version, api_version))


@pytest.fixture(scope="session")
def native_engine_served(served_release: ServedRelease) -> None:
    """Skips what uses it where the API server has no MutatingAdmissionPolicy v1 (before 1.36).
    Session-scoped, so it runs before any module fixture that would register the engine."""
    _require(served_release, MUTATING_POLICY)


@pytest.fixture(scope="session")
def service_cidrs_served(served_release: ServedRelease) -> None:
    """Skips what uses it where the API server has no ServiceCIDR v1 (before 1.33)."""
    _require(served_release, SERVICE_CIDR)


@pytest.fixture(scope="session")
def gateway_api(kubectl: Kubectl) -> list[str]:
    """Gateway API's CRDs (v1.6.3, experimental channel: every route kind) in the shared control
    plane, Established and listed by discovery; installed once, by the first suite that needs
    them, and left there (no suite may rely on their absence: a plane of its own shows that)."""
    return install_crds(kubectl)
