"""Where things are in the repository, for tests that run its scripts and read its files."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = ROOT / "tests" / "data"
LOCALCLUSTER = ROOT / "hack" / "controlplane" / "localcluster"
