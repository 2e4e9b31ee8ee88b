"""Fuzzing `clusterip-guard serve` over HTTPS: AdmissionReview-shaped and random bodies.

Starts the real server on loopback and sends it mutated AdmissionReviews (a key dropped, a
value replaced by any JSON, nesting, huge numbers, truncation, a flipped byte, odd text) and
random bytes, on one kept-alive connection. Fails when any answer is a 5xx, is not one line
of JSON where a 4xx is, when the server dies, or when its memory does not come back near its
resting level. Prints a Markdown summary for docs/security.md.

    python benchmarks/fuzz.py --inputs 100000      # make fuzz
    python benchmarks/fuzz.py --inputs 500         # the short run the tests make
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.builders import admission_review, service  # noqa: E402
from tests.support.webhook_process import ServingFiles, WebhookProcess  # noqa: E402

PATHS = ["/mutate", "/validate/enforce", "/validate/audit"]
SETTLE_SECONDS = 15.0  # the server gives a burst's memory back within a few seconds
MEMORY_SLACK_KIB = 40 * 1024


def bases() -> list[dict[str, Any]]:
    return [
        admission_review(service("NodePort")),
        admission_review(service("LoadBalancer", externalTrafficPolicy="Local")),
        admission_review(service(externalIPs=["203.0.113.7", "10.0.0.1"])),
        admission_review(service("NodePort"), operation="UPDATE", old=service("NodePort")),
        admission_review(service(), operation="UPDATE", old=service("LoadBalancer")),
        admission_review(service("NodePort"), dry_run=True),
    ]


def any_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.randint(-(2**70), 2**70)
    if choice == 3:
        return rng.uniform(-1e300, 1e300)
    if choice == 4:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(12)))
    if choice == 5:
        return rng.choice(
            ["", "NodePort", "LoadBalancer", "ClusterIP", "ExternalName", "1.2.3.4", "::1",
             "0.0.0.0/0", "UPDATE", "CREATE", "DELETE", "Service"]
        )  # fmt: skip
    if choice == 6:
        return rng.randint(0, 70000)
    if choice == 7:
        return []
    if choice in (8, 9):
        return [any_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["type", "ports", "nodePort", "spec", "metadata", "x"]):
            any_json(rng, depth + 1) for _ in range(rng.randrange(4))}  # fmt: skip


def paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_in(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_in(child, (*prefix, index))
    return found


def mutated(rng: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    review = copy.deepcopy(base)
    for _ in range(rng.randrange(1, 4)):
        path = rng.choice(paths_in(review)[1:])
        parent: Any = review
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.3 and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = any_json(rng)
    return review


def body_for(rng: random.Random, base: dict[str, Any]) -> tuple[bytes, str]:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(200)), "random bytes"
    text = json.dumps(mutated(rng, base) if kind > 1 else base)
    if kind == 2:
        return text[: rng.randrange(len(text))].encode(), "truncated"
    data = bytearray(text.encode())
    if kind == 3:
        data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data), "a flipped byte"
    if kind == 4:
        depth = rng.choice([10, 70, 1000, 100_000])
        return text.replace('"labels": {', '"deep": ' + "[" * depth + "]" * depth + ', "labels": {',
                            1).encode(), "deep nesting"  # fmt: skip
    if kind == 5:
        return text.replace('"port": 80', '"port": ' + "9" * rng.choice([20, 400, 5000]),
                            1).encode(), "huge numbers"  # fmt: skip
    return bytes(data), "mutated review"


def resident_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    statuses: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = ServingFiles(Path(tmp) / "tls")
        webhook = WebhookProcess(files).start()
        assert webhook.process is not None
        started = time.monotonic()
        try:
            with httpx.Client(base_url=webhook.url, verify=files.client_context(),
                              timeout=10) as client:  # fmt: skip
                time.sleep(2)
                resting = resident_kib(webhook.process.pid)
                peak = resting
                for number, base in enumerate(rng.choice(bases()) for _ in range(args.inputs)):
                    body, kind = body_for(rng, base)
                    content_type = "application/json" if rng.random() < 0.97 else "text/plain"
                    reply = client.post(rng.choice(PATHS), content=body,
                                        headers={"content-type": content_type})  # fmt: skip
                    statuses[str(reply.status_code)] += 1
                    if reply.status_code >= 500:
                        problems.append(f"{kind}: {reply.status_code} {reply.text[:200]}")
                    elif reply.status_code >= 400:
                        try:
                            error = reply.json().get("error", "")
                        except ValueError:
                            error = ""
                        if not isinstance(error, str) or not error or "\n" in error:
                            problems.append(
                                f"{kind}: a {reply.status_code} without one line: "
                                f"{reply.text[:120]!r}"
                            )
                    if number % 1000 == 0:
                        peak = max(peak, resident_kib(webhook.process.pid))
                    if problems and len(problems) > 20:
                        break
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + SETTLE_SECONDS
            while time.monotonic() < deadline:
                settled = resident_kib(webhook.process.pid)
                if settled < resting + MEMORY_SLACK_KIB:
                    break
                time.sleep(1)
            if webhook.process.poll() is not None:
                problems.append("the server died")
            if settled >= resting + MEMORY_SLACK_KIB:
                problems.append(f"memory did not settle: {settled} KiB, resting {resting} KiB")
        finally:
            webhook.stop()
    total = sum(statuses.values())
    print("| inputs | seconds | by status | resting MiB | peak MiB | after MiB | problems |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    by_status = ", ".join(f"{code}: {count:,}" for code, count in sorted(statuses.items()))
    print(f"| {total:,} | {elapsed:.0f} | {by_status} | {resting // 1024} | {peak // 1024} "
          f"| {settled // 1024} | {len(problems)} |")  # fmt: skip
    for problem in problems[:20]:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
