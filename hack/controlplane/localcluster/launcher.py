"""A real kube-apiserver and etcd on loopback, for the tests, the demo and the benchmarks.

    python hack/controlplane/localcluster up [--dir .dev]     # start, detached; kubeconfig in DIR
    python hack/controlplane/localcluster down [--dir .dev]   # stop everything recorded in DIR
    python hack/controlplane/localcluster record-pid --dir .dev PID   # stop PID first on `down`

`up` records pids, ports and the URL in DIR/controlplane.json; `record-pid` adds another
process (the webhook) for `down` to stop first. Each pid is kept with its start time, so
`down` never signals a stranger that reused the number.

In Python: `with start(workdir) as cluster: ...` (stopped on exit, on error, and at interpreter
exit). Binaries come from build.sh beside this package, which honours KUBEBUILDER_ASSETS,
TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD as envtest users expect.

Another Kubernetes release's API server (`up --kubernetes v1.33.13`, or CLUSTERIP_GUARD_KUBERNETES
in the environment, which `make test-versions` sets for each test run): build.sh --kubernetes
builds it from its wrapper module in versions/, beside the pinned etcd.

For tests of an interrupted start-up: with LOCALCLUSTER_HOLD_AT=kube-apiserver, `start` stops
right after spawning the API server (etcd runs, the API server is on its way), writes the
marker file `held-at-kube-apiserver` in its workdir and waits there until it is interrupted,
so a test interrupts at a known point of start-up, not at a moment that depends on speed.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from hostkit.flags import apiserver_flags as common_apiserver_flags
from hostkit.flags import etcd_flags
from hostkit.kubeconfig import client_context
from hostkit.processes import (
    STOP_GRACE_SECONDS,
    Terminated,
    free_ports,
    get_ok,
    is_recorded_process,
    raise_terminated,
    spawn,
    started_at,
    stop_pid,
    wait_until,
)
from hostkit.state import read_state as read_json_state
from hostkit.state import write_state
from localcluster.errors import ControlPlaneError
from localcluster.pki import (
    LOOPBACK,
    SERVICE_CIDR,
    Credentials,
    kubeconfig,
    write_credentials,
    write_user_credentials,
)

HERE = Path(__file__).resolve().parent.parent  # hack/controlplane: build.sh and go.mod
# Ready in about 3 s when warm; generous for a loaded 2-core CI runner.
READY_TIMEOUT_SECONDS = 90.0
STATE_FILE = "controlplane.json"
HOLD_AT_VARIABLE = "LOCALCLUSTER_HOLD_AT"
# The Kubernetes release whose API server `start` runs when none is named (unset: the pinned one).
KUBERNETES_VARIABLE = "CLUSTERIP_GUARD_KUBERNETES"

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


def wanted_kubernetes() -> str | None:
    """The release named by CLUSTERIP_GUARD_KUBERNETES, or None for the pinned one."""
    return os.environ.get(KUBERNETES_VARIABLE) or None


def assets_dir(kubernetes: str | None = None) -> Path:
    """The folder with kube-apiserver, etcd and kubectl, built on first use: of the pinned
    release, or of `kubernetes` (a release with a wrapper module in versions/).

    build.sh's progress goes straight to our stderr (minutes on the first run); its last
    stdout line is the folder.
    """
    command = ["bash", str(HERE / "build.sh")]
    if kubernetes:
        command += ["--kubernetes", kubernetes]
    try:
        run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    except OSError as error:
        raise ControlPlaneError(f"cannot run build.sh: {error}") from error
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        raise ControlPlaneError(
            f"building the control plane failed (build.sh exit {run.returncode}); see above"
        )
    return Path(lines[-1])


@dataclass
class ControlPlane:
    workdir: Path
    url: str
    kubeconfig: Path
    ca_file: Path
    ports: dict[str, int] = field(default_factory=dict)  # "apiserver", "etcd", "etcd-peer"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)  # in start order

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        """Stop what was started, newest first (the API server before etcd). Safe to call twice."""
        while self.processes:
            process = self.processes.pop()
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        atexit.unregister(self.stop)  # nothing left to stop; do not pin this object until exit

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def admin_context(credentials: Credentials) -> ssl.SSLContext:
    return client_context(credentials.ca_file, credentials.admin_cert, credentials.admin_key)


def user_kubeconfig(cluster: ControlPlane, user: str, groups: tuple[str, ...] = ()) -> Path:
    """A kubeconfig for another user of the local cluster (RBAC decides what it may do)."""
    credentials = write_user_credentials(cluster.workdir / "pki", user, groups)
    path = cluster.workdir / f"kubeconfig-{user}"
    path.write_text(yaml.safe_dump(kubeconfig(cluster.url, credentials)))
    return path


def start(
    workdir: Path,
    *,
    assets: Path | None = None,
    audit_log: bool = True,
    webhook_client: tuple[Path, Path] | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
    extra_flags: tuple[str, ...] = (),
    kubernetes: str | None = None,
) -> ControlPlane:
    """Start etcd and kube-apiserver on free loopback ports; ready when this returns.

    Ready means /readyz answers ok and the `default` namespace exists. On any failure, or an
    interrupt, what was already started is stopped before the error propagates.
    `webhook_client` (certificate, key): the API server presents it to every admission
    webhook, by an AdmissionConfiguration. `extra_flags`: kube-apiserver's, after ours (an
    older API server's missing APIs, by --runtime-config). `kubernetes`: another release's API
    server (default: CLUSTERIP_GUARD_KUBERNETES, else the pinned release).
    """
    assets = assets or assets_dir(kubernetes or wanted_kubernetes())
    for binary in ("etcd", "kube-apiserver"):
        if not os.access(assets / binary, os.X_OK):
            raise ControlPlaneError(f"{assets} has no executable {binary}")
    workdir.mkdir(parents=True, exist_ok=True)
    credentials = write_credentials(workdir / "pki")
    etcd_port, peer_port, api_port = free_ports(3)
    etcd_url = f"http://{LOOPBACK}:{etcd_port}"
    url = f"https://{LOOPBACK}:{api_port}"
    cluster = ControlPlane(
        workdir=workdir,
        url=url,
        kubeconfig=workdir / "kubeconfig",
        ca_file=credentials.ca_file,
        ports={"apiserver": api_port, "etcd": etcd_port, "etcd-peer": peer_port},
    )
    atexit.register(cluster.stop)  # a test run that dies mid-way still leaves no orphans
    try:
        etcd_log = workdir / "etcd.log"
        etcd = spawn(
            [str(assets / "etcd"), *etcd_flags(workdir / "etcd", etcd_port, peer_port)], etcd_log
        )
        cluster.processes.append(etcd)
        wait_until(lambda: get_ok(f"{etcd_url}/health"), etcd, etcd_log, "etcd", timeout)

        flags = apiserver_flags(workdir, credentials, etcd_url=etcd_url, port=api_port)
        if audit_log:
            policy = workdir / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(AUDIT_POLICY))
            flags += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={workdir / 'audit.log'}",
                "--audit-log-mode=blocking",  # written as each request completes, not batched
            ]
        if webhook_client is not None:
            configuration = admission_configuration(workdir, *webhook_client)
            flags.append(f"--admission-control-config-file={configuration}")
        flags += extra_flags
        api_log = workdir / "kube-apiserver.log"
        apiserver = spawn([str(assets / "kube-apiserver"), *flags], api_log)
        cluster.processes.append(apiserver)
        _hold_if_asked(workdir, "kube-apiserver")
        context = admin_context(credentials)
        wait_until(
            lambda: (
                get_ok(f"{url}/readyz", context)
                and get_ok(f"{url}/api/v1/namespaces/default", context)
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


def _hold_if_asked(workdir: Path, point: str) -> None:
    """Wait here, forever, when LOCALCLUSTER_HOLD_AT names this point (see the module's doc)."""
    if os.environ.get(HOLD_AT_VARIABLE) != point:
        return
    (workdir / f"held-at-{point}").write_text(f"{os.getpid()}\n")
    while True:
        time.sleep(3600)  # an interrupt (KeyboardInterrupt or Terminated) ends the wait


def admission_configuration(workdir: Path, client_cert: Path, client_key: Path) -> Path:
    """An AdmissionConfiguration whose webhooks' kubeconfig presents this client certificate
    to every webhook (`*`, the default match)."""
    kubeconfig_path = workdir / "webhook-client-kubeconfig"
    kubeconfig_path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {
                        "name": "*",
                        "user": {
                            "client-certificate": str(client_cert),
                            "client-key": str(client_key),
                        },
                    }
                ],
            }
        )
    )
    webhook = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig_path),
    }
    path = workdir / "admission-configuration.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [
                    {"name": "ValidatingAdmissionWebhook", "configuration": webhook},
                    {"name": "MutatingAdmissionWebhook", "configuration": webhook},
                ],
            }
        )
    )
    return path


def apiserver_flags(
    workdir: Path, credentials: Credentials, *, etcd_url: str, port: int
) -> list[str]:
    """envtest's flags, on loopback."""
    return [
        *common_apiserver_flags(
            etcd_url=etcd_url,
            address=LOOPBACK,
            port=port,
            pki=credentials.ca_file.parent,
            service_cidr=SERVICE_CIDR,
            service_account_issuer=f"https://{LOOPBACK}:{port}",
            authorization_mode="RBAC",
            cert_dir=workdir / "apiserver-certs",
        ),
        # No controller creates the `default` ServiceAccount this plugin demands of each pod.
        "--disable-admission-plugins=ServiceAccount",
        # One API server that nothing reaches through the `kubernetes` Service: no Endpoints.
        "--endpoint-reconciler-type=none",
    ]


# --- detached use: make up / make down ------------------------------------------------------


def _state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> dict[str, object] | None:
    return read_json_state(_state_path(state_dir))


def _write_state(state_dir: Path, state: dict[str, object]) -> None:
    # Whole or not at all: `down` after an interrupted write must still find the pids.
    write_state(_state_path(state_dir), state)


def _ints(value: object) -> list[int]:
    return [item for item in value if isinstance(item, int)] if isinstance(value, list) else []


def _start_times(state: dict[str, object]) -> dict[str, object]:
    starts = state.get("started_at")
    return starts if isinstance(starts, dict) else {}


def _recorded(state: dict[str, object], key: str) -> list[tuple[int, int | None]]:
    """(pid, start time) of each process under `key` ("pids" or "extra_pids")."""
    starts = _start_times(state)
    recorded: list[tuple[int, int | None]] = []
    for pid in _ints(state.get(key)):
        start_time = starts.get(str(pid))
        recorded.append((pid, start_time if isinstance(start_time, int) else None))
    return recorded


def record_extra_pid(state_dir: Path, pid: int) -> None:
    """Record another process (the webhook) for `down` to stop before the control plane."""
    state = read_state(state_dir)
    if state is None:
        raise ControlPlaneError(f"no control plane recorded in {state_dir}")
    state["extra_pids"] = [*_ints(state.get("extra_pids")), pid]
    state["started_at"] = {**_start_times(state), str(pid): started_at(pid)}
    _write_state(state_dir, state)


def _is_running(state: dict[str, object]) -> bool:
    """Every recorded control-plane process is the one we started, and the API answers."""
    processes = _recorded(state, "pids")
    url, workdir = state.get("url"), state.get("workdir")
    if not processes or not isinstance(url, str) or not isinstance(workdir, str):
        return False
    if not all(is_recorded_process(pid, start_time) for pid, start_time in processes):
        return False
    try:
        context = admin_context(Credentials.in_folder(Path(workdir) / "pki", "admin"))
    except OSError:  # the pki folder was removed: whatever runs is not usable by us
        return False
    return get_ok(f"{url}/readyz", context)


def up(state_dir: Path, kubernetes: str | None = None) -> str:
    """Start a detached control plane recorded in `state_dir`, unless one already runs there."""
    shown = state_dir / "kubeconfig"  # as the user named it: `export KUBECONFIG=.dev/kubeconfig`
    state_dir = state_dir.absolute()  # recorded paths must not depend on where `down` runs
    kubeconfig_path = state_dir / "kubeconfig"
    state = read_state(state_dir)
    release = kubernetes or wanted_kubernetes() or "pinned"
    if state is not None:
        if _is_running(state) and state.get("kubernetes", "pinned") == release:
            return f"control plane already running at {state.get('url')}; export KUBECONFIG={shown}"
        down(state_dir)  # stale, half-dead or another release: clear it away, start afresh
    workdir = state_dir / "controlplane"
    if workdir.exists():
        shutil.rmtree(workdir)  # a stale etcd from an earlier run would hold old objects
    cluster = start(workdir, kubernetes=None if release == "pinned" else release)
    try:
        shutil.copyfile(cluster.kubeconfig, kubeconfig_path)
        _write_state(
            state_dir,
            {
                "url": cluster.url,
                "ports": cluster.ports,
                "pids": cluster.pids,
                "extra_pids": [],
                "started_at": {str(pid): started_at(pid) for pid in cluster.pids},
                "workdir": str(workdir),
                "kubeconfig": str(kubeconfig_path),
                "kubernetes": release,
            },
        )
    except BaseException:
        cluster.stop()
        raise
    # Detached from here on: `down` stops them, not our exit.
    atexit.unregister(cluster.stop)
    cluster.processes.clear()
    return f"control plane ready at {cluster.url}; export KUBECONFIG={shown}"


def down(state_dir: Path) -> str:
    """Stop what `up` and `record_extra_pid` recorded in `state_dir`: extras first."""
    state = read_state(state_dir)
    if state is None:
        _state_path(state_dir).unlink(missing_ok=True)  # unreadable: nothing we can act on
        return "no control plane running"
    processes = _recorded(state, "pids") + _recorded(state, "extra_pids")
    for pid, start_time in reversed(processes):
        if is_recorded_process(pid, start_time):
            stop_pid(pid)
    _state_path(state_dir).unlink(missing_ok=True)
    return "control plane stopped"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="localcluster", description="local kube-apiserver + etcd on loopback"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("up", "start, detached, unless one already runs in DIR"),
        ("down", "stop everything recorded in DIR, recorded extra processes first"),
        ("record-pid", "record another process (the webhook) for `down` to stop"),
    ):
        command = actions.add_parser(action, help=text)
        command.add_argument("--dir", type=Path, default=Path(".dev"), help="state folder")
        if action == "record-pid":
            command.add_argument("pid", type=int)
        if action == "up":
            command.add_argument(
                "--kubernetes",
                metavar="VERSION",
                help="another release's API server (e.g. v1.33.13; hack/controlplane/versions)",
            )
    args = parser.parse_args(argv)
    # Ctrl-C arrives as KeyboardInterrupt; a kill or a CI timeout must unwind the same way so
    # that start() stops what it started.
    signal.signal(signal.SIGTERM, raise_terminated)
    # Ctrl-C stops what was started even when this runs under a parent that ignores SIGINT
    # (a background job of a non-interactive shell: Python then installs no handler of its own).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if args.action == "up":
            args.dir.mkdir(parents=True, exist_ok=True)
            message = up(args.dir, args.kubernetes)
        elif args.action == "record-pid":
            record_extra_pid(args.dir, args.pid)
            message = f"recorded pid {args.pid}"
        else:
            message = down(args.dir)
    except ControlPlaneError as error:
        summary = str(error).partition("\n")[0]  # it names the log that holds the details
        print(f"localcluster: {summary}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as interruption:
        print("localcluster: interrupted; stopped what was started", file=sys.stderr)
        signum = signal.SIGINT if isinstance(interruption, KeyboardInterrupt) else signal.SIGTERM
        return 128 + signum
    print(message)
    return 0
