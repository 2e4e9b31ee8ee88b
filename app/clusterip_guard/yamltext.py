"""YAML text in, plain data out: the one place that says where a YAML document is broken.

Used by the policy file, by manifests given to `check` and by kubeconfigs; each names the
file, this names the line, the column and the problem.

Dates stay strings, as they do when Kubernetes reads YAML (sigs.k8s.io/yaml goes through
JSON): `expires: 2027-02-30` is then the policy's to judge and name, not a crash inside the
YAML library.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class YAMLTextError(ValueError):
    """Text that is not valid YAML; the message says where and why, without the source."""


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp type."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """`not valid YAML at line 3, column 7: <problem>`, as far as PyYAML knows them."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"not valid YAML{where}: {problem}"


def _failure(error: Exception) -> YAMLTextError:
    if isinstance(error, yaml.YAMLError):
        return YAMLTextError(describe_yaml_error(error))
    if isinstance(error, RecursionError):
        return YAMLTextError("not valid YAML: nested too deeply")
    # A value the YAML library could not build (an explicit !!timestamp, !!float that is not
    # one): its own words, on one line.
    return YAMLTextError(f"not valid YAML: {_CONTROL.sub(' ', str(error)).strip()}")


# What the YAML library raises besides YAMLError when a value cannot be built.
_CONSTRUCTION_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)


def _reject_cycles(document: Any) -> None:
    """An alias inside the node it names (`a: &a [*a]`) builds a value that contains itself,
    which no JSON (so no Kubernetes object) can be; shared nodes are fine and looked at once."""
    done: set[int] = set()
    path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        node, leaving = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if leaving:
            path.discard(id(node))
            done.add(id(node))
            continue
        if id(node) in path:
            raise YAMLTextError("not valid YAML: an alias refers to the node that contains it")
        if id(node) in done:
            continue
        path.add(id(node))
        stack.append((node, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, False) for child in children)


def load_yaml(text: str) -> Any:
    """One document."""
    try:
        document = yaml.load(text, Loader=_Loader)
    except _CONSTRUCTION_ERRORS as error:
        raise _failure(error) from error
    _reject_cycles(document)
    return document


def load_yaml_documents(text: str) -> list[Any]:
    """Every non-empty document of a multi-document stream."""
    try:
        documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except _CONSTRUCTION_ERRORS as error:
        raise _failure(error) from error
    for document in documents:
        _reject_cycles(document)
    return documents


def dump_yaml_documents(documents: list[Any]) -> str:
    """As written by `check --fix`: key order kept, `---` between documents."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=len(documents) > 1)


class _ReadableDumper(yaml.SafeDumper):
    """Strings that hold single quotes (CEL's string literals) in double quotes, where they
    read as written, rather than single-quoted with every quote doubled."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "'" in value and "\n" not in value and '"' not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _string)


def dump_yaml(document: Any) -> str:
    """One document in block style, key order kept, long strings never folded."""
    return yaml.dump(
        document, Dumper=_ReadableDumper, sort_keys=False, width=10_000, default_flow_style=False
    )
