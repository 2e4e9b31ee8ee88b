"""The command line's shared contract: defaults from the settings, flags checked at parse
time, and one place that maps every error to an exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterip_guard.certs.issuing import CertificateError
from clusterip_guard.cli.bootstrap import command_from
from clusterip_guard.cli.main import build_parser, exit_code_for, main
from clusterip_guard.cli.options import UsageError
from clusterip_guard.cluster.errors import (
    CertificateFilesError,
    ClusterRefused,
    ClusterUnreachable,
    KubeconfigError,
    NamespaceMissing,
    NoReadyEndpoint,
)
from clusterip_guard.cluster.settings import BootstrapSettings
from clusterip_guard.core.registration import RegistrationError
from clusterip_guard.manifests import InputError
from clusterip_guard.policyfile import PolicyError
from clusterip_guard.server.settings import ServeSettings


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_serve_shows_the_defaults_its_settings_own(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of("serve", capsys)
    defaults = ServeSettings(cert_file=Path(), key_file=Path())
    assert f"(default: {defaults.port})" in text
    assert f"(default: {defaults.metrics_port})" in text
    assert f"(default: {defaults.reload_interval})" in text


def test_bootstrap_shows_the_defaults_its_settings_own(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of("bootstrap", capsys)
    defaults = BootstrapSettings()
    # A remembered flag's default applies when the last bootstrap recorded none.
    assert f"(default: {defaults.renew_before.days}; kept)" in text
    assert f"(default: {defaults.timeout_seconds}; kept)" in text
    assert f"(default: {defaults.namespace}; kept)" in text
    assert f"(default: {defaults.trust_propagation_seconds})" in text


def test_parsed_flags_default_to_the_settings() -> None:
    command = command_from(build_parser().parse_args(["bootstrap"]))
    assert command.settings == BootstrapSettings()
    assert command.given == frozenset()


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["serve", "--cert-file", "c", "--key-file", "k", "--port", "70000"],
                     id="a port out of range"),
        pytest.param(["serve", "--cert-file", "c", "--key-file", "k", "--port", "http"],
                     id="a port that is not a number"),
        pytest.param(["serve", "--cert-file", "c", "--key-file", "k", "--reload-interval", "0"],
                     id="a reload interval of 0 would busy-loop"),
        pytest.param(["serve", "--cert-file", "c", "--key-file", "k", "--metrics-port", "-1"],
                     id="a negative metrics port"),
        pytest.param(["bootstrap", "--renew-before-days", "-3"], id="a negative renewal margin"),
        pytest.param(["bootstrap", "--trust-propagation-seconds", "soon"],
                     id="seconds that are not a number"),
        pytest.param(["bootstrap", "--default-mode", "Enforce"], id="a mode in the wrong case"),
        pytest.param(["serve", "--cert-file", "c", "--key-file", "k", "--reload-interval", "nan"],
                     id="an interval that is not a number"),
    ],
)  # fmt: skip
def test_bad_flags_are_refused_at_parse_time(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (PolicyError("x"), 2),
        (InputError("x"), 2),
        (CertificateError("x"), 2),
        (RegistrationError("x"), 2),
        (KubeconfigError("x"), 2),
        (NamespaceMissing("x"), 2),
        (CertificateFilesError("x"), 2),
        (NoReadyEndpoint("x"), 2),
        (ClusterUnreachable("x"), 3),
        (ClusterRefused("x"), 3),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_every_error_a_user_can_fix_has_its_exit_code(error: Exception, code: int) -> None:
    assert exit_code_for(error) == code


def test_a_bug_is_not_mistaken_for_a_user_error() -> None:
    assert exit_code_for(KeyError("bug")) is None
