"""The floor: a bare uvicorn app answering every AdmissionReview with a fixed answer, with no
framework and no work beyond what any webhook must do: read the body and echo the request's
uid (the API server refuses an answer with another uid).

What the webhook reaches is measured against this. `uvloop` is the stack a user gets with
`uvicorn[standard]`: uvloop, httptools, uvicorn's own protocol, no limits (the floor the
webhook is held to). `asyncio` is asyncio's own loop with our protocol and its limits, the
stack `serve` ran on before it moved to uvloop, kept beside it for comparison. ANSWER is
`allow` (the webhook alone), `deny` (through the API server, beside `enforce`) or `patch`
(through the API server, beside `mutate`: allowed with the JSON patch `mutate` returns for the
benchmark's NodePort Service, computed once at start, so that the API server applies the same
patch for both and the difference is the webhook's own work).
Usage: floor.py CERT KEY PORT LOOP [ANSWER]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import sys
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from clusterip_guard.core.decision import Decision, ServiceChange, decide
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.review import build_response
from clusterip_guard.core.types import Mode
from clusterip_guard.server.protocol import guarded_protocol
from clusterip_guard.server.runner import bind, limits_of
from clusterip_guard.server.settings import ServeSettings
from clusterip_guard.server.tls import serving_context

# What follows the echoed uid.
ANSWERS = {
    "allow": b'","allowed":true}}',
    "deny": b'","allowed":false,"status":{"code":403,"message":"denied by the floor"}}}',
}
# The benchmark's NodePort Service as the API server sends it to mutating admission (defaults
# applied, no node port allocated yet: that comes after admission).
BENCH_SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "c0-1", "labels": {"app": "bench"}},
    "spec": {"type": "NodePort", "externalTrafficPolicy": "Cluster", "selector": {"app": "bench"},
             "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
}  # fmt: skip


HEAD = b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"'


def ours(mode: Mode) -> Decision:
    """clusterip-guard's decision in `mode` on BENCH_SERVICE."""
    change = ServiceChange("CREATE", "bench", "c0-1", BENCH_SERVICE)
    return decide(change, mode, PolicySettings(), today=datetime.date.today())


def tail_of(decision: Decision) -> bytes:
    """The answer the webhook writes for `decision`, byte for byte, as a response's tail
    (what follows the echoed uid)."""
    head, _, tail = orjson.dumps(build_response(uid="", decision=decision)).partition(b'""')
    assert head + b'"' == HEAD, head
    return b'"' + tail


# `patch`: mutate's patch alone (no warnings, no audit annotations), so that the API server
# applies the same patch; `enforce` and `mutate`: our whole answers, so that the floor costs
# the API server what our answers cost it.
ANSWERS["patch"] = tail_of(dataclasses.replace(ours("mutate"), warnings=(), audit_annotations={}))
ANSWERS["enforce"] = tail_of(ours("enforce"))
ANSWERS["mutate"] = tail_of(ours("mutate"))
UID = b'"uid":"'


def answering(verdict: str) -> Any:
    tail = ANSWERS[verdict]

    async def fixed_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:  # read the body, as any server must
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # The request's uid is the first in the review (the object's own comes later).
        start = body.find(UID) + len(UID)
        answer = HEAD + body[start : body.find(b'"', start)] + tail
        headers = [(b"content-length", str(len(answer)).encode()),
                   (b"content-type", b"application/json")]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return fixed_answer


def main() -> None:
    cert, key, port, loop = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    verdict = sys.argv[5] if len(sys.argv) > 5 else "allow"
    settings = ServeSettings(cert_file=cert, key_file=key)
    context = serving_context(cert, key)
    config = uvicorn.Config(
        answering(verdict),
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_context_factory=lambda _config, _default: context,
        http=(
            guarded_protocol(limits_of(settings), lambda _reason: None)
            if loop == "asyncio"
            else "httptools"
        ),
        loop="uvloop",
        access_log=False,
        proxy_headers=False,  # as serve's webhook port
        log_config=None,
        lifespan="off",
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    server = uvicorn.Server(config)
    sockets = [bind("127.0.0.1", port)]
    if loop == "asyncio":
        asyncio.run(server.serve(sockets=sockets))
    else:
        server.run(sockets=sockets)


if __name__ == "__main__":
    main()
