"""One answer per question about a Service given as plain data, and about JSON pointers."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterip_guard.core.pointers import escape_token, field_path, pointer_to, unescape_token
from clusterip_guard.core.review import parse_review, service_change_of
from clusterip_guard.core.services import display_name, namespace_of, service_type
from tests.support.builders import admission_review


@pytest.mark.parametrize(
    ("metadata", "shown"),
    [
        pytest.param({"name": "web"}, "web", id="a name is shown as it is"),
        pytest.param({"generateName": "web-"}, "web-*", id="a generateName prefix ends in *"),
        pytest.param({"name": "web", "generateName": "x-"}, "web", id="a name wins over a prefix"),
        pytest.param({}, "<unnamed>", id="neither is <unnamed>"),
        pytest.param({"name": ""}, "<unnamed>", id="an empty name is <unnamed>"),
        pytest.param({"name": 7}, "<unnamed>", id="a name of the wrong type is <unnamed>"),
    ],
)
def test_a_service_is_named_one_way_everywhere(metadata: dict[str, Any], shown: str) -> None:
    assert display_name({"metadata": metadata}) == shown


def test_the_webhook_and_check_name_a_generated_service_alike() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": "web-"}}
    change = service_change_of(parse_review(json.dumps(admission_review(service)).encode()))
    assert change is not None
    assert change.name == display_name(service) == "web-*"


@pytest.mark.parametrize(
    ("service", "namespace"),
    [
        ({"metadata": {"namespace": "shop"}}, "shop"),
        ({"metadata": {}}, "default"),
        ({}, "default"),
        ({"metadata": "nonsense"}, "default"),
    ],
)
def test_a_service_without_a_namespace_lands_in_default(
    service: dict[str, Any], namespace: str
) -> None:
    assert namespace_of(service) == namespace


@pytest.mark.parametrize(
    ("spec", "kind"),
    [({}, "ClusterIP"), ({"type": ""}, "ClusterIP"), ({"type": "NodePort"}, "NodePort")],
)
def test_an_unset_type_is_the_api_servers_default(spec: dict[str, Any], kind: str) -> None:
    assert service_type({"spec": spec}) == kind


@given(st.text())
def test_escaping_a_pointer_token_round_trips(key: str) -> None:
    assert unescape_token(escape_token(key)) == key
    assert "/" not in escape_token(key)


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_a_pointer_reaches_the_nested_key_jsonpatch_would(keys: list[str]) -> None:
    document: dict[str, Any] = {}
    cursor = document
    for key in keys[:-1]:
        cursor = cursor.setdefault(key, {})
    cursor[keys[-1]] = "here"
    remove = jsonpatch.JsonPatch([{"op": "remove", "path": pointer_to(*keys)}])
    assert remove.apply(document) != document


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("/spec/type", "spec.type"),
        ("/spec/ports/1/nodePort", "spec.ports[1].nodePort"),
        ("/metadata/annotations/a.io~1b", "metadata.annotations[a.io/b]"),
    ],
)
def test_a_pointer_is_shown_as_kubectl_users_write_fields(pointer: str, field: str) -> None:
    assert field_path(pointer) == field
