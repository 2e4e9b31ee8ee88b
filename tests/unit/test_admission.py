"""The table of admission entries, and what is derived from it (core/admission.py)."""

from __future__ import annotations

import pytest

from clusterip_guard.core.admission import (
    ADMISSION_ENTRIES,
    LEGACY_PATHS,
    ROUTES,
    Route,
    default_mode_of,
    judging_entry,
    registered_entries,
    selector_matches,
)
from clusterip_guard.core.names import MODE_LABEL, NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.types import MODES, Mode


def test_every_entry_has_a_name_of_its_own() -> None:
    names = [entry.name for entry in ADMISSION_ENTRIES]
    assert len(names) == len(set(names))


def test_the_servers_routes_are_the_entries_paths_and_what_they_judge() -> None:
    assert set(ROUTES) == {entry.path for entry in ADMISSION_ENTRIES} | set(LEGACY_PATHS)
    for entry in ADMISSION_ENTRIES:
        assert ROUTES[entry.path] == Route(entry.judges_as, entry.mode, entry.label_not_a_mode)
    assert ROUTES["/validate/mutate-backstop"] == Route("enforce", "mutate")
    assert ROUTES["/validate/mutate"] == ROUTES["/validate/mutate-backstop"]
    assert ROUTES["/validate/unknown-mode"] == Route("enforce", "enforce", label_not_a_mode=True)


@pytest.mark.parametrize("default_mode", MODES)
def test_the_default_mode_reads_back_from_the_entries_registered_for_it(
    default_mode: Mode,
) -> None:
    validating = {
        e.name for e in registered_entries(default_mode) if e.configuration == "validating"
    }
    assert default_mode_of(validating) == default_mode


def test_audit_entries_report_and_every_other_entry_guards() -> None:
    for entry in ADMISSION_ENTRIES:
        assert entry.failure_role == ("reporter" if entry.mode == "audit" else "guard")


@pytest.mark.parametrize(
    ("label", "default_mode", "judged_by"),
    [
        ("enforce", "off", "enforce.clusterip-guard.io"),
        ("mutate", "audit", "mutate-backstop.clusterip-guard.io"),
        ("audit", "enforce", "audit.clusterip-guard.io"),
        ("off", "enforce", None),
        ("Enforce", "off", "unknown-mode.clusterip-guard.io"),
        ("", "off", "unknown-mode.clusterip-guard.io"),
        (None, "off", None),
        (None, "enforce", "enforce-default.clusterip-guard.io"),
        (None, "mutate", "mutate-backstop-default.clusterip-guard.io"),
        (None, "audit", "audit-default.clusterip-guard.io"),
    ],
)
def test_the_entry_that_judges_a_namespace(
    label: str | None, default_mode: Mode, judged_by: str | None
) -> None:
    labels = {} if label is None else {MODE_LABEL: label}
    entry = judging_entry(
        "shop", labels, default_mode=default_mode, never_judged=NEVER_JUDGED_NAMESPACES
    )
    assert (entry.name if entry else None) == judged_by


def test_no_entry_judges_a_never_judged_namespace() -> None:
    for mode in ("enforce", "Enforce"):
        entry = judging_entry(
            "kube-system", {MODE_LABEL: mode}, default_mode="enforce",
            never_judged=NEVER_JUDGED_NAMESPACES,
        )  # fmt: skip
        assert entry is None


def test_selectors_are_evaluated_as_the_api_server_does() -> None:
    exists = [{"key": "a", "operator": "Exists"}]
    not_in = [{"key": "a", "operator": "NotIn", "values": ["x"]}]
    assert selector_matches(exists, {"a": ""})
    assert not selector_matches(exists, {})
    assert selector_matches(not_in, {})  # NotIn holds where the label is absent
    assert not selector_matches(not_in, {"a": "x"})
    assert selector_matches([], {})
