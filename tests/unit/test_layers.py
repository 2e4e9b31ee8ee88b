"""The layers hold: the core imports no edge library, and the linter says so when it would."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

RUFF = Path(sys.executable).parent / "ruff"
EDGE_LIBRARIES = ("fastapi", "starlette", "uvicorn", "kubernetes", "yaml")
PURE_MODULES = [
    *sorted(
        f"clusterip_guard.core.{path.stem}"
        for path in (ROOT / "app" / "clusterip_guard" / "core").glob("*.py")
        if path.stem != "__init__"
    ),
    "clusterip_guard.certs.issuing",
    "clusterip_guard.certs.rotation",
]


def lint(source: str, as_file: str) -> list[str]:
    """The rule codes ruff reports for `source` as if it lived at `as_file`."""
    run = subprocess.run(
        [str(RUFF), "check", "--output-format=json", "--stdin-filename", as_file, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    return [finding["code"] for finding in json.loads(run.stdout)]


@pytest.mark.parametrize("library", EDGE_LIBRARIES)
def test_the_linter_refuses_an_edge_library_in_the_core(library: str) -> None:
    source = f"from __future__ import annotations\n\nimport {library}\n\nprint({library})\n"
    assert "TID251" in lint(source, "app/clusterip_guard/core/example.py")


@pytest.mark.parametrize(
    ("library", "edge"),
    [
        ("fastapi", "server"),
        ("uvicorn", "server"),
        ("kubernetes", "cluster"),
        ("yaml", "cluster"),
    ],
)
def test_the_linter_allows_each_edge_its_library(library: str, edge: str) -> None:
    source = f"from __future__ import annotations\n\nimport {library}\n\nprint({library})\n"
    assert "TID251" not in lint(source, f"app/clusterip_guard/{edge}/example.py")


def test_importing_the_core_loads_no_edge_library() -> None:
    probe = (
        "import sys\n"
        f"for name in {PURE_MODULES!r}: __import__(name)\n"
        f"print([m for m in {EDGE_LIBRARIES!r} if m in sys.modules])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert run.stdout.strip() == "[]"


# The one library the core may use beyond the standard library: orjson, a codec (bytes in,
# plain data out; no I/O, no framework), chosen for the review path's speed
# (docs/benchmarks.md). Anything else the core imports is a layer broken.
CORE_THIRD_PARTY = {"orjson"}


def test_the_core_imports_itself_the_standard_library_and_orjson_only() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "app" / "clusterip_guard" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top == "clusterip_guard" and not name.startswith("clusterip_guard.core"):
                    found.setdefault(name, set()).add(path.name)  # an import running back up
                elif top not in sys.stdlib_module_names and top != "clusterip_guard":
                    found.setdefault(top, set()).add(path.name)
    assert set(found) <= CORE_THIRD_PARTY, found
