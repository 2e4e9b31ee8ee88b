"""Each cloud provider's own reading of its internal load balancer annotations.

The module is core/cloud_providers.py; the expected answers come from each provider's code, cited
there: exact values, case, Go's strconv.ParseBool, and which annotation wins when two disagree.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterip_guard.core.cloud_providers import (
    ANNOTATIONS_READ,
    AWS_LOAD_BALANCER_INTERNAL,
    AWS_LOAD_BALANCER_SCHEME,
    AWS_LOAD_BALANCER_TYPE,
    AZURE_LOAD_BALANCER_INTERNAL,
    GKE_DEPRECATED_LOAD_BALANCER_TYPE,
    GKE_LOAD_BALANCER_TYPE,
    INTERNAL_READERS,
    OCI_LOAD_BALANCER_INTERNAL,
    OCI_LOAD_BALANCER_TYPE,
    OCI_NETWORK_LOAD_BALANCER_INTERNAL,
    OPENSTACK_INTERNAL_LOAD_BALANCER,
    PROVIDERS,
    Provider,
    aws_cloud_controller_internal,
    aws_internal,
    aws_load_balancer_controller_internal,
    azure_internal,
    gcp_internal,
    go_parse_bool,
    internal_load_balancer_providers,
    is_internal_for,
    oci_internal,
    openstack_internal,
)

# Written out again, not imported: the oracle the properties check the module against.
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
REFUSED_BY_GO = ("yes", "no", "on", "", " true", "true ", "tRUE", "2", "0.0.0.0/0")

INTERESTING_VALUES = (
    *GO_TRUE,
    *GO_FALSE,
    *REFUSED_BY_GO,
    "internal",
    "Internal",
    "INTERNAL",
    " Internal",
    "internet-facing",
    "External",
    "external",
    "nlb",
    "NLB",
    "nlb-ip",
    "lb",
)
EVERY_KEY = sorted({key for keys in ANNOTATIONS_READ.values() for key in keys})
values = st.sampled_from(INTERESTING_VALUES) | st.text(max_size=6)
annotation_maps = st.dictionaries(
    st.sampled_from([*EVERY_KEY, "team", "example.com/load-balancer-type"]), values, max_size=6
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        *(pytest.param(text, True, id=f"Go reads {text!r} as true") for text in GO_TRUE),
        *(pytest.param(text, False, id=f"Go reads {text!r} as false") for text in GO_FALSE),
        *(pytest.param(text, None, id=f"Go refuses {text!r}") for text in REFUSED_BY_GO),
    ],
)
def test_go_parse_bool_takes_exactly_the_spellings_go_takes(text: str, parsed: bool | None) -> None:
    assert go_parse_bool(text) is parsed


# --- AWS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "internal"),
    [
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: "true"}, True, id="true is internal"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: "0.0.0.0/0"}, True, id="any other value is"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: "False"}, True, id="False is: only false is not"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: "false"}, False, id="exactly false is not"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: ""}, False, id="an empty value is not"),
        pytest.param({}, False, id="no annotation is not"),
        pytest.param({AWS_LOAD_BALANCER_SCHEME: "internal"}, False, id="the scheme is not read"),
    ],
)
def test_the_aws_cloud_controller_manager_reads_any_value_but_false(
    annotations: dict[str, str], internal: bool
) -> None:
    assert aws_cloud_controller_internal(annotations) is internal


@pytest.mark.parametrize(
    ("annotations", "internal"),
    [
        pytest.param({AWS_LOAD_BALANCER_SCHEME: "internal"}, True, id="scheme internal is"),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "Internal"}, False, id="scheme Internal is an error"
        ),
        pytest.param({AWS_LOAD_BALANCER_SCHEME: ""}, False, id="an empty scheme is an error"),
        pytest.param({AWS_LOAD_BALANCER_SCHEME: "internet-facing"}, False, id="internet-facing"),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "internet-facing", AWS_LOAD_BALANCER_INTERNAL: "true"},
            False,
            id="the scheme wins over internal true",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "internal", AWS_LOAD_BALANCER_INTERNAL: "false"},
            True,
            id="the scheme wins over internal false",
        ),
        *(
            pytest.param({AWS_LOAD_BALANCER_INTERNAL: text}, True, id=f"legacy {text!r} is")
            for text in GO_TRUE
        ),
        *(
            pytest.param({AWS_LOAD_BALANCER_INTERNAL: text}, False, id=f"legacy {text!r} is not")
            for text in (*GO_FALSE, *REFUSED_BY_GO)
        ),
        pytest.param({}, False, id="no annotation leaves it to an existing balancer"),
    ],
)
def test_the_aws_load_balancer_controller_reads_the_scheme_then_a_go_bool(
    annotations: dict[str, str], internal: bool
) -> None:
    assert aws_load_balancer_controller_internal(annotations) is internal


@pytest.mark.parametrize(
    ("annotations", "internal"),
    [
        *(
            pytest.param({AWS_LOAD_BALANCER_INTERNAL: text}, True, id=f"{text!r} is for both")
            for text in GO_TRUE
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_INTERNAL: "False"},
            False,
            id="False: internal for the cloud controller, internet-facing for the LB controller",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_INTERNAL: "0"}, False, id="0: the LB controller reads false"
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_INTERNAL: "0.0.0.0/0"},
            False,
            id="0.0.0.0/0: the LB controller refuses it",
        ),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: "yes"}, False, id="yes is no Go bool"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: ""}, False, id="an empty value"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: " true"}, False, id="a padded true"),
        pytest.param({AWS_LOAD_BALANCER_INTERNAL: "false"}, False, id="false"),
        pytest.param({}, False, id="no annotation"),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "internal"},
            False,
            id="scheme internal alone: the cloud controller ignores it and builds a public ELB",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "internal", AWS_LOAD_BALANCER_INTERNAL: "true"},
            True,
            id="scheme internal and internal true agree",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "internet-facing", AWS_LOAD_BALANCER_INTERNAL: "true"},
            False,
            id="scheme internet-facing wins over internal true",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_SCHEME: "internal", AWS_LOAD_BALANCER_INTERNAL: "false"},
            False,
            id="internal false is public for the cloud controller",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "external", AWS_LOAD_BALANCER_SCHEME: "internal"},
            True,
            id="type external: only the LB controller's scheme counts",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "nlb-ip", AWS_LOAD_BALANCER_SCHEME: "internal"},
            True,
            id="type nlb-ip: only the LB controller's scheme counts",
        ),
        pytest.param(
            {
                AWS_LOAD_BALANCER_TYPE: "external",
                AWS_LOAD_BALANCER_SCHEME: "internal",
                AWS_LOAD_BALANCER_INTERNAL: "false",
            },
            True,
            id="type external: the scheme wins over internal false",
        ),
        pytest.param(
            {
                AWS_LOAD_BALANCER_TYPE: "external",
                AWS_LOAD_BALANCER_SCHEME: "internet-facing",
                AWS_LOAD_BALANCER_INTERNAL: "true",
            },
            False,
            id="type external: internet-facing wins over internal true",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "external", AWS_LOAD_BALANCER_INTERNAL: "true"},
            True,
            id="type external with internal true",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "external", AWS_LOAD_BALANCER_INTERNAL: "0.0.0.0/0"},
            False,
            id="type external with internal 0.0.0.0/0, which the LB controller refuses",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "external"},
            False,
            id="type external alone: the default hangs on an existing balancer",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "External", AWS_LOAD_BALANCER_SCHEME: "internal"},
            False,
            id="type External is not handed off, and the cloud controller reads no scheme",
        ),
        pytest.param(
            {AWS_LOAD_BALANCER_TYPE: "nlb", AWS_LOAD_BALANCER_INTERNAL: "true"},
            True,
            id="type nlb with internal true",
        ),
    ],
)
def test_aws_is_internal_whichever_controller_builds_the_balancer(
    annotations: dict[str, str], internal: bool
) -> None:
    assert aws_internal(annotations) is internal


# --- GCP / GKE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "internal"),
    [
        pytest.param({GKE_LOAD_BALANCER_TYPE: "Internal"}, True, id="Internal is"),
        pytest.param({GKE_LOAD_BALANCER_TYPE: "internal"}, True, id="deprecated lowercase is"),
        pytest.param({GKE_LOAD_BALANCER_TYPE: "INTERNAL"}, False, id="INTERNAL is not"),
        pytest.param({GKE_LOAD_BALANCER_TYPE: " Internal"}, False, id="a padded value is not"),
        pytest.param({GKE_LOAD_BALANCER_TYPE: "External"}, False, id="External is not"),
        pytest.param({GKE_LOAD_BALANCER_TYPE: "true"}, False, id="true is not"),
        pytest.param({GKE_LOAD_BALANCER_TYPE: ""}, False, id="an empty value is not"),
        pytest.param({GKE_DEPRECATED_LOAD_BALANCER_TYPE: "Internal"}, True, id="old key Internal"),
        pytest.param({GKE_DEPRECATED_LOAD_BALANCER_TYPE: "internal"}, True, id="old key internal"),
        pytest.param({GKE_DEPRECATED_LOAD_BALANCER_TYPE: "INTERNAL"}, False, id="old key INTERNAL"),
        pytest.param(
            {GKE_LOAD_BALANCER_TYPE: "External", GKE_DEPRECATED_LOAD_BALANCER_TYPE: "Internal"},
            False,
            id="External on the new key wins over Internal on the old one",
        ),
        pytest.param(
            {GKE_LOAD_BALANCER_TYPE: "", GKE_DEPRECATED_LOAD_BALANCER_TYPE: "Internal"},
            False,
            id="a present new key wins even when empty",
        ),
        pytest.param(
            {GKE_LOAD_BALANCER_TYPE: "Internal", GKE_DEPRECATED_LOAD_BALANCER_TYPE: "External"},
            True,
            id="Internal on the new key wins over External on the old one",
        ),
        pytest.param({}, False, id="no annotation is not"),
    ],
)
def test_gke_reads_the_first_key_present_and_exactly_internal(
    annotations: dict[str, str], internal: bool
) -> None:
    assert gcp_internal(annotations) is internal


# --- Azure and OpenStack: exactly "true" ----------------------------------------------------

EXACTLY_TRUE = [
    pytest.param("true", True, id="true is internal"),
    *(
        pytest.param(text, False, id=f"{text!r} is not")
        for text in ("True", "TRUE", "1", "t", "yes", "", " true", "true ", "false")
    ),
]


@pytest.mark.parametrize(("value", "internal"), EXACTLY_TRUE)
def test_azure_takes_exactly_true(value: str, internal: bool) -> None:
    assert azure_internal({AZURE_LOAD_BALANCER_INTERNAL: value}) is internal


@pytest.mark.parametrize(("value", "internal"), EXACTLY_TRUE)
def test_openstack_takes_exactly_true(value: str, internal: bool) -> None:
    assert openstack_internal({OPENSTACK_INTERNAL_LOAD_BALANCER: value}) is internal


@pytest.mark.parametrize(
    "reader",
    [pytest.param(azure_internal, id="Azure"), pytest.param(openstack_internal, id="OpenStack")],
)
def test_without_its_annotation_a_balancer_is_public(reader: Any) -> None:
    assert reader({}) is False
    assert reader({"team": "shop"}) is False


# --- OCI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "internal"),
    [
        *(
            pytest.param({OCI_LOAD_BALANCER_INTERNAL: text}, True, id=f"LB {text!r} is")
            for text in GO_TRUE
        ),
        *(
            pytest.param({OCI_LOAD_BALANCER_INTERNAL: text}, False, id=f"LB {text!r} is not")
            for text in (*GO_FALSE, *REFUSED_BY_GO)
        ),
        pytest.param({}, False, id="no annotation is not"),
        pytest.param(
            {OCI_LOAD_BALANCER_TYPE: "nlb", OCI_LOAD_BALANCER_INTERNAL: "true"},
            False,
            id="an NLB does not read the LB key",
        ),
        pytest.param(
            {OCI_LOAD_BALANCER_TYPE: "nlb", OCI_NETWORK_LOAD_BALANCER_INTERNAL: "true"},
            True,
            id="an NLB reads the NLB key",
        ),
        pytest.param(
            {OCI_LOAD_BALANCER_TYPE: "NLB", OCI_NETWORK_LOAD_BALANCER_INTERNAL: "1"},
            True,
            id="the type is lowercased and the NLB key is a Go bool",
        ),
        pytest.param(
            {OCI_LOAD_BALANCER_TYPE: "nlb", OCI_NETWORK_LOAD_BALANCER_INTERNAL: "yes"},
            False,
            id="an NLB key that is no Go bool is not",
        ),
        pytest.param(
            {
                OCI_LOAD_BALANCER_TYPE: "nlb",
                OCI_NETWORK_LOAD_BALANCER_INTERNAL: "false",
                OCI_LOAD_BALANCER_INTERNAL: "true",
            },
            False,
            id="an NLB's false wins over the LB key",
        ),
        pytest.param(
            {OCI_LOAD_BALANCER_TYPE: "lb", OCI_NETWORK_LOAD_BALANCER_INTERNAL: "true"},
            False,
            id="an LB does not read the NLB key",
        ),
        pytest.param(
            {OCI_NETWORK_LOAD_BALANCER_INTERNAL: "true"},
            False,
            id="without a type the balancer is an LB",
        ),
        pytest.param(
            {OCI_LOAD_BALANCER_TYPE: "nlb ", OCI_LOAD_BALANCER_INTERNAL: "true"},
            True,
            id="a padded type is an LB, which reads the LB key",
        ),
    ],
)
def test_oci_reads_the_key_of_its_balancer_type_as_a_go_bool(
    annotations: dict[str, str], internal: bool
) -> None:
    assert oci_internal(annotations) is internal


# --- Several providers, and the ones a policy names -----------------------------------------

TWO_PROVIDERS = {GKE_LOAD_BALANCER_TYPE: "Internal", AZURE_LOAD_BALANCER_INTERNAL: "true"}


@pytest.mark.parametrize(
    ("annotations", "providers"),
    [
        pytest.param(TWO_PROVIDERS, {"gcp", "azure"}, id="GKE and Azure annotations name both"),
        pytest.param(
            {AWS_LOAD_BALANCER_INTERNAL: "true", AZURE_LOAD_BALANCER_INTERNAL: "True"},
            {"aws"},
            id="Azure's True buys nothing next to AWS's true",
        ),
        pytest.param(
            {
                AWS_LOAD_BALANCER_INTERNAL: "true",
                OCI_LOAD_BALANCER_INTERNAL: "true",
                OPENSTACK_INTERNAL_LOAD_BALANCER: "true",
            },
            {"aws", "oci", "openstack"},
            id="one value, three providers that read it",
        ),
        pytest.param({}, set(), id="no annotation names none"),
        pytest.param({"team": "shop"}, set(), id="foreign annotations name none"),
    ],
)
def test_a_service_is_internal_for_each_provider_that_reads_it_so(
    annotations: dict[str, str], providers: set[Provider]
) -> None:
    assert internal_load_balancer_providers(annotations) == frozenset(providers)


@pytest.mark.parametrize(
    ("annotations", "policy_providers", "internal"),
    [
        pytest.param(TWO_PROVIDERS, ("gcp",), True, id="GKE's annotation on a GKE cluster"),
        pytest.param(TWO_PROVIDERS, ("azure", "aws"), True, id="one named provider suffices"),
        pytest.param(TWO_PROVIDERS, ("aws",), False, id="neither counts on an AWS cluster"),
        pytest.param(
            {OCI_LOAD_BALANCER_INTERNAL: "true"},
            ("aws",),
            False,
            id="an OCI annotation on an AWS cluster buys nothing",
        ),
        pytest.param(
            {OCI_LOAD_BALANCER_INTERNAL: "true"},
            ("aws", "oci"),
            True,
            id="it counts where the policy names OCI",
        ),
        pytest.param(TWO_PROVIDERS, (), False, id="a policy naming no provider accepts none"),
        pytest.param(TWO_PROVIDERS, PROVIDERS, True, id="a policy naming every provider"),
    ],
)
def test_only_the_providers_the_policy_names_count(
    annotations: dict[str, str], policy_providers: tuple[Provider, ...], internal: bool
) -> None:
    assert is_internal_for(annotations, policy_providers) is internal


def test_every_provider_has_a_reader_and_its_annotations() -> None:
    assert set(INTERNAL_READERS) == set(ANNOTATIONS_READ) == set(PROVIDERS)
    assert all(ANNOTATIONS_READ[provider] for provider in PROVIDERS)


def test_a_value_that_is_not_a_string_is_present_but_never_internal() -> None:
    malformed: dict[str, Any] = {
        GKE_LOAD_BALANCER_TYPE: True,
        GKE_DEPRECATED_LOAD_BALANCER_TYPE: "Internal",
        AZURE_LOAD_BALANCER_INTERNAL: True,
        AWS_LOAD_BALANCER_SCHEME: ["internal"],
        AWS_LOAD_BALANCER_TYPE: "external",
    }
    assert internal_load_balancer_providers(malformed) == frozenset()


# --- Properties ------------------------------------------------------------------------------


@given(values)
def test_go_parse_bool_agrees_with_the_table(text: str) -> None:
    expected = True if text in GO_TRUE else False if text in GO_FALSE else None
    assert go_parse_bool(text) is expected


@settings(max_examples=300)
@given(values)
def test_one_annotation_is_internal_exactly_when_its_provider_parser_accepts_it(
    text: str,
) -> None:
    assert azure_internal({AZURE_LOAD_BALANCER_INTERNAL: text}) is (text == "true")
    assert openstack_internal({OPENSTACK_INTERNAL_LOAD_BALANCER: text}) is (text == "true")
    gke_internal = text in ("Internal", "internal")
    assert gcp_internal({GKE_LOAD_BALANCER_TYPE: text}) is gke_internal
    assert gcp_internal({GKE_DEPRECATED_LOAD_BALANCER_TYPE: text}) is gke_internal
    assert oci_internal({OCI_LOAD_BALANCER_INTERNAL: text}) is (text in GO_TRUE)
    # Every Go true is also "not false" for the cloud controller: both AWS readings agree.
    assert aws_internal({AWS_LOAD_BALANCER_INTERNAL: text}) is (text in GO_TRUE)


@settings(max_examples=300)
@given(annotation_maps)
def test_an_explicit_external_annotation_always_wins(annotations: dict[str, str]) -> None:
    assert not aws_internal({**annotations, AWS_LOAD_BALANCER_SCHEME: "internet-facing"})
    assert not gcp_internal({**annotations, GKE_LOAD_BALANCER_TYPE: "External"})
    assert not azure_internal({**annotations, AZURE_LOAD_BALANCER_INTERNAL: "false"})
    both_oci_false = {OCI_LOAD_BALANCER_INTERNAL: "false", OCI_NETWORK_LOAD_BALANCER_INTERNAL: "0"}
    assert not oci_internal({**annotations, **both_oci_false})
    assert not openstack_internal({**annotations, OPENSTACK_INTERNAL_LOAD_BALANCER: "false"})


@settings(max_examples=300)
@given(annotation_maps)
def test_each_provider_reads_only_the_annotations_it_lists(annotations: dict[str, str]) -> None:
    for provider in PROVIDERS:
        own = {k: v for k, v in annotations.items() if k in ANNOTATIONS_READ[provider]}
        assert INTERNAL_READERS[provider](annotations) is INTERNAL_READERS[provider](own)


@settings(max_examples=300)
@given(annotation_maps, st.sets(st.sampled_from(PROVIDERS)))
def test_is_internal_for_is_the_named_providers_among_those_that_read_it_so(
    annotations: dict[str, str], policy_providers: set[Provider]
) -> None:
    expected = bool(internal_load_balancer_providers(annotations) & policy_providers)
    assert is_internal_for(annotations, policy_providers) is expected
