"""The container image, built by `make image` and run without any registry.

It is built with buildah (chroot isolation) and run in two ways that need no network or
bridge: `buildah run` as uid 65532 (stdin passes through), and a throwaway containerd with its
own root, state and socket under /tmp, into whose k8s.io namespace the exported archive is
imported exactly as on a node, then `ctr run --read-only` (ctr applies the image's USER).

Building images needs root and Debian's buildah/debootstrap/containerd (installed by
hack/image/install-tools.sh). Without them the tests say why and are skipped; with CI=true a
missing prerequisite fails instead, so CI never passes on an image it did not build.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tests.support.paths import ROOT
from tests.support.prerequisites import skip_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.node]

ARCHIVE = ROOT / ".dev" / "images" / "clusterip-guard.tar"
VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/clusterip-guard:{VERSION}"
NODE_IMAGE = f"docker.io/library/clusterip-guard:{VERSION}"  # the name inside the archive
NODEPORT_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: default
spec:
  type: NodePort
  selector: {app: nginx}
  ports:
    - port: 80
      targetPort: 80
      nodePort: 30080
"""


def missing_prerequisite() -> str | None:
    if os.uname().sysname != "Linux":
        return "building container images needs Linux"
    if os.geteuid() != 0:
        uid = os.geteuid()
        return f"building container images needs root (buildah, chroot isolation), not uid {uid}"
    if shutil.which("buildah") is None and shutil.which("apt-get") is None:
        return "buildah is not installed and there is no apt-get to install it"
    return None


def run(
    *args: str | Path, stdin: str | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


@pytest.fixture(scope="module")
def image() -> str:
    """Builds the image with `make image` (cached layers make a second build fast)."""
    reason = missing_prerequisite()
    if reason:
        skip_or_fail(reason)
    build = run("make", "image", timeout=1200, check=False)
    assert build.returncode == 0, f"make image failed:\n{build.stdout}\n{build.stderr}"
    assert ARCHIVE.is_file(), f"make image made no {ARCHIVE}"
    return IMAGE


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    inspected = json.loads(run("buildah", "inspect", "--type", "image", image).stdout)
    oci_config: dict[str, Any] = inspected["OCIv1"]["config"]
    return oci_config


@pytest.fixture(scope="module")
def working_container(image: str) -> Iterator[str]:
    """A buildah working container of the image, removed afterwards (only this one)."""
    name = f"clusterip-guard-e2e-{os.getpid()}"
    run("buildah", "from", "--name", name, "--pull-never", image)
    try:
        yield name
    finally:
        run("buildah", "rm", name, check=False)


@pytest.fixture(scope="module")
def rootfs(working_container: str) -> Iterator[Path]:
    mounted = Path(run("buildah", "mount", working_container).stdout.strip())
    try:
        yield mounted
    finally:
        run("buildah", "umount", working_container, check=False)


def buildah_run(
    container: str, *command: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run(
        "buildah", "run", "--isolation", "chroot", "--user", "65532:65532", container, "--",
        *command, stdin=stdin, check=False,
    )  # fmt: skip


def test_user_is_numeric_and_not_root(config: dict[str, Any]) -> None:
    user = config.get("User", "")
    assert re.fullmatch(r"\d+:\d+", user), f"User {user!r} is not numeric uid:gid"
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0
    assert gid != 0


def test_entrypoint_command_and_ports(config: dict[str, Any]) -> None:
    assert config["Entrypoint"] == ["clusterip-guard"]
    assert config["Cmd"][0] == "serve"
    assert set(config["ExposedPorts"]) == {"8443/tcp", "9090/tcp"}
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_oci_labels(config: dict[str, Any]) -> None:
    labels = config["Labels"]
    for key in ("title", "description", "version", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"label {key} missing or empty"
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.title"] == "clusterip-guard"


def test_final_stage_has_no_build_tools_pip_or_wheelhouse(rootfs: Path) -> None:
    patterns = [
        "usr/bin/gcc*", "usr/bin/cc", "usr/bin/c++", "usr/bin/g++*", "usr/bin/clang*",
        "usr/bin/make", "usr/bin/ld", "usr/bin/as", "usr/bin/pip*", "usr/local/bin/pip*",
        "opt/venv/bin/pip*", "usr/lib/python3*/ensurepip", "usr/local/lib/python3*/ensurepip",
        "usr/share/python-wheels", "**/site-packages/pip", "**/dist-packages/pip",
        "**/site-packages/setuptools", "wheelhouse", "root/.cache/pip",
    ]  # fmt: skip
    found = sorted(str(p.relative_to(rootfs)) for pattern in patterns for p in rootfs.glob(pattern))
    assert found == [], f"the final image holds build tooling: {found}"
    assert (rootfs / "opt/venv/bin/clusterip-guard").is_file()


def test_pip_is_not_importable(working_container: str) -> None:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('pip') is not None)"
    for python in ("python3", "/opt/venv/bin/python"):
        done = buildah_run(working_container, python, "-c", probe)
        assert done.returncode == 0, f"{python} can import pip: {done.stdout}{done.stderr}"


def test_code_is_byte_compiled(rootfs: Path) -> None:
    """A read-only root filesystem cannot take .pyc files: they must be in the image."""
    site = next(rootfs.glob("opt/venv/lib/python3*/site-packages"))
    # The console script names the module wherever the package lives (app.cli, or later
    # clusterip_guard.cli): `from app.cli import main`.
    script = (rootfs / "opt/venv/bin/clusterip-guard").read_text()
    found = re.search(r"^from ([\w.]+) import main$", script, re.MULTILINE)
    assert found, script
    module = site / (found.group(1).replace(".", "/") + ".py")
    assert module.is_file(), f"{module} not in the image"
    cached = list((module.parent / "__pycache__").glob(f"{module.stem}.cpython-3*.pyc"))
    assert cached, f"{module.name} is not byte-compiled"
    # Hash-based .pyc files that are never checked: valid whatever the file times (byte 4 of
    # the header holds the flags, 0b01 = hash-based, unchecked).
    assert cached[0].read_bytes()[4] == 0b01


def test_check_from_stdin_denies_a_nodeport_service(working_container: str) -> None:
    done = buildah_run(working_container, "clusterip-guard", "check", "-", stdin=NODEPORT_SERVICE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"<stdin>#1\s+default\s+nginx\s+denied\s+spec\.type", done.stdout), done.stdout
    assert "1 denied" in done.stdout


# A throwaway containerd: its own root, state, socket and config; the CRI plugin is off, so it
# touches no CNI, bridge or iptables. Stopped, unmounted and removed afterwards.


class Containerd:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "containerd.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file: BinaryIO | None = None

    def ctr(self, *args: str | Path, timeout: float = 120, check: bool = True) -> Any:
        return run("ctr", "--address", self.socket, "--namespace", "k8s.io", *args,
                   timeout=timeout, check=check)  # fmt: skip

    def run(self, name: str, *command: str, flags: tuple[str, ...] = ("--rm",)) -> Any:
        """`ctr run` of the image as container `name`, always with a read-only root. Its
        cgroup sits right under the root and goes with the container (by default ctr nests it
        in /k8s.io/, which runc would create and leave behind)."""
        return self.ctr(
            "run", "--read-only", "--cgroup", f"/clusterip-guard-e2e-{name}", *flags,
            NODE_IMAGE, name, *command,
        )  # fmt: skip

    def start(self) -> None:
        config = self.base / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.base}/root"\nstate = "{self.base}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{self.base}/opt"\n'
        )
        self.log_file = (self.base / "containerd.log").open("wb")
        self.process = subprocess.Popen(
            ["containerd", "--config", str(config)],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return (self.base / "containerd.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            for line in self.ctr("tasks", "ls", "--quiet", check=False).stdout.split():
                self.ctr("tasks", "kill", "--signal", "SIGKILL", line, check=False)
                self.ctr("tasks", "rm", "--force", line, check=False)
            for line in self.ctr("containers", "ls", "--quiet", check=False).stdout.split():
                self.ctr("containers", "rm", line, check=False)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log_file is not None:
            self.log_file.close()
        # Shims of this containerd only (they name its socket), should a task have hung.
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                if b"containerd-shim" in cmdline and str(self.socket).encode() in cmdline:
                    os.kill(int(proc.name), signal.SIGKILL)
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(self.base))
        ]
        for target in reversed(mounts):
            subprocess.run(["umount", "--lazy", target], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(image: str) -> Iterator[Containerd]:
    install = run(ROOT / "hack/image/install-tools.sh", "containerd", timeout=900, check=False)
    if install.returncode != 0 or not (shutil.which("containerd") and shutil.which("ctr")):
        skip_or_fail(f"no containerd to run the image in: {install.stderr.strip()}")
    daemon = Containerd(Path(tempfile.mkdtemp(prefix="cg-containerd.", dir="/tmp")))
    try:
        daemon.start()
        imported = daemon.ctr("images", "import", ARCHIVE, timeout=300)
        assert NODE_IMAGE in imported.stdout, imported.stdout
        yield daemon
    finally:
        daemon.stop()


def test_archive_imports_into_the_k8s_io_namespace(containerd: Containerd) -> None:
    listed = containerd.ctr("images", "ls", "--quiet").stdout.split()
    assert NODE_IMAGE in listed


def test_version_runs_as_non_root_on_a_read_only_root(containerd: Containerd) -> None:
    # ctr 1.6 has no --user: it applies the image's USER, which this proves.
    ids = containerd.run("cg-e2e-id", "sh", "-c", "id -u; id -g; touch /probe 2>&1 || true")
    uid, gid, touch = ids.stdout.splitlines()
    assert (uid, gid) == ("65532", "65532")
    assert "Read-only file system" in touch
    version = containerd.run("cg-e2e-version", "clusterip-guard", "--version")
    assert version.stdout.strip() == f"clusterip-guard {VERSION}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_healthz_over_https_with_a_mounted_certificate(
    containerd: Containerd,
) -> None:
    tls = containerd.base / "tls"
    tls.mkdir()
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", "/CN=clusterip-guard",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", tls / "tls.key", "-out", tls / "tls.crt")  # fmt: skip
    for path in (tls, tls / "tls.key", tls / "tls.crt"):
        os.chown(path, 65532, 65532)  # as a Secret volume with fsGroup would give it
    (tls / "tls.key").chmod(0o400)
    port, metrics_port = free_port(), free_port()
    log = containerd.base / "serve.log"
    containerd.run(
        "cg-e2e-serve", "clusterip-guard", "serve",
        "--cert-file", "/etc/clusterip-guard/tls/tls.crt",
        "--key-file", "/etc/clusterip-guard/tls/tls.key",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
        flags=(
            "--detach", "--net-host", "--log-uri", f"file://{log}",
            "--mount", f"type=bind,src={tls},dst=/etc/clusterip-guard/tls,options=rbind:ro",
        ),
    )  # fmt: skip
    try:
        context = ssl.create_default_context(cafile=str(tls / "tls.crt"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/healthz", context=context, timeout=2
                ) as response:
                    assert response.status == 200
                    assert response.read().decode().strip() == "ok"
                    break
            except OSError:
                if time.monotonic() > deadline:
                    logs = log.read_text() if log.exists() else ""
                    raise AssertionError(f"no /healthz within 30 s; serve log:\n{logs}") from None
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as m:
            assert b"clusterip_guard_" in m.read()
    finally:
        containerd.ctr("tasks", "kill", "cg-e2e-serve", check=False)
        deadline = time.monotonic() + 15
        while "RUNNING" in containerd.ctr("tasks", "ls", check=False).stdout:
            if time.monotonic() > deadline:
                containerd.ctr("tasks", "kill", "--signal", "SIGKILL", "cg-e2e-serve", check=False)
            time.sleep(0.2)
        containerd.ctr("tasks", "rm", "cg-e2e-serve", check=False)
        containerd.ctr("containers", "rm", "cg-e2e-serve", check=False)
