"""A switch of engine with no window (docs/design.md, "Engines"; issue 30, item 1): the old
engine's objects go only once the new engine is seen answering.

Why a probe and not an order alone: the API server acts on a webhook configuration at its next
call, but compiles admission policies on a poll of about a second. Removing the webhook right
after writing the policies let NodePorts through in between. So after the new engine's objects
are written, a server dry run asks the API server to judge an exposed Service and a Deployment
with a host port in a namespace of our own, the probe namespace, labelled `audit`, until the
new engine's answer is in what comes back; only then is the old engine removed. If it never
answers within the timeout, what the new engine registered goes again, the old engine stays,
and the switch fails in one line.

Why `audit`: it is the one mode in which both engines' answers reach the client together. The
API server runs admission policies before webhooks, so in an `enforce` namespace a policy's
denial would hide whether the webhook is in force; in `audit` a policy only warns, the request
goes on to the webhooks, and each engine leaves its own warning: the native engine's names its
policy ("ValidatingAdmissionPolicy '<name>-exposure' with binding ..."), the webhook's starts
"audit: ". A dry run stores nothing, so nothing of the probe stays.

What the probe shows: the webhook engine's validating configuration (all its entries are one
object), and the native engine's exposure policies for Services and for workloads, written
after its other policies; its conversion (a MutatingAdmissionPolicy, written first and
compiled on its own poll) is not shown by it, and until it is compiled the validating policy
denies in `mutate` namespaces what a conversion would have fixed: closed, never open.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from clusterip_guard.cluster.admission_objects import any_stored, remove_named
from clusterip_guard.cluster.client import RunLog, api_message, failure, read_or_none
from clusterip_guard.cluster.errors import ClusterRefused, EngineNotInForce
from clusterip_guard.core.installation import (
    HOST_EXPOSURE,
    INSTALLED_POLICIES,
    SERVICE_EXPOSURE,
    WEBHOOK_CONFIGURATION_KINDS,
    InstalledPolicy,
    installed_names,
)
from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.sentences import AUDITED
from clusterip_guard.core.types import Engine, Manifest

POLL_SECONDS = 0.25
PROBE_NAME = "clusterip-guard-probe"
PROBE_MODE = "audit"
# On a probe namespace the switch made (an uninstall removes only such a one).
PROBE_FOR_ANNOTATION = "clusterip-guard.io/probe-for"
HTTP_NOT_FOUND = 404
HTTP_FORBIDDEN = 403
HTTP_CONFLICT = 409
DNS_LABEL_LENGTH = 63
MAX_SAID = 400  # of what the API server said, in the one line a failed switch ends with

Named = tuple[str, str]  # (kind, name)


def probe_namespace(installation: str) -> str:
    """Where an installation's switches probe: `<name>-probe` (the chart's name for it)."""
    return f"{installation}-probe"[:DNS_LABEL_LENGTH].removesuffix("-")


def _native_only(installation: str) -> list[Named]:
    """The admission policies only the native engine registers (and their bindings)."""
    named: list[Named] = []
    for policy in INSTALLED_POLICIES:
        if policy.engines != ("native",):
            continue
        kind = "MutatingAdmissionPolicy" if policy.configuration == "mutating" else (
            "ValidatingAdmissionPolicy"
        )  # fmt: skip
        named.append((kind, policy.name(installation)))
        named += [(f"{kind}Binding", name) for name in policy.binding_names(installation)]
    return named


def engine_only_objects(engine: Engine, installation: str) -> list[Named]:
    """What `engine` registers and the other never does: what a switch away from it removes
    (the in-process policies beside the webhook are both engines', kept across a switch)."""
    if engine == "webhook":
        return [
            (kind, name)
            for kind in WEBHOOK_CONFIGURATION_KINDS
            for name in installed_names(kind, installation)
        ]
    return _native_only(installation)


def other_engine(engine: Engine) -> Engine:
    return "webhook" if engine == "native" else "native"


def switch_engine(
    api: client.ApiClient,
    engine: Engine,
    installation: str,
    written: Sequence[Manifest],
    report: RunLog,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Called once `engine`'s objects (`written`) are applied, before anything of the other
    engine is removed: when the other engine is registered, wait until `engine` answers the
    probe. If it never does, remove what only `engine` registers and raise EngineNotInForce:
    the other engine stays as it was."""
    old = other_engine(engine)
    if not any_stored(api, engine_only_objects(old, installation)):
        return  # no switch: nothing of the other engine to hand over from
    namespace = probe_namespace(installation)
    try:
        tries, seen = _until_answered(
            api, engine, installation=installation, namespace=namespace, timeout=timeout,
            sleep=sleep, clock=clock,
        )  # fmt: skip
    except EngineNotInForce as error:
        ours = {(m["kind"], m["metadata"]["name"]) for m in written}
        new_only = [named for named in engine_only_objects(engine, installation) if named in ours]
        try:
            remove_named(api, new_only, report)
            undone = f"removed what the {engine} engine registered"
        except ClusterRefused as refused:
            undone = f"what the {engine} engine registered stays beside it ({refused})"
        raise EngineNotInForce(f"{error}; {undone}: the {old} engine stays in force") from None
    report.say(
        f"in force: the {engine} engine answered the probe in namespace {namespace} "
        f"({seen}, {tries} {'try' if tries == 1 else 'tries'}); removing the {old} engine"
    )


def _until_answered(
    api: client.ApiClient,
    engine: Engine,
    *,
    installation: str,
    namespace: str,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[int, str]:
    deadline = clock() + timeout
    tries = 0
    last = "no answer yet"
    while True:
        tries += 1
        answered, last = _probe(api, engine, installation, namespace)
        if answered:
            return tries, last
        if clock() >= deadline:
            raise EngineNotInForce(
                f"the {engine} engine did not answer within {timeout:g}s a server dry run of "
                f"a NodePort Service and a host-port Deployment in namespace {namespace} "
                f"(labelled {MODE_LABEL}={PROBE_MODE}); last: {last}"
            )
        sleep(POLL_SECONDS)


def _probe(
    api: client.ApiClient, engine: Engine, installation: str, namespace: str
) -> tuple[bool, str]:
    """One round: whether `engine` answered both dry runs; else what the API server said to the
    first it did not answer."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    probes: tuple[tuple[str, Callable[..., Any], Manifest, InstalledPolicy], ...] = (
        ("Service", core.create_namespaced_service_with_http_info, _service(), SERVICE_EXPOSURE),
        ("Deployment", apps.create_namespaced_deployment_with_http_info, _deployment(),
         HOST_EXPOSURE),
    )  # fmt: skip
    for kind, create, body, policy in probes:
        request = functools.partial(create, namespace, body)
        warnings, refused = _dry_run(api, installation, namespace, kind, request)
        if engine == "native":
            sign = f"ValidatingAdmissionPolicy '{policy.name(installation)}'"
            answered = any(sign in warning for warning in warnings)
        else:
            subject = f"{kind} {namespace}/{PROBE_NAME}"
            sign = AUDITED.partition("{field}")[0].format(subject=subject)
            answered = any(warning.startswith(sign) for warning in warnings)
        if not answered:
            said = refused or "; ".join(warnings) or "admitted without a warning"
            return False, f"{kind}: {said}"[:MAX_SAID]
    return True, "Service and Deployment"


def _dry_run(
    api: client.ApiClient, installation: str, namespace: str, kind: str, create: Callable[..., Any]
) -> tuple[list[str], str | None]:
    """The warnings of one dry-run create, and the refusal if it was refused. A missing probe
    namespace is created; a refusal by RBAC ends the switch at once."""
    for _ in range(2):
        try:
            response = create(dry_run="All", _preload_content=False)
        except ApiException as error:
            said = api_message(error) or f"{error.status} {error.reason}"
            if error.status == HTTP_NOT_FOUND and "namespaces" in said:
                _create_probe_namespace(api, installation, namespace)
                continue
            if error.status == HTTP_FORBIDDEN and "cannot create resource" in said:
                raise failure(error, "create", f"{kind.lower()}s", namespace) from error
            return _warnings(error.headers), said
        except (TransportError, OSError) as error:
            raise failure(error, "create", f"{kind.lower()}s", namespace) from error
        return _warnings(response.headers), None
    return [], f"namespace {namespace} not found"


def _warnings(headers: Any) -> list[str]:
    """The texts of the API server's Warning headers (`299 - "text"`, joined by ", ")."""
    if headers is None:
        return []
    raw = headers.getlist("Warning") if hasattr(headers, "getlist") else [headers.get("Warning")]
    texts: list[str] = []
    for value in raw:
        texts += warning_texts(value or "")
    return texts


def warning_texts(value: str) -> list[str]:
    """The texts of a Warning header's value: `299 - "text"`, several joined by ", "."""
    texts, text, inside, escaped = [], "", False, False
    for char in value:
        if inside:
            if escaped:
                text, escaped = text + char, False
            elif char == "\\":
                escaped = True
            elif char == '"':
                texts.append(text)
                text, inside = "", False
            else:
                text += char
        elif char == '"':
            inside = True
    return texts


def _create_probe_namespace(api: client.ApiClient, installation: str, namespace: str) -> None:
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {MODE_LABEL: PROBE_MODE},
            "annotations": {PROBE_FOR_ANNOTATION: installation},
        },
    }
    try:
        create: Callable[..., Any] = client.CoreV1Api(api).create_namespace
        create(manifest)
    except ApiException as error:
        if error.status == HTTP_CONFLICT:
            return  # made meanwhile
        raise ClusterRefused(
            f"{failure(error, 'create', 'namespaces', None)} (the namespace {namespace}, "
            f"labelled {MODE_LABEL}={PROBE_MODE}, where an engine switch shows the new engine "
            "answering: create it so, or let the switch create it)"
        ) from error
    except (TransportError, OSError) as error:
        raise failure(error, "create", "namespaces", None) from error


def remove_probe_namespace(
    api: client.ApiClient, installation: str, report: RunLog, *, dry_run: bool = False
) -> None:
    """The probe namespace, if a switch of this installation made it (the chart's is its own)."""
    namespace = probe_namespace(installation)
    core = client.CoreV1Api(api)
    try:
        found = read_or_none(
            "get", "namespaces", None, functools.partial(core.read_namespace, namespace)
        )
    except ClusterRefused:
        return  # may not look (the chart's pre-delete Job): then it is not ours to remove
    annotations = (found.metadata.annotations or {}) if found and found.metadata else {}
    if annotations.get(PROBE_FOR_ANNOTATION) != installation:
        return
    if dry_run:
        report.say(f"would delete Namespace {namespace}")
        return
    try:
        read_or_none(
            "delete", "namespaces", None, functools.partial(core.delete_namespace, namespace)
        )
    except ClusterRefused as error:
        report.say(f"kept Namespace {namespace}: {error}")
        return
    report.say(f"deleted Namespace {namespace}")


def _service() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": PROBE_NAME},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }


def _deployment() -> Manifest:
    labels = {"app.kubernetes.io/name": PROBE_NAME}
    container = {"name": "probe", "image": "probe",
                 "ports": [{"containerPort": 8080, "hostPort": 8080}]}  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": PROBE_NAME},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
