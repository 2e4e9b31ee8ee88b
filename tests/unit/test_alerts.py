"""The sample alert rules name only metrics that clusterip-guard exports."""

from __future__ import annotations

import re

import yaml
from prometheus_client import CollectorRegistry

from clusterip_guard.telemetry.metrics import ScanMetrics, WebhookMetrics
from tests.support.paths import ROOT


def exported_names() -> set[str]:
    names: set[str] = set()
    for metrics in (WebhookMetrics(CollectorRegistry()), ScanMetrics(CollectorRegistry())):
        for family in metrics.registry.collect():
            names.add(family.name)
            if family.type == "counter":  # labelled ones have no sample until first counted
                names.add(f"{family.name}_total")
            names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_an_alert_uses_is_exported() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yaml").read_text())
    exported = exported_names()
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "ClusterIPGuardCertificateExpiresSoon", "ClusterIPGuardReloadFailing",
        "ClusterIPGuardExposedServicesRising",
    }  # fmt: skip
    for alert in alerts:
        used = set(re.findall(r"\bclusterip_guard_[a-z_]+", alert["expr"]))
        assert used, alert["alert"]
        assert used <= exported, f"{alert['alert']}: {used - exported} not exported"
