"""Reading a Service's fields in CEL, as core/services.py reads them in Python: each answer
for `o`, the object or the old object. Pure: strings out."""

from __future__ import annotations


def spec_field(o: str, key: str, default: str) -> str:
    return f"(has({o}.spec.{key}) ? {o}.spec.{key} : {default})"


def annotations_of(o: str) -> str:
    return f"(has({o}.metadata.annotations) ? {o}.metadata.annotations : {{}})"


def type_of(o: str) -> str:
    return f"(has({o}.spec.type) && {o}.spec.type != '' ? {o}.spec.type : 'ClusterIP')"


def object_type(o: str) -> str:
    """`o`'s type, read once per evaluation (the variables objectType and oldObjectType)."""
    return f"variables.{o}Type"
