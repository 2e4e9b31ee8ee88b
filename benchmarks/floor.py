"""The floor: the webhook's server stack (uvicorn, uvloop, httptools, our TLS context and
connection limits) answering one fixed AdmissionReview, with no framework and no work.

What the webhook reaches is measured against this. `asyncio` runs it on asyncio's own event
loop, as `serve` does (its connection caps need asyncio's Python-level accept, see
server/accepting.py); `uvloop` on uvicorn's default loop. Usage: floor.py CERT KEY PORT LOOP
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import uvicorn

from clusterip_guard.server.protocol import guarded_protocol
from clusterip_guard.server.runner import bind, limits_of
from clusterip_guard.server.settings import ServeSettings
from clusterip_guard.server.tls import serving_context

ANSWER = (
    b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":'
    b'{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}'
)
HEADERS = [(b"content-length", str(len(ANSWER)).encode()), (b"content-type", b"application/json")]


async def fixed_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the body, as any server must
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def main() -> None:
    cert, key, port, loop = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    settings = ServeSettings(cert_file=cert, key_file=key)
    context = serving_context(cert, key)
    config = uvicorn.Config(
        fixed_answer,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_context_factory=lambda _config, _default: context,
        http=guarded_protocol(limits_of(settings), lambda _reason: None),
        access_log=False,
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
