"""The native engine kept current (docs/design.md, "Engines"): `clusterip-guard sync` renders
the policy into admission policies whenever the policy's ConfigMap changes, and again on the
day an exemption ends (CEL has no clock, so an exemption's end is a new rendering).

Each rendering is applied as the bootstrap applies one (`bootstrap_native`): objects that say
the same are not written, changed ones are replaced in place (never deleted and created, so
no namespace is unguarded in between), and what the rendering no longer holds goes after.
A broken policy is logged and never applied: the last good rendering stays in force.
One writer among replicas, by a Lease, as the reports component. After an uninstall (its
marker, cluster/uninstalled.py) it stands down: it applies nothing, says so, and removes what
a rendering wrote while the uninstall ran.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from clusterip_guard.cluster.admission_objects import remove_admission_objects
from clusterip_guard.cluster.client import RunLog, read_or_none
from clusterip_guard.cluster.errors import ClusterError, ClusterRefused
from clusterip_guard.cluster.registrations import bootstrap_native
from clusterip_guard.cluster.settings import BootstrapSettings
from clusterip_guard.cluster.uninstalled import marked_at, marker_name
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


class StandDown(ClusterError):
    """The installation was uninstalled after its policy was written: nothing is applied."""


def read_policy(api: client.ApiClient, source: PolicySource) -> PolicySettings:
    """The policy the ConfigMap holds now; no ConfigMap or no key is an error (one line)."""
    return _read_policy(api, source)[0]


def _read_policy(
    api: client.ApiClient, source: PolicySource
) -> tuple[PolicySettings, datetime.datetime | None]:
    """The policy, and when its ConfigMap was made."""
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
    made = found.metadata.creation_timestamp if found is not None and found.metadata else None
    try:
        return parse_policy(data[source.key]), made
    except PolicyError as error:
        raise PolicyError(str(error).replace("policy file", str(source), 1)) from None


def _uninstalled(
    api: client.ApiClient, settings: BootstrapSettings, policy_made: datetime.datetime | None
) -> str | None:
    """What the uninstall marker says, when it counts: written at or after the policy's
    ConfigMap was made (a marker older than it is an earlier installation's)."""
    try:
        marked = marked_at(api, settings.namespace, settings.configuration_name)
    except ClusterRefused as error:
        log.warning("cannot read the uninstall marker, applying anyway: %s", error)
        return None
    if marked is None or (policy_made is not None and marked < policy_made):
        return None
    return (
        f"{settings.configuration_name} was uninstalled at {marked.isoformat()} (ConfigMap "
        f"{settings.namespace}/{marker_name(settings.configuration_name)}): nothing is applied "
        "until a bootstrap or a new policy ConfigMap installs it again"
    )


def sync_once(
    api: client.ApiClient,
    settings: BootstrapSettings,
    source: PolicySource,
    today: datetime.date,
) -> datetime.date | None:
    """One rendering applied; the day the next one is due (an exemption ends), if any.
    StandDown, applying nothing, once the installation is uninstalled; a rendering the
    uninstall overtook is removed again."""
    policy, made = _read_policy(api, source)
    said = _uninstalled(api, settings, made)
    if said is not None:
        raise StandDown(said)
    report = bootstrap_native(api, settings, policy=policy, today=today)
    said = _uninstalled(api, settings, made)
    if said is not None:  # the uninstall ran while this rendering was written: undo it
        undone = RunLog()
        remove_admission_objects(api, settings.configuration_name, undone)
        raise StandDown(f"{said}; removed what this rendering wrote ({len(undone.lines)})")
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
    marker = functools.partial(
        core.list_namespaced_config_map,
        settings.namespace,
        field_selector=f"metadata.name={marker_name(settings.configuration_name)}",
    )
    for list_call, what, thread in (
        (listing, str(source), "watch-policy"),
        (marker, "the uninstall marker", "watch-marker"),
    ):
        threading.Thread(
            target=watch_forever, args=(list_call, what, changed, stop), daemon=True,
            name=thread,
        ).start()  # fmt: skip
    standing_down: str | None = None
    while not stop.is_set():
        changed.clear()
        wait = resync_seconds
        try:
            due = sync_once(api, settings, source, now().date())
            if standing_down is not None:
                log.info("applying again: the uninstall marker no longer counts")
                standing_down = None
            if due is not None:
                wait = min(wait, _seconds_until(due, now()) + 1)
        except StandDown as error:
            # Said at every rendering it skips (a change, a resync): loud the first time.
            level = logging.INFO if str(error) == standing_down else logging.WARNING
            log.log(level, "standing down: %s", error)
            standing_down = str(error)
        except PolicyError as error:
            log.error("policy not applied; the last good rendering stays in force: %s", error)
        except ClusterError as error:
            log.warning("rendering not applied, retrying at the next change or resync: %s", error)
        except Exception:  # a bug must not end the sync for good: say it, try again later
            log.exception("rendering failed, retrying at the next change or resync")
        changed.wait(wait)
