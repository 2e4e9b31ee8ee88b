"""The policy file's reference page, docs/reference/policy.md, generated from the keys the
policy file reads (`policyfile.POLICY_KEYS`, the fields of `core.policy.Exemption`) and the
names the code accepts (cloud providers, workload kinds). `make docs` writes it;
tests/unit/test_policy_reference.py fails when a key has no entry here, when a documented
default is not the real one, or when the committed page is stale.

Usage: python -m clusterip_guard.policy_reference [--check] [PAGE]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from clusterip_guard.core.cloud_providers import CLASS_READERS, PROVIDERS
from clusterip_guard.core.gateways import GATEWAY_API_KIND_NAMES
from clusterip_guard.core.ingresses import INGRESS_KIND
from clusterip_guard.core.policy import SERVICE_KIND, Exemption
from clusterip_guard.core.workloads import WORKLOAD_KIND_NAMES
from clusterip_guard.policyfile import POLICY_KEYS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "policy.md"


def _names(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


@dataclass(frozen=True)
class Key:
    """One key of the policy file, as the reference shows it."""

    name: str
    type: str
    default: str  # YAML, as a user would write it; the test parses it to the real default
    text: str  # what it does, in a few sentences
    example: str = ""  # a policy file using it (valid on its own)


KEYS: tuple[Key, ...] = (
    Key(
        name="allowedExternalIPCIDRs",
        type="list of CIDRs",
        default="[]",
        text=(
            "External IPs inside these ranges are not exposure: addresses your own network "
            "routes to the nodes. Every other address in `spec.externalIPs` is a piece of "
            "exposure. An address inside the cluster's Service range is refused whatever this "
            "list says: it would take over a ClusterIP's traffic (CVE-2020-8554). Write plain "
            "IPv4 or IPv6 ranges; an IPv4-mapped IPv6 range is read as the IPv4 range under it."
        ),
        example="allowedExternalIPCIDRs: [192.0.2.0/24, 2001:db8::/64]\n",
    ),
    Key(
        name="allowInternalLoadBalancers",
        type="true or false",
        default="false",
        text=(
            "Allow a LoadBalancer that a cloud provider named in "
            "`internalLoadBalancerProviders` would make internal. Needs "
            "`internalLoadBalancerProviders`. The balancer's node ports still count unless "
            "`allowInternalLoadBalancerNodePorts` is true too."
        ),
        example=("allowInternalLoadBalancers: true\ninternalLoadBalancerProviders: [gcp]\n"),
    ),
    Key(
        name="allowInternalLoadBalancerNodePorts",
        type="true or false",
        default="false",
        text=(
            "Also accept the node ports an allowed internal load balancer opens: allocated "
            "ones, explicit `nodePort`s and the health-check node port of "
            "`externalTrafficPolicy: Local`. Node ports answer on every node, so they are "
            "refused by default: `enforce` denies them, `mutate` sets "
            "`allocateLoadBalancerNodePorts: false` and drops them."
        ),
        example=(
            "allowInternalLoadBalancers: true\ninternalLoadBalancerProviders: [aws]\n"
            "allowInternalLoadBalancerNodePorts: true\n"
        ),
    ),
    Key(
        name="internalLoadBalancerProviders",
        type=f"list of {_names(PROVIDERS)}",
        default="[]",
        text=(
            "The cloud providers whose internal load balancers count. Each provider's "
            "annotations are read exactly as that provider's own code reads them: exact values "
            "and case, its precedence, an external or internet-facing annotation winning. "
            "Name only the clouds your cluster runs on: an annotation for another cloud buys "
            "nothing."
        ),
        example="allowInternalLoadBalancers: true\ninternalLoadBalancerProviders: [aws, gcp]\n",
    ),
    Key(
        name="internalLoadBalancerClasses",
        type="mapping of loadBalancerClass to provider",
        default="{}",
        text=(
            "A LoadBalancer with a `spec.loadBalancerClass` is internal only when its class is "
            "named here, with the provider whose controller claims it. The cloud controller "
            "skips Services with a class, so any other class is an exposed load balancer, "
            "whatever its annotations say. Providers with a known class reading: "
            f"{_names(tuple(CLASS_READERS))}. The provider must be in "
            "`internalLoadBalancerProviders`."
        ),
        example=(
            "allowInternalLoadBalancers: true\ninternalLoadBalancerProviders: [aws]\n"
            "internalLoadBalancerClasses:\n  service.k8s.aws/nlb: aws\n"
        ),
    ),
    Key(
        name="allowExistingViolations",
        type="true or false",
        default="true",
        text=(
            "An UPDATE that adds no exposure to an object that was already exposed is allowed, "
            "with a warning. Legacy objects keep working while the reports list them. Set it "
            "to false to judge every UPDATE of an exposed object as a CREATE."
        ),
        example="allowExistingViolations: false\n",
    ),
    Key(
        name="allowedHostPorts",
        type="list of ports and ranges",
        default="[]",
        text=(
            "Host ports a Pod may open on its node: single ports (`9100`) and inclusive ranges "
            '(`"30000-30100"`, quoted). Any other `hostPort` is a piece of exposure. '
            "`hostNetwork: true` is never allowed by a port: only an exemption lets a Pod on "
            "the host network."
        ),
        example='allowedHostPorts: [9100, "30000-30100"]\n',
    ),
    Key(
        name="allowedIngressClasses",
        type="list of ingress class names or globs",
        default="[]",
        text=(
            "The ingress classes whose controllers keep what they serve inside the cluster "
            "(`internal`, `internal-*`). An Ingress is exposure unless every class it names is "
            "one of them: `spec.ingressClassName`, and the deprecated annotation "
            "`kubernetes.io/ingress.class` (an UPDATE can add it beside the field). An Ingress "
            "that names none is exposure too: the API server writes the cluster's default "
            "IngressClass into `spec.ingressClassName` when it is created, so one still "
            "without a class is served by whatever controller takes those."
        ),
        example="allowedIngressClasses: [internal]\n",
    ),
    Key(
        name="allowedGatewayClasses",
        type="list of gateway class names or globs",
        default="[]",
        text=(
            "The gateway classes whose controllers keep what they serve inside the cluster "
            "(`internal`, `internal-*`). A Gateway (Gateway API, any served version) in a "
            "governed namespace is exposure unless its `spec.gatewayClassName` is one of them; "
            "an empty class is exposure too."
        ),
        example="allowedGatewayClasses: [internal]\n",
    ),
    Key(
        name="allowedGateways",
        type="list of namespace/name, each part a name or a glob",
        default="[]",
        text=(
            "The Gateways a route (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute) may "
            "attach to: `namespace/name`, each part a glob as an exemption's are "
            "(`infra/internal`, `infra/internal-*`). A route is exposure for each parent in "
            "`spec.parentRefs` that is neither one of them nor a Service (mesh routing). A "
            "parentRef's group defaults to gateway.networking.k8s.io, its kind to Gateway, its "
            "namespace to the route's; its sectionName and port do not matter (any listener "
            "of an allowed Gateway is that Gateway). Any other kind of parent (a ListenerSet) "
            "is exposure. An entry without a slash, or with an empty part, is an error."
        ),
        example="allowedGateways: [infra/internal]\n",
    ),
    Key(
        name="exemptions",
        type="list of exemptions (below)",
        default="[]",
        text=(
            "Objects allowed to stay exposed, each with a reason and an optional last day. An "
            "exempted object is allowed with a warning that names the exemption. The first "
            "exemption that matches applies."
        ),
        example=(
            "exemptions:\n"
            "  - namespace: edge\n"
            "    name: ingress-*\n"
            "    reason: the cluster's ingress controller\n"
        ),
    ),
)

EXEMPTION_KINDS = (SERVICE_KIND, *WORKLOAD_KIND_NAMES, INGRESS_KIND, *GATEWAY_API_KIND_NAMES)
EXEMPTION_FIELDS: tuple[Key, ...] = (
    Key(
        name="namespace",
        type="glob, required",
        default="",
        text="The namespace, or a glob of namespaces (`team-*`).",
    ),
    Key(
        name="name",
        type="glob, required",
        default="",
        text="The object's name, or a glob (`ingress-*`, `*`).",
    ),
    Key(
        name="kind",
        type="kind",
        default=SERVICE_KIND,
        text=(
            f"What it exempts: {_names(EXEMPTION_KINDS)}. A workload's "
            "Pods, and what its controller makes from it, go with it."
        ),
    ),
    Key(
        name="reason",
        type="text, required",
        default="",
        text="Why; the warning and the reports show it.",
    ),
    Key(
        name="expires",
        type="date YYYY-MM-DD",
        default="none",
        text=(
            "The last day the exemption applies; from the next day it is gone. The native "
            "engine has no clock: `render` and `bootstrap --engine native` refuse an exemption "
            "with `expires`, while `clusterip-guard sync` (the chart's native engine) renders "
            "again on the day it ends."
        ),
    ),
)

EXAMPLE = """\
# External IPs inside these CIDRs are not exposure (a documentation range here).
# Never the cluster's Service range: that is refused whatever this list says.
allowedExternalIPCIDRs: [192.0.2.0/24]
# Internal load balancers, as AWS's own controllers read them, are allowed ...
allowInternalLoadBalancers: true
internalLoadBalancerProviders: [aws]
# ... and so is a balancer of this class, which the AWS Load Balancer Controller claims.
internalLoadBalancerClasses:
  service.k8s.aws/nlb: aws
# Their node ports still count (they answer on every node).
allowInternalLoadBalancerNodePorts: false
# An UPDATE that adds no exposure to an exposed object is allowed, with a warning.
allowExistingViolations: true
# Host ports a Pod may open: node-exporter's, and a range.
allowedHostPorts: [9100, "30000-30100"]
# The ingress classes that stay inside the cluster: an Ingress of any other is exposure.
allowedIngressClasses: [internal]
# The gateway classes that stay inside the cluster: a Gateway of any other is exposure.
allowedGatewayClasses: [internal]
# The Gateways a route may attach to (namespace/name): the sanctioned internal one.
allowedGateways: [infra/internal]
exemptions:
  - namespace: edge          # a glob too: team-*
    name: ingress-*          # a glob
    reason: the cluster's ingress controller
    expires: 2027-06-30      # optional: the last day it applies
  - namespace: monitoring
    name: node-exporter
    kind: DaemonSet          # optional, default Service
    reason: the node's own metrics, on the host network
"""

_HEAD = """\
<!-- Generated by `make docs` (python -m clusterip_guard.policy_reference) from the keys the
policy file reads: edit app/clusterip_guard/policy_reference.py, not this page. -->
# The policy file

The policy file says what a cluster admin allows. It is YAML. Every key is optional: an empty
file is the default policy. An unknown key is an error, and every error names the key (see
[Troubleshooting](../troubleshooting.md#the-policy-file)).

Where it goes:

- With the chart: the `policy` value. The chart mounts it as a ConfigMap. The webhook reloads
  it within seconds of a change, without a restart; `clusterip-guard sync` (the native engine)
  renders it again.
- On the command line: `--policy-file FILE` for `serve`, `check`, `scan`, `render` and
  `bootstrap --engine native`.

A broken new file never replaces a good one: the last good policy stays in force, the log says
why, and the metric `clusterip_guard_reload_failing` is 1 until a good file loads.

## A whole policy file

```yaml
{example}```

## Keys

| key | type | default |
|---|---|---|
{rows}
"""


def _anchor(name: str) -> str:
    return name.lower()


def render() -> str:
    """The reference page, as committed."""
    rows = "\n".join(
        f"| [`{key.name}`](#{_anchor(key.name)}) | {key.type} | `{key.default}` |" for key in KEYS
    )
    parts = [_HEAD.format(example=EXAMPLE, rows=rows)]
    for key in KEYS:
        parts.append(
            f"\n### `{key.name}` {{#{_anchor(key.name)}}}\n\n"
            f"Type: {key.type}. Default: `{key.default}`.\n\n{key.text}\n"
        )
        if key.example:
            parts.append(f"\n```yaml\n{key.example}```\n")
    parts.append("\n## Exemptions\n\nEach entry of `exemptions` has these fields:\n\n")
    parts.append("| field | type | default | what it is |\n|---|---|---|---|\n")
    parts += [
        f"| `{field.name}` | {field.type} | {f'`{field.default}`' if field.default else '-'} "
        f"| {field.text} |\n"
        for field in EXEMPTION_FIELDS
    ]
    parts.append(
        "\nGlobs are shell-style (`*`, `?`, `[...]`), matched against the whole name. A glob "
        "that could never match a name (upper case, a character no name holds) is refused "
        "when the file loads.\n"
    )
    return "".join(parts)


def exemption_field_names() -> set[str]:
    """The fields an exemption has in the code (core/policy.Exemption)."""
    return {field.name for field in dataclasses.fields(Exemption)}


def missing_keys() -> list[str]:
    """Keys the policy file reads that have no entry here (and entries for no key)."""
    documented = {key.name for key in KEYS}
    fields = {field.name for field in EXEMPTION_FIELDS}
    return sorted(
        (set(POLICY_KEYS) ^ documented)
        | {f"exemptions[].{f}" for f in exemption_field_names() ^ fields}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clusterip_guard.policy_reference",
        description="write the policy file's reference page from the keys the policy file reads",
    )
    parser.add_argument("page", nargs="?", type=Path, default=PAGE, help="the page to write")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the page is stale"
    )
    args = parser.parse_args(argv)
    missing = missing_keys()
    if missing:
        print(f"no reference entry for: {', '.join(missing)}", file=sys.stderr)
        return 1
    text = render()
    page: Path = args.page
    current = page.read_text(encoding="utf-8") if page.exists() else None
    if args.check:
        if current != text:
            print(f"{page} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        page.write_text(text, encoding="utf-8")
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
