"""`make test-versions`: the suites that depend on the API server, on every release of the matrix.

    python hack/test_versions.py [--only v1.33.13 ...] [--no-record]

For each release in hack/controlplane/versions/matrix.json: builds its kube-apiserver (once;
build.sh --kubernetes), runs the matrix's suites with CLUSTERIP_GUARD_KUBERNETES set (so every
control plane the tests start is that release), and reads the outcome of each test from
pytest's JUnit XML. Prints one table, release by suite: passed, failed and skipped, with each
skip's reason. Records the table, with the date and the commit, in docs/versions.md (between
its markers; a release not run keeps its recorded row), unless --no-record. Exits 1 when any
test failed, 2 on bad use.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "hack" / "controlplane" / "versions" / "matrix.json"
DOC = ROOT / "docs" / "versions.md"
BEGIN, END = "<!-- matrix:begin -->", "<!-- matrix:end -->"
KUBERNETES_VARIABLE = "CLUSTERIP_GUARD_KUBERNETES"  # localcluster's (launcher.py)


@dataclass
class Cell:
    """The outcome of one suite on one release."""

    counts: Counter[str] = field(default_factory=Counter)
    skip_reasons: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def shown(self) -> str:
        if not self.counts:
            return "not run"
        parts = [
            f"{self.counts[outcome]} {outcome}"
            for outcome in ("passed", "failed", "skipped")
            if self.counts[outcome]
        ]
        reasons = sorted({short(reason) for reason in self.skip_reasons})
        return ", ".join(parts) + (f" ({'; '.join(reasons)})" if reasons else "")


def short(reason: str) -> str:
    """A skip's reason for the table: "no ServiceCIDR before 1.33" for the fixtures' long form
    (tests/support/served.py), any other as it is."""
    missing = re.search(r"does not serve \S+/(\w+) \(Kubernetes ([\d.]+) has it\)", reason)
    return f"no {missing.group(1)} before {missing.group(2)}" if missing else reason


def read_matrix() -> tuple[list[dict[str, str]], dict[str, str]]:
    matrix = json.loads(MATRIX.read_text())
    return matrix["versions"], matrix["suites"]


def outcomes(junit: Path, suites: dict[str, str]) -> dict[str, Cell]:
    """Each suite's cell, from pytest's JUnit XML (a test's classname is its module)."""
    cells = {name: Cell() for name in suites}
    module_of = {Path(path).stem: name for name, path in suites.items()}
    if not junit.exists():
        return cells
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = module_of.get(module)
        if name is None:
            continue
        cell = cells[name]
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            cell.counts["failed"] += 1
            cell.failures.append(case.get("name", "?"))
        elif skipped is not None:
            cell.counts["skipped"] += 1
            reason = skipped.get("message", "").removeprefix("Skipped: ")
            cell.skip_reasons.append(reason)
        else:
            cell.counts["passed"] += 1
    return cells


def build(version: str) -> bool:
    run = subprocess.run(
        ["bash", str(ROOT / "hack" / "controlplane" / "build.sh"), "--kubernetes", version],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return run.returncode == 0


def run_suites(version: str, suites: dict[str, str], out: Path) -> dict[str, Cell]:
    junit = out / f"{version}.xml"
    junit.unlink(missing_ok=True)
    environment = {**os.environ, KUBERNETES_VARIABLE: version}
    print(f"test-versions: {version}: {len(suites)} suites", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         *suites.values()],
        cwd=ROOT, env=environment, check=False,
    )  # fmt: skip
    return outcomes(junit, suites)


def table(
    results: dict[str, dict[str, Cell]],
    versions: list[dict[str, str]],
    suites: dict[str, str],
    stamp: str,
    recorded: dict[str, str],
) -> str:
    """The matrix's table: a release run now with `stamp`; any other as docs/versions.md
    recorded it (when its columns are these suites), else "not run"."""
    header = "| Kubernetes | why in the matrix | " + " | ".join(suites) + " | last run |"
    lines = [header, "|---" * (len(suites) + 3) + "|"]
    same_suites = recorded.get("header") == header
    for entry in versions:
        version = entry["kubernetes"]
        cells = results.get(version)
        if cells is None and same_suites and version in recorded:
            lines.append(recorded[version])
            continue
        shown = [cells[name].shown() if cells else "not run" for name in suites]
        last = stamp if cells else "never"
        lines.append(f"| {version} | {entry['why']} | " + " | ".join(shown) + f" | {last} |")
    return "\n".join(lines)


def recorded_rows() -> dict[str, str]:
    """The rows docs/versions.md holds, by release, and its header (key "header")."""
    doc = DOC.read_text()
    block = doc[doc.index(BEGIN) + len(BEGIN) : doc.index(END)].strip().splitlines()
    rows: dict[str, str] = {"header": block[0]} if block else {}
    for line in block[2:]:
        rows[line.split(" | ", 1)[0].removeprefix("| ")] = line
    return rows


def record(text: str) -> None:
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])


def commit() -> str:
    """HEAD, marked when tracked files differ from it (the table this writes aside)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            f":!{DOC.relative_to(ROOT)}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head}+changes" if dirty else head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="test-versions", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="VERSION",
        help="these releases of the matrix only",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print the table; leave docs/versions.md as it is"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / ".dev" / "versions", help="JUnit XML per release"
    )
    args = parser.parse_args(argv)
    versions, suites = read_matrix()
    known = [entry["kubernetes"] for entry in versions]
    for version in args.only or ():
        if version not in known:
            print(
                f"test-versions: {version} is not in the matrix ({', '.join(known)})",
                file=sys.stderr,
            )
            return 2
    wanted = args.only or known
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Cell]] = {}
    for version in wanted:
        if not build(version):
            print(
                f"test-versions: {version}: its kube-apiserver did not build (see above)",
                file=sys.stderr,
            )
            results[version] = {
                name: Cell(counts=Counter(failed=1), failures=["build"]) for name in suites
            }
            continue
        results[version] = run_suites(version, suites, args.out)
    stamp = f"{datetime.date.today().isoformat()}, {commit()}"
    text = table(results, versions, suites, stamp, recorded_rows())
    print(text)
    failed = [
        f"{version} {name}: {', '.join(cell.failures)}"
        for version, cells in results.items()
        for name, cell in cells.items()
        if cell.counts["failed"] or not cell.counts
    ]
    if not args.no_record:
        record(text)
    for line in failed:
        print(f"test-versions: failed or not run: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
