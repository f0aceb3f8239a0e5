"""A trivial HTTP server in its own process, for loopback benchmarks.

Run in a separate process so the server does not share the benchmark's GIL. Prints its port on
the first line of stdout, then serves until killed. Answers 200 on every path except
``/status/NNN``, and 503 on everything while started with ``--down``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200 "ok" (or the status in /status/NNN, or 503 everywhere when down)."""
    if scope["type"] != "http":
        return
    status = 503 if DOWN else 200
    if scope["path"].startswith("/status/"):
        status = int(scope["path"].rsplit("/", 1)[1])
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", b"2"), (b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


DOWN = False


@contextlib.contextmanager
def loopback_server(*, down: bool = False) -> Iterator[str]:
    """Start the server in a subprocess; yield its base URL; stop it."""
    args = [sys.executable, "-m", "benchmarks._loopback"] + (["--down"] if down else [])
    # Leaving the ``with`` closes the pipe and waits for the killed server.
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as process:  # noqa: S603
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline())
            yield f"http://127.0.0.1:{port}"
        finally:
            process.kill()


def main() -> None:
    """Serve on a free loopback port; print the port."""
    import socket

    import uvicorn

    global DOWN  # noqa: PLW0603 - a process-wide switch for this one-purpose server
    DOWN = "--down" in sys.argv
    sock = socket.socket()
    # Accepted connections inherit it: a response written as head, then body, must not wait out
    # the client's delayed ACK (about 40 ms a request on Linux loopback).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app,
        log_level="error",
        access_log=False,
        http="h11",
        lifespan="off",
        # Idle pooled connections wait while the other variants run; uvicorn's 5 s default
        # would close them under the client's feet (a keep-alive race, not a server failure).
        timeout_keep_alive=600,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
