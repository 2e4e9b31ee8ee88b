"""Files reloaded while the server runs: a broken file never replaces a good one.

No sleeping: each change is a new file renamed into place, as Kubernetes swaps a mounted
ConfigMap or Secret, so the watcher sees a new inode at once.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from pathlib import Path

import pytest

from clusterip_guard.certs.issuing import (
    KeyPair,
    new_certificate_authority,
    new_serving_certificate,
)
from clusterip_guard.policyfile import PolicyError, PolicyHolder
from clusterip_guard.reloading import PolledFiles, reload_all
from clusterip_guard.server.tls import CertificateReloader, serving_context

NOW = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)


def replace(path: Path, text: str | bytes) -> None:
    """Write beside, then rename over: a reader sees the old file or the new, never half."""
    partial = path.with_name(f".{path.name}.partial")
    if isinstance(text, bytes):
        partial.write_bytes(text)
    else:
        partial.write_text(text)
    partial.replace(path)


def test_an_unchanged_file_is_not_reloaded(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "allowExistingViolations: false\n")
    holder = PolicyHolder(policy_file)
    assert holder.reload_if_changed() == "unchanged"


def test_a_good_change_replaces_the_policy(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "allowExistingViolations: false\n")
    holder = PolicyHolder(policy_file)
    replace(policy_file, "allowExistingViolations: true\nallowedExternalIPCIDRs: [10.0.0.0/8]\n")
    assert holder.reload_if_changed() == "reloaded"
    assert holder.current.allow_existing_violations is True
    assert holder.current.external_ip_allowed("10.1.2.3")


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param("allowExistingViolations: [unclosed", id="not YAML"),
        pytest.param("allowExistingViolation: true\n", id="an unknown key"),
        pytest.param("allowedExternalIPCIDRs: [300.0.0.0/8]\n", id="a bad CIDR"),
    ],
)
def test_a_broken_policy_keeps_the_last_good_one(tmp_path: Path, broken: str) -> None:
    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "allowExistingViolations: false\n")
    holder = PolicyHolder(policy_file)
    good = holder.current
    replace(policy_file, broken)
    assert holder.reload_if_changed() == "failed"
    assert holder.current is good
    replace(policy_file, "allowExistingViolations: true\n")  # fixed: taken at the next look
    assert holder.reload_if_changed() == "reloaded"
    assert holder.current.allow_existing_violations is True


def test_a_deleted_policy_file_keeps_the_last_good_one(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "allowExistingViolations: false\n")
    holder = PolicyHolder(policy_file)
    policy_file.unlink()
    assert holder.reload_if_changed() == "failed"
    assert holder.current.allow_existing_violations is False


def test_a_broken_policy_at_start_is_an_error_naming_the_file(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "exemptions: {}\n")
    with pytest.raises(PolicyError, match=f"policy file {policy_file}: exemptions"):
        PolicyHolder(policy_file)


# --- the serving certificate ------------------------------------------------------------------


def issue(ca: KeyPair, name: str) -> KeyPair:
    return new_serving_certificate(ca, now=NOW, dns_names=[name])


def served_name(server: ssl.SSLContext, ca: KeyPair) -> str:
    """The DNS name of the certificate a fresh handshake with `server` presents (in memory)."""
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    client.check_hostname = False
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_end = client.wrap_bio(to_client, to_server)
    server_end = server.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(10):  # a TLS 1.3 handshake takes a few flights
        for end in (client_end, server_end):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
    certificate = client_end.getpeercert()
    assert certificate, "no handshake"
    names = certificate["subjectAltName"]
    assert isinstance(names, tuple)
    return ",".join(str(value) for kind, value in names if kind == "DNS")


@pytest.fixture
def pair_files(tmp_path: Path) -> tuple[KeyPair, Path, Path]:
    ca = new_certificate_authority(now=NOW)
    first = issue(ca, "first.example")
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    replace(key_file, first.key_pem)
    replace(cert_file, first.cert_pem)
    return ca, cert_file, key_file


def test_a_complete_new_pair_is_loaded(pair_files: tuple[KeyPair, Path, Path]) -> None:
    ca, cert_file, key_file = pair_files
    reloader = CertificateReloader(serving_context(cert_file, key_file), cert_file, key_file)
    assert served_name(reloader.context, ca) == "first.example"
    second = issue(ca, "second.example")
    replace(key_file, second.key_pem)
    replace(cert_file, second.cert_pem)
    assert reloader.reload_if_changed() == "reloaded"
    assert served_name(reloader.context, ca) == "second.example"


def test_a_half_written_pair_is_refused_until_the_other_half_lands(
    pair_files: tuple[KeyPair, Path, Path],
) -> None:
    ca, cert_file, key_file = pair_files
    reloader = CertificateReloader(serving_context(cert_file, key_file), cert_file, key_file)
    second = issue(ca, "second.example")
    replace(key_file, second.key_pem)  # the new key beside the old certificate: a mismatch
    assert reloader.reload_if_changed() == "failed"
    assert served_name(reloader.context, ca) == "first.example"
    replace(cert_file, second.cert_pem)
    assert reloader.reload_if_changed() == "reloaded"
    assert served_name(reloader.context, ca) == "second.example"


def test_a_broken_pair_is_logged_once_per_change(
    pair_files: tuple[KeyPair, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    ca, cert_file, key_file = pair_files
    reloader = CertificateReloader(serving_context(cert_file, key_file), cert_file, key_file)
    replace(key_file, issue(ca, "second.example").key_pem)  # the certificate never follows
    results = [reloader.reload_if_changed() for _ in range(5)]
    assert results == ["failed", "unchanged", "unchanged", "unchanged", "unchanged"]
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failures == [
        f"certificate reload failed; keeping the current one: key {key_file} and certificate "
        f"{cert_file}: the key does not match the certificate (they are from different pairs)"
    ]
    replace(key_file, b"")  # another change: said again
    assert reloader.reload_if_changed() == "failed"
    assert "it is empty" in caplog.records[-1].getMessage()


def test_a_broken_policy_is_logged_once_per_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "allowExistingViolations: false\n")
    holder = PolicyHolder(policy_file)
    replace(policy_file, "exemptions: [{namespace: a, name: b, reason: c, expires: 2027-02-30}]")
    assert [holder.reload_if_changed() for _ in range(3)] == ["failed", "unchanged", "unchanged"]
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


def test_a_certificate_that_is_not_pem_is_refused(pair_files: tuple[KeyPair, Path, Path]) -> None:
    _, cert_file, key_file = pair_files
    reloader = CertificateReloader(serving_context(cert_file, key_file), cert_file, key_file)
    replace(cert_file, b"-----BEGIN CERTIFICATE-----\ntruncated")
    assert reloader.reload_if_changed() == "failed"


def test_one_failing_reloader_does_not_stop_the_others(tmp_path: Path) -> None:
    class Exploding:
        name = "exploding"

        def reload_if_changed(self) -> str:
            raise RuntimeError("a bug in one reloader")

    policy_file = tmp_path / "policy.yaml"
    replace(policy_file, "allowExistingViolations: false\n")
    holder = PolicyHolder(policy_file)
    replace(policy_file, "allowExistingViolations: true\n")
    heard: list[tuple[str, str]] = []
    reload_all([Exploding(), holder], lambda name, result: heard.append((name, result)))  # type: ignore[list-item]
    assert heard == [("exploding", "failed"), ("policy", "reloaded")]


def test_a_file_that_appears_later_counts_as_changed(tmp_path: Path) -> None:
    late = tmp_path / "late.yaml"
    files = PolledFiles(late)
    assert not files.changed()
    replace(late, "x: 1\n")
    assert files.changed()
    assert not files.changed()
