"""The chart's admission templates are what the generator makes of the table of entries: no
helm needed to see that they drifted (tests/e2e/test_chart_e2e.py renders them with helm)."""

from __future__ import annotations

from pathlib import Path

from clusterip_guard.core.admission import ADMISSION_ENTRIES
from clusterip_guard.rendering import (
    CHART,
    DESIGN,
    chart_templates,
    main,
    stale_templates,
    with_entries_table,
)


def test_the_committed_templates_are_the_generated_ones() -> None:
    assert stale_templates() == [], "run `make chart` and commit the templates"


def test_the_designs_table_of_entries_is_the_generated_one() -> None:
    design = DESIGN.read_text()
    assert with_entries_table(design) == design, "run `make chart` and commit docs/design.md"
    for entry in ADMISSION_ENTRIES:
        assert f"| `{entry.name}` |" in design


def test_every_entry_is_in_the_chart_under_its_own_name_and_path() -> None:
    templates = chart_templates()
    for entry in ADMISSION_ENTRIES:
        text = templates[f"templates/{entry.configuration}webhookconfiguration.yaml"]
        assert f"- name: {entry.name}\n" in text
        assert f"path: {entry.path}\n" in text
        if entry.serves_default is not None:
            guard = f'{{{{- if eq .Values.defaultMode "{entry.serves_default}" }}}}'
            assert text.index(guard) < text.index(f"- name: {entry.name}\n")


def test_a_changed_template_is_reported_and_rewritten(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    assert main([str(chart)]) == 0
    assert stale_templates(chart) == []
    drifted = chart / "templates" / "mutatingwebhookconfiguration.yaml"
    drifted.write_text(drifted.read_text().replace("/mutate", "/mutated"))
    assert stale_templates(chart) == ["templates/mutatingwebhookconfiguration.yaml"]
    assert main(["--check", str(chart)]) == 1
    assert CHART.is_dir()


def test_the_values_schema_offers_exactly_the_cores_choices() -> None:
    import json

    from clusterip_guard.core.cloud_providers import CLASS_READERS, PROVIDERS
    from clusterip_guard.core.registration import (
        FAILURE_POLICIES,
        MAX_TIMEOUT_SECONDS,
        MIN_TIMEOUT_SECONDS,
    )
    from clusterip_guard.core.types import MODES

    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]
    webhook = schema["webhook"]["properties"]
    assert set(schema["defaultMode"]["enum"]) == set(MODES)
    assert set(webhook["failurePolicy"]["enum"]) == set(FAILURE_POLICIES)
    assert set(webhook["auditFailurePolicy"]["enum"]) == set(FAILURE_POLICIES)
    timeout = webhook["timeoutSeconds"]
    assert (timeout["minimum"], timeout["maximum"]) == (MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
    providers = json.dumps(schema["policy"])
    assert all(f'"{provider}"' in providers for provider in PROVIDERS)
    classes = schema["policy"]["properties"]["internalLoadBalancerClasses"]
    assert classes["additionalProperties"]["enum"] == list(CLASS_READERS)
    # Every key of the policy file, and of an exemption, and nothing else (additionalProperties
    # is false: a key the schema lacks is refused by helm before the server could read it).
    from clusterip_guard.policyfile import _EXEMPTION_KEYS, _EXEMPTION_KINDS, POLICY_KEYS

    assert set(schema["policy"]["properties"]) == set(POLICY_KEYS)
    exemption = schema["policy"]["properties"]["exemptions"]["items"]["properties"]
    assert set(exemption) == set(_EXEMPTION_KEYS)
    assert exemption["kind"]["enum"] == list(_EXEMPTION_KINDS)
