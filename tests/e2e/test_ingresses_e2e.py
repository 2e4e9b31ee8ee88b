"""Ingresses on the real API server (docs/design.md, "What counts as exposed"): what the API
server itself does to an Ingress's class before admission sees it, and the native engine judging
by it. Both engines' verdicts and messages on Ingresses are held equal row by row in
tests/e2e/test_native_table_e2e.py.

Namespaces and objects are named `ing-*`, this suite's own. What reaches the webhook engine
is tests/e2e/test_ingress_calls_e2e.py (a module of its own: this one's native policies would
judge its namespace first).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from clusterip_guard.core.native import native_objects
from clusterip_guard.core.registration import never_judged_namespaces
from clusterip_guard.policyfile import parse_policy
from clusterip_guard.yamltext import dump_yaml_documents
from tests.support.kubectl import Kubectl
from tests.support.polling import until

pytestmark = pytest.mark.e2e

NAME = "ing-native"
NAMESPACE = "ing-enforce"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def ingress(name: str, ingress_class: str | None = None, **annotations: str) -> str:
    spec: dict[str, Any] = {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    metadata: dict[str, Any] = {"name": name, "annotations": annotations}
    return json.dumps(
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata,
         "spec": spec}
    )  # fmt: skip


def ingress_class(name: str, *, default: bool) -> str:
    annotations = {DEFAULT_CLASS_ANNOTATION: "true"} if default else {}
    return json.dumps(
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": name, "annotations": annotations},
         "spec": {"controller": f"example.com/{name}"}}
    )  # fmt: skip


@pytest.fixture(scope="module")
def native(kubectl: Kubectl) -> Iterator[Kubectl]:
    """The native engine, allowing the class `ing-internal`, and an enforce namespace."""
    objects = native_objects(
        parse_policy("allowedIngressClasses: [ing-internal]\n"),
        name=NAME,
        never_judged=never_judged_namespaces(),
    )
    kubectl("apply", "-f", "-", stdin=dump_yaml_documents(objects))
    kubectl("create", "namespace", NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, "clusterip-guard.io/mode=enforce")
    try:
        assert until(lambda: not create(kubectl, "ing-probe", "ing-public", "--dry-run=server"),
                     timeout=60)  # fmt: skip
        yield kubectl
    finally:
        kubectl("delete", "-f", "-", stdin=dump_yaml_documents(objects), check=False)
        kubectl("delete", "ingressclass", "ing-internal", "--ignore-not-found", check=False)
        kubectl("-n", NAMESPACE, "delete", "ingresses", "--all", "--wait=false", check=False)


def create(kubectl: Kubectl, name: str, ingress_class_name: str | None = None, *flags: str) -> bool:
    run = kubectl("-n", NAMESPACE, "create", *flags, "-f", "-",
                  stdin=ingress(name, ingress_class_name), check=False)  # fmt: skip
    return run.returncode == 0


def test_the_api_server_writes_the_default_class_before_admission_judges_it(
    native: Kubectl,
) -> None:
    """DefaultIngressClass (an admission plugin of the API server, on by default) fills
    spec.ingressClassName on CREATE before any webhook or policy sees the Ingress: an Ingress
    written without a class is judged as of the default class, and stored so."""
    kubectl = native
    # No default class: an Ingress without one is exposure.
    run = kubectl("-n", NAMESPACE, "create", "-f", "-", stdin=ingress("ing-bare"), check=False)
    assert run.returncode != 0
    assert "spec.ingressClassName: the Ingress names no ingress class" in run.stderr
    # The allowed class made the cluster's default: the same Ingress is stored, of that class.
    kubectl("apply", "-f", "-", stdin=ingress_class("ing-internal", default=True))
    assert until(lambda: create(kubectl, "ing-bare"), timeout=30)
    stored = kubectl("-n", NAMESPACE, "get", "ingress", "ing-bare", "-o",
                     "jsonpath={.spec.ingressClassName}").stdout  # fmt: skip
    assert stored == "ing-internal"
    # An UPDATE does not default it: a kept Ingress without a class stays without one.
    kubectl("apply", "-f", "-", stdin=ingress_class("ing-internal", default=False))


def test_an_ingress_of_another_class_is_denied_naming_the_allowed_ones(native: Kubectl) -> None:
    run = native("-n", NAMESPACE, "create", "-f", "-", stdin=ingress("ing-web", "ing-public"),
                 check=False)  # fmt: skip
    assert run.returncode != 0
    assert f"ValidatingAdmissionPolicy '{NAME}-ingress-exposure'" in run.stderr
    assert (
        f"Ingress {NAMESPACE}/ing-web would be reachable from outside the cluster, and namespace "
        f"{NAMESPACE} keeps what runs there reachable only inside the cluster (label "
        "clusterip-guard.io/mode): spec.ingressClassName: ingress class ing-public is not an "
        "allowed class: its controller serves the Ingress from outside the cluster; use an "
        "allowed ingress class (ing-internal)"
    ) in run.stderr
    assert create(native, "ing-allowed", "ing-internal")


def test_an_update_adding_the_annotation_of_another_class_is_denied(native: Kubectl) -> None:
    """The API server refuses the annotation beside a different spec.ingressClassName only on
    CREATE: an UPDATE may add it, and a controller that reads the annotation would serve it."""
    assert create(native, "ing-later", "ing-internal")
    run = native("-n", NAMESPACE, "annotate", "ingress", "ing-later",
                 "kubernetes.io/ingress.class=ing-public", check=False)  # fmt: skip
    assert run.returncode != 0
    assert "metadata.annotations[kubernetes.io/ingress.class]: ingress class ing-public" in (
        run.stderr
    )
    # Without a policy in the way, the API server takes that UPDATE.
    outside = "ing-ungoverned"
    native("create", "namespace", outside)
    try:
        native("-n", outside, "create", "-f", "-", stdin=ingress("ing-later", "ing-internal"))
        taken = native("-n", outside, "annotate", "ingress", "ing-later",
                       "kubernetes.io/ingress.class=ing-public", check=False)  # fmt: skip
        assert taken.returncode == 0, taken.stderr
    finally:
        native("-n", outside, "delete", "ingresses", "--all", "--wait=false", check=False)


STATUS_ANNOTATION = json.dumps(
    {"metadata": {"annotations": {"kubernetes.io/ingress.class": "ing-public"}}}
)


def annotate_through_status(kubectl: Kubectl, namespace: str, name: str) -> Any:
    """The deprecated class annotation, written through ingresses/status (which keeps the spec
    but takes metadata)."""
    return kubectl("-n", namespace, "patch", "ingress", name, "--subresource=status",
                   "--type=merge", "-p", STATUS_ANNOTATION, check=False)  # fmt: skip


def test_a_write_through_ingresses_status_is_judged_by_the_native_engine(
    native: Kubectl,
) -> None:
    assert create(native, "ing-status", "ing-internal")
    run = annotate_through_status(native, NAMESPACE, "ing-status")
    assert run.returncode != 0
    assert f"ValidatingAdmissionPolicy '{NAME}-ingress-exposure'" in run.stderr
    assert "metadata.annotations[kubernetes.io/ingress.class]: ingress class ing-public" in (
        run.stderr
    )
