"""YAML text in, plain data out: the one place that says where a YAML document is broken.

Used by the policy file and by manifests given to `check`; both name the file, this names
the line, the column and the problem.
"""

from __future__ import annotations

from typing import Any

import yaml


class YAMLTextError(ValueError):
    """Text that is not valid YAML; the message says where and why, without the source."""


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """`not valid YAML at line 3, column 7: <problem>`, as far as PyYAML knows them."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"not valid YAML{where}: {problem}"


def load_yaml(text: str) -> Any:
    """One document."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise YAMLTextError(describe_yaml_error(error)) from error


def load_yaml_documents(text: str) -> list[Any]:
    """Every non-empty document of a multi-document stream."""
    try:
        return [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError as error:
        raise YAMLTextError(describe_yaml_error(error)) from error


def dump_yaml_documents(documents: list[Any]) -> str:
    """As written by `check --fix`: key order kept, `---` between documents."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=len(documents) > 1)
