"""What clusterip-guard says, written once for both engines: each sentence a named template
whose `{fields}` the Python judge fills with `str.format` and the native engine's compiler with
CEL expressions (core/native/cel.py, `sentence`). tests/unit/test_sentences.py fails when a
sentence is typed anywhere else. Pure: strings only.
"""

from __future__ import annotations

from typing import Final

# --- the pieces of a Service's exposure (core/exposure.py): summaries, then fixes ------------
NODE_PORT_TYPE: Final = "type NodePort opens a port on every node"
LOAD_BALANCER_TYPE: Final = "type LoadBalancer exposes the Service outside the cluster"
CLASSED_LOAD_BALANCER: Final = (
    "type LoadBalancer of class {load_balancer_class} exposes the Service outside the cluster "
    "(the policy does not name that class as internal; a cloud's internal annotations do not "
    "apply to a classed balancer)"
)
NODE_PORT: Final = "port {port} opens {opened} on every node"
EXPLICIT_NODE_PORT: Final = "node port {node_port}"
ANY_NODE_PORT: Final = "a node port"
HEALTH_CHECK_NODE_PORT: Final = (
    "externalTrafficPolicy Local opens a health-check node port on every node"
)
INTERNAL_NODE_PORTS: Final = "this internal load balancer opens a port on every node"
SOURCE_RANGE: Final = "the load balancer admits {source_range}"
UNREADABLE_SOURCE_RANGE: Final = (
    "the load balancer admits {source_range}, which is not a range clusterip-guard can read, "
    "so it counts as exposure"
)
EXTERNAL_IP_OUTSIDE: Final = "external IP {ip} is outside the allowed CIDRs"
UNREADABLE_EXTERNAL_IP: Final = (
    "external IP {ip} is not an address clusterip-guard can read, so it counts as exposure"
)
EXTERNAL_IP_IN_SERVICE_RANGE: Final = (
    "external IP {ip} is inside the Service range {service_range}: it would take over the "
    "traffic of a ClusterIP (CVE-2020-8554), whatever allowedExternalIPCIDRs says"
)
RENAMED_PORT: Final = (
    "port {port} was renamed from {old_name} to {new_name}, so the API server gave it node port "
    "{node_port} for its node port {old_node_port}"
)
NO_PORT_NAME: Final = "(no name)"

USE_CLUSTER_IP: Final = "use type ClusterIP"
REMOVE_IT: Final = "remove it"
STOP_LOAD_BALANCER_NODE_PORTS: Final = "set spec.allocateLoadBalancerNodePorts: false"
STOP_INTERNAL_NODE_PORTS: Final = "set allocateLoadBalancerNodePorts: false"
REMOVE_THE_NODE_PORT: Final = "remove the nodePort"
USE_CLUSTER_POLICY: Final = "use externalTrafficPolicy Cluster"
NARROW_SOURCE_RANGES: Final = "narrow spec.loadBalancerSourceRanges"
REMOVE_EXTERNAL_IP: Final = "remove it from spec.externalIPs"
KEEP_PORT_NAME: Final = "keep the port's name {old_name}, or set nodePort: {old_node_port}"

# --- a denial (core/decision.py) --------------------------------------------------------------
DENIAL: Final = "{subject} would be reachable from outside the cluster, and {why}: {pieces}"
SERVICE_SUBJECT: Final = "Service {namespace}/{name}"
THROUGH_SUBRESOURCE: Final = " (written through services/{subresource})"
KEEPS_SERVICES_INTERNAL: Final = "namespace {namespace} keeps Services internal"
KEEPS_WORKLOADS_INTERNAL: Final = (
    "namespace {namespace} keeps what runs there reachable only inside the cluster"
)
BY_LABEL: Final = " (label {label})"
NOT_A_MODE: Final = (
    "the label {label} of namespace {namespace} is not a mode ({modes}), so it is judged as enforce"
)
PIECE_LINE: Final = "{field}: {summary}; {fix}"
# --- what is allowed with a warning -------------------------------------------------------------
EXEMPTED: Final = "{subject} is exposed but allowed by {exemption}"
_KEPT_BY_POLICY: Final = "existing exposure kept (allowExistingViolations)"
EXISTING_KEPT: Final = _KEPT_BY_POLICY + ": {field}: {summary}"
KEPT_WHY: Final = _KEPT_BY_POLICY + ": the change adds none"
AUDITED: Final = "audit: {subject}: {field}: {summary}"
PIECES_JOINED: Final = "; "
# A denial names at most this many pieces (the API server drops a message over 5 KiB), then
# says how many more.
MAX_PIECES_SAID: Final = 12
MORE_PIECES: Final = " (and {count} more)"

# --- the pieces of a Pod spec's exposure on its node (core/workloads.py) ----------------------
HOST_NETWORK: Final = (
    "hostNetwork: true puts the Pod on its node's own network: every port it listens on answers "
    "on the node's addresses"
)
REMOVE_HOST_NETWORK: Final = (
    "remove hostNetwork and reach the Pod through a ClusterIP Service (clusterip-guard cannot "
    "remove it for you: without it the Pod is a different Pod)"
)
HOST_NETWORK_PORT: Final = "container {container} listens on port {port} of its node (host network)"
HOST_PORT: Final = "container {container}'s port {port} opens host port {host_port} on its node"
ON_ITS_ADDRESS: Final = " (on its address {host_ip})"
REMOVE_HOST_PORT: Final = (
    "remove hostPort (the container port stays; reach it through a ClusterIP Service)"
)
WORKLOAD_SUBJECT: Final = "{kind} {namespace}/{name}"
HOST_NETWORK_IN_MUTATE: Final = (
    "namespace {namespace} (label {label}=mutate) converts what it can, but the host network "
    "cannot be taken from a Pod without making it another Pod"
)

# --- the pieces of an Ingress's exposure (core/ingresses.py) -----------------------------------
INGRESS_CLASS: Final = (
    "ingress class {ingress_class} is not an allowed class: its controller serves the Ingress "
    "from outside the cluster"
)
INGRESS_WITHOUT_CLASS: Final = (
    "the Ingress names no ingress class (and the cluster had no default class when it was "
    "created): a controller that serves Ingresses without one serves it from outside the cluster"
)
UNREADABLE_INGRESS_CLASS: Final = (
    "the ingress class is empty, not a class clusterip-guard can read, so it counts as exposure"
)
USE_ALLOWED_INGRESS_CLASS: Final = "use an allowed ingress class ({classes})"
NO_INGRESS_CLASS_ALLOWED: Final = (
    "no ingress class is allowed (allowedIngressClasses is empty): reach the Service from "
    "inside the cluster, or ask the cluster admin to allow the class"
)
INGRESS_SUBJECT: Final = "Ingress {namespace}/{name}"
INGRESS_IN_MUTATE: Final = (
    "namespace {namespace} (label {label}=mutate) converts what it can, but an Ingress cannot "
    "be made internal: its class decides who serves it"
)

# --- the pieces of a Gateway's and a route's exposure (core/gateways.py) -----------------------
GATEWAY_CLASS: Final = (
    "gateway class {gateway_class} is not an allowed class: its controller serves the Gateway's "
    "listeners from outside the cluster"
)
UNREADABLE_GATEWAY_CLASS: Final = (
    "the gateway class is empty or missing, not a class clusterip-guard can read, so it counts "
    "as exposure"
)
USE_ALLOWED_GATEWAY_CLASS: Final = "use an allowed gateway class ({classes})"
NO_GATEWAY_CLASS_ALLOWED: Final = (
    "no gateway class is allowed (allowedGatewayClasses is empty): reach the Service from "
    "inside the cluster, or ask the cluster admin to allow the class"
)
ROUTE_PARENT: Final = (
    "parent {parent} is not an allowed Gateway: what listens there serves the route from "
    "outside the cluster"
)
UNREADABLE_ROUTE_PARENT: Final = (
    "the parent {parent} is not one clusterip-guard can read (no name, or a field that is not "
    "text), so it counts as exposure"
)
PARENT_REF: Final = "{kind} {namespace}/{name}"
ATTACH_TO_ALLOWED_GATEWAY: Final = (
    "attach the route to an allowed Gateway ({gateways}), or to a Service for mesh routing"
)
NO_GATEWAY_ALLOWED: Final = (
    "no Gateway is allowed (allowedGateways is empty): attach the route to a Service for mesh "
    "routing, or ask the cluster admin to allow the Gateway"
)
GATEWAY_API_SUBJECT: Final = "{kind} {namespace}/{name}"
GATEWAY_IN_MUTATE: Final = (
    "namespace {namespace} (label {label}=mutate) converts what it can, but a Gateway cannot be "
    "made internal: its class decides who serves it"
)
ROUTE_IN_MUTATE: Final = (
    "namespace {namespace} (label {label}=mutate) converts what it can, but a route cannot be "
    "made internal: the Gateways it attaches to decide who serves it"
)
# --- limits the scan and the reports component meet (cluster/limits.py) ------------------------
THROTTLED: Final = (
    "the API server is throttling us (429 Too Many Requests) to {what}: trying again in "
    "{seconds:.1f} s (attempt {attempt}); nothing is skipped"
)
STILL_THROTTLED: Final = (
    "the API server throttled us (429 Too Many Requests) to {what} for {seconds:.0f} s: giving "
    "up this time (raise the priority level of the scanner's user, or wait)"
)
LIST_CONTINUED: Final = (
    "the list of {resource} expired while paging (410 Gone): continuing after the last object "
    "read, at a newer version (what changed meanwhile before it waits for the next scan)"
)
LIST_RESTARTED: Final = (
    "the list of {resource} expired while paging (410 Gone) and cannot be continued: listing "
    "it again from the start, past the {read} objects already read"
)
MEMORY_HIGH_WATER: Final = (
    "memory at {used} MiB after namespace {namespace}, past the high-water mark of {mark} MiB "
    "({percent}% of the {limit} MiB limit): freeing what is unused; if it keeps rising, give "
    "the reports component more memory (docs/operations.md, sizing)"
)
