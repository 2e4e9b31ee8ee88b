"""The fuzzer itself, briefly: `make fuzz` runs it for 100,000 inputs (docs/security.md)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_a_short_fuzzing_run_finds_no_5xx_no_crash_and_flat_memory() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--inputs", "400"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout.splitlines()[-1]
    assert summary.startswith("| 400 |")
    assert summary.endswith("| 0 |")  # problems
