"""The node's command line: up, down, check, import, image (hack/cluster/cluster.py runs it)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path

from hostkit.errors import HostError
from localnode.base import ROOT, ClusterError, Layout
from localnode.down import down
from localnode.images import build_image, busybox_rootfs, import_image
from localnode.up import prerequisites, running, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cluster.py", description="a real single-node Kubernetes cluster on this machine"
    )
    parser.add_argument("--dir", type=Path, default=ROOT / ".dev", help="state folder")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the cluster; returns when the node is Ready")
    commands.add_parser("down", help="stop the cluster and undo every host change")
    commands.add_parser("check", help="print why this machine cannot run a node, if it cannot")
    image = commands.add_parser("image", help="build an image from a folder and import it")
    image.add_argument("ref", help="image name, e.g. localhost/demo/server:1")
    image.add_argument("rootfs", type=Path, help="folder copied to / in the image")
    image.add_argument("--busybox", action="store_true", help="add busybox and its applets")
    image.add_argument("entrypoint", nargs="+", help="after --: the entrypoint and arguments")
    load = commands.add_parser(
        "import", help="import an image archive (oci or docker) into the node"
    )
    load.add_argument(
        "archive", type=Path, help="e.g. .dev/images/clusterip-guard.tar (make image)"
    )
    args = parser.parse_args(argv)
    layout = Layout(args.dir.resolve())
    # A Ctrl-C or a kill while starting runs `down` through the exception path in up().
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        if args.command == "up":
            print(up(layout))
        elif args.command == "down":
            print(down(layout))
        elif args.command == "check":
            problems = prerequisites()
            print("; ".join(problems) if problems else "this machine can run a node")
            return 1 if problems else 0
        elif args.command == "import":
            if not running(layout):
                raise ClusterError("no cluster running: `make cluster` first")
            if not args.archive.is_file():
                raise ClusterError(f"{args.archive}: no such image archive (`make image` makes it)")
            import_image(layout, args.archive)
            print(f"imported {args.archive}")
        else:
            if not running(layout):
                raise ClusterError("no cluster running: `make cluster` first")
            rootfs = args.rootfs
            if args.busybox:
                rootfs = busybox_rootfs(layout.work / "images" / "busybox-rootfs")
                shutil.copytree(args.rootfs, rootfs, symlinks=True, dirs_exist_ok=True)
            import_image(layout, build_image(layout, args.ref, rootfs, args.entrypoint))
            print(f"imported {args.ref}")
    except HostError as error:  # ours, or the toolkit's (a process that would not start)
        print(f"cluster: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cluster: interrupted", file=sys.stderr)
        return 130
    return 0
