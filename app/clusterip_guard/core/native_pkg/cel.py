"""CEL the native engine's policies share (core/native.py for Services,
core/native_workloads.py for Pods and workloads). Pure: strings out."""

from __future__ import annotations

import datetime
import fnmatch
import json

from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.policy import SERVICE_KIND, PolicySettings
from clusterip_guard.core.types import Mode


class NativeUnsupported(ValueError):
    """The policy says something the native engine cannot; one line naming the key."""


def text(value: str) -> str:
    """A CEL string literal."""
    return json.dumps(value)


def name_variable() -> dict[str, str]:
    """`variables.name`: the object's name, or `prefix*` for a generateName, as messages say."""
    return {
        "name": "name",
        "expression": (
            "object.metadata.name != '' ? object.metadata.name : "
            "(has(object.metadata.generateName) && object.metadata.generateName != ''"
            " ? object.metadata.generateName + '*' : '<unnamed>')"
        ),
    }


def glob_regex(glob: str) -> str:
    """An RE2 pattern (CEL's `matches`) matching what fnmatchcase matches: fnmatch's own
    translation, with the two constructs RE2 lacks rewritten (an atomic group, used only to
    stop backtracking, as a plain group; `\\Z` as `\\z`)."""
    return "^" + fnmatch.translate(glob).replace("(?>", "(?:").replace("\\Z", "\\z")


def exemption_terms(
    policy: PolicySettings, today: datetime.date | None, *, workloads: bool = False
) -> str:
    """The exemptions in force (of Services, or with `workloads` of the other kinds), as one CEL
    condition. CEL has no clock: with `today` (the sync
    component, which renders again when one ends), only those in force today; without it, an
    exemption that ends is refused."""
    terms = []
    for index, exemption in enumerate(policy.exemptions):
        if (exemption.kind != SERVICE_KIND) != workloads:
            continue  # of the other policy's objects
        if exemption.expires is not None and today is None:
            raise NativeUnsupported(
                f"exemptions[{index}].expires: a rendering cannot end an exemption by itself "
                "(CEL has no clock): run `clusterip-guard sync`, which renders again when it "
                "ends, drop expires, or use the webhook engine"
            )
        if exemption.expires is not None and today is not None and today > exemption.expires:
            continue  # ended
        kind = f"request.kind.kind == {text(exemption.kind)} && " if workloads else ""
        terms.append(
            f"({kind}namespaceObject.metadata.name.matches({text(glob_regex(exemption.namespace))})"
            f" && variables.name.matches({text(glob_regex(exemption.name))}))"
        )
    return " || ".join(terms) or "false"


def mode_of_namespace(default_mode: Mode) -> str:
    return (
        f"(has(namespaceObject.metadata.labels) && {text(MODE_LABEL)} in "
        f"namespaceObject.metadata.labels ? namespaceObject.metadata.labels[{text(MODE_LABEL)}]"
        f" : {text(default_mode)})"
    )
