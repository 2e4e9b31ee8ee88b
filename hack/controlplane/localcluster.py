"""A real kube-apiserver and etcd on loopback, for the tests, the demo and the benchmarks.

    python hack/controlplane/localcluster.py up [--dir .dev]    # start, detached; kubeconfig in DIR
    python hack/controlplane/localcluster.py down [--dir .dev]  # stop everything recorded in DIR

In Python: `with start(workdir) as cluster: ...` (stopped on exit, on error, and at interpreter
exit). Binaries come from build.sh beside this file, which honours KUBEBUILDER_ASSETS,
TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD as envtest users expect.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.0.0.0/16"
READY_TIMEOUT_SECONDS = 90.0
STOP_GRACE_SECONDS = 10.0
STATE_FILE = "controlplane.json"
LOG_TAIL_LINES = 15

# Metadata for Services and the requests our tests read back; nothing else, to keep it small.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "resources": [{"group": "", "resources": ["services"]}]},
        {"level": "None"},
    ],
}


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached; the message says why."""


def assets_dir() -> Path:
    """The folder with kube-apiserver, etcd and kubectl, built on first use."""
    try:
        run = subprocess.run(
            ["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
        )
    except OSError as error:
        raise ControlPlaneError(f"cannot run build.sh: {error}") from error
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        raise ControlPlaneError(f"building the control plane failed (exit {run.returncode})")
    return Path(lines[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


# --- throwaway certificates -----------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signing_key = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _common_name(name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


@dataclass(frozen=True)
class Credentials:
    ca_file: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_public: Path
    admin_cert: Path
    admin_key: Path

    @classmethod
    def in_folder(cls, folder: Path, user: str) -> Credentials:
        """Where the files live; `user` names the client certificate."""
        return cls(
            ca_file=folder / "ca.crt",
            serving_cert=folder / "apiserver.crt",
            serving_key=folder / "apiserver.key",
            service_account_key=folder / "sa.key",
            service_account_public=folder / "sa.pub",
            admin_cert=folder / f"{user}.crt",
            admin_key=folder / f"{user}.key",
        )


def write_credentials(folder: Path) -> Credentials:
    """A CA, the API server's serving certificate, a service-account key and an admin client."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _issue(_common_name("clusterip-guard-local-ca"), ca_key, None)
    service_ip = ipaddress.IPv4Network(SERVICE_CIDR)[1]  # the `kubernetes` Service
    serving_key = _key()
    serving = _issue(
        _common_name("kube-apiserver"),
        serving_key,
        (ca, ca_key),
        usage=x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
        names=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
            x509.IPAddress(service_ip),
        ],
    )
    admin_key = _key()
    admin = _issue(
        _common_name("admin", "system:masters"),
        admin_key,
        (ca, ca_key),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    account_key = _key()
    files = Credentials.in_folder(folder, "admin")
    files.ca_file.write_bytes(_pem_cert(ca))
    (folder / "ca.key").write_bytes(_pem_key(ca_key))  # kept to mint users for RBAC tests
    files.serving_cert.write_bytes(_pem_cert(serving))
    files.serving_key.write_bytes(_pem_key(serving_key))
    files.admin_cert.write_bytes(_pem_cert(admin))
    files.admin_key.write_bytes(_pem_key(admin_key))
    files.service_account_key.write_bytes(_pem_key(account_key))
    files.service_account_public.write_bytes(
        account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return files


def kubeconfig(url: str, credentials: Credentials) -> dict[str, object]:
    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": url,
                    "certificate-authority-data": data(credentials.ca_file),
                },
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": data(credentials.admin_cert),
                    "client-key-data": data(credentials.admin_key),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }


def user_kubeconfig(cluster: ControlPlane, user: str, groups: tuple[str, ...] = ()) -> Path:
    """A kubeconfig for another user of the local cluster (RBAC decides what it may do)."""
    pki = cluster.workdir / "pki"
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ControlPlaneError("the local CA key is not an ECDSA key")
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    key = _key()
    certificate = _issue(
        x509.Name(attributes), key, (ca, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    (pki / f"{user}.crt").write_bytes(_pem_cert(certificate))
    (pki / f"{user}.key").write_bytes(_pem_key(key))
    credentials = Credentials.in_folder(pki, user)
    path = cluster.workdir / f"kubeconfig-{user}"
    path.write_text(yaml.safe_dump(kubeconfig(cluster.url, credentials)))
    return path


# --- processes ------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps the child if it is ours."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@dataclass
class ControlPlane:
    workdir: Path
    url: str
    kubeconfig: Path
    ca_file: Path
    etcd_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)  # in start order

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        """Stop what was started, newest first. Safe to call twice."""
        while self.processes:
            process = self.processes.pop()
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        # Its own session: a Ctrl-C in the terminal reaches us alone, and we stop the children
        # in order (the API server before etcd); `make up` can also leave them running.
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _tail(log: Path) -> str:
    if not log.exists():
        return ""
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(lines)


def _wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ControlPlaneError(f"{what} exited with code {process.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s:\n{_tail(log)}")


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def admin_context(credentials: Credentials) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(credentials.ca_file))
    context.load_cert_chain(str(credentials.admin_cert), str(credentials.admin_key))
    return context


def start(
    workdir: Path,
    *,
    assets: Path | None = None,
    audit_log: bool = True,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> ControlPlane:
    """Start etcd and kube-apiserver on free loopback ports; ready when this returns."""
    assets = assets or assets_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    credentials = write_credentials(workdir / "pki")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://{LOOPBACK}:{etcd_port}"
    url = f"https://{LOOPBACK}:{api_port}"
    cluster = ControlPlane(
        workdir=workdir,
        url=url,
        kubeconfig=workdir / "kubeconfig",
        ca_file=credentials.ca_file,
        etcd_url=etcd_url,
    )
    atexit.register(cluster.stop)
    try:
        etcd_log = workdir / "etcd.log"
        etcd = _spawn(
            [
                str(assets / "etcd"),
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://{LOOPBACK}:{peer_port}",
                f"--initial-advertise-peer-urls=http://{LOOPBACK}:{peer_port}",
                f"--initial-cluster=default=http://{LOOPBACK}:{peer_port}",
                "--unsafe-no-fsync=true",  # throwaway data: durability buys nothing here
                "--log-level=warn",
            ],
            etcd_log,
        )
        cluster.processes.append(etcd)
        _wait_until(lambda: _http_ok(f"{etcd_url}/health"), etcd, etcd_log, "etcd", timeout)

        flags = [
            f"--etcd-servers={etcd_url}",
            f"--advertise-address={LOOPBACK}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={api_port}",
            f"--tls-cert-file={credentials.serving_cert}",
            f"--tls-private-key-file={credentials.serving_key}",
            f"--client-ca-file={credentials.ca_file}",
            f"--service-account-issuer={url}",
            f"--service-account-key-file={credentials.service_account_public}",
            f"--service-account-signing-key-file={credentials.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-node-port-range=30000-32767",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            f"--cert-dir={workdir / 'apiserver-certs'}",
        ]
        if audit_log:
            policy = workdir / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(AUDIT_POLICY))
            flags += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={workdir / 'audit.log'}",
                "--audit-log-mode=blocking",
            ]
        api_log = workdir / "kube-apiserver.log"
        apiserver = _spawn([str(assets / "kube-apiserver"), *flags], api_log)
        cluster.processes.append(apiserver)
        context = admin_context(credentials)
        _wait_until(
            lambda: (
                _https_ok(f"{url}/readyz", context)
                and _https_ok(f"{url}/api/v1/namespaces/default", context)
            ),
            apiserver,
            api_log,
            "kube-apiserver",
            timeout,
        )
        cluster.kubeconfig.write_text(yaml.safe_dump(kubeconfig(url, credentials)))
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- detached use: make up / make down ------------------------------------------------------


def _state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> dict[str, object] | None:
    path = _state_path(state_dir)
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def record_extra_pid(state_dir: Path, pid: int) -> None:
    """Record another process (the webhook) for `down` to stop with the control plane."""
    state = read_state(state_dir)
    if state is None:
        raise ControlPlaneError(f"no control plane recorded in {state_dir}")
    extra = state.get("extra_pids")
    pids = [p for p in extra if isinstance(p, int)] if isinstance(extra, list) else []
    state["extra_pids"] = [*pids, pid]
    _state_path(state_dir).write_text(json.dumps(state, indent=2))


def _recorded_pids(state: dict[str, object]) -> list[int]:
    pids: list[int] = []
    for key in ("pids", "extra_pids"):
        value = state.get(key)
        if isinstance(value, list):
            pids += [p for p in value if isinstance(p, int)]
    return pids


def up(state_dir: Path) -> str:
    state = read_state(state_dir)
    if state is not None:
        recorded = state.get("pids")
        pids = [p for p in recorded if isinstance(p, int)] if isinstance(recorded, list) else []
        if pids and all(_alive(p) for p in pids):
            return f"control plane already running at {state.get('url')}"
        down(state_dir)
    workdir = state_dir / "controlplane"
    if workdir.exists():
        shutil.rmtree(workdir)  # a stale etcd from an earlier run would hold old objects
    cluster = start(workdir)
    atexit.unregister(cluster.stop)  # detached: `down` stops it
    pids = cluster.pids
    cluster.processes.clear()  # handed over to the state file; Popen must not reap them
    (state_dir / "kubeconfig").write_text(cluster.kubeconfig.read_text())
    _state_path(state_dir).write_text(
        json.dumps(
            {"url": cluster.url, "pids": pids, "extra_pids": [], "workdir": str(workdir)},
            indent=2,
        )
    )
    return f"control plane ready at {cluster.url}; export KUBECONFIG={state_dir / 'kubeconfig'}"


def down(state_dir: Path) -> str:
    state = read_state(state_dir)
    if state is None:
        return "no control plane running"
    for pid in reversed(_recorded_pids(state)):
        if _alive(pid):
            stop_pid(pid)
    _state_path(state_dir).unlink(missing_ok=True)
    return "control plane stopped"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local kube-apiserver + etcd on loopback")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=Path(".dev"), help="state folder")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    # A Ctrl-C or a kill while starting must not leave orphans: atexit in start() stops them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        print(up(args.dir) if args.action == "up" else down(args.dir))
    except ControlPlaneError as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("localcluster: interrupted; stopped what was started", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
