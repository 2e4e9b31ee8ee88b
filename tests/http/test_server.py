"""The webhook over real TLS on loopback: `clusterip-guard serve` in its own process."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from clusterip_guard.certs.issuing import new_certificate_authority
from clusterip_guard.core.admission import ROUTES
from tests.support.builders import admission_review, service
from tests.support.polling import until
from tests.support.webhook_process import LOOPBACK, ServingFiles, WebhookProcess, now

JSON_HEADERS = {"content-type": "application/json"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ServingFiles:
    return ServingFiles(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def policy_file(files: ServingFiles) -> Path:
    path = files.folder / "policy.yaml"
    path.write_text("allowedExternalIPCIDRs: [10.0.0.0/8]\n")
    return path


@pytest.fixture(scope="module")
def webhook(files: ServingFiles, policy_file: Path) -> Iterator[WebhookProcess]:
    process = WebhookProcess(files, policy_file=policy_file).start()
    yield process
    process.stop()


@pytest.fixture
def client(webhook: WebhookProcess, files: ServingFiles) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=webhook.url, verify=files.client_context(), timeout=5) as client:
        yield client


def post_review(client: httpx.Client, path: str, review: dict[str, Any]) -> dict[str, Any]:
    reply = client.post(path, content=json.dumps(review), headers=JSON_HEADERS)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == review["request"]["uid"]
    response: dict[str, Any] = answer["response"]
    return response


def test_mutate_returns_a_json_patch_to_cluster_ip(client: httpx.Client) -> None:
    response = post_review(client, "/mutate", admission_review(service("NodePort")))
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    assert {"op": "replace", "path": "/spec/type", "value": "ClusterIP"} in patch
    assert {"op": "remove", "path": "/spec/externalTrafficPolicy"} in patch
    assert "ClusterIP" in response["warnings"][0]


def test_enforce_denies_with_a_status_naming_the_field(client: httpx.Client) -> None:
    response = post_review(client, "/validate/enforce", admission_review(service("LoadBalancer")))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "spec.type" in response["status"]["message"]
    assert "ClusterIP" in response["status"]["message"]


def test_audit_allows_with_a_warning_and_an_audit_annotation(client: httpx.Client) -> None:
    response = post_review(client, "/validate/audit", admission_review(service("NodePort")))
    assert response["allowed"] is True
    assert "patch" not in response
    assert response["warnings"]
    assert "spec.type" in response["auditAnnotations"]["exposure"]


def test_the_policy_file_is_in_force(client: httpx.Client) -> None:
    review = admission_review(service(externalIPs=["10.1.2.3"]))
    assert post_review(client, "/validate/enforce", review) == {
        "uid": review["request"]["uid"],
        "allowed": True,
    }


@pytest.mark.parametrize(
    "review",
    [
        admission_review(service("NodePort"), operation="DELETE"),
        admission_review(service("NodePort"), operation="UPDATE", sub_resource="proxy"),
        admission_review({"kind": "ConfigMap", "metadata": {"name": "c"}}, kind="ConfigMap"),
        admission_review(service("NodePort", namespace="kube-system")),
    ],
    ids=["DELETE", "subresource", "other kind", "kube-system"],
)
@pytest.mark.parametrize("path", list(ROUTES))
def test_requests_that_are_not_ours_are_allowed_untouched(
    client: httpx.Client, path: str, review: dict[str, Any]
) -> None:
    assert post_review(client, path, review) == {"uid": review["request"]["uid"], "allowed": True}


def _decisions_counted(webhook: WebhookProcess, mode: str, verdict: str) -> float:
    text = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics").text
    label = f'clusterip_guard_decisions_total{{mode="{mode}",verdict="{verdict}"}}'
    for line in text.splitlines():
        if line.startswith(label):
            return float(line.split()[-1])
    return 0.0


def test_dry_run_gets_the_same_decision_and_is_not_counted(
    client: httpx.Client, webhook: WebhookProcess
) -> None:
    before = _decisions_counted(webhook, "enforce", "denied")
    real = post_review(client, "/validate/enforce", admission_review(service("NodePort")))
    dry = post_review(
        client, "/validate/enforce", admission_review(service("NodePort"), dry_run=True)
    )
    assert real["allowed"] is dry["allowed"] is False
    assert real["status"] == dry["status"]
    assert _decisions_counted(webhook, "enforce", "denied") == before + 1


# /validate/mutate: where 0.1.0 registered the backstop, served still during an upgrade.
@pytest.mark.parametrize("path", ["/validate/mutate-backstop", "/validate/mutate"])
def test_the_backstop_of_mutate_namespaces_denies_as_enforce_and_counts_as_mutate(
    client: httpx.Client, webhook: WebhookProcess, path: str
) -> None:
    before = _decisions_counted(webhook, "mutate", "denied")
    enforced = _decisions_counted(webhook, "enforce", "denied")
    response = post_review(client, path, admission_review(service("NodePort")))
    assert response["allowed"] is False
    assert "spec.type" in response["status"]["message"]
    assert _decisions_counted(webhook, "mutate", "denied") == before + 1
    assert _decisions_counted(webhook, "enforce", "denied") == enforced


def test_a_warned_decision_logs_who_asked_and_why_it_was_only_warned(
    client: httpx.Client, webhook: WebhookProcess
) -> None:
    before = len(webhook.logs())
    review = admission_review(service("NodePort", name="logged"))
    groups = ["team-a", "system:authenticated"]
    review["request"]["userInfo"] = {"username": "alice", "groups": groups}
    post_review(client, "/validate/audit", review)

    def logged_lines() -> list[dict[str, Any]]:
        return [e for e in webhook.log_entries(before) if e.get("service") == "logged"]

    assert until(logged_lines, timeout=10)
    (logged,) = logged_lines()
    assert (logged["verdict"], logged["mode"]) == ("warned", "audit")
    assert (logged["kind"], logged["name"]) == ("Service", "logged")
    assert logged["user"] == "alice"
    assert logged["groups"] == groups
    assert logged["why"] == "audit mode: exposure is reported, not denied"


def test_a_workload_decision_logs_its_kind_and_name_not_a_service(
    client: httpx.Client, webhook: WebhookProcess
) -> None:
    before = len(webhook.logs())
    container = {
        "name": "web",
        "image": "nginx",
        "ports": [{"containerPort": 80, "hostPort": 8088}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "logged-deployment", "namespace": "demo"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }  # fmt: skip
    review = admission_review(deployment, kind="Deployment", group="apps")
    assert post_review(client, "/validate/enforce", review)["allowed"] is False

    def logged_lines() -> list[dict[str, Any]]:
        return [e for e in webhook.log_entries(before) if e.get("name") == "logged-deployment"]

    assert until(logged_lines, timeout=10)
    (logged,) = logged_lines()
    assert (logged["verdict"], logged["kind"], logged["namespace"]) == (
        "denied",
        "Deployment",
        "demo",
    )
    assert "service" not in logged
    assert logged["message"] == "denied Deployment demo/logged-deployment"


def test_metrics_include_a_latency_histogram(client: httpx.Client, webhook: WebhookProcess) -> None:
    post_review(client, "/mutate", admission_review(service("NodePort")))
    text = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics").text
    assert 'clusterip_guard_review_duration_seconds_bucket{le="0.005",path="/mutate"}' in text
    assert _decisions_counted(webhook, "mutate", "mutated") >= 1


@pytest.mark.parametrize(
    ("content", "headers", "status", "reason"),
    [
        (b"{oops", JSON_HEADERS, 400, "not valid JSON"),
        (b'{"apiVersion": "v1", "kind": "Pod"}', JSON_HEADERS, 400, "expected apiVersion"),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"operation": "CREATE"},
                }
            ).encode(),
            JSON_HEADERS,
            400,
            "uid",
        ),
        (b"{}", {"content-type": "text/plain"}, 415, "content type"),
        (b"{}", {}, 415, "content type"),
        (b"x" * (32 * MIB + 1), JSON_HEADERS, 413, "limit"),
    ],
    ids=["malformed JSON", "wrong kind", "missing uid", "text/plain", "no type", "oversized"],
)
def test_bad_input_gets_a_4xx_with_one_line(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    reply = client.post("/mutate", content=content, headers=headers)
    assert reply.status_code == status
    assert reason in reply.json()["error"]
    assert "\n" not in reply.json()["error"]
    # The connection survives: the next request on the same client is answered.
    assert client.get("/healthz").status_code == 200


def test_an_oversized_chunked_body_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(33):
            yield b"x" * MIB

    reply = client.post("/mutate", content=chunks(), headers=JSON_HEADERS)
    assert reply.status_code == 413


def test_a_review_as_large_as_the_api_server_sends_is_judged(client: httpx.Client) -> None:
    """An UPDATE of an object near the API server's limits, written with every `<` escaped
    as the API server's encoder writes it (six bytes a byte): judged, not refused."""
    escaped = "\\u003c" * (2 * MIB)  # 12 MiB in the body, per object
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "big", "namespace": "ns", "annotations": {"a": "<"}},
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}  # fmt: skip
    review = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u1", "operation": "UPDATE", "namespace": "ns", "name": "big",
                    "kind": {"group": "", "version": "v1", "kind": "Service"},
                    "resource": {"group": "", "version": "v1", "resource": "services"},
                    "object": service, "oldObject": service}})  # fmt: skip
    body = review.replace('"a": "<"', f'"a": "{escaped}"').encode()
    assert len(body) > 24 * MIB
    reply = client.post("/validate/audit", content=body, headers=JSON_HEADERS)
    assert reply.status_code == 200, reply.text[:200]
    assert reply.json()["response"]["uid"] == "u1"


def test_wrong_method_and_unknown_path_are_4xx(client: httpx.Client) -> None:
    assert client.get("/mutate").status_code == 405
    assert client.post("/nowhere", content=b"{}", headers=JSON_HEADERS).status_code == 404


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").text == "ok"


def test_tls_older_than_1_2_is_refused_by_the_server(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    context = files.client_context()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        pytest.raises(ssl.SSLError) as refused,
        socket.create_connection((LOOPBACK, webhook.port)) as raw,
    ):
        context.wrap_socket(raw, server_hostname=LOOPBACK)
    # The server hung up on the hello (an alert or a bare close, by OpenSSL build); a client
    # that could not even offer TLS 1.1 would fail with "no protocols available" instead.
    assert "NO_PROTOCOLS" not in str(refused.value).upper()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection((LOOPBACK, webhook.port)) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_a_client_that_disconnects_mid_body_is_one_log_line(
    webhook: WebhookProcess, files: ServingFiles, client: httpx.Client
) -> None:
    before = webhook.logs()
    with (
        socket.create_connection((LOOPBACK, webhook.port)) as raw,
        files.client_context().wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        tls.sendall(
            b"POST /validate/enforce HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            b'{"apiVersion": "admission'
        )
    assert until(lambda: "client disconnected" in webhook.logs()[len(before) :], timeout=10)
    logged = webhook.logs()[len(before) :]
    assert "Traceback" not in logged
    assert client.get("/healthz").status_code == 200  # and the server carries on


def test_a_changed_policy_is_used_and_a_broken_one_is_not(
    tmp_path: Path, files: ServingFiles
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("{}\n")
    webhook = WebhookProcess(files, policy_file=policy).start()
    try:
        with httpx.Client(base_url=webhook.url, verify=files.client_context()) as client:
            review = admission_review(service("NodePort"))
            assert post_review(client, "/validate/enforce", review)["allowed"] is False

            policy.write_text("exemptions: [{namespace: shop, name: web, reason: legacy}]\n")
            assert until(lambda: post_review(client, "/validate/enforce", review)["allowed"])

            policy.write_text("exemptions: [{namespace: shop}]\n")  # broken: no name, no reason
            failing = 'clusterip_guard_reload_failing{file="policy"} 1.0'
            assert until(lambda: failing in metrics_text(webhook))
            assert post_review(client, "/validate/enforce", review)["allowed"] is True
            policy.write_text("exemptions: [{namespace: shop, name: web, reason: fixed}]\n")
            fixed = 'clusterip_guard_reload_failing{file="policy"} 0.0'
            assert until(lambda: fixed in metrics_text(webhook))
        assert "keeping the last good policy" in webhook.logs()
    finally:
        webhook.stop()


def metrics_text(webhook: WebhookProcess) -> str:
    return httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics").text


def _served_certificate(port: int, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection((LOOPBACK, port)) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_a_certificate_swap_in_flight_fails_no_request(tmp_path: Path) -> None:
    files = ServingFiles(tmp_path / "swap")
    webhook = WebhookProcess(files).start()
    new_ca = new_certificate_authority(now=now(), common_name="rotated-ca")
    trusting_both = files.client_context(new_ca)
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def stream() -> None:
        nonlocal answered
        review = admission_review(service("NodePort"))
        while not stop.is_set():
            # A fresh connection every few requests, so handshakes happen during the swap.
            with httpx.Client(base_url=webhook.url, verify=trusting_both, timeout=5) as client:
                for _ in range(5):
                    try:
                        reply = client.post(
                            "/mutate", content=json.dumps(review), headers=JSON_HEADERS
                        )
                        if reply.status_code != 200:
                            failures.append(f"HTTP {reply.status_code}")
                        answered += 1
                    except httpx.HTTPError as error:
                        failures.append(repr(error))

    try:
        before = _served_certificate(webhook.port, trusting_both)
        workers = [threading.Thread(target=stream) for _ in range(2)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        files.issue(new_ca)  # key then certificate, written in place as a plain tool would
        assert until(lambda: _served_certificate(webhook.port, trusting_both) != before)
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join()
        # The certificate now served verifies against the new CA alone.
        only_new_ca = ssl.create_default_context(cadata=new_ca.cert_pem.decode())
        assert _served_certificate(webhook.port, only_new_ca) != before
    finally:
        stop.set()
        webhook.stop()
    assert failures == []
    assert answered > 50


def test_metrics_admins_alert_on(webhook: WebhookProcess, files: ServingFiles) -> None:
    text = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics").text
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    served = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    expiry = values["clusterip_guard_serving_certificate_expiry_timestamp_seconds"]
    assert expiry == served.not_valid_after_utc.timestamp()
    for watched in ("policy", "certificate"):
        loaded = values[
            f'clusterip_guard_last_reload_success_timestamp_seconds{{file="{watched}"}}'
        ]
        assert loaded > 0
    assert any(key.startswith("clusterip_guard_build_info{") for key in values)
    assert "process_resident_memory_bytes" in values
    assert "process_open_fds" in values
