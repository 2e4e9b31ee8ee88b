"""What the bootstrap should do with the certificates it finds. Pure: state in, state out.

A run changes nothing while every certificate has more than `margin` left and names what it
must; it renews the serving certificate inside the margin; it makes a new CA when there is
none, when the CA itself is inside the margin, or on request. A new CA joins the published
bundle beside the previous one, so the API server trusts both while the server switches.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from clusterip_guard.certs.issuing import (
    KeyPair,
    covers,
    join_ca_bundle,
    needs_renewal,
    new_certificate_authority,
    new_serving_certificate,
    not_after,
    signed_by,
    split_pem_bundle,
)

# A month: a monthly cron run, or a renewal Job that failed once, still renews in time.
DEFAULT_RENEWAL_MARGIN = datetime.timedelta(days=30)
# The bundle keeps the current CA and the one before it: enough for one rotation in flight.
MAX_CAS_IN_BUNDLE = 2


@dataclass(frozen=True)
class CertificateState:
    ca: KeyPair | None = None
    ca_bundle: bytes = b""  # every CA the API server should trust, oldest first
    serving: KeyPair | None = None


@dataclass(frozen=True)
class CertificatePlan:
    state: CertificateState
    reasons: tuple[str, ...]  # empty when nothing changes

    @property
    def changed(self) -> bool:
        return bool(self.reasons)

    def adds_trust(self, published: bytes) -> bool:
        """Whether the new bundle trusts a CA that `published` does not (publish it first)."""
        return not set(split_pem_bundle(self.state.ca_bundle)) <= set(split_pem_bundle(published))


def plan_certificates(
    current: CertificateState,
    *,
    now: datetime.datetime,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    margin: datetime.timedelta = DEFAULT_RENEWAL_MARGIN,
    rotate_ca: bool = False,
) -> CertificatePlan:
    reasons: list[str] = []
    ca_reason = _ca_problem(current.ca, now=now, margin=margin, rotate_ca=rotate_ca)
    if current.ca is None or ca_reason:
        reasons.append(ca_reason)
        ca = new_certificate_authority(now=now)
    else:
        ca = current.ca

    still_valid = [c for c in split_pem_bundle(current.ca_bundle) if not _expired(c, now)]
    bundle_certificates = split_pem_bundle(join_ca_bundle(*still_valid, ca.cert_pem))
    bundle = b"".join(bundle_certificates[-MAX_CAS_IN_BUNDLE:])
    if bundle != current.ca_bundle and not reasons:
        reasons.append("CA bundle brought up to date")

    serving = current.serving
    serving_reason = _serving_problem(
        serving, ca, now=now, margin=margin, dns_names=dns_names, ip_addresses=ip_addresses
    )
    if serving_reason:
        reasons.append(serving_reason)
        serving = new_serving_certificate(
            ca, now=now, dns_names=dns_names, ip_addresses=ip_addresses
        )
    return CertificatePlan(
        CertificateState(ca=ca, ca_bundle=bundle, serving=serving), tuple(reasons)
    )


def _expired(cert_pem: bytes, now: datetime.datetime) -> bool:
    return needs_renewal(cert_pem, now=now, margin=datetime.timedelta(0))


def _ca_problem(
    ca: KeyPair | None, *, now: datetime.datetime, margin: datetime.timedelta, rotate_ca: bool
) -> str:
    if ca is None:
        return "new CA"
    if rotate_ca:
        return "CA rotation requested"
    if needs_renewal(ca.cert_pem, now=now, margin=margin):
        return f"CA expires {not_after(ca.cert_pem).date().isoformat()}; rotated"
    return ""


def _serving_problem(
    serving: KeyPair | None,
    ca: KeyPair,
    *,
    now: datetime.datetime,
    margin: datetime.timedelta,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
) -> str:
    if serving is None:
        return "new serving certificate"
    if not signed_by(serving.cert_pem, ca.cert_pem):
        return "serving certificate re-issued by the current CA"
    if needs_renewal(serving.cert_pem, now=now, margin=margin):
        expiry = not_after(serving.cert_pem).date().isoformat()
        return f"serving certificate expires {expiry}; renewed"
    if not covers(serving.cert_pem, dns_names, ip_addresses):
        return "serving certificate re-issued for new names"
    return ""
