"""The native engine kept current (docs/design.md, "Engines"): `clusterip-guard sync` renders
the policy into admission policies whenever the policy's ConfigMap changes, and again on the
day an exemption ends (CEL has no clock, so an exemption's end is a new rendering).

Each rendering is applied as the bootstrap applies one (`bootstrap_native`): objects that say
the same are not written, changed ones are replaced in place (never deleted and created, so
no namespace is unguarded in between), and what the rendering no longer holds goes after.
A broken policy is logged and never applied: the last good rendering stays in force.
One writer among replicas, by a Lease, as the reports component.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from clusterip_guard.cluster.client import read_or_none
from clusterip_guard.cluster.errors import ClusterError
from clusterip_guard.cluster.registrations import bootstrap_native
from clusterip_guard.cluster.settings import BootstrapSettings
from clusterip_guard.cluster.watching import watch_forever
from clusterip_guard.core.native import next_rendering
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.policyfile import PolicyError, parse_policy

log = logging.getLogger("clusterip_guard.sync")


@dataclass(frozen=True)
class PolicySource:
    """Where the policy lives: a key of a ConfigMap (the chart's `<name>-policy`)."""

    namespace: str
    name: str
    key: str = "policy.yaml"

    def __str__(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name} ({self.key})"


def read_policy(api: client.ApiClient, source: PolicySource) -> PolicySettings:
    """The policy the ConfigMap holds now; no ConfigMap or no key is an error (one line)."""
    core = client.CoreV1Api(api)
    found = read_or_none(
        "get",
        "configmaps",
        source.namespace,
        functools.partial(core.read_namespaced_config_map, source.name, source.namespace),
    )
    data: dict[str, str] = (found.data if found is not None else None) or {}
    if source.key not in data:
        raise PolicyError(f"{source}: not found")
    try:
        return parse_policy(data[source.key])
    except PolicyError as error:
        raise PolicyError(str(error).replace("policy file", str(source), 1)) from None


def sync_once(
    api: client.ApiClient,
    settings: BootstrapSettings,
    source: PolicySource,
    today: datetime.date,
) -> datetime.date | None:
    """One rendering applied; the day the next one is due (an exemption ends), if any."""
    policy = read_policy(api, source)
    report = bootstrap_native(api, settings, policy=policy, today=today)
    changes = [line for line in report.lines if not line.startswith("unchanged")]
    log.info("rendered %s: %s", source, "; ".join(changes) if changes else "nothing changed")
    return next_rendering(policy, today)


def _seconds_until(day: datetime.date, now: datetime.datetime) -> float:
    midnight = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    return max(0.0, (midnight - now).total_seconds())


def keep_synced(
    api: client.ApiClient,
    settings: BootstrapSettings,
    source: PolicySource,
    *,
    resync_seconds: float,
    stop: threading.Event,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> None:
    """Render now, then after every change of the ConfigMap, on the day an exemption ends, and
    at least every `resync_seconds`, until `stop`."""
    core = client.CoreV1Api(api)
    changed = threading.Event()
    listing = functools.partial(
        core.list_namespaced_config_map,
        source.namespace,
        field_selector=f"metadata.name={source.name}",
    )
    threading.Thread(
        target=watch_forever, args=(listing, str(source), changed, stop), daemon=True,
        name="watch-policy",
    ).start()  # fmt: skip
    while not stop.is_set():
        changed.clear()
        wait = resync_seconds
        try:
            due = sync_once(api, settings, source, now().date())
            if due is not None:
                wait = min(wait, _seconds_until(due, now()) + 1)
        except PolicyError as error:
            log.error("policy not applied; the last good rendering stays in force: %s", error)
        except ClusterError as error:
            log.warning("rendering not applied, retrying at the next change or resync: %s", error)
        except Exception:  # a bug must not end the sync for good: say it, try again later
            log.exception("rendering failed, retrying at the next change or resync")
        changed.wait(wait)
