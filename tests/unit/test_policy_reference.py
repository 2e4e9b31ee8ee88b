"""The policy file's reference page is generated from the keys the policy file reads, and
says their real defaults (app/clusterip_guard/policy_reference.py, docs/reference/policy.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clusterip_guard import policy_reference
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.policy_reference import EXEMPTION_FIELDS, KEYS, PAGE, render
from clusterip_guard.policyfile import _EXEMPTION_KEYS, POLICY_KEYS, parse_policy


def test_every_key_the_policy_file_reads_has_an_entry_and_no_other() -> None:
    assert [key.name for key in KEYS] == list(POLICY_KEYS)
    assert {field.name for field in EXEMPTION_FIELDS} == set(_EXEMPTION_KEYS)
    assert policy_reference.exemption_field_names() == set(_EXEMPTION_KEYS)
    assert policy_reference.missing_keys() == []


def test_the_committed_page_is_what_the_generator_writes() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), "run `make docs` and commit the page"


def test_check_mode_finds_a_stale_page(tmp_path: Path) -> None:
    page = tmp_path / "policy.md"
    assert policy_reference.main(["--check", str(page)]) == 1
    assert policy_reference.main([str(page)]) == 0
    assert policy_reference.main(["--check", str(page)]) == 0


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_each_documented_default_is_the_real_default(key: policy_reference.Key) -> None:
    assert parse_policy(f"{key.name}: {key.default}\n") == PolicySettings()


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_each_key_has_an_example_that_loads_and_uses_it(key: policy_reference.Key) -> None:
    assert re.search(rf"^{key.name}:", key.example, re.MULTILINE), key.example
    assert parse_policy(key.example) != PolicySettings()


def test_the_page_names_every_key_in_its_table_and_a_section() -> None:
    page = render()
    for key in KEYS:
        assert f"[`{key.name}`](#{key.name.lower()})" in page
        assert f"### `{key.name}` {{#{key.name.lower()}}}" in page
    for field in EXEMPTION_FIELDS:
        assert f"| `{field.name}` |" in page
