"""hack/apt.sh, the one way the project calls apt, against the machine's real apt: two installs
at once both succeed (the image build and the node's dependencies did not, on a fresh
machine), and an install waits for another program's lock on the package lists.

Two tiny Debian packages that nothing of ours uses are installed and purged again; the record
of what the project installed is restored afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.prerequisites import skip_or_fail

pytestmark = pytest.mark.e2e

APT = ROOT / "hack" / "apt.sh"
RECORD = Path("/var/lib/clusterip-guard/apt-installed")
PACKAGES = ("hello", "figlet")  # no dependency beyond libc6
STALE = {"APT_LISTS_MAX_AGE": "0"}  # every install updates the lists first: the lock they race


def installed(package: str) -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", package],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return "install ok installed" in status.stdout


def purge(*packages: str) -> None:
    subprocess.run(
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "purge", "-y", *packages],
        capture_output=True, check=False, timeout=600,
    )  # fmt: skip


def apt(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(APT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
    )  # fmt: skip


@pytest.fixture
def throwaway_packages() -> Iterator[tuple[str, ...]]:
    if sys.platform != "linux" or shutil.which("apt-get") is None:
        skip_or_fail("no apt-get on this machine")
    if os.geteuid() != 0:
        skip_or_fail("installing Debian packages needs root")
    present = [package for package in PACKAGES if installed(package)]
    if present:
        skip_or_fail(f"{', '.join(present)} installed already: this test would purge it")
    record = RECORD.read_bytes() if RECORD.exists() else None
    try:
        yield PACKAGES
    finally:
        purge(*PACKAGES)
        if record is None:
            RECORD.unlink(missing_ok=True)
        else:
            RECORD.write_bytes(record)


def test_two_installs_at_once_both_succeed(throwaway_packages: tuple[str, ...]) -> None:
    runs = [apt("install", package, env=STALE) for package in throwaway_packages]
    said = [run.communicate(timeout=900)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], said
    assert all(installed(package) for package in throwaway_packages)
    assert set(RECORD.read_text().split()) >= set(throwaway_packages)


def test_an_install_waits_while_another_program_holds_the_lists_lock(
    throwaway_packages: tuple[str, ...],
) -> None:
    # apt locks with fcntl (POSIX record locks): this holder takes the same lock apt-get update
    # takes, says so, and lets go when told to.
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, sys\n"
            "lock = open('/var/lib/apt/lists/lock', 'w')\n"
            "fcntl.lockf(lock, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.readline()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdin is not None
    assert holder.stdout is not None
    install: subprocess.Popen[str] | None = None
    try:
        assert holder.stdout.readline().strip() == "held"
        install = apt("install", throwaway_packages[0], env=STALE)
        assert install.stderr is not None
        said = []
        for line in install.stderr:  # the install says it waits before the lock is let go
            said.append(line)
            if "holds the package lists' lock: waiting" in line:
                break
        assert said, "the install said nothing"
        assert "waiting" in said[-1], said
        holder.stdin.write("release\n")
        holder.stdin.flush()
        _, rest = install.communicate(timeout=900)
        assert install.returncode == 0, "".join(said) + rest
    finally:
        holder.kill()
        holder.communicate()
        if install is not None and install.poll() is None:
            install.kill()
            install.communicate()
    assert installed(throwaway_packages[0])
