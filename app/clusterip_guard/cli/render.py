"""`clusterip-guard render`: the admission objects of either engine, as YAML for
`kubectl apply -f -` (docs/design.md, "Engines"). Needs no cluster."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from clusterip_guard.cli import options
from clusterip_guard.core.installation import Installation, objects_for
from clusterip_guard.core.names import CONFIGURATION_NAME
from clusterip_guard.core.native import NativeUnsupported
from clusterip_guard.core.registration import ServiceTarget
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

    def installation(self) -> Installation:
        """The installation these settings describe; the webhook's Service is named as it."""
        return Installation(
            name=self.name,
            service=ServiceTarget(self.namespace, self.name),
            default_mode=self.default_mode,
            excluded_namespaces=self.excluded_namespaces,
        )


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


def rendered_objects(settings: RenderSettings) -> list[Manifest]:
    policy = read_policy_file(settings.policy_file)
    try:
        return objects_for(settings.engine, settings.installation(), policy)
    except NativeUnsupported as error:
        where = f"policy file {settings.policy_file}" if settings.policy_file else "policy"
        raise PolicyError(f"{where}: {error}") from None


def render_objects(settings: RenderSettings) -> str:
    return dump_yaml_documents(rendered_objects(settings))
