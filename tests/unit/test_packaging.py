"""`pip install .` installs the package `clusterip_guard` and the `clusterip-guard` command,
and nothing else at the top level (no package called `app` to collide with a user's)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.paths import ROOT


def test_the_wheel_holds_one_package_and_the_command(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("clusterip_guard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {
            name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
        }
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert top_level == {"clusterip_guard"}
    assert "clusterip_guard/core/decision.py" in names
    # The report CRDs `scan --install-crds` applies travel with the package.
    assert "clusterip_guard/crds/wgpolicyk8s.io_policyreports.yaml" in names
    assert "clusterip_guard/crds/openreports.io_reports.yaml" in names
    assert "clusterip-guard = clusterip_guard.cli.main:main" in scripts
