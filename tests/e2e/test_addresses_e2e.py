"""One grammar for addresses, two readers: the CEL that core/addresses.py writes for the
admission policies reads every generated spelling exactly as its Python half does, on the real
API server (a ValidatingAdmissionPolicy that answers with what it read)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from clusterip_guard.core.addresses import cel_ip, cel_range, read_ip, read_range
from clusterip_guard.yamltext import dump_yaml_documents
from tests.support.kubectl import Kubectl
from tests.support.polling import until

# The CEL these addresses are written as runs where an engine installs it: the Service-range
# policy (ServiceCIDR, 1.33+) and the native engine (1.36+). Before 1.33 no policy of ours uses
# it (and the CEL library has no ip() there): skipped, saying so (make test-versions).
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("service_cidrs_served")]

SEED = 20261206
NAMESPACE = "address-readings"
BATCH = 40  # values a denial says at once, well under the API server's 5 KiB message
SEPARATOR = "|"


def _octet(rng: random.Random) -> str:
    number = rng.choice((0, 7, 10, 127, 192, 255, rng.randrange(0, 256), rng.randrange(0, 300)))
    return "0" * rng.choice((0, 0, 0, 1, 2, 7)) + str(number)


def generated_addresses(rng: random.Random) -> list[str]:
    """Every family a Service field may carry: loose IPv4 (leading zeros, octets out of
    range), IPv4-mapped in each spelling, IPv6, zones, and what is no address at all."""
    values = []
    for _ in range(120):
        dotted = ".".join(_octet(rng) for _ in range(rng.choice((4, 4, 4, 4, 4, 3, 5))))
        mapped = rng.choice(("", "", "", "::ffff:", "::FFFF:", "0:0:0:0:0:ffff:", "::ffff:0:"))
        values.append(mapped + dotted)
    values += ["2001:db8::7", "2001:DB8:0:0::7", "::1", "::", "fe80::1%eth0", "::ffff:c000:20a",
               "::1.2.3.4", "", " 1.2.3.4", "1.2.3.4 ", "not-an-ip", "1..2.3",
               "\uff10.1.2.3"]  # fmt: skip
    return values


def generated_ranges(rng: random.Random) -> list[str]:
    values = []
    for address in generated_addresses(rng)[:100]:
        prefix = rng.choice(("", "0", "00", "8", "08", "32", "33", "96", "096", "120", "128",
                             "129", "-1", "x", "8/8"))  # fmt: skip
        values.append(address + ("/" + prefix if prefix else ""))
    values += ["0.0.0.0/00", "000.000.000.000/0", "::ffff:0.0.0.0/96", "::/0", "2001:db8::/032",
               "10.0.0.0/8", "10.1.2.3/8", "::ffff:0:0/96", "::ffff:1.2.3.4/95"]  # fmt: skip
    return [v for v in values if SEPARATOR not in v]


def _policy(reader: Callable[[str], str]) -> list[dict[str, Any]]:
    values = f"object.data['values'].split({json.dumps(SEPARATOR)})"
    policy: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "address-readings"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "false",
                    "messageExpression": (
                        f"'read:' + {values}.map(x, {reader('x')}).join({json.dumps(SEPARATOR)})"
                    ),
                }
            ],
        },
    }
    binding: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "address-readings"},
        "spec": {
            "policyName": "address-readings",
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
            },
        },
    }
    return [policy, binding]


def read_by_the_api_server(kubectl: Kubectl, values: list[str]) -> list[str]:
    readings: list[str] = []
    for start in range(0, len(values), BATCH):
        batch = values[start : start + BATCH]
        configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "values", "namespace": NAMESPACE},
                     "data": {"values": SEPARATOR.join(batch)}}  # fmt: skip
        refused = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(configmap),
                          check=False)  # fmt: skip
        assert "read:" in refused.stderr, refused.stderr
        said = refused.stderr.strip().split("read:", 1)[1].split(SEPARATOR)
        assert len(said) == len(batch), refused.stderr
        readings += said
    return readings


@pytest.fixture(scope="module")
def reading_namespace(kubectl: Kubectl) -> Kubectl:
    kubectl("create", "namespace", NAMESPACE)
    return kubectl


@pytest.mark.parametrize(
    ("reader", "python", "generate"),
    [
        pytest.param(cel_ip, read_ip, generated_addresses, id="addresses"),
        pytest.param(cel_range, read_range, generated_ranges, id="ranges"),
    ],
)
def test_cel_reads_every_generated_spelling_as_python_does(
    reading_namespace: Kubectl,
    reader: Callable[[str], str],
    python: Callable[[str], object],
    generate: Callable[[random.Random], list[str]],
) -> None:
    kubectl = reading_namespace
    objects = _policy(reader)
    kubectl("apply", "-f", "-", stdin=dump_yaml_documents(objects))
    try:
        values = generate(random.Random(SEED))
        probe = ["010.0.0.1"]  # read differently by the two readers, so each shows its own
        expected_probe = [str(python(probe[0]))]
        # A new policy reaches admission a moment later.
        assert until(lambda: _said_or_none(kubectl, probe) == expected_probe, timeout=30), (
            "the reading policy never came into force"
        )
        readings = read_by_the_api_server(kubectl, values)
        expected = [str(parsed) if (parsed := python(v)) is not None else "" for v in values]
        differences = [
            f"{value!r}: CEL {cel!r}, Python {py!r}"
            for value, cel, py in zip(values, readings, expected, strict=True)
            if cel != py
        ]
        assert not differences, "\n".join(differences)
        assert sum(1 for e in expected if e) > len(values) // 4  # most families are readable
        assert sum(1 for e in expected if not e) > 10  # and the unreadable ones are there
    finally:
        kubectl("delete", "-f", "-", stdin=dump_yaml_documents(objects), check=False)


def _said_or_none(kubectl: Kubectl, values: list[str]) -> list[str] | None:
    try:
        return read_by_the_api_server(kubectl, values)
    except AssertionError:
        return None
