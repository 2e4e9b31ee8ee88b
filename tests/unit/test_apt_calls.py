"""Every apt call the project makes goes through hack/apt.sh (which waits for apt's locks and
reads the mirror from the machine's own apt sources), and no mirror address is written in the
repository."""

from __future__ import annotations

import re
import subprocess

from tests.support.paths import ROOT

APT = "hack/apt.sh"
# hack/fresh-machine.sh purges what the project installed: the one apt call besides APT's.
PURGES = "hack/fresh-machine.sh"


def tracked() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


HOST_APT = re.compile(r"^[^#]*\bapt-get\s+(-\S+\s+)*(install|update|upgrade)\b")


def host_apt_calls(text: str) -> list[str]:
    """Lines that call the host's apt-get; a call inside an image's chroot (its own apt, its
    own locks) is not one."""
    lines = text.splitlines()
    return [
        line
        for number, line in enumerate(lines)
        if HOST_APT.search(line)
        and "chroot" not in " ".join(lines[max(0, number - 1) : number + 1])
    ]


def test_no_script_calls_apt_get_but_the_helper() -> None:
    calls = {
        name: host_apt_calls((ROOT / name).read_text())
        for name in tracked()
        if name.startswith(("hack/", "Makefile", ".ci/", "benchmarks/", "Dockerfile"))
        and name not in (APT, PURGES)
        and not name.endswith(".md")
    }
    assert {name: found for name, found in calls.items() if found} == {}


def test_no_debian_mirror_address_is_written_in_the_repository() -> None:
    written = [
        name
        for name in tracked()
        if not name.startswith("tests/")
        and re.search(r"https?://[\w.-]*debian\.org", (ROOT / name).read_text(errors="replace"))
    ]
    assert written == []
