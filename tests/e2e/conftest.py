"""Session fixtures for the end-to-end tests: one real control plane for the whole run.

They fail, never skip, when the control plane cannot start: a claim about the API server that
was not checked against one is not a passed test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from localcluster import ControlPlane, start
from tests.support.kubectl import Kubectl


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
