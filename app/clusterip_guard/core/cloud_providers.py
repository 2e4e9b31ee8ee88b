"""Which cloud providers would give a LoadBalancer Service an internal (private) balancer.

docs/design.md, "What counts as exposed": a LoadBalancer is exposed unless the policy accepts
it as internal. Each
provider reads its own annotations with its own exact values, case rules and precedence, so each
reader below follows that provider's own code (cited at each function), not its documentation.
An annotation asking for an external balancer wins wherever the provider lets it win, and a
value the provider refuses, or leaves to a default, or to state we cannot see (an existing
balancer, the controller's configuration), never counts as internal. Pure: annotations in, a
yes or no out.

Only annotations are read here, and `spec.loadBalancerClass` where a provider's controller is
known to claim a class (`CLASS_READERS`). Provider behaviour that hangs on other fields
(OpenStack IPv6 `spec.ipFamilies`) or on cluster configuration (OpenStack `internal-lb`) is
left to the caller.

A Service with a class is never the cloud controller manager's: the service controller of
k8s.io/cloud-provider (controllers/service/controller.go, wantsLoadBalancer) skips every
Service whose spec.loadBalancerClass is set, so no annotation reading above applies to it.
Only the controller that claims that class builds its balancer, and it reads what it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Literal

Provider = Literal["aws", "gcp", "azure", "oci", "openstack"]
PROVIDERS: tuple[Provider, ...] = ("aws", "gcp", "azure", "oci", "openstack")

AWS_LOAD_BALANCER_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
AWS_LOAD_BALANCER_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
AWS_LOAD_BALANCER_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
GKE_LOAD_BALANCER_TYPE = "networking.gke.io/load-balancer-type"
GKE_DEPRECATED_LOAD_BALANCER_TYPE = "cloud.google.com/load-balancer-type"
AZURE_LOAD_BALANCER_INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
OCI_LOAD_BALANCER_TYPE = "oci.oraclecloud.com/load-balancer-type"
OCI_LOAD_BALANCER_INTERNAL = "service.beta.kubernetes.io/oci-load-balancer-internal"
OCI_NETWORK_LOAD_BALANCER_INTERNAL = "oci-network-load-balancer.oraclecloud.com/internal"
OPENSTACK_INTERNAL_LOAD_BALANCER = "service.beta.kubernetes.io/openstack-internal-load-balancer"

# The annotations each provider's reading below consults, for documentation and messages.
ANNOTATIONS_READ: Mapping[Provider, tuple[str, ...]] = MappingProxyType(
    {
        "aws": (AWS_LOAD_BALANCER_SCHEME, AWS_LOAD_BALANCER_INTERNAL, AWS_LOAD_BALANCER_TYPE),
        "gcp": (GKE_LOAD_BALANCER_TYPE, GKE_DEPRECATED_LOAD_BALANCER_TYPE),
        "azure": (AZURE_LOAD_BALANCER_INTERNAL,),
        "oci": (
            OCI_LOAD_BALANCER_TYPE,
            OCI_LOAD_BALANCER_INTERNAL,
            OCI_NETWORK_LOAD_BALANCER_INTERNAL,
        ),
        "openstack": (OPENSTACK_INTERNAL_LOAD_BALANCER,),
    }
)

# Go's strconv.ParseBool: these exact spellings, nothing else (no trimming, no "yes").
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

# The exact values each reading below compares with (Go `==` or `switch`), shared with the
# native engine's CEL (core/native/providers.py).
AWS_NOT_INTERNAL = frozenset({"", "false"})  # the cloud controller: anything else is internal
AWS_SCHEME_INTERNAL = "internal"
GCP_INTERNAL = frozenset({"Internal", "internal"})
OCI_NETWORK_LOAD_BALANCER = "nlb"  # compared lowercased
EXACTLY_TRUE = (
    "true"  # Azure's consts.TrueAnnotationValue; OpenStack's getBoolFromServiceAnnotation
)

# aws-load-balancer-type values the AWS cloud controller manager leaves to the AWS Load
# Balancer Controller (isLBExternal: it returns cloudprovider.ImplementedElsewhere).
AWS_TYPES_FOR_THE_LOAD_BALANCER_CONTROLLER = frozenset({"external", "nlb-ip"})


def go_parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool: the boolean, or None where Go returns an error."""
    if text in GO_TRUE:
        return True
    if text in GO_FALSE:
        return False
    return None


def _value(annotations: Mapping[str, str], key: str) -> str | None:
    """The annotation's value, None when it is absent.

    Go reads a present key even when its value is unusable, so presence is kept: a value that
    is not a string (the API server admits none) is read as "", which no provider takes as
    internal.
    """
    if key not in annotations:
        return None
    value = annotations[key]
    return value if isinstance(value, str) else ""


def aws_cloud_controller_internal(annotations: Mapping[str, str]) -> bool:
    """The AWS cloud controller manager (and the legacy in-tree provider) reading.

    kubernetes/cloud-provider-aws pkg/providers/v1/aws.go, (*Cloud).EnsureLoadBalancer
    (commit 03a568116a1c): internalELB is true for any non-empty value but the exact string
    "false" (Go `==`), so "False", "0" and "0.0.0.0/0" all ask for an internal ELB/NLB.
    The scheme annotation is not read there.
    """
    value = _value(annotations, AWS_LOAD_BALANCER_INTERNAL)
    return value is not None and value not in AWS_NOT_INTERNAL


def aws_load_balancer_controller_internal(annotations: Mapping[str, str]) -> bool:
    """The AWS Load Balancer Controller reading.

    kubernetes-sigs/aws-load-balancer-controller pkg/service/model_build_load_balancer.go
    (commit 4cae111e7fd4), buildLoadBalancerSchemeViaAnnotation: a present scheme annotation
    decides alone, exactly "internal" or "internet-facing", anything else an error (no
    balancer); only without it, buildLoadBalancerSchemeLegacyAnnotation parses the internal
    annotation with strconv.ParseBool (pkg/annotations/parser.go, ParseBoolAnnotation), an
    error again building nothing. With neither, the scheme is internal unless an existing
    balancer is internet-facing: state we cannot see, so it does not count here.
    """
    scheme = _value(annotations, AWS_LOAD_BALANCER_SCHEME)
    if scheme is not None:
        return scheme == AWS_SCHEME_INTERNAL
    legacy = _value(annotations, AWS_LOAD_BALANCER_INTERNAL)
    return legacy is not None and go_parse_bool(legacy) is True


def aws_internal(annotations: Mapping[str, str]) -> bool:
    """Internal on AWS whichever of its two controllers builds the balancer.

    The cloud controller manager hands aws-load-balancer-type "external" and "nlb-ip" (exact)
    to the Load Balancer Controller (pkg/providers/v1/aws_loadbalancer.go, isLBExternal).
    Any other Service may still be the controller's: its mutating webhook gives every new
    LoadBalancer Service its loadBalancerClass (webhooks/core/service_mutator.go, MutateCreate),
    which an admission webhook cannot count on seeing. So both readings must say internal.
    """
    for_the_controller = aws_load_balancer_controller_internal(annotations)
    if _value(annotations, AWS_LOAD_BALANCER_TYPE) in AWS_TYPES_FOR_THE_LOAD_BALANCER_CONTROLLER:
        return for_the_controller
    return for_the_controller and aws_cloud_controller_internal(annotations)


def gcp_internal(annotations: Mapping[str, str]) -> bool:
    """The GCE/GKE reading.

    kubernetes/cloud-provider-gcp providers/gce/gce_annotations.go (commit 282942910e92),
    GetLoadBalancerAnnotationType, used by getSvcScheme: the first key present wins,
    networking.gke.io before the deprecated cloud.google.com, whatever its value, so
    "External" on the new key overrides "Internal" on the old one. Internal is exactly
    "Internal" or the deprecated lowercase "internal" (Go `switch`); "INTERNAL" is external.
    """
    for key in (GKE_LOAD_BALANCER_TYPE, GKE_DEPRECATED_LOAD_BALANCER_TYPE):
        value = _value(annotations, key)
        if value is not None:
            return value in GCP_INTERNAL
    return False


def azure_internal(annotations: Mapping[str, str]) -> bool:
    """The Azure reading.

    kubernetes-sigs/cloud-provider-azure pkg/provider/azure_loadbalancer.go (commit
    00dfec20e1e6), requiresInternalLoadBalancer: exactly consts.TrueAnnotationValue, "true"
    (Go `==`); it picks the frontend, a subnet or a public IP. "True" gets a public IP.
    """
    return _value(annotations, AZURE_LOAD_BALANCER_INTERNAL) == EXACTLY_TRUE


def oci_internal(annotations: Mapping[str, str]) -> bool:
    """The Oracle Cloud reading.

    oracle/oci-cloud-controller-manager pkg/cloudprovider/providers/oci/load_balancer_spec.go
    (commit 007ffbd47a9d), isInternalLB: a network load balancer (getLoadBalancerType:
    strings.ToLower of oci.oraclecloud.com/load-balancer-type is "nlb") reads only the NLB
    key, any other balancer only the LB key; the value goes through strconv.ParseBool, an
    error failing the spec. So the LB key on an NLB buys nothing.
    """
    balancer_type = _value(annotations, OCI_LOAD_BALANCER_TYPE) or ""
    # Only ASCII letters lower to "nlb" under Go's strings.ToLower, so this matches it exactly.
    if balancer_type.isascii() and balancer_type.lower() == OCI_NETWORK_LOAD_BALANCER:
        value = _value(annotations, OCI_NETWORK_LOAD_BALANCER_INTERNAL)
    else:
        value = _value(annotations, OCI_LOAD_BALANCER_INTERNAL)
    return value is not None and go_parse_bool(value) is True


def openstack_internal(annotations: Mapping[str, str]) -> bool:
    """The OpenStack (Octavia) reading.

    kubernetes/cloud-provider-openstack pkg/openstack/loadbalancer.go (commit 98668a4b734c),
    (*LbaasV2).checkService with getBoolFromServiceAnnotation: exactly "true" or "false",
    anything else falls back to the internal-lb config default (false unless the cluster
    forces every balancer internal, which annotations cannot show).
    """
    return _value(annotations, OPENSTACK_INTERNAL_LOAD_BALANCER) == EXACTLY_TRUE


INTERNAL_READERS: Mapping[Provider, Callable[[Mapping[str, str]], bool]] = MappingProxyType(
    {
        "aws": aws_internal,
        "gcp": gcp_internal,
        "azure": azure_internal,
        "oci": oci_internal,
        "openstack": openstack_internal,
    }
)


# Providers with a controller known to claim a loadBalancerClass, and how that controller reads
# "internal". The AWS Load Balancer Controller claims exactly the class it is configured with
# (--load-balancer-class, default "service.k8s.aws/nlb": pkg/service/service_utils.go
# (commit 043f39b947683a), IsServiceSupported, Go `==`) and reads the scheme as
# aws_load_balancer_controller_internal does. For the others no controller's reading of a
# class is cited here, so a policy cannot name a class for them.
CLASS_READERS: Mapping[Provider, Callable[[Mapping[str, str]], bool]] = MappingProxyType(
    {"aws": aws_load_balancer_controller_internal}
)


def is_internal_with_class(
    annotations: Mapping[str, str],
    load_balancer_class: str,
    classes: Mapping[str, Provider],
) -> bool:
    """Internal as the controller of `load_balancer_class` reads it, when the policy names that
    class (`classes`: class to provider). Any other class is a balancer nobody here can read:
    not internal, whatever its annotations say."""
    provider = classes.get(load_balancer_class)
    reader = CLASS_READERS.get(provider) if provider is not None else None
    return reader is not None and reader(annotations)


def internal_load_balancer_providers(annotations: Mapping[str, str]) -> frozenset[Provider]:
    """The providers that would make this Service's balancer internal."""
    return frozenset(provider for provider in PROVIDERS if INTERNAL_READERS[provider](annotations))


def is_internal_for(annotations: Mapping[str, str], providers: Collection[Provider]) -> bool:
    """Internal for at least one of `providers`, the ones the policy names.

    Only those count: an OCI annotation on an AWS cluster buys nothing.
    """
    return any(INTERNAL_READERS[provider](annotations) for provider in providers)
