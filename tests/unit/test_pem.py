"""Why PEM bytes are not the certificate or key they should be."""

from __future__ import annotations

import datetime

from clusterip_guard.certs.issuing import new_certificate_authority, new_serving_certificate
from clusterip_guard.certs.pem import certificate_problem, key_problem, pair_problem

NOW = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
CA = new_certificate_authority(now=NOW)
PAIR = new_serving_certificate(CA, now=NOW, dns_names=["a"])
OTHER = new_serving_certificate(CA, now=NOW, dns_names=["a"])


def test_a_good_pair_has_no_problem() -> None:
    assert certificate_problem(PAIR.cert_pem) is None
    assert key_problem(PAIR.key_pem) is None
    assert pair_problem(PAIR.cert_pem, PAIR.key_pem) is None
    assert certificate_problem(PAIR.cert_pem + CA.cert_pem) is None  # a chain


def test_each_problem_is_named() -> None:
    assert certificate_problem(b"") == "it is empty"
    assert certificate_problem(b"kind: Service") == "it is not PEM (no -----BEGIN line)"
    assert certificate_problem(PAIR.key_pem) == "it holds a private key, not a certificate"
    assert key_problem(PAIR.cert_pem) == "it holds a certificate, not a private key"
    assert "damaged" in (certificate_problem(PAIR.cert_pem[:200] + PAIR.cert_pem[-30:]) or "")
    assert "damaged" in (key_problem(PAIR.key_pem.replace(b"M", b"!", 3)) or "")
    assert "does not match" in (pair_problem(PAIR.cert_pem, OTHER.key_pem) or "")
