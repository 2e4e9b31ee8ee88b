"""One source for what both engines say (core/sentences.py): a sentence typed anywhere else, in
the Python judge or in the CEL the native engine is compiled to, fails here."""

from __future__ import annotations

import ast
import string
from pathlib import Path

from clusterip_guard.core import sentences

APP = Path(__file__).resolve().parents[2] / "app" / "clusterip_guard"
SENTENCES = APP / "core" / "sentences.py"
# Where what is said to a user is built: the Python judge and the native engine's compiler.
SAYING = [
    APP / "core" / "exposure.py",
    APP / "core" / "decision.py",
    APP / "core" / "workloads.py",
    APP / "core" / "ingresses.py",
    APP / "core" / "gateways.py",
    *sorted((APP / "core" / "native").glob("*.py")),
    # The limits a scan meets, said where they are met.
    APP / "cluster" / "limits.py",
    APP / "cluster" / "listing.py",
]
WORDS = 3  # a fragment of three words or more is a sentence's, not a keyword


def fragments(template: str) -> list[str]:
    """The literal parts of a template, between its fields, long enough to be a sentence's."""
    return [
        part.strip(" ;:()")
        for literal, _, _, _ in string.Formatter().parse(template)
        for part in [literal]
        if len(part.split()) >= WORDS
    ]


def string_literals(path: Path) -> list[str]:
    """Every string constant of a module, f-strings' literal parts included, as written;
    docstrings left out (they say what the code does, to its reader)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def templates() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(sentences).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }


def test_every_sentence_is_said_from_its_template_only() -> None:
    copies = []
    for path in SAYING:
        literals = string_literals(path)
        # A CEL literal escapes its quote; what it says is the same words.
        said = " ".join(literals).replace("\\'", "'")
        for name, template in templates().items():
            for fragment in fragments(template):
                if fragment in said:
                    copies.append(f"{path.relative_to(APP)}: {fragment!r} (sentences.{name})")
    assert not copies, "typed again instead of taken from core/sentences.py:\n" + "\n".join(copies)


def test_the_check_sees_a_copied_sentence(tmp_path: Path) -> None:
    copied = tmp_path / "copy.py"
    copied.write_text(
        "SUMMARY = \"'type NodePort opens a port on every node'\"\n"
        "DENIAL = f\"{x} + ' would be reachable from outside the cluster, and '\"\n"
    )
    said = " ".join(string_literals(copied))
    found = [
        fragment
        for template in templates().values()
        for fragment in fragments(template)
        if fragment in said
    ]
    assert "type NodePort opens a port on every node" in found
    assert "would be reachable from outside the cluster, and" in found


def test_every_sentence_is_used() -> None:
    source = "\n".join(path.read_text() for path in SAYING)
    unused = [name for name in templates() if f"say.{name}" not in source]
    assert not unused, unused
