"""Serve an ASGI app on 127.0.0.1 through uvicorn, in a background thread.

The server runs its own asyncio loop in its own thread, so the code under test can run on any
event loop (asyncio or trio) and in virtual time without the server's timers being affected.
Needs the ``demo`` extra (uvicorn).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import attrs

__all__ = ["RunningServer", "serve"]


@attrs.frozen
class RunningServer:
    """A server that is up: its base URL, host and port."""

    url: str
    host: str
    port: int


@contextlib.contextmanager
def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
) -> Iterator[RunningServer]:
    """Serve ``app`` until the ``with`` block ends.

    Args:
        app: An ASGI 3 application.
        host: The address to bind; loopback by default and in every test.
        port: The port; 0 picks a free one.
        startup_timeout: Seconds to wait for the server to accept connections.

    Yields:
        The running server's address.
    """
    import uvicorn  # noqa: PLC0415 - optional dependency (the demo extra)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it a response written as two segments (head,
    # then body) waits out the client's delayed ACK: about 40 ms a request on Linux loopback.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        http="h11",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{bound_port}", daemon=True
    )
    thread.start()
    ready = threading.Event()
    for _ in range(int(startup_timeout / 0.01)):
        if server.started or not thread.is_alive():
            ready.set()
            break
        ready.wait(0.01)
    if not server.started:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()
        raise RuntimeError(f"ASGI server on {host}:{bound_port} did not start")
    try:
        yield RunningServer(url=f"http://{host}:{bound_port}", host=host, port=bound_port)
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()
