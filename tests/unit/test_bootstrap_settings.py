"""What a re-run of the bootstrap keeps: the flags given, else what the last one recorded."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from clusterip_guard.cli.bootstrap import check_target, command_from
from clusterip_guard.cli.main import build_parser
from clusterip_guard.cli.options import UsageError
from clusterip_guard.cluster.settings import (
    REMEMBERED,
    BootstrapSettings,
    RecordError,
    record_of,
    resolve,
)


def command(*argv: str) -> tuple[BootstrapSettings, frozenset[str]]:
    parsed = command_from(build_parser().parse_args(["bootstrap", *argv]))
    return parsed.settings, parsed.given


FIRST = command(
    "--namespace", "guard", "--default-mode", "enforce", "--failure-policy", "Ignore",
    "--exclude-namespace", "legacy", "--renew-before-days", "60", "--host", "guard.example",
)  # fmt: skip
RECORD = json.loads(json.dumps(record_of(FIRST[0])))  # as the annotation holds it


def test_every_remembered_setting_is_recorded() -> None:
    assert set(RECORD) == set(REMEMBERED)
    assert RECORD["default_mode"] == "enforce"
    assert RECORD["renew_before"] == 60


def test_a_rerun_without_flags_keeps_everything() -> None:
    settings, changes = resolve(*command(), RECORD)
    assert changes == []
    assert record_of(settings) == RECORD
    assert settings.default_mode == "enforce"
    assert settings.failure_policy == "Ignore"
    assert settings.excluded_namespaces == ("legacy",)
    assert settings.renew_before == datetime.timedelta(days=60)


def test_a_rerun_that_changes_a_setting_says_so() -> None:
    settings, changes = resolve(*command("--default-mode", "audit"), RECORD)
    assert settings.default_mode == "audit"
    assert settings.failure_policy == "Ignore"  # the rest kept
    assert changes == ["--default-mode: enforce -> audit"]


def test_giving_the_recorded_value_again_changes_nothing() -> None:
    assert resolve(*command("--failure-policy", "Ignore"), RECORD)[1] == []


def test_without_a_record_the_flags_and_defaults_apply() -> None:
    settings, given = command("--default-mode", "audit")
    assert resolve(settings, given, None) == (settings, [])


def test_service_flags_without_url_leave_a_recorded_url_behind(tmp_path: Path) -> None:
    url_mode = command("--url", "https://10.0.0.5:8443", "--cert-dir", str(tmp_path),
                       "--ip", "10.0.0.5")  # fmt: skip
    record = record_of(url_mode[0])
    kept, _ = resolve(*command(), record)
    assert kept.url == "https://10.0.0.5:8443"
    assert kept.cert_dir == tmp_path.absolute()
    moved, changes = resolve(*command("--namespace", "guard"), record)
    assert moved.url is None
    assert "--url: https://10.0.0.5:8443 -> none" in changes


def test_a_record_edited_by_hand_is_an_error_naming_the_flag() -> None:
    with pytest.raises(RecordError, match="--timeout-seconds"):
        resolve(*command(), {**RECORD, "timeout_seconds": "soon"})


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (BootstrapSettings(url="https://10.0.0.5", cert_dir=Path("c")),
         "needs --host NAME or --ip"),
        (BootstrapSettings(url="https://10.0.0.5", cert_dir=Path("c"), ips=("10.0.0.6",)),
         "10.0.0.5 is not among --host/--ip"),
        (BootstrapSettings(url="https://a.example", cert_dir=Path("c"), hosts=("*.b.example",)),
         "add --host a.example"),
        (BootstrapSettings(url="https://10.0.0.5", ips=("10.0.0.5",)), "needs --cert-dir"),
    ],
)  # fmt: skip
def test_url_mode_needs_names_that_cover_the_url(settings: BootstrapSettings, says: str) -> None:
    with pytest.raises(UsageError, match=says.replace("*", r"\*")):
        check_target(settings)


@pytest.mark.parametrize(
    "settings",
    [
        BootstrapSettings(url="https://[::1]:8443", cert_dir=Path("c"), ips=("0:0::1",)),
        BootstrapSettings(url="https://a.b.example", cert_dir=Path("c"), hosts=("*.B.example",)),
        BootstrapSettings(namespace="guard"),
    ],
)
def test_names_that_cover_the_url_pass(settings: BootstrapSettings) -> None:
    check_target(settings)  # no error
