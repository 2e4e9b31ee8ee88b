"""`clusterip-guard check`: sources, outputs, exit codes and --fix."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from clusterip_guard.cli.main import main
from clusterip_guard.core.names import CONVERTED_FROM_ANNOTATION

NODE_PORT_YAML = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
  selector: {app: web}
  ports:
    - port: 80
      targetPort: 8080
      nodePort: 30080
"""
CLUSTER_IP_YAML = """\
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {app: api}
  ports: [{port: 80}]
"""
DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 3}
"""


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "web.yaml").write_text(NODE_PORT_YAML + "---\n" + DEPLOYMENT_YAML)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "api.yml").write_text(CLUSTER_IP_YAML)
    (tmp_path / "notes.txt").write_text("not a manifest: [")
    return tmp_path


def test_a_compliant_manifest_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(CLUSTER_IP_YAML)
    code, out, _ = run(["check", str(path)], capsys)
    assert code == 0
    assert "allowed" in out


def test_an_exposed_service_exits_one_and_names_the_field(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", str(manifests)], capsys)
    assert code == 1
    assert "denied" in out
    assert "spec.type" in out
    # The Deployment is judged too (it opens no host port): three objects.
    assert "3 objects checked: 2 allowed, 1 denied" in out


def test_audit_mode_warns_and_exits_zero(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", "--mode", "audit", str(manifests)], capsys)
    assert code == 0
    assert "warned" in out


def test_json_output_has_one_object_per_service(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", "--mode", "mutate", "-o", "json", str(manifests)], capsys)
    assert code == 1
    results = {r["name"]: r for r in json.loads(out) if r["kind"] == "Service"}
    assert set(results) == {"web", "api"}
    web = results["web"]
    assert {k: web[k] for k in ("kind", "namespace", "verdict")} == {
        "kind": "Service",
        "namespace": "shop",
        "verdict": "mutated",
    }
    assert web["source"].endswith("web.yaml#1")
    assert web["violations"][0]["field"] == "spec.type"
    assert {"op": "replace", "path": "/spec/type", "value": "ClusterIP"} in web["patch"]
    assert results["api"]["verdict"] == "allowed"
    assert "patch" not in results["api"]


def test_services_inside_a_list_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [yaml.safe_load(NODE_PORT_YAML), yaml.safe_load(CLUSTER_IP_YAML)]
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    code, out, _ = run(["check", "-o", "json", str(path)], capsys)
    assert code == 1
    assert [r["verdict"] for r in json.loads(out)] == ["denied", "allowed"]


def test_stdin_is_read_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(NODE_PORT_YAML))
    code, out, _ = run(["check", "-o", "json", "-"], capsys)
    assert code == 1
    assert json.loads(out)[0]["source"] == "<stdin>#1"


def test_the_policy_file_is_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("exemptions: [{namespace: shop, name: web, reason: legacy}]\n")
    manifest = tmp_path / "web.yaml"
    manifest.write_text(NODE_PORT_YAML)
    code, out, _ = run(["check", "--policy-file", str(policy), str(manifest)], capsys)
    assert code == 0
    assert "warned" in out


def test_fix_writes_converted_manifests_in_place(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["check", "--fix", str(manifests)], capsys)
    assert code == 0
    assert "fixed" in err
    service, deployment = yaml.safe_load_all((manifests / "web.yaml").read_text())
    assert service["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in service["spec"]["ports"][0]
    assert service["metadata"]["annotations"][CONVERTED_FROM_ANNOTATION] == "NodePort"
    assert deployment == yaml.safe_load(DEPLOYMENT_YAML)
    assert run(["check", str(manifests)], capsys)[0] == 0


def test_fix_from_stdin_writes_manifests_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(NODE_PORT_YAML))
    code, out, err = run(["check", "--fix", "-"], capsys)
    assert code == 0
    assert yaml.safe_load(out)["spec"]["type"] == "ClusterIP"
    assert "denied" in err


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"bad.yaml": "kind: [unclosed"}, ["bad.yaml"], "bad.yaml: not valid YAML at line 1"),
        ({}, ["missing.yaml"], "no such file"),
        (
            {"policy.yaml": "allowedCIDRs: []", "ok.yaml": CLUSTER_IP_YAML},
            ["--policy-file", "policy.yaml", "ok.yaml"],
            "unknown key allowedCIDRs",
        ),
        ({"bin.yaml": b"\xff\xfe\x00".decode("latin-1")}, ["bin.yaml"], "bin.yaml"),
    ],
    ids=["bad YAML", "missing file", "bad policy", "not text"],
)
def test_bad_input_exits_two_with_one_line_and_no_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="latin-1")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["check", *args], capsys)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err + out


def test_unknown_option_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check", "--mode", "sometimes", "x.yaml"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_fix_from_stdin_passes_compliant_manifests_through(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(CLUSTER_IP_YAML + "---\n" + DEPLOYMENT_YAML))
    code, out, _ = run(["check", "--fix", "-o", "json", "-"], capsys)
    assert code == 0
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["Service", "Deployment"]


HOST_PORT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: nginx
          image: nginx
          ports: [{containerPort: 80, hostPort: 8088}]
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: shop}
spec:
  hostNetwork: true
  containers: [{name: agent, image: agent}]
"""


def test_workloads_are_judged_for_host_ports_and_the_host_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "web.yaml").write_text(HOST_PORT_YAML)
    code, out, _ = run(["check", str(tmp_path)], capsys)
    assert code == 1
    assert "deployment/web  denied   spec.template.spec.containers[0].ports[0].hostPort" in out
    assert "pod/agent       denied   spec.hostNetwork: hostNetwork: true" in out
    assert "2 objects checked: 2 denied" in out
    code, _, _ = run(["check", "--mode", "mutate", "--fix", str(tmp_path / "web.yaml")], capsys)
    assert code == 0
    deployment, agent = yaml.safe_load_all((tmp_path / "web.yaml").read_text())
    # The host port is gone, the container port stays; the host network cannot be converted.
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80}
    ]
    assert agent["spec"]["hostNetwork"] is True
