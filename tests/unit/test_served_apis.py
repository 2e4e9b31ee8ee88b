"""Which Gateway API kinds the scan lists (cluster/served_apis.py), read from discovery answers
as the API server gives them (the client's own models; no server: the e2e suites hold the
real one to it)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from clusterip_guard.cluster.served_apis import ServedKind, served_gateway_api

GROUP = "gateway.networking.k8s.io"


def _group(name: str, versions: list[str], preferred: str) -> client.V1APIGroup:
    return client.V1APIGroup(
        name=name,
        versions=[
            client.V1GroupVersionForDiscovery(group_version=f"{name}/{v}", version=v)
            for v in versions
        ],
        preferred_version=client.V1GroupVersionForDiscovery(
            group_version=f"{name}/{preferred}", version=preferred
        ),
    )


def _resource(name: str, kind: str) -> client.V1APIResource:
    return client.V1APIResource(
        name=name, kind=kind, namespaced=True, singular_name="", verbs=["list", "watch"]
    )


def _serve(
    monkeypatch: pytest.MonkeyPatch,
    groups: list[client.V1APIGroup],
    resources: dict[str, list[client.V1APIResource]],
) -> None:
    class Apis:
        def __init__(self, api: Any) -> None:
            pass

        def get_api_versions(self) -> client.V1APIGroupList:
            return client.V1APIGroupList(groups=groups)

    class Custom:
        def __init__(self, api: Any) -> None:
            pass

        def get_api_resources(self, group: str, version: str) -> client.V1APIResourceList:
            return client.V1APIResourceList(
                group_version=f"{group}/{version}", resources=resources.get(version, [])
            )

    monkeypatch.setattr(client, "ApisApi", Apis)
    monkeypatch.setattr(client, "CustomObjectsApi", Custom)


def test_each_kind_is_listed_at_the_first_version_that_serves_it_the_preferred_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _serve(
        monkeypatch,
        [_group("apps", ["v1"], "v1"), _group(GROUP, ["v1alpha2", "v1", "v1beta1"], "v1")],
        {
            "v1": [
                _resource("gateways", "Gateway"),
                _resource("gateways/status", "Gateway"),
                _resource("httproutes", "HTTPRoute"),
                _resource("gatewayclasses", "GatewayClass"),
            ],
            "v1beta1": [_resource("gateways", "Gateway"), _resource("httproutes", "HTTPRoute")],
            "v1alpha2": [
                _resource("tcproutes", "TCPRoute"),
                _resource("grpcroutes", "GRPCRoute"),
                _resource("referencegrants", "ReferenceGrant"),
            ],
        },
    )
    assert served_gateway_api(None) == [  # type: ignore[arg-type]
        ServedKind("Gateway", GROUP, "v1", "gateways"),
        ServedKind("HTTPRoute", GROUP, "v1", "httproutes"),
        ServedKind("GRPCRoute", GROUP, "v1alpha2", "grpcroutes"),
        ServedKind("TCPRoute", GROUP, "v1alpha2", "tcproutes"),
    ]


def test_without_the_gateway_api_nothing_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, [_group("apps", ["v1"], "v1")], {})
    assert served_gateway_api(None) == []  # type: ignore[arg-type]
