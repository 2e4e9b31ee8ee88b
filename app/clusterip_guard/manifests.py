"""Manifests on disk and on stdin, for `check`: read them, and write the fixed ones back."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from clusterip_guard.core.offline import STDIN_SOURCE, CheckResults, ManifestFile, fixed_documents
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.yamltext import YAMLTextError, dump_yaml_documents, load_yaml_documents

STDIN = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class InputError(ValueError):
    """A manifest cannot be read, parsed or written; the message is one line naming it."""


def read_manifests(paths: Iterable[str], stdin: TextIO | None = None) -> list[ManifestFile]:
    """Files, folders (every manifest below them, in order) and `-` for stdin.

    Every document must be a Kubernetes object, and there must be at least one: input that
    holds none (an empty file, the wrong file, a folder of something else) is a mistake, not
    "0 Services checked"."""
    files: list[ManifestFile] = []
    given_paths = list(paths)
    for given in given_paths:
        if given == STDIN:
            try:
                text = (stdin or sys.stdin).read()
            except UnicodeDecodeError as error:
                raise InputError(
                    f"{STDIN_SOURCE}: cannot read: not UTF-8 text ({error.reason})"
                ) from None
            files.append(ManifestFile(STDIN_SOURCE, _parse(text, STDIN_SOURCE)))
            continue
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES)
            files.extend(_read_file(p) for p in found if p.is_file())
        elif path.exists():
            files.append(_read_file(path))
        else:
            raise InputError(f"{given}: no such file or folder")
    if not any(f.documents for f in files):
        where = ", ".join(STDIN_SOURCE if g == STDIN else g for g in given_paths)
        raise InputError(
            f"{where}: no Kubernetes objects found (files ending in "
            f"{', '.join(MANIFEST_SUFFIXES)}, holding manifests with apiVersion and kind)"
        )
    return files


def _read_file(path: Path) -> ManifestFile:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: cannot read: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    return ManifestFile(source=str(path), documents=_parse(text, str(path)), path=path)


def _parse(text: str, source: str) -> list[object]:
    try:
        documents = load_yaml_documents(text)
    except YAMLTextError as error:
        raise InputError(f"{source}: {error}") from None
    for index, document in enumerate(documents, start=1):
        missing = missing_object_fields(document)
        if missing:
            raise InputError(
                f"{source}#{index}: not a Kubernetes object: {missing} "
                f"(a manifest is a mapping with apiVersion and kind)"
            )
    return documents


def missing_object_fields(document: object) -> str | None:
    """What keeps a YAML document from being a Kubernetes object; None when nothing does."""
    if not isinstance(document, dict):
        return f"a {_shape(document)}, not a mapping"
    missing = [
        key
        for key in ("apiVersion", "kind")
        if not isinstance(document.get(key), str) or not document[key]
    ]
    return f"no {' and no '.join(missing)}" if missing else None


def _shape(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def write_fixed(
    files: list[ManifestFile], policy: PolicySettings, report: CheckResults, stdout: TextIO
) -> list[str]:
    """Write converted manifests back: changed files in place (through YAML, so comments do
    not survive), and stdin always to stdout so `check --fix -` can sit in a pipeline.
    Returns the sources written."""
    written: list[str] = []
    for manifest_file in files:
        fixed = fixed_documents(manifest_file, report, policy)
        if fixed == manifest_file.documents and manifest_file.path is not None:
            continue
        text = dump_yaml_documents(fixed)
        if manifest_file.path is None:
            stdout.write(text)
        else:
            try:
                manifest_file.path.write_text(text, encoding="utf-8")
            except OSError as error:
                raise InputError(f"{manifest_file.path}: cannot write: {error}") from error
        written.append(manifest_file.source)
    return written
