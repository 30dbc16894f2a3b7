"""The probe benchmark's target: a tiny HTTP server that answers every request `200 ok`.

It runs in its own process (uvicorn with uvloop + httptools, the fastest stock setup),
so the CPU it spends answering is not counted against the scheduler under test. It binds
port 0 itself and prints the port on the first line of stdout; the parent reads it and
kills this process when done.

    .venv/bin/python bench/probe_target.py
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        while message["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"ok"})


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    print(listener.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=75,  # like nginx: a probe every 60 s reuses its connection
    )
    uvicorn.Server(config).run(sockets=[listener])  # `run` installs uvloop; `serve` would not
    sys.exit(0)


if __name__ == "__main__":
    main()
