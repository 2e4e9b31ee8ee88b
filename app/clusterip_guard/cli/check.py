"""`clusterip-guard check`: offline evaluation of manifests (docs/design.md, "Command line")."""

from __future__ import annotations

import argparse
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from clusterip_guard.cli import options
from clusterip_guard.core.offline import STDIN_SOURCE, CheckResults, ServiceResult, check_files
from clusterip_guard.core.types import MODES, Mode, as_mode
from clusterip_guard.manifests import STDIN, read_manifests, write_fixed
from clusterip_guard.policyfile import read_policy_file

EXIT_OK = 0
EXIT_FINDINGS = 1

Output = Literal["table", "json"]


@dataclass(frozen=True)
class CheckSettings:
    paths: tuple[str, ...]
    # The strictest mode: "would anything be denied" is what a CI gate asks.
    mode: Mode = "enforce"
    policy_file: Path | None = None
    output: Output = "table"
    fix: bool = False


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check", help="evaluate manifests offline (exit 1 if anything would be denied or changed)"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, or - for stdin")
    parser.add_argument(
        "--mode",
        choices=[m for m in MODES if m != "off"],
        default=options.default_of(CheckSettings, "mode"),
        help="judge as a namespace in this mode would (default: %(default)s)",
    )
    parser.add_argument("--policy-file", type=Path, help="policy YAML")
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json"],
        default=options.default_of(CheckSettings, "output"),
        help="default: %(default)s",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="write converted manifests back (files in place, stdin to stdout)",
    )
    parser.set_defaults(invoke=invoke)


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    settings = CheckSettings(
        paths=tuple(args.paths),
        mode=as_mode(args.mode),
        policy_file=args.policy_file,
        output="json" if args.output == "json" else "table",
        fix=args.fix,
    )
    return run(settings, stdout=stdout, stderr=stderr)


def run(settings: CheckSettings, *, stdout: TextIO, stderr: TextIO) -> int:
    policy = read_policy_file(settings.policy_file)
    files = read_manifests(settings.paths)
    today = datetime.datetime.now(datetime.UTC).date()
    report = check_files(files, mode=settings.mode, policy=policy, today=today)
    # With --fix the manifests go to stdout when they came from stdin; the report then
    # goes to stderr so the two never mix.
    out = stderr if settings.fix and STDIN in settings.paths else stdout
    out.write(render_json(report) if settings.output == "json" else render_table(report))
    if settings.fix:
        for source in write_fixed(files, policy, report, stdout):
            if source != STDIN_SOURCE:
                print(f"fixed {source}", file=stderr)
        return EXIT_OK
    return EXIT_FINDINGS if report.needs_change else EXIT_OK


def result_as_json(result: ServiceResult) -> dict[str, Any]:
    decision = result.decision
    shown: dict[str, Any] = {
        "kind": result.kind,
        "namespace": result.namespace,
        "name": result.name,
        "source": result.source,
        "verdict": decision.verdict,
        "violations": [{"field": v.field, "message": v.message} for v in decision.violations],
    }
    if decision.patch:
        shown["patch"] = decision.patch
    if decision.denial:
        shown["denial"] = decision.denial
    if decision.warnings:
        shown["warnings"] = list(decision.warnings)
    return shown


def render_json(report: CheckResults) -> str:
    return json.dumps([result_as_json(r) for r in report.results], indent=2) + "\n"


def render_table(report: CheckResults) -> str:
    header = ("SOURCE", "NAMESPACE", "NAME", "VERDICT", "FINDING")
    rows: list[tuple[str, ...]] = []
    for r in report.results:
        findings = [v.detail for v in r.decision.violations] or ["-"]
        # A Service by its name, as ever; anything else by kind/name.
        name = r.name if r.kind == "Service" else f"{r.kind.lower()}/{r.name}"
        for finding in findings:
            rows.append((r.source, r.namespace, name, r.decision.verdict, finding))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        ).rstrip()
        for row in [header, *rows]
    ]
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.decision.verdict] = counts.get(r.decision.verdict, 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    noun = "Service" if all(r.kind == "Service" for r in report.results) else "object"
    noun += "" if len(report.results) == 1 else "s"
    lines.append(f"{len(report.results)} {noun} checked" + (f": {summary}" if summary else ""))
    return "\n".join(lines) + "\n"
