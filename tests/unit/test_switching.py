"""What an engine switch removes, and how it reads the API server's answer to its probe
(cluster/switching.py); the probe itself runs against the API server in
tests/e2e/test_engine_switch_e2e.py."""

from __future__ import annotations

from clusterip_guard.cluster.switching import (
    engine_only_objects,
    probe_namespace,
    warning_texts,
)
from clusterip_guard.core.installation import Installation, objects_for
from clusterip_guard.core.registration import ServiceTarget


def test_a_switch_removes_only_what_the_other_engine_never_registers() -> None:
    installation = Installation(name="guard", service=ServiceTarget("guard-system", "guard", 443))
    webhook = {(o["kind"], o["metadata"]["name"]) for o in objects_for("webhook", installation)}
    native = {(o["kind"], o["metadata"]["name"]) for o in objects_for("native", installation)}
    webhook_only = set(engine_only_objects("webhook", "guard"))
    native_only = set(engine_only_objects("native", "guard"))
    assert webhook - native <= webhook_only
    assert native - webhook <= native_only
    # The in-process policies both engines register are kept across a switch.
    assert not (webhook & native) & (webhook_only | native_only)
    assert ("MutatingWebhookConfiguration", "guard") in webhook_only
    assert ("ValidatingAdmissionPolicy", "guard-exposure") in native_only


def test_the_probe_namespace_is_named_after_the_installation_as_the_chart_names_it() -> None:
    assert probe_namespace("clusterip-guard") == "clusterip-guard-probe"
    long = "a" * 60
    assert probe_namespace(long) == f"{long}-pr"
    assert len(probe_namespace("b" * 62)) <= 63
    assert not probe_namespace("b" * 62).endswith("-")


def test_warnings_are_read_as_the_api_server_joins_and_escapes_them() -> None:
    value = (
        "299 - \"Validation failed for ValidatingAdmissionPolicy 'g-exposure' with binding "
        '\'g-exposure-warn\': a \\"quoted\\" word", 299 - "audit: Service ns/p: spec.type: x"'
    )
    assert warning_texts(value) == [
        "Validation failed for ValidatingAdmissionPolicy 'g-exposure' with binding "
        "'g-exposure-warn': a \"quoted\" word",
        "audit: Service ns/p: spec.type: x",
    ]
    assert warning_texts("") == []
