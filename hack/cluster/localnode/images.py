"""Images without a registry: built from a folder with buildah (the pause image from 15 lines
of C), imported into the node's containerd."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from localnode.base import PAUSE_IMAGE, Layout, run


def buildah(layout: Layout, *args: str) -> str:
    storage = [
        "--root", str(layout.buildah / "root"),
        "--runroot", str(layout.buildah / "run"),
        "--storage-driver", "vfs",
    ]  # fmt: skip
    return run(["buildah", *storage, *args]).stdout.strip()


def build_image(layout: Layout, ref: str, rootfs: Path, entrypoint: list[str]) -> Path:
    """An image of one layer holding `rootfs`, as a docker-archive tar, built with buildah."""
    images = layout.work / "images"
    images.mkdir(parents=True, exist_ok=True)
    archive = images / (re.sub(r"[^A-Za-z0-9_.-]", "_", ref) + ".tar")
    archive.unlink(missing_ok=True)
    container = buildah(layout, "from", "scratch")
    try:
        buildah(layout, "copy", container, f"{rootfs}/.", "/")
        buildah(layout, "config", "--entrypoint", json.dumps(entrypoint), container)
        buildah(layout, "commit", "--quiet", container, f"docker-archive:{archive}:{ref}")
    finally:
        buildah(layout, "rm", container)
    return archive


def import_image(layout: Layout, archive: Path) -> None:
    run(["ctr", "--address", str(layout.socket), "-n", "k8s.io", "images", "import", str(archive)])


PAUSE_C = r"""
/* The pod sandbox: holds the namespaces, reaps orphans, exits on SIGTERM or SIGINT. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


def build_pause(layout: Layout) -> Path:
    rootfs = layout.work / "images" / "pause-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.mkdir(parents=True)
    source = layout.work / "images" / "pause.c"
    source.write_text(PAUSE_C)
    run(["gcc", "-Os", "-static", "-s", "-o", str(rootfs / "pause"), str(source)])
    return build_image(layout, PAUSE_IMAGE, rootfs, ["/pause"])


def busybox_rootfs(folder: Path) -> Path:
    """A root file system with Debian's static busybox and its applets as links under /bin."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", folder / "bin" / "busybox")
    applets = run(["/bin/busybox", "--list"]).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (folder / "bin" / applet).symlink_to("busybox")
    (folder / "tmp").mkdir()
    return folder
