"""PNG plots for docs/benchmarks.md from the JSON the two benchmarks write in .dev/bench.

Needs the `bench` extra (matplotlib): `pip install -e '.[bench]'`.
Usage: python benchmarks/plots.py [--into docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.apiserver_admission import RESULTS as APISERVER  # noqa: E402
from benchmarks.apiserver_admission import SETUPS, summary  # noqa: E402
from benchmarks.review_throughput import RESULTS as WEBHOOK  # noqa: E402
from benchmarks.review_throughput import SCENARIOS  # noqa: E402


def latency_plot(into: Path) -> None:
    cells = summary(json.loads(APISERVER.read_text())["runs"])
    panels = [(op, kind) for op in ("create", "update") for kind in ("exposed", "compliant")]
    figure, axes = plt.subplots(1, len(panels), figsize=(16, 4.5), sharey=False)
    for axis, (op, kind) in zip(axes, panels, strict=True):
        for setup in SETUPS:
            points = sorted(
                (c, cell["p50"]) for (s, o, k, c), cell in cells.items()
                if (s, o, k) == (setup, op, kind)
            )  # fmt: skip
            axis.plot([c for c, _ in points], [p for _, p in points], marker="o", label=setup)
        axis.set_title(f"{op}, {kind} Service")
        axis.set_xlabel("concurrent requests")
        axis.set_xscale("log", base=2)
        axis.set_ylabel("p50 latency (ms)")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(into / "apiserver-latency.png", dpi=90)


def workers_plot(into: Path) -> None:
    runs = json.loads(WEBHOOK.read_text())["runs"]
    connections = max(r["connections"] for r in runs)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name in sorted({r["scenario"] for r in runs}, key=[s[0] for s in SCENARIOS].index):
        points = sorted(
            (w, statistics.median(
                r["reviews_per_second"] for r in runs
                if (r["scenario"], r["workers"], r["connections"]) == (name, w, connections)
            ))
            for w in sorted({r["workers"] for r in runs})
        )  # fmt: skip
        axis.plot([w for w, _ in points], [v for _, v in points], marker="o", label=name)
    axis.set_title(f"the webhook alone, {connections} keep-alive TLS connections")
    axis.set_xlabel("worker processes")
    axis.set_xticks(sorted({r["workers"] for r in runs}))
    axis.set_ylabel("reviews/s")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(into / "webhook-workers.png", dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    args.into.mkdir(parents=True, exist_ok=True)
    for results, plot in ((APISERVER, latency_plot), (WEBHOOK, workers_plot)):
        if results.exists():  # each benchmark can be run alone
            plot(args.into)
    return 0


if __name__ == "__main__":
    sys.exit(main())
