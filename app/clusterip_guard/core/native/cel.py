"""CEL the native engine's policies share (native/services.py for Services, native/workloads.py
for Pods and workloads): the one way to quote a CEL string, the namespace's mode, the object's
name, the exemptions. Pure: strings out."""

from __future__ import annotations

import datetime
import fnmatch
import re
import string
from collections.abc import Callable
from typing import Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.cel_literals import text
from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.policy import SERVICE_KIND, Exemption, PolicySettings
from clusterip_guard.core.types import Mode


class NativeUnsupported(ValueError):
    """The policy says something the native engine cannot; one line naming the key."""


def sentence(template: str, **values: str) -> str:
    """CEL: a sentence of core/sentences.py, each `{field}` filled by the CEL string expression
    given for it (the Python judge fills the same template with `str.format`)."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(text(literal))
        if field is not None:
            parts.append(f"({values[field]})")
    return "(" + " + ".join(parts) + ")" if parts else "''"


def said_pieces(judged: str, line: str) -> str:
    """CEL: the pieces a denial names (`judged`: a list; `line`: its item `v` as one line), at
    most MAX_PIECES_SAID, then how many more (the API server drops a message over 5 KiB)."""
    more = sentence(say.MORE_PIECES, count=f"string(size({judged}) - {say.MAX_PIECES_SAID})")
    return (
        f"{judged}.transformList(i, v, i < {say.MAX_PIECES_SAID}, {line})"
        f".join({text(say.PIECES_JOINED)}) + "
        f"(size({judged}) > {say.MAX_PIECES_SAID} ? {more} : '')"
    )


def name_variable() -> dict[str, str]:
    """`variables.name`: the object's name, or `prefix*` for a generateName, as messages say."""
    return {
        "name": "name",
        "expression": (
            # On a CREATE with generateName the name is absent (not ''): reading it would fail.
            "has(object.metadata.name) && object.metadata.name != '' ? object.metadata.name : "
            "(has(object.metadata.generateName) && object.metadata.generateName != ''"
            " ? object.metadata.generateName + '*' : '<unnamed>')"
        ),
    }


# fnmatch's translation uses three constructs RE2 (CEL's `matches`) lacks, each rewritten to one
# that matches the same names: an atomic group (used only to stop backtracking) as a plain group,
# `\\Z` as `\\z`, and an empty range's never-matching lookahead as an empty class.
_RE2_REWRITES: Final = (("(?>", "(?:"), ("\\Z", "\\z"), ("(?!)", "[^\\s\\S]"))
# What RE2 refuses outright: lookarounds, atomic groups, backreferences.
_NOT_RE2: Final = re.compile(r"\(\?[=!<>]|\(\?P=|\\[1-9]")


def glob_regex(glob: str) -> str:
    """An RE2 pattern (CEL's `matches`) matching what fnmatchcase matches: fnmatch's own
    translation, with the constructs RE2 lacks rewritten (`_RE2_REWRITES`)."""
    pattern = fnmatch.translate(glob)
    for python, re2 in _RE2_REWRITES:
        pattern = pattern.replace(python, re2)
    return "^" + pattern


def re2_refuses(pattern: str) -> bool:
    """Whether RE2 refuses a construct of `pattern` (checked before anything is rendered)."""
    return _NOT_RE2.search(pattern) is not None


def _exemptions_in_force(
    policy: PolicySettings, today: datetime.date | None, *, workloads: bool
) -> list[tuple[str, Exemption]]:
    """(CEL condition, exemption) for each exemption in force, of Services, or with `workloads`
    of the other kinds. CEL has no clock: with `today` (the sync component, which renders again
    when one ends), only those in force today; without it, an exemption that ends is refused."""
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
            (
                f"({kind}namespaceObject.metadata.name.matches({text(glob_regex(exemption.namespace))})"
                f" && variables.name.matches({text(glob_regex(exemption.name))}))",
                exemption,
            )
        )
    return terms


def exemption_terms(
    policy: PolicySettings, today: datetime.date | None, *, workloads: bool = False
) -> str:
    """The exemptions in force, as one CEL condition (see `_exemptions_in_force`)."""
    terms = _exemptions_in_force(policy, today, workloads=workloads)
    return " || ".join(term for term, _ in terms) or "false"


def exemption_described(
    policy: PolicySettings, today: datetime.date | None, *, workloads: bool = False
) -> str:
    """CEL: how the first Service exemption in force that applies (with `workloads`, of the
    other kinds) describes itself (Exemption.describe, as the webhook names it), '' when none
    does."""
    terms = _exemptions_in_force(policy, today, workloads=workloads)
    if not terms:
        return "''"
    said = ", ".join(f"{term} ? {text(exemption.describe())} : ''" for term, exemption in terms)
    return f"[{said}].filter(x, x != '').transformList(i, x, i == 0, x).join('')"


def mode_of_namespace(default_mode: Mode) -> str:
    return (
        f"(has(namespaceObject.metadata.labels) && {text(MODE_LABEL)} in "
        f"namespaceObject.metadata.labels ? namespaceObject.metadata.labels[{text(MODE_LABEL)}]"
        f" : {text(default_mode)})"
    )


def kept_exposure_allowed(policy: PolicySettings) -> str:
    """CEL: whether kept exposure is allowed (a status write always keeps, as in the core)."""
    return (
        "true"
        if policy.allow_existing_violations
        else "has(request.subResource) && request.subResource == 'status'"
    )


def keyed_judging_variables(
    pieces: Callable[[str], str],
    policy: PolicySettings,
    *,
    default_mode: Mode,
    today: datetime.date | None,
) -> list[dict[str, str]]:
    """The variables that decide for a kind whose pieces are keyed (Ingresses, the Gateway API):
    `pieces(o)` lists the pieces of `o` ({key, field, summary}); `judged` is what the write is
    refused for: every piece on CREATE, what an UPDATE adds, or (when kept exposure is not
    allowed) every piece an UPDATE keeps; none when an exemption of the kind is in force."""
    return [
        name_variable(),
        {"name": "mode", "expression": mode_of_namespace(default_mode)},
        {"name": "pieces", "expression": pieces("object")},
        {
            "name": "oldKeys",
            "expression": f"oldObject == null ? [] : ({pieces('oldObject')}).map(p, p['key'])",
        },
        {
            "name": "added",
            "expression": "variables.pieces.filter(p, !(p['key'] in variables.oldKeys))",
        },
        {
            "name": "judged",
            "expression": (
                f"size(variables.pieces) == 0 || ({exemption_terms(policy, today, workloads=True)})"
                " ? [] : oldObject == null ? variables.pieces : "
                f"size(variables.added) > 0 ? variables.added : "
                f"({kept_exposure_allowed(policy)}) ? [] : variables.pieces"
            ),
        },
    ]


def warned_writes(rules: list[dict[str, object]], exemption: str) -> list[dict[str, object]]:
    """The rules of a warning policy. With an exemption in force (`exemption`, CEL, is not
    `''`) CREATEs and UPDATEs; without one only an UPDATE can keep exposure, so only UPDATEs,
    said by the rules: the API server matches rules before it builds any CEL input, while a
    match condition would cost every CREATE an evaluation (docs/benchmarks.md, "Under a
    burst")."""
    if exemption != "''":
        return rules
    return [{**rule, "operations": ["UPDATE"]} for rule in rules]


def keyed_warning_spec(
    policy: PolicySettings,
    *,
    rules: list[dict[str, object]],
    match_conditions: list[dict[str, str]],
    deciding: list[dict[str, str]],
    exemption: str,
    subject: str,
) -> dict[str, object]:
    """The warning policy's spec for a kind whose pieces are keyed (Ingresses, the Gateway
    API): it warns of an exempted object (naming `exemption`, CEL) and of an UPDATE that keeps
    its pieces and adds none (`warned_writes`: without an exemption, UPDATEs only)."""
    exempted = sentence(say.EXEMPTED, subject=subject, exemption="variables.exemption")
    kept = sentence(say.EXISTING_KEPT, field="v['field']", summary="v['summary']")
    exposed = "size(variables.pieces) > 0"
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": warned_writes(rules, exemption)},
        "matchConditions": match_conditions,
        "variables": [
            *deciding,
            {"name": "exemption", "expression": exemption},
            {
                "name": "kept",
                "expression": (
                    f"variables.exemption == '' && oldObject != null && {exposed} && "
                    f"size(variables.added) == 0 && ({kept_exposure_allowed(policy)})"
                ),
            },
        ],
        "validations": [
            {
                "expression": f"!({exposed} && variables.exemption != '') && !variables.kept",
                "messageExpression": (
                    f"variables.kept ? {said_pieces('variables.pieces', kept)} : "
                    f"{exposed} && variables.exemption != '' ? {exempted} : ''"
                ),
                "reason": "Forbidden",
            }
        ],
    }
