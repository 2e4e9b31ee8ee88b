"""The supported Kubernetes versions are the ones `make test-versions` proved: the matrix, its
wrapper modules, the table in docs/versions.md, the chart's kubeVersion and the README say the
same thing (the CI-sized half of issue 32; the matrix itself builds five releases)."""

from __future__ import annotations

import json
import re

import yaml

from tests.support.paths import ROOT

VERSIONS = ROOT / "hack" / "controlplane" / "versions"
MATRIX = json.loads((VERSIONS / "matrix.json").read_text())
RELEASES = [entry["kubernetes"] for entry in MATRIX["versions"]]
DOC = (ROOT / "docs" / "versions.md").read_text()


def minor(version: str) -> tuple[int, int, int]:
    major, minor_, patch = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", version).groups()  # type: ignore[union-attr]
    return int(major), int(minor_), int(patch)


def pinned() -> str:
    go_mod = (ROOT / "hack" / "controlplane" / "go.mod").read_text()
    return re.search(r"^\s*k8s\.io/kubernetes (v\S+)", go_mod, re.M).group(1)  # type: ignore[union-attr]


def table_rows() -> list[list[str]]:
    block = DOC.split("<!-- matrix:begin -->")[1].split("<!-- matrix:end -->")[0]
    rows = [line.strip("|").split(" | ") for line in block.strip().splitlines()]
    return [[cell.strip() for cell in row] for row in rows]


def test_the_matrix_runs_oldest_first_and_ends_with_the_pinned_release() -> None:
    assert sorted(RELEASES, key=minor) == RELEASES
    assert RELEASES[-1] == pinned()


def test_every_older_release_has_its_wrapper_module() -> None:
    for release in RELEASES[:-1]:
        go_mod = (VERSIONS / release / "go.mod").read_text()
        assert re.search(
            rf"^\s*(require )?k8s\.io/kubernetes {re.escape(release)}\b", go_mod, re.M
        ), release
        assert (VERSIONS / release / "go.sum").stat().st_size > 0, release


def test_every_suite_of_the_matrix_exists() -> None:
    for path in MATRIX["suites"].values():
        assert (ROOT / path).is_file(), path


def test_the_docs_table_is_the_matrix_and_every_release_in_it_passed() -> None:
    header, _rule, *rows = table_rows()
    assert header == ["Kubernetes", "why in the matrix", *MATRIX["suites"], "last run"]
    assert [row[0] for row in rows] == RELEASES
    for row in rows:
        assert len(row) == len(header), row
        cells = row[2:-1]
        assert not [cell for cell in cells if "failed" in cell or cell == "not run"], row
        assert re.fullmatch(r"\d{4}-\d\d-\d\d, [0-9a-f]{7,}(\+changes)?", row[-1]), row


def test_the_charts_floor_is_the_oldest_proven_release() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "clusterip-guard" / "Chart.yaml").read_text())
    major, minor_, _ = minor(RELEASES[0])
    assert chart["kubeVersion"] == f">={major}.{minor_}.0-0"
    tested = chart["annotations"]["clusterip-guard.io/tested-kubernetes"]
    assert tested.split(", ") == RELEASES


def test_the_readme_says_the_oldest_release_each_release_tested_and_links_the_table() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    major, minor_, _ = minor(RELEASES[0])
    assert f"Kubernetes {major}.{minor_} and later" in readme
    assert "Tested on Kubernetes " + ", ".join(RELEASES[:-1]) + f" and {RELEASES[-1]}" in readme
    stamps = {row[-1] for row in table_rows()[2:]}
    assert all(f"(last run {stamp})" in readme for stamp in stamps), stamps
    assert "docs/versions.md" in readme
