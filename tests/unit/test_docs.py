"""The user guide says what the code does: every one-line error the CLI and the server can print
is in docs/troubleshooting.md, every sample alert has a runbook entry in docs/operations.md,
every flag is in the command line reference, and the README is a front page that links every
page of the guide."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest
import yaml

from clusterip_guard.cli.main import build_parser
from tests.support.paths import ROOT

APP = ROOT / "app" / "clusterip_guard"
DOCS = ROOT / "docs"
README_LIMIT = 12_000
# A message's longest fixed part shorter than this says too little to look for ("cannot").
SHORTEST_CHECKED = 12
# Raised for a bug, never for a user's mistake: it keeps its traceback (cli/main.exit_code_for).
NOT_A_USERS_ERROR = {"NotInInventory"}
EXCEPTION_ROOTS = {"Exception", "ValueError", "RuntimeError", "SSLError"}
LOGGED_LEVELS = {"error", "warning", "exception"}


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def error_classes() -> set[str]:
    """The exception classes the package defines (and argparse's), by name."""
    bases: dict[str, set[str]] = {}
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {ast.unparse(base).split(".")[-1] for base in node.bases}
    found = {"ArgumentTypeError"} | {name for name, of in bases.items() if of & EXCEPTION_ROOTS}
    grew = True
    while grew:
        more = {name for name, of in bases.items() if of & found} - found
        found |= more
        grew = bool(more)
    return found - NOT_A_USERS_ERROR


def fixed_parts(node: ast.expr) -> list[str]:
    """The literal text of a message: a string, the constant parts of an f-string or of a
    %-format, split where a value goes in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.split(r"%[a-z]", node.value)
    if isinstance(node, ast.JoinedStr):
        text = "".join(
            value.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str)
            else "\0"
            for value in node.values
        )
        return text.split("\0")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [*fixed_parts(node.left), *fixed_parts(node.right)]
    return []


def printed_messages() -> list[tuple[str, str]]:
    """(where, the longest fixed part) of every error raised, every refusal the server answers
    and every error or warning logged, in the package."""
    classes = error_classes()
    found = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            logged = (
                isinstance(func, ast.Attribute)
                and name in LOGGED_LEVELS
                and isinstance(func.value, ast.Name)
                and func.value.id == "log"
            )
            if name not in classes and name != "_refuse" and not logged:
                continue
            parts = [part.strip(" :;,()'\"") for arg in node.args for part in fixed_parts(arg)]
            longest = max(parts, key=len, default="")
            if len(longest) >= SHORTEST_CHECKED:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", longest))
    return found


def test_the_message_finder_finds_messages() -> None:
    messages = {message for _, message in printed_messages()}
    assert "no such file or folder" in messages
    assert "policy reload failed; keeping the last good policy" in messages
    assert "request head too large" in messages
    assert len(messages) > 100


def test_every_error_the_code_prints_is_in_troubleshooting() -> None:
    page = flat((DOCS / "troubleshooting.md").read_text())
    missing = [f"{where}: {message}" for where, message in printed_messages()
               if flat(message) not in page]  # fmt: skip
    assert missing == [], "say what each means and what to do in docs/troubleshooting.md"


def alert_names() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yaml").read_text())
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("alert", alert_names())
def test_every_alert_has_a_runbook_entry(alert: str) -> None:
    page = (DOCS / "operations.md").read_text()
    entry = re.search(rf"^### {alert}\b.*?(?=^##|\Z)", page, re.MULTILINE | re.DOTALL)
    assert entry is not None, f"docs/operations.md has no runbook entry for {alert}"
    assert "**What it means.**" in entry.group(0)
    assert "**What to do.**" in entry.group(0)


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    return dict(subparsers.choices)


@pytest.mark.parametrize("command", sorted(commands()))
def test_the_command_line_reference_names_every_flag(command: str) -> None:
    page = (DOCS / "reference" / "cli.md").read_text()
    section = page.split(f"\n## {command}\n", 1)
    assert len(section) == 2, f"docs/reference/cli.md has no section for {command}"
    text = section[1].split("\n## ", 1)[0]
    flags = {
        max(action.option_strings, key=len)
        for action in commands()[command]._actions
        if action.option_strings and "--help" not in action.option_strings
    }
    assert sorted(flag for flag in flags if f"`{flag}" not in text) == []


def guide_pages() -> list[Path]:
    return sorted(path for path in DOCS.rglob("*.md"))


def test_the_readme_is_a_front_page_that_links_every_page_of_the_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme)} characters"
    linked = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    pages = {str(path.relative_to(ROOT)) for path in guide_pages()}
    assert sorted(pages - linked) == []


def test_the_readme_gives_the_two_commands_in_order() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands\n.*?```sh\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    assert [line.split("#")[0].strip() for line in block.group(1).splitlines()] == [
        "make demo",
        "make test",
    ]


def test_every_page_is_in_the_sites_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    in_nav = set(re.findall(r":\s+(\S+\.md)\s*$", config, re.MULTILINE))
    pages = {str(path.relative_to(DOCS)) for path in guide_pages()}
    assert sorted(pages ^ in_nav) == []


def test_the_reports_page_shows_the_scan_example_the_e2e_test_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    section = re.search(
        r"<!-- --8<-- \[start:scan-example\] -->\n(.*?)<!-- --8<-- \[end:scan-example\] -->",
        readme,
        re.DOTALL,
    )
    assert section is not None
    assert "<!-- scan-example:" in section.group(1)
    assert '--8<-- "README.md:scan-example"' in (DOCS / "reports.md").read_text()
