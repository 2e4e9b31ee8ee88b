"""Certificates: what the CA and the serving certificate say, renewal and bundles."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from clusterip_guard.certs.issuing import (
    CA_VALIDITY,
    SERVING_VALIDITY,
    CertificateError,
    KeyPair,
    covers,
    join_ca_bundle,
    needs_renewal,
    new_certificate_authority,
    new_serving_certificate,
    not_after,
    service_dns_names,
    signed_by,
    split_pem_bundle,
    subject_alternative_names,
)

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> KeyPair:
    return new_certificate_authority(now=NOW)


@pytest.fixture(scope="module")
def serving(ca: KeyPair) -> KeyPair:
    return new_serving_certificate(
        ca,
        now=NOW,
        dns_names=service_dns_names("clusterip-guard", "guard"),
        ip_addresses=["127.0.0.1"],
    )


def test_service_dns_names_are_every_name_the_api_server_may_use() -> None:
    assert service_dns_names("svc", "ns") == [
        "svc",
        "svc.ns",
        "svc.ns.svc",
        "svc.ns.svc.cluster.local",
    ]


def test_the_ca_lives_ten_years_and_can_sign(ca: KeyPair) -> None:
    certificate = x509.load_pem_x509_certificate(ca.cert_pem)
    assert not_after(ca.cert_pem) == NOW + CA_VALIDITY
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_the_serving_certificate_covers_every_service_name_and_ip(serving: KeyPair) -> None:
    dns, ips = subject_alternative_names(serving.cert_pem)
    assert dns == service_dns_names("clusterip-guard", "guard")
    assert ips == ["127.0.0.1"]
    assert covers(serving.cert_pem, ["clusterip-guard.guard.svc"], ["127.0.0.1"])
    assert not covers(serving.cert_pem, ["other.guard.svc"], [])


def test_the_serving_certificate_lives_one_year_for_servers_only(
    ca: KeyPair, serving: KeyPair
) -> None:
    certificate = x509.load_pem_x509_certificate(serving.cert_pem)
    assert not_after(serving.cert_pem) == NOW + SERVING_VALIDITY
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert signed_by(serving.cert_pem, ca.cert_pem)


def test_a_certificate_is_not_signed_by_another_ca(serving: KeyPair) -> None:
    other = new_certificate_authority(now=NOW)
    assert not signed_by(serving.cert_pem, other.cert_pem)
    assert not signed_by(b"garbage", other.cert_pem)


@pytest.mark.parametrize(
    ("now", "margin", "renew"),
    [
        (NOW, 30 * DAY, False),
        (NOW + 300 * DAY, 30 * DAY, False),
        (NOW + 340 * DAY, 30 * DAY, True),  # inside the margin
        (NOW + 400 * DAY, 0 * DAY, True),  # expired
        (NOW - DAY, 30 * DAY, True),  # not yet valid
    ],
)
def test_renewal_is_due_inside_the_margin(
    serving: KeyPair, now: datetime.datetime, margin: datetime.timedelta, renew: bool
) -> None:
    assert needs_renewal(serving.cert_pem, now=now, margin=margin) is renew


def test_an_unreadable_certificate_needs_renewal() -> None:
    assert needs_renewal(b"not a certificate", now=NOW, margin=DAY)


def test_a_bad_ip_is_a_one_line_error(ca: KeyPair) -> None:
    with pytest.raises(CertificateError, match="does not appear to be an IPv4 or IPv6 address"):
        new_serving_certificate(ca, now=NOW, dns_names=["a"], ip_addresses=["300.1.1.1"])


def test_a_bundle_joins_cas_once_each_in_order(ca: KeyPair) -> None:
    other = new_certificate_authority(now=NOW)
    bundle = join_ca_bundle(ca.cert_pem, other.cert_pem, ca.cert_pem)
    assert split_pem_bundle(bundle) == [ca.cert_pem, other.cert_pem]
    assert join_ca_bundle(bundle, other.cert_pem) == bundle
