"""Every command with the usual mistakes: each is one line on stderr that names the file or
flag and what is wrong, and exits with its documented code, never a traceback.

The mistakes that need a cluster to show (a TLS failure, a refusal, damaged certificates in
a Secret or a folder, url mode without the certificate's names) are in
tests/e2e/test_bad_inputs_e2e.py.
"""

from __future__ import annotations

import io
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clusterip_guard.certs.issuing import new_certificate_authority, new_serving_certificate
from clusterip_guard.cli.main import main
from tests.support.webhook_process import now

SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: abc}}]
"""


@dataclass(frozen=True)
class Mistake:
    id: str
    argv: tuple[str, ...]  # "{d}" is the folder of the files below
    code: int
    says: tuple[str, ...]  # each in the one line
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # "{d}" as above
    stdin: str = ""

    def __str__(self) -> str:
        return self.id


def kubeconfig(old: str, new: str) -> str:
    assert old in KUBECONFIG
    return KUBECONFIG.replace(old, new)


CHECK = [
    Mistake("an exemption date that does not exist",
            ("check", "--policy-file", "{d}/policy.yaml", "{d}/web.yaml"), 2,
            ("policy file {d}/policy.yaml", "exemptions[0].expires: 2027-02-30 is not a date",
             "YYYY-MM-DD"),
            {"policy.yaml": "exemptions:\n- {namespace: a, name: b, reason: c, "
                            "expires: 2027-02-30}\n"}),
    Mistake("a policy that is not YAML", ("check", "--policy-file", "{d}/p.yaml", "{d}/web.yaml"),
            2, ("policy file {d}/p.yaml", "line 2, column"), {"p.yaml": "a: 1\n b: [\n"}),
    Mistake("a policy that does not exist",
            ("check", "--policy-file", "{d}/none.yaml", "{d}/web.yaml"), 2,
            ("policy file {d}/none.yaml", "No such file")),
    Mistake("a policy that is a folder", ("check", "--policy-file", "{d}", "{d}/web.yaml"), 2,
            ("policy file {d}", "Is a directory")),
    Mistake("a policy that is not text", ("check", "--policy-file", "{d}/p.yaml", "{d}/web.yaml"),
            2, ("policy file {d}/p.yaml", "not UTF-8"), {"p.yaml": b"\xff\xfe"}),
    Mistake("an exemption namespace that can never match",
            ("check", "--policy-file", "{d}/p.yaml", "{d}/web.yaml"), 2,
            ("exemptions[0].namespace", "'Team-*' can never match"),
            {"p.yaml": "exemptions: [{namespace: Team-*, name: b, reason: c}]\n"}),
    Mistake("a manifest that is plain text", ("check", "{d}/notes.yaml"), 2,
            ("{d}/notes.yaml#1: not a Kubernetes object: a string",),
            {"notes.yaml": "remember to apply this\n"}),
    Mistake("a manifest without kind", ("check", "{d}/m.yaml"), 2,
            ("{d}/m.yaml#1: not a Kubernetes object: no kind",),
            {"m.yaml": "apiVersion: v1\nmetadata: {name: x}\n"}),
    Mistake("an empty manifest", ("check", "{d}/empty.yaml"), 2,
            ("{d}/empty.yaml: no Kubernetes objects found",), {"empty.yaml": ""}),
    Mistake("a folder without manifests", ("check", "{d}/folder"), 2,
            ("{d}/folder: no Kubernetes objects found",), {"folder/readme.txt": "hi"}),
    Mistake("nothing on stdin", ("check", "-"), 2, ("<stdin>: no Kubernetes objects found",)),
    Mistake("a manifest that is not text", ("check", "{d}/bin.yaml"), 2,
            ("{d}/bin.yaml: cannot read: not UTF-8",), {"bin.yaml": b"\xff\xfe\x00"}),
    Mistake("a manifest that refers to itself", ("check", "{d}/loop.yaml"), 2,
            ("{d}/loop.yaml: not valid YAML", "refers to the node that contains it"),
            {"loop.yaml": "apiVersion: v1\nkind: Service\nspec: &s {x: *s}\n"}),
    Mistake("a manifest that does not exist", ("check", "{d}/none.yaml"), 2,
            ("{d}/none.yaml: no such file or folder",)),
    Mistake("a mode that is not one", ("check", "--mode", "Enforce", "{d}/web.yaml"), 2,
            ("argument --mode", "invalid choice: 'Enforce'")),
    Mistake("no manifests named", ("check",), 2, ("required: PATH",)),
]  # fmt: skip

BOOTSTRAP = [
    Mistake("a kubeconfig that is not YAML", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc: not valid YAML at line 1, column 1",), {"kc": ": : [\n"}),
    Mistake("a kubeconfig that does not exist", ("bootstrap", "--kubeconfig", "{d}/none"), 2,
            ("--kubeconfig {d}/none does not exist",)),
    Mistake("$KUBECONFIG naming no file", ("bootstrap",), 2,
            ("$KUBECONFIG names {d}/none", "no such file"), env={"KUBECONFIG": "{d}/none"}),
    Mistake("no kubeconfig anywhere", ("bootstrap",), 2,
            ("no kubeconfig: {d}/.kube/config does not exist", "--kubeconfig")),
    Mistake("a pod without its service account token", ("bootstrap",), 2,
            ("in a pod, but its service account cannot be used",),
            env={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}),
    Mistake("a kubeconfig that is a list", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc: not a mapping",), {"kc": "[]\n"}),
    Mistake("an empty kubeconfig", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc: empty",), {"kc": ""}),
    Mistake("a kubeconfig that is not text", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc: not UTF-8",), {"kc": b"\xff\xfe"}),
    Mistake("a kubeconfig without contexts", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc has no contexts",), {"kc": "apiVersion: v1\nkind: Config\n"}),
    Mistake("a context that is not there",
            ("bootstrap", "--kubeconfig", "{d}/kc", "--context", "x"), 2,
            ("--context x: no such context in kubeconfig {d}/kc (it has: c)",),
            {"kc": KUBECONFIG}),
    Mistake("a current-context that is not there", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("current-context gone is not one of its contexts",),
            {"kc": kubeconfig("current-context: c", "current-context: gone")}),
    Mistake("a kubeconfig whose CA file is missing", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc cannot be used", "/nowhere/ca.crt"),
            {"kc": kubeconfig('6443"}', '6443", certificate-authority: /nowhere/ca.crt}')}),
    Mistake("a kubeconfig with data that is not base64", ("bootstrap", "--kubeconfig", "{d}/kc"),
            2, ("kubeconfig {d}/kc cannot be used", "base64"),
            {"kc": kubeconfig('6443"}', '6443", certificate-authority-data: "!!!x"}')}),
    Mistake("a kubeconfig whose server is not a URL", ("bootstrap", "--kubeconfig", "{d}/kc"), 2,
            ("the kubeconfig's server is not a URL",),
            {"kc": kubeconfig("https://127.0.0.1:6443", "not a url")}),
    Mistake("a webhook URL that is not https", ("bootstrap", "--url", "http://10.0.0.5:8443"), 2,
            ("argument --url", "must be an https:// URL")),
    Mistake("a webhook URL that does not parse", ("bootstrap", "--url", "https://[::1:8443"), 2,
            ("argument --url", "is not a URL")),
    Mistake("a host name with a space", ("bootstrap", "--host", "web hook"), 2,
            ("argument --host", "'web hook' is not a valid DNS name")),
    Mistake("an IP given as a host", ("bootstrap", "--host", "10.0.0.5"), 2,
            ("argument --host", "give it with --ip")),
    Mistake("an IP that is not one", ("bootstrap", "--ip", "10.0.0.256"), 2,
            ("argument --ip", "'10.0.0.256' is not an IP address")),
    Mistake("a timeout out of range", ("bootstrap", "--timeout-seconds", "99"), 2,
            ("argument --timeout-seconds", "99 is not from 1 to 30")),
    Mistake("a namespace that is not a name", ("bootstrap", "--namespace", "Web_Hooks"), 2,
            ("argument --namespace", "'Web_Hooks' is not a valid name")),
    Mistake("a renewal margin below zero", ("bootstrap", "--renew-before-days", "-3"), 2,
            ("argument --renew-before-days", "must be 0 or more")),
    Mistake("a mode in the wrong case", ("bootstrap", "--default-mode", "Enforce"), 2,
            ("argument --default-mode", "invalid choice")),
    Mistake("--cert-dir without --url", ("bootstrap", "--cert-dir", "{d}"), 2,
            ("--cert-dir is for url mode; give --url too",)),
    Mistake("--keep-certificates without --uninstall", ("bootstrap", "--keep-certificates"), 2,
            ("--keep-certificates is for --uninstall",)),
]  # fmt: skip

SCAN = [
    Mistake("--watch without --write-reports", ("scan", "--watch"), 2,
            ("--watch keeps reports current: add --write-reports",)),
    Mistake("a resync of no time", ("scan", "--watch", "--write-reports", "--resync-seconds", "0"),
            2, ("--resync-seconds", "must be more than 0 seconds")),
    Mistake("a mode that is not one", ("scan", "--what-if", "off"), 2, ("--what-if", "'off'")),
    Mistake("a question written as reports", ("scan", "--what-if", "enforce", "--write-reports"),
            2, ("--what-if asks what would happen; reports say what is",)),
    Mistake("a metrics port out of range", ("scan", "--metrics-port", "70000"), 2,
            ("--metrics-port", "70000 is not a port")),
    Mistake("a broken policy file", ("scan", "--policy-file", "{d}/p.yaml"), 2,
            ("policy file {d}/p.yaml",), {"p.yaml": "exemptions: [{namespace: shop}]\n"}),
    Mistake("a kubeconfig that is not YAML", ("scan", "--kubeconfig", "{d}/kc"), 2,
            ("kubeconfig {d}/kc: not valid YAML",), {"kc": ": : [\n"}),
]  # fmt: skip

SERVE = [
    Mistake("a certificate file that does not exist",
            ("serve", "--cert-file", "{d}/none.crt", "--key-file", "{d}/tls.key"), 2,
            ("--cert-file {d}/none.crt: No such file or directory",)),
    Mistake("certificate and key swapped",
            ("serve", "--cert-file", "{d}/tls.key", "--key-file", "{d}/tls.crt"), 2,
            ("--cert-file {d}/tls.key: it holds a private key, not a certificate",)),
    Mistake("a key from another pair",
            ("serve", "--cert-file", "{d}/tls.crt", "--key-file", "{d}/other.key"), 2,
            ("--key-file {d}/other.key and --cert-file {d}/tls.crt: the key does not match",)),
    Mistake("a certificate that is not PEM",
            ("serve", "--cert-file", "{d}/web.yaml", "--key-file", "{d}/tls.key"), 2,
            ("--cert-file {d}/web.yaml: it is not PEM",)),
    Mistake("an empty key", ("serve", "--cert-file", "{d}/tls.crt", "--key-file", "{d}/empty.key"),
            2, ("--key-file {d}/empty.key: it is empty",), {"empty.key": ""}),
    Mistake("an encrypted key",
            ("serve", "--cert-file", "{d}/tls.crt", "--key-file", "{d}/encrypted.key"), 2,
            ("--key-file {d}/encrypted.key: the key is encrypted",)),
    Mistake("a client CA that is not PEM",
            ("serve", "--cert-file", "{d}/tls.crt", "--key-file", "{d}/tls.key",
             "--client-ca", "{d}/web.yaml"), 2, ("--client-ca {d}/web.yaml: it is not PEM",)),
    Mistake("a broken policy",
            ("serve", "--cert-file", "{d}/tls.crt", "--key-file", "{d}/tls.key",
             "--policy-file", "{d}/p.yaml"), 2, ("policy file {d}/p.yaml: unknown key allowed",),
            {"p.yaml": "allowed: []\n"}),
    Mistake("a port out of range",
            ("serve", "--cert-file", "c", "--key-file", "k", "--port", "70000"), 2,
            ("argument --port", "70000 is not a port (1-65535)")),
    Mistake("an interval of 0 (it would busy-loop)",
            ("serve", "--cert-file", "c", "--key-file", "k", "--reload-interval", "0"), 2,
            ("argument --reload-interval", "must be more than 0 seconds")),
    Mistake("a listen address that is not one",
            ("serve", "--cert-file", "c", "--key-file", "k", "--host", "not..valid"), 2,
            ("argument --host", "is not an IP address or a host name")),
    Mistake("the same port twice",
            ("serve", "--cert-file", "c", "--key-file", "k", "--port", "9443",
             "--metrics-port", "9443"), 2, ("--port and --metrics-port are both 9443",)),
    Mistake("an own namespace that is not a name",
            ("serve", "--cert-file", "c", "--key-file", "k", "--own-namespace", "Guard"), 2,
            ("argument --own-namespace", "'Guard' is not a valid name")),
    Mistake("no certificate", ("serve",), 2, ("required: --cert-file, --key-file",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A serving pair, a key of another pair, and an encrypted key."""
    ca = new_certificate_authority(now=now())
    serving = new_serving_certificate(ca, now=now(), dns_names=["localhost"])
    other = new_serving_certificate(ca, now=now(), dns_names=["localhost"])
    folder = tmp_path_factory.mktemp("pki")
    (folder / "plain.key").write_bytes(serving.key_pem)
    subprocess.run(
        ["openssl", "pkey", "-in", str(folder / "plain.key"), "-aes256", "-passout", "pass:x",
         "-out", str(folder / "encrypted.key")],
        check=True,
    )  # fmt: skip
    return {
        "tls.crt": serving.cert_pem,
        "tls.key": serving.key_pem,
        "other.key": other.key_pem,
        "encrypted.key": (folder / "encrypted.key").read_bytes(),
    }


def run_mistake(
    mistake: Mistake,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    for name, content in {"web.yaml": SERVICE, **mistake.files}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for name in (
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "POD_NAMESPACE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(folder))
    for name, value in mistake.env.items():
        monkeypatch.setenv(name, value.replace("{d}", str(folder)))
    monkeypatch.setattr("sys.stdin", io.StringIO(mistake.stdin))
    argv = [arg.replace("{d}", str(folder)) for arg in mistake.argv]
    try:
        code: int | str | None = main(argv)
    except SystemExit as exit_:  # argparse: usage mistakes
        code = exit_.code
    assert isinstance(code, int)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("mistake", [*CHECK, *BOOTSTRAP, *SCAN, *SERVE], ids=str)
def test_a_mistake_is_one_line_naming_it(
    mistake: Mistake,
    tmp_path: Path,
    pki: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, content in pki.items():
        (tmp_path / name).write_bytes(content)
    code, out, err = run_mistake(mistake, tmp_path, monkeypatch, capsys)
    assert code == mistake.code, err
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert err.startswith("clusterip-guard")
    for text in mistake.says:
        assert text.replace("{d}", str(tmp_path)) in err
    assert out == ""


def test_a_port_already_taken_is_named(
    tmp_path: Path,
    pki: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, content in pki.items():
        (tmp_path / name).write_bytes(content)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ("serve", "--cert-file", "{d}/tls.crt", "--key-file", "{d}/tls.key",
                "--host", "127.0.0.1", "--port", str(port))  # fmt: skip
        code, _, err = run_mistake(
            Mistake("port taken", argv, 2, ()), tmp_path, monkeypatch, capsys
        )
    assert code == 2
    assert err == f"clusterip-guard: cannot listen on --port {port}: Address already in use\n"
