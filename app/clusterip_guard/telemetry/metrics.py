"""Prometheus metrics, registered on a registry the caller owns (never at import)."""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from clusterip_guard import __version__

# Admission latency budget is a few milliseconds; buckets resolve that range finely.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5)


def standard_collectors(registry: CollectorRegistry) -> None:
    """What every Prometheus target is expected to have: the process (`process_*`: CPU,
    memory, file descriptors, start time), the Python platform, and `build_info`."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    Info("clusterip_guard_build", "The running clusterip-guard.", registry=registry).info(
        {"version": __version__, "python": platform.python_version()}
    )


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.decisions = Counter(
            "clusterip_guard_decisions",
            "Admission decisions on Services, by mode and verdict (dry runs not counted).",
            ["mode", "verdict"],
            registry=self.registry,
        )
        self.review_seconds = Histogram(
            "clusterip_guard_review_duration_seconds",
            "Time to answer one AdmissionReview, by webhook path.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bad_requests = Counter(
            "clusterip_guard_bad_requests",
            "Requests refused before a decision, by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.refused = Counter(
            "clusterip_guard_refused_connections",
            "Connections and requests cut by the limits, by reason (connections, 408, 431).",
            ["port", "reason"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "clusterip_guard_reloads",
            "Reloads of polled files, by what was reloaded and whether it worked.",
            ["file", "result"],
            registry=self.registry,
        )
        self.last_reload = Gauge(
            "clusterip_guard_last_reload_success_timestamp_seconds",
            "When each polled file (policy, certificate) was last loaded successfully.",
            ["file"],
            registry=self.registry,
        )
        self.reload_failing = Gauge(
            "clusterip_guard_reload_failing",
            "1 while the file on disk is broken and the last good one stays in force, by file.",
            ["file"],
            registry=self.registry,
        )
        self.certificate_expiry = Gauge(
            "clusterip_guard_serving_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (Unix time).",
            registry=self.registry,
        )
        standard_collectors(self.registry)


class ScanMetrics:
    """What `scan --watch` exposes: the exposed Services it found, and how its scans went."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.exposed = Gauge(
            "clusterip_guard_exposed_services",
            "Services reachable from outside the cluster at the last scan, by namespace, the "
            "mode that applies there, and report result (fail, warn, skip).",
            ["namespace", "mode", "result"],
            registry=self.registry,
        )
        self.last_scan = Gauge(
            "clusterip_guard_last_scan_timestamp_seconds",
            "When the last scan that succeeded ended (Unix time).",
            registry=self.registry,
        )
        self.scan_seconds = Gauge(
            "clusterip_guard_last_scan_duration_seconds",
            "How long the last scan that succeeded took, reading and writing included.",
            registry=self.registry,
        )
        self.scans = Counter(
            "clusterip_guard_scans",
            "Scans, by outcome (ok, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.report_write_failures = Counter(
            "clusterip_guard_report_write_failures",
            "Report writes (or prunes) that failed after their retries; the others were "
            "written, and the next scan tries these again.",
            registry=self.registry,
        )
        self.limits_reached = Counter(
            "clusterip_guard_scan_limits_reached",
            "Limits the scans met and rode out, by limit: throttled (the API server answered 429 "
            "and the request was tried again), list-expired (a list expired while paging and "
            "was continued), memory (past the high-water mark after a namespace).",
            ["limit"],
            registry=self.registry,
        )
        standard_collectors(self.registry)

    def record(
        self, exposed: dict[tuple[str, str, str], int], *, ended: float, seconds: float
    ) -> None:
        """One scan's figures; namespaces no longer exposed drop out of the gauge."""
        self.exposed.clear()
        for (namespace, mode, result), count in exposed.items():
            self.exposed.labels(namespace, mode, result).set(count)
        self.last_scan.set(ended)
        self.scan_seconds.set(seconds)
        self.scans.labels("ok").inc()
