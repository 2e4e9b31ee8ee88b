"""Code cites docs/design.md by section title, and every title it cites is a section there:
a renumbered or renamed section cannot leave a docstring pointing at the wrong place."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.paths import ROOT

CITING = [
    *(ROOT / "app").rglob("*.py"),
    *(ROOT / "hack").rglob("*.py"),
    *(ROOT / "hack").rglob("*.sh"),
    *(ROOT / "hack").rglob("*.md"),
    *(ROOT / "hack").rglob("go.mod"),
    *(ROOT / "tests").rglob("*.py"),
    *(ROOT / "benchmarks").rglob("*.py"),
    ROOT / "Makefile",
    ROOT / "pyproject.toml",
]
CITATION = re.compile(r'docs/design\.md,\s+"([^"]+)"(?:\s+and\s+"([^"]+)")?')


def sections() -> set[str]:
    design = (ROOT / "docs" / "design.md").read_text()
    return {
        re.sub(r"^\d+\.\s+", "", line.lstrip("#").strip())
        for line in design.splitlines()
        if line.startswith("## ")
    }


def citations() -> list[tuple[Path, str]]:
    found = []
    for path in CITING:
        if "egg-info" in path.parts or not path.is_file():
            continue
        text = re.sub(r"\s*\n\s*(?:#|//)?\s*", " ", path.read_text())  # titles wrap lines
        for match in CITATION.finditer(text):
            found += [(path, title) for title in match.groups() if title]
    return found


def test_every_cited_title_is_a_section_of_the_design() -> None:
    known = sections()
    cited = citations()
    assert cited, "no citation found: the pattern is wrong"
    assert [(str(path.relative_to(ROOT)), t) for path, t in cited if t not in known] == []


def test_nothing_cites_a_section_by_its_number() -> None:
    numbered = [
        str(path.relative_to(ROOT))
        for path in CITING
        if path.is_file()
        and "egg-info" not in path.parts
        and "\N{SECTION SIGN}" in path.read_text()
    ]
    assert numbered == []


def test_every_test_file_the_docs_name_exists() -> None:
    documents = [
        ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "Makefile", ROOT / "CHANGELOG.md",
        ROOT / "mkdocs.yml", *(ROOT / "docs").rglob("*.md"), *(ROOT / "hack").rglob("*.md"),
        *(ROOT / "charts").rglob("*.md"), *(ROOT / "app").rglob("*.py"),
    ]  # fmt: skip
    named = {
        (str(path.relative_to(ROOT)), test)
        for path in documents
        if "egg-info" not in path.parts
        for test in re.findall(r"\btests/[\w/]+\.py\b", path.read_text())
    }
    assert named, "no test file named anywhere: the pattern is wrong"
    assert sorted((where, test) for where, test in named if not (ROOT / test).is_file()) == []


def test_the_user_guide_and_the_design_name_every_review_path() -> None:
    from clusterip_guard.core.admission import ADMISSION_ENTRIES

    for document in (ROOT / "docs" / "reference" / "cli.md", ROOT / "docs" / "design.md"):
        text = document.read_text()
        missing = {e.path for e in ADMISSION_ENTRIES if f"{e.path}`" not in text}
        assert not missing, f"{document.name} does not name {sorted(missing)}"
