"""What a bootstrap run does with the certificates it finds."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from clusterip_guard.certs.issuing import new_certificate_authority, signed_by, split_pem_bundle
from clusterip_guard.certs.rotation import CertificateState, plan_certificates

NOW = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
NAMES = ["guard", "guard.system", "guard.system.svc", "guard.system.svc.cluster.local"]


@pytest.fixture(scope="module")
def installed() -> CertificateState:
    return plan_certificates(CertificateState(), now=NOW, dns_names=NAMES).state


def test_a_first_run_makes_a_ca_and_a_serving_certificate(installed: CertificateState) -> None:
    plan = plan_certificates(CertificateState(), now=NOW, dns_names=NAMES)
    assert plan.reasons == ("new CA", "new serving certificate")
    assert installed.ca is not None
    assert installed.serving is not None
    assert split_pem_bundle(installed.ca_bundle) == [installed.ca.cert_pem]
    assert signed_by(installed.serving.cert_pem, installed.ca.cert_pem)


def test_a_second_run_changes_nothing(installed: CertificateState) -> None:
    plan = plan_certificates(installed, now=NOW + datetime.timedelta(days=100), dns_names=NAMES)
    assert not plan.changed
    assert plan.state == installed


def test_the_serving_certificate_is_renewed_inside_the_margin(installed: CertificateState) -> None:
    later = NOW + datetime.timedelta(days=340)
    plan = plan_certificates(installed, now=later, dns_names=NAMES)
    assert plan.reasons[0].startswith("serving certificate expires")
    assert plan.state.ca == installed.ca
    assert plan.state.serving != installed.serving
    assert not plan.adds_trust(installed.ca_bundle)


def test_new_names_re_issue_the_serving_certificate(installed: CertificateState) -> None:
    plan = plan_certificates(installed, now=NOW, dns_names=[*NAMES, "guard.example.com"])
    assert plan.reasons == ("serving certificate re-issued for new names",)


def test_a_ca_rotation_publishes_old_and_new_ca(installed: CertificateState) -> None:
    plan = plan_certificates(installed, now=NOW, dns_names=NAMES, rotate_ca=True)
    assert installed.ca is not None
    assert plan.state.ca is not None
    assert plan.state.serving is not None
    assert plan.reasons[0] == "CA rotation requested"
    assert split_pem_bundle(plan.state.ca_bundle) == [installed.ca.cert_pem, plan.state.ca.cert_pem]
    assert signed_by(plan.state.serving.cert_pem, plan.state.ca.cert_pem)
    assert plan.adds_trust(installed.ca_bundle)


def test_the_bundle_keeps_only_the_current_and_the_previous_ca(
    installed: CertificateState,
) -> None:
    once = plan_certificates(installed, now=NOW, dns_names=NAMES, rotate_ca=True).state
    twice = plan_certificates(once, now=NOW, dns_names=NAMES, rotate_ca=True).state
    assert once.ca is not None
    assert twice.ca is not None
    assert split_pem_bundle(twice.ca_bundle) == [once.ca.cert_pem, twice.ca.cert_pem]


def test_a_ca_near_its_end_is_rotated(installed: CertificateState) -> None:
    old_ca = new_certificate_authority(
        now=NOW - datetime.timedelta(days=3640), valid_for=datetime.timedelta(days=3650)
    )
    aging = dataclasses.replace(installed, ca=old_ca, ca_bundle=old_ca.cert_pem)
    plan = plan_certificates(aging, now=NOW, dns_names=NAMES)
    assert plan.reasons[0].startswith("CA expires")
    assert plan.state.ca != old_ca


def test_a_serving_certificate_from_another_ca_is_re_issued(installed: CertificateState) -> None:
    stranger = plan_certificates(CertificateState(), now=NOW, dns_names=NAMES).state
    mixed = dataclasses.replace(installed, serving=stranger.serving)
    plan = plan_certificates(mixed, now=NOW, dns_names=NAMES)
    assert plan.reasons == ("serving certificate re-issued by the current CA",)
