"""`clusterip-guard render`: the admission objects of either engine, as YAML for
`kubectl apply -f -` (docs/design.md, "Engines"). Needs no cluster."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from clusterip_guard.cli import options
from clusterip_guard.core.admission_policies import companion_policies
from clusterip_guard.core.names import CONFIGURATION_NAME
from clusterip_guard.core.native import NativeUnsupported, native_objects
from clusterip_guard.core.registration import (
    ServiceTarget,
    never_judged_namespaces,
    webhook_configurations,
)
from clusterip_guard.core.types import ENGINES, Engine, Manifest, Mode
from clusterip_guard.policyfile import PolicyError, read_policy_file
from clusterip_guard.yamltext import dump_yaml_documents

EXIT_OK = 0


@dataclass(frozen=True)
class RenderSettings:
    engine: Engine = "native"
    policy_file: Path | None = None
    default_mode: Mode = "off"
    name: str = CONFIGURATION_NAME
    namespace: str = "clusterip-guard"  # the webhook's (and never judged)
    excluded_namespaces: tuple[str, ...] = ()


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "render",
        help="print the admission objects of an engine as YAML (kubectl apply -f -)",
        description=(
            "Print what an engine registers. native: ValidatingAdmissionPolicies and a "
            "MutatingAdmissionPolicy the API server runs itself, compiled from the policy "
            "file (no webhook); webhook: the webhook configurations (caBundle left to "
            "cainjector or the bootstrap) and the in-process policies beside them."
        ),
    )
    parser.add_argument("--engine", choices=ENGINES, default="native", help="default: %(default)s")
    parser.add_argument("--policy-file", type=Path, help="policy YAML (native: compiled in)")
    options.add_installation_flags(parser)
    parser.set_defaults(invoke=invoke)


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    settings = RenderSettings(
        engine=args.engine,
        policy_file=args.policy_file,
        default_mode=args.default_mode,
        name=args.name,
        namespace=args.namespace,
        excluded_namespaces=tuple(args.exclude_namespace),
    )
    stdout.write(render_objects(settings))
    return EXIT_OK


def objects_for(settings: RenderSettings) -> list[Manifest]:
    never_judged = never_judged_namespaces(settings.namespace, settings.excluded_namespaces)
    policy = read_policy_file(settings.policy_file)
    if settings.engine == "native":
        try:
            return native_objects(
                policy,
                name=settings.name,
                default_mode=settings.default_mode,
                never_judged=never_judged,
            )
        except NativeUnsupported as error:
            where = f"policy file {settings.policy_file}" if settings.policy_file else "policy"
            raise PolicyError(f"{where}: {error}") from None
    mutating, validating = webhook_configurations(
        target=ServiceTarget(settings.namespace, settings.name),
        ca_bundle=b"",
        default_mode=settings.default_mode,
        own_namespace=settings.namespace,
        excluded_namespaces=settings.excluded_namespaces,
        name=settings.name,
    )
    for configuration in (mutating, validating):
        for webhook in configuration["webhooks"]:
            webhook["clientConfig"].pop("caBundle", None)
    return [
        mutating,
        validating,
        *companion_policies(
            name=settings.name, default_mode=settings.default_mode, never_judged=never_judged
        ),
    ]


def render_objects(settings: RenderSettings) -> str:
    return dump_yaml_documents(objects_for(settings))
