"""The one rule of idempotence every write of ours follows (cluster/writing.py)."""

from __future__ import annotations

from clusterip_guard.cluster.writing import stored_as_wanted

WANTED = {
    "metadata": {"name": "guard", "labels": {"app": "x"}},
    "webhooks": [{"name": "a", "timeoutSeconds": 5}],
}


def test_fields_the_api_server_adds_are_not_ours_to_compare() -> None:
    stored = {
        "metadata": {"name": "guard", "labels": {"app": "x"}, "resourceVersion": "7", "uid": "u"},
        "webhooks": [{"name": "a", "timeoutSeconds": 5, "matchPolicy": "Equivalent"}],
    }
    assert stored_as_wanted(WANTED, stored)


def test_a_field_we_set_that_differs_is_a_change() -> None:
    stored = {"metadata": {"name": "guard", "labels": {"app": "y"}}, "webhooks": WANTED["webhooks"]}
    assert not stored_as_wanted(WANTED, stored)


def test_a_field_we_set_that_is_missing_is_a_change() -> None:
    assert not stored_as_wanted(WANTED, {"metadata": WANTED["metadata"]})


def test_lists_are_compared_item_by_item_and_by_length() -> None:
    longer = {**WANTED, "webhooks": [*WANTED["webhooks"], {"name": "b"}]}
    assert not stored_as_wanted(WANTED, longer)
    assert not stored_as_wanted({"values": [1, 2]}, {"values": [2, 1]})
    assert stored_as_wanted({"values": []}, {"values": []})


def test_a_mapping_is_never_stored_as_a_scalar() -> None:
    assert not stored_as_wanted({"a": {"b": 1}}, {"a": 1})
    assert not stored_as_wanted({"a": 1}, {"a": "1"})
