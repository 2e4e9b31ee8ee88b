"""Keeping the reports current: watches on Services, Namespaces, workloads, Ingresses, and the
Gateway API's Gateways and routes where served, that trigger a new scan, a periodic full resync,
and one writer among replicas by a Lease (docs/design.md, "Reporting what exists (scan)").

Why a watch with leader election rather than a CronJob: a namespace relabelled from audit to
enforce must change its report within seconds, which a CronJob (a minute at best, and a Pod
start each time) cannot do; the Lease, through the Kubernetes client's own leader election,
lets the component run with two replicas for availability and still have one writer.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError as TransportError

from clusterip_guard.cluster.errors import ClusterError, ClusterUnreachable
from clusterip_guard.cluster.listing import gateway_api_list_calls

log = logging.getLogger("clusterip_guard.scan")

WATCH_SECONDS = 60  # a watch is renewed this often (the API server ends long ones anyway)
RETRY_SECONDS = 2.0
# client-go's defaults, in whole seconds as the Python client wants them.
LEASE_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10
RETRY_PERIOD_SECONDS = 2


def changes(list_call: Callable[..., Any], version: str) -> Iterator[tuple[str, str]]:
    """Each event of a watch from `version`, for up to WATCH_SECONDS, as the two pieces the
    watch needs: its type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) and the version it
    brings the collection to. Each event's object is parsed as plain JSON and dropped, never
    turned into the client's typed models, so a burst of changes to 100,000 Services costs the
    watch one event at a time (the rescan reads what it needs)."""
    response = list_call(
        watch=True,
        resource_version=version,
        timeout_seconds=WATCH_SECONDS,
        allow_watch_bookmarks=True,
        _preload_content=False,
    )
    try:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if not line or line.isspace():
                continue
            event = json.loads(line)
            if not isinstance(event, dict):
                continue
            found = event.get("object")
            metadata = found.get("metadata") if isinstance(found, dict) else None
            reached = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
            yield str(event.get("type", "")), str(reached or "")
    finally:
        response.close()
        response.release_conn()


def watch_forever(
    list_call: Callable[..., Any], what: str, changed: threading.Event, stop: threading.Event
) -> None:
    """Set `changed` on every change of `what`, from now on, until `stop`. A watch that ends
    (the API server ends each after WATCH_SECONDS) is taken up again where it ended, so a
    change in between is not missed; one that expired (410) lists again."""
    version: str | None = None
    while not stop.is_set():
        try:
            if version is None:
                # The collection's version now: the watch starts there, without replaying
                # every existing object as ADDED.
                listed = list_call(limit=1, _preload_content=False)
                version = json.loads(listed.data)["metadata"]["resourceVersion"]
            for kind, reached in changes(list_call, str(version)):
                if stop.is_set():
                    return
                if kind == "ERROR":  # 410 Gone: list again, watch again
                    version = None
                    changed.set()  # what changed since can no longer be told
                    break
                version = reached or version
                if kind != "BOOKMARK":
                    changed.set()
        except (ApiException, TransportError, OSError, ValueError, KeyError) as error:
            log.warning("watch on %s failed, retrying: %s", what, str(error).splitlines()[0])
            version = None
            changed.set()  # something may have changed while nobody watched
            stop.wait(RETRY_SECONDS)


def keep_current(
    api: client.ApiClient,
    rescan: Callable[[], None],
    *,
    resync_seconds: float,
    settle_seconds: float,
    stop: threading.Event,
) -> None:
    """Scan now, then again after every burst of changes (once it has settled for
    `settle_seconds`) and at least every `resync_seconds`, until `stop`."""
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    changed = threading.Event()
    # The workloads a user writes; not Pods, ReplicaSets or Jobs, which their controllers
    # rewrite all day (a bare Pod's report waits for the resync).
    for list_call, what in (
        (core.list_service_for_all_namespaces, "services"),
        (core.list_namespace, "namespaces"),
        (apps.list_deployment_for_all_namespaces, "deployments"),
        (apps.list_stateful_set_for_all_namespaces, "statefulsets"),
        (apps.list_daemon_set_for_all_namespaces, "daemonsets"),
        (client.BatchV1Api(api).list_cron_job_for_all_namespaces, "cronjobs"),
        (client.NetworkingV1Api(api).list_ingress_for_all_namespaces, "ingresses"),
        # Those served when the component starts; a kind whose CRD comes later is scanned at
        # each resync (every scan asks discovery), and watched from the next start.
        *_served_gateway_api(api),
    ):
        threading.Thread(
            target=watch_forever, args=(list_call, what, changed, stop), daemon=True,
            name=f"watch-{what}",
        ).start()  # fmt: skip
    while not stop.is_set():
        changed.clear()
        try:
            rescan()
        except ClusterError as error:
            log.warning("scan failed, retrying at the next change or resync: %s", error)
        except Exception:  # a bug must not end the reports for good: say it, try again later
            log.exception("scan failed, retrying at the next change or resync")
        changed.wait(resync_seconds)
        stop.wait(settle_seconds)


def _served_gateway_api(api: client.ApiClient) -> list[tuple[Callable[..., Any], str]]:
    try:
        return gateway_api_list_calls(api)
    except ClusterError as error:
        log.warning("cannot tell which Gateway API kinds are served, not watching them: %s", error)
        return []


def lead(
    api: client.ApiClient,
    *,
    namespace: str,
    name: str,
    identity: str,
    work: Callable[[], None],
) -> None:
    """Run `work` while this process holds the Lease `namespace/name`; other candidates wait.
    Losing the Lease ends the process (exit 3), so that it never writes beside a new leader."""
    lock = LeaseLock(name, namespace, identity)  # type: ignore[no-untyped-call]
    lock.api_instance = client.CoordinationV1Api(api)
    lost = threading.Event()
    config = electionconfig.Config(  # type: ignore[no-untyped-call]
        lock,
        lease_duration=LEASE_SECONDS,
        renew_deadline=RENEW_DEADLINE_SECONDS,
        retry_period=RETRY_PERIOD_SECONDS,
        onstarted_leading=work,
        onstopped_leading=lost.set,
    )
    log.info("waiting to lead: Lease %s/%s as %s", namespace, name, identity)
    leaderelection.LeaderElection(config).run()  # type: ignore[no-untyped-call]
    if lost.is_set():
        raise ClusterUnreachable(
            f"lost the Lease {namespace}/{name}: stopping, so as never to write beside a new leader"
        )
