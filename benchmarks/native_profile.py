"""Where the API server spends its time on a governed write, per engine: a CPU profile.

The latency benchmark (apiserver_admission.py) says what a write costs the client; its spread
on this machine (0.5 ms and more between runs) is wider than what separates the native engine
from the hand-written policies. The API server's own metric for admission policies
(apiserver_validating_admission_policy_check_duration_seconds) times only the validation
expressions: not the match conditions, and not the message expressions, which the API server
evaluates apart, with the variables computed again. So this script takes the API server's CPU
profile (/debug/pprof/profile) while one setup's writes run, and reports the CPU each write
spent in each part of admission: the policy plugins (all they do: match conditions,
variables, validations, messages, patches), CEL evaluation within them, and the webhook
plugin. At concurrency 1 a write waits for every one of them, so their CPU is latency.

Usage: python benchmarks/native_profile.py [--seconds 20 --concurrency 4] [--setups ...]
Needs the control plane (make controlplane) and Go (the load client, go tool pprof).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path[:0] = [str(ROOT / "hack"), str(ROOT / "hack" / "controlplane")]

from benchmarks.apiserver_admission import (  # noqa: E402
    SETUPS,
    Client,
    cluster_with_policies,
    namespace_of,
)
from benchmarks.progress import wait_for_quiet  # noqa: E402
from tests.support.kubectl import Kubectl  # noqa: E402

PROFILED = ("VAP", "native enforce", "MAP", "native mutate")
# part of admission -> the functions whose stacks it is (go tool pprof -focus)
PARTS = {
    "validating policies": r"policy/validating\.\(\*Plugin\)\.Validate",
    "mutating policies": r"policy/mutating\.\(\*Plugin\)\.Admit",
    "CEL evaluation": r"cel-go/cel\.\(\*prog\)\.",
    "namespace selectors": r"LabelSelectorAsSelector",
    "webhooks": r"plugin/webhook/(validating|mutating)\.",
}
REQUESTS = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def service_writes(kubectl: Kubectl) -> float:
    """Service creates and updates the API server has answered so far."""
    total = 0.0
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        match = REQUESTS.match(line)
        if (
            match
            and 'resource="services"' in match["labels"]
            and ('verb="POST"' in match["labels"] or 'verb="PATCH"' in match["labels"])
            and 'subresource=""' in match["labels"]
        ):
            total += float(match["value"])
    return total


def seconds_in(profile: Path, focus: str | None) -> float:
    """CPU seconds of the profile's samples whose stacks hold `focus` (all, when None)."""
    command = ["go", "tool", "pprof", "-top", "-nodefraction=0", "-nodecount=1000000"]
    if focus is not None:
        command.append(f"-focus={focus}")
    text = subprocess.run(
        [*command, str(profile)], capture_output=True, text=True, check=True
    ).stdout
    # Every node shown: what they account for is every focused sample.
    shown = re.search(r"Showing nodes accounting for (?P<seconds>[\d.]+)(?P<unit>m?s)", text)
    if shown is None:
        return 0.0
    value = float(shown["seconds"])
    return value / 1000 if shown["unit"] == "ms" else value


def profile_setup(
    kubectl: Kubectl, client: Client, setup: str, op: str, *, seconds: int, concurrency: int
) -> dict[str, Any]:
    namespace = namespace_of(setup)
    common = ["-namespace", namespace, "-c", str(concurrency)]
    if op == "update":
        client("-op", "prepare", "-prefix", "u", *common)
    load: dict[str, Any] = {}
    profiled = threading.Event()

    def run_load() -> None:
        # Rounds of writes until the profile is taken: what runs past it is not counted.
        for batch in itertools.count():
            # An update patches the prepared Services u-0.. again; a create makes new ones.
            prefix = "u" if op == "update" else f"p{batch}"
            load.update(client("-op", op, "-type", "NodePort", "-prefix", prefix,
                               "-n", "500", *common))  # fmt: skip
            if profiled.is_set():
                return

    writer = threading.Thread(target=run_load)
    writer.start()
    time.sleep(2)  # past the warm-up
    before = service_writes(kubectl)
    with tempfile.NamedTemporaryFile(suffix=".pprof", delete=False) as out:
        profile = Path(out.name)
    taken = subprocess.run(
        ["kubectl", f"--kubeconfig={kubectl.kubeconfig}", "get", "--raw",
         f"/debug/pprof/profile?seconds={seconds}"],
        capture_output=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    profile.write_bytes(taken.stdout)
    writes = service_writes(kubectl) - before
    profiled.set()
    writer.join()
    client("-op", "cleanup", *common)
    result: dict[str, Any] = {"setup": setup, "op": op, "writes": writes,
                              "p50_ms": load.get("p50_ms")}  # fmt: skip
    result["apiserver CPU"] = seconds_in(profile, None) / writes * 1000
    for part, focus in PARTS.items():
        result[part] = seconds_in(profile, focus) / writes * 1000
    result["profile"] = str(profile)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--setups", nargs="+", default=list(PROFILED))
    parser.add_argument("--ops", nargs="+", default=["create", "update"])
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with cluster_with_policies() as (_, _, kubectl, client):
        for setup in args.setups:
            kubectl("create", "namespace", namespace_of(setup))
            label = SETUPS[setup][0]
            assert label is not None
            kubectl("label", "namespace", namespace_of(setup), label)
        time.sleep(5)  # the policies take effect a moment after they are created
        wait_for_quiet(600)
        for op in args.ops:
            for setup in args.setups:
                row = profile_setup(kubectl, client, setup, op, seconds=args.seconds,
                                    concurrency=args.concurrency)  # fmt: skip
                rows.append(row)
                sys.stderr.write(json.dumps(row) + "\n")
    columns = ["apiserver CPU", *PARTS]
    print("| op | setup | writes | " + " | ".join(f"{c} ms/write" for c in columns) + " |")
    print("|---|---|---:|" + "---:|" * len(columns))
    for row in rows:
        cells = " | ".join(f"{row[c]:.3f}" for c in columns)
        print(f"| {row['op']} | {row['setup']} | {row['writes']:.0f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
