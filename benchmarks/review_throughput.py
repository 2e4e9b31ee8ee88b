"""Admission reviews per second for one `clusterip-guard serve` worker, over TLS with keep-alive.

Starts the real server on loopback, drives it with the Go load generator in benchmarks/loadgen
(a separate process, so the client's cost is not charged to the server) and prints a Markdown
table for the README. Usage: python benchmarks/review_throughput.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.builders import admission_review, service  # noqa: E402
from tests.support.webhook_process import ServingFiles, WebhookProcess  # noqa: E402

SCENARIOS: list[tuple[str, str, dict[str, Any]]] = [
    ("mutate NodePort -> ClusterIP patch", "/mutate", admission_review(service("NodePort"))),
    (
        "enforce LoadBalancer -> denial",
        "/validate/enforce",
        admission_review(service("LoadBalancer")),
    ),
    ("audit NodePort -> warning", "/validate/audit", admission_review(service("NodePort"))),
]


def build_loadgen(folder: Path) -> Path:
    binary = folder / "loadgen"
    subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=ROOT / "benchmarks" / "loadgen", check=True
    )
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loadgen = build_loadgen(folder)
        files = ServingFiles(folder / "tls")
        webhook = WebhookProcess(files).start()
        rows: list[str] = []
        try:
            for title, path, review in SCENARIOS:
                body = folder / "review.json"
                body.write_text(json.dumps(review))
                for connections in args.connections:
                    run = subprocess.run(
                        [str(loadgen), "-url", webhook.url + path, "-ca", str(files.ca_file),
                         "-body", str(body), "-c", str(connections), "-d", f"{args.seconds}s"],
                        check=True, capture_output=True, text=True,
                    )  # fmt: skip
                    result = json.loads(run.stdout)
                    rows.append(
                        f"| {title} | {connections} | {result['reviews_per_second']:,.0f} "
                        f"| {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | {result['errors']} |"
                    )
                    print(rows[-1], file=sys.stderr)
        finally:
            webhook.stop()
    print("| scenario | connections | reviews/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
