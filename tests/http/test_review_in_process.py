"""benchmarks/review_in_process.py, briefly: it drives the real endpoint (docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_the_in_process_benchmark_times_every_part_of_a_review() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "review_in_process.py"), "--reviews", "50"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    rows = dict(line.strip("|").rsplit("|", 1) for line in run.stdout.splitlines()[2:])
    figures = {label.strip(): float(micros) for label, micros in rows.items()}
    assert len(figures) == 8
    assert all(micros > 0 for micros in figures.values())
