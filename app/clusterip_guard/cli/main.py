"""The `clusterip-guard` command: parses flags into typed settings, runs one command, and
maps every error an admin can fix to one line on stderr and an exit code (docs/design.md,
"Command line").

Exit codes, the same for every command:
  0  fine
  1  findings: `check` found something that would be denied or changed, `scan` a Service
     that fails
  2  bad input or usage: a flag, a file, a kubeconfig, a port that cannot be bound
  3  the cluster could not be reached, or refused us
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from clusterip_guard import __version__
from clusterip_guard.certs.issuing import CertificateError
from clusterip_guard.cli import bootstrap, check, render, scan, serve, sync
from clusterip_guard.cli.options import UsageError
from clusterip_guard.cluster.errors import ClusterError, ClusterRefused, ClusterUnreachable
from clusterip_guard.cluster.settings import RecordError
from clusterip_guard.core.registration import RegistrationError
from clusterip_guard.manifests import InputError
from clusterip_guard.policyfile import PolicyError

EXIT_USAGE = 2
EXIT_CLUSTER = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# The errors a user can fix, and what each exits with; the first match wins.
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (ClusterUnreachable, EXIT_CLUSTER),
    (ClusterRefused, EXIT_CLUSTER),
    (ClusterError, EXIT_USAGE),
    (UsageError, EXIT_USAGE),
    (PolicyError, EXIT_USAGE),
    (InputError, EXIT_USAGE),
    (CertificateError, EXIT_USAGE),
    (RegistrationError, EXIT_USAGE),
    (RecordError, EXIT_USAGE),
)


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line, like every other error (argparse would print the whole
    usage first); subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="clusterip-guard",
        description="Admission webhook that keeps Kubernetes Services internal.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(commands)
    check.add_parser(commands)
    bootstrap.add_parser(commands)
    scan.add_parser(commands)
    render.add_parser(commands)
    sync.add_parser(commands)
    return parser


def exit_code_for(error: Exception) -> int | None:
    """The exit code of an error the user can fix; None for a bug (it keeps its traceback)."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return None


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        code: int = args.invoke(args, out, err)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        code_for_error = exit_code_for(error)
        if code_for_error is None:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"clusterip-guard: {message}", file=err)
        return code_for_error
    return code


if __name__ == "__main__":
    sys.exit(main())
