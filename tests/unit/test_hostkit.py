"""The host toolkit the local control plane and the node share (hack/hostkit)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hostkit.pki import CertificateAuthority
from hostkit.processes import Recorded
from hostkit.state import read_state, write_state


def test_a_recorded_process_is_known_by_pid_and_start_time_and_stopped() -> None:
    process = subprocess.Popen(["sleep", "60"])
    try:
        recorded = Recorded.of("sleeper", process.pid)
        assert recorded.alive()
        assert Recorded.from_json(recorded.as_json()) == recorded
        # The same pid with another start time is a stranger that reused the number.
        assert not Recorded("sleeper", process.pid, (recorded.start_time or 0) - 1).alive()
        recorded.stop(grace=5)
        assert not recorded.alive()
    finally:
        process.kill()
        process.wait()


def test_state_is_written_whole_and_unreadable_state_is_none(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, {"pids": [1, 2]})
    assert read_state(path) == {"pids": [1, 2]}
    assert not path.with_suffix(".partial").exists()
    path.write_text("{not json")
    assert read_state(path) is None
    assert read_state(tmp_path / "missing.json") is None


def test_the_ca_issues_servers_and_clients_a_cluster_accepts(tmp_path: Path) -> None:
    authority = CertificateAuthority.create(tmp_path, "test-ca")
    server = authority.issue_server(
        "apiserver", "kube-apiserver", dns=["localhost"], ips=["127.0.0.1"]
    )
    client = CertificateAuthority.load(tmp_path).issue_client(
        "kubelet", "system:node:n", ["system:nodes"]
    )
    served = x509.load_pem_x509_certificate(server.cert.read_bytes())
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = served.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    user = x509.load_pem_x509_certificate(client.cert.read_bytes())
    assert user.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert user.issuer == authority.certificate.subject
    assert oct(client.key.stat().st_mode & 0o777) == "0o600"
