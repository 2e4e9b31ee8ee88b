"""Which cluster: kubectl's precedence, and a broken kubeconfig named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterip_guard.cluster.errors import KubeconfigError
from clusterip_guard.cluster.kubeconfig import (
    KubeconfigSource,
    check_kubeconfig,
    kubeconfig_source,
)

IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("{}")
    (tmp_path / "explicit").write_text("{}")
    (tmp_path / "listed").write_text("{}")
    return tmp_path


def test_the_flag_comes_first(home: Path) -> None:
    environ = {"HOME": str(home), "KUBECONFIG": str(home / "listed"), **IN_POD}
    source = kubeconfig_source(str(home / "explicit"), environ)
    assert source == KubeconfigSource((home / "explicit",), "--kubeconfig")


def test_then_the_files_kubeconfig_lists_skipping_missing_ones(home: Path) -> None:
    listed = f"{home / 'missing'}:{home / 'listed'}:{home / 'explicit'}"
    source = kubeconfig_source(None, {"HOME": str(home), "KUBECONFIG": listed, **IN_POD})
    assert source.files == (home / "listed", home / "explicit")


def test_then_the_home_kubeconfig(home: Path) -> None:
    source = kubeconfig_source(None, {"HOME": str(home), **IN_POD})
    assert source.files == (home / ".kube" / "config",)


def test_then_the_pods_service_account(tmp_path: Path) -> None:
    assert kubeconfig_source(None, {"HOME": str(tmp_path), **IN_POD}).in_cluster


def test_a_ci_job_in_a_pod_bootstraps_another_cluster(home: Path) -> None:
    source = kubeconfig_source(None, {"HOME": "/", "KUBECONFIG": str(home / "listed"), **IN_POD})
    assert not source.in_cluster


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=f"--kubeconfig {tmp_path}/nope does not exist"):
        kubeconfig_source(str(tmp_path / "nope"), {})


def test_the_first_file_to_set_the_current_context_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("current-context: a\ncontexts: [{name: a, context: {}}]\n")
    second.write_text("current-context: gone\ncontexts: [{name: b, context: {}}]\n")
    check_kubeconfig(KubeconfigSource((first, second), "$KUBECONFIG"), None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("contexts: {a: b}", "contexts must be a list"),
        ("contexts: [a]", "contexts[0] must be a mapping with a name"),
        ("current-context: [a]\ncontexts: [{name: a}]", "current-context must be a string"),
        ("contexts: [{name: a}]", "sets no current-context; give --context (one of: a)"),
    ],
)
def test_a_malformed_kubeconfig_is_named(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeconfigError) as caught:
        check_kubeconfig(KubeconfigSource((path,), "--kubeconfig"), None)
    assert says in str(caught.value)
    assert str(path) in str(caught.value)
