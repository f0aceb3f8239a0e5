"""A plain ASGI app for the core's behaviour tests, served for real on 127.0.0.1.

Each path answers one kind of awkward response that a proxy or a vendor can send. The vendor
simulators (adapters.simulators) are used for vendor behaviour; this app is for the core.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import pytest

from adapters.simulators import RunningServer, serve

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HUGE_SIZE = 10 * 1024 * 1024
HUGE_PREFIX = b'{"error": "huge", "code": "huge_body", "pad": "'
PROXY_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def _huge_body() -> bytes:
    body = HUGE_PREFIX + b"x" * (HUGE_SIZE - len(HUGE_PREFIX) - 2) + b'"}'
    assert len(body) == HUGE_SIZE
    return body


HUGE_BODY = _huge_body()
#: 16 MiB of error body in about 16 KiB of gzip: what a bound on the peeked bytes alone would
#: still inflate in full.
GZIP_BOMB_BODY = b'{"error": "bad field", "pad": "' + b"x" * (16 * 1024 * 1024) + b'"}'

# path -> (status, headers, body); bodies are bytes sent in one piece.
FIXED: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {
    "/proxy-502": (502, [(b"content-type", b"text/html")], PROXY_HTML),
    "/invalid-json": (500, [(b"content-type", b"application/json")], b'{"error": "trunc'),
    "/json-array": (400, [(b"content-type", b"application/json")], b'["a", "b"]'),
    "/json-string": (400, [(b"content-type", b"application/json")], b'"just a string"'),
    "/not-utf8": (400, [(b"content-type", b"application/json")], b'{"error": "\xff\xfe\xfa"}'),
    "/status-599": (599, [], b"unknown"),
    "/huge": (500, [(b"content-type", b"application/json")], HUGE_BODY),
    "/gzip": (
        422,
        [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")],
        gzip.compress(b'{"error": "bad field", "code": "validation_error"}'),
    ),
    "/gzip-bomb": (
        422,
        [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")],
        gzip.compress(GZIP_BOMB_BODY, compresslevel=9),
    ),
    "/ok": (200, [(b"content-type", b"text/plain")], b"fine"),
}

CHUNK = b"c" * 16_384
CHUNKS = 200  # 3.2 MB, sent without Content-Length (chunked)


async def core_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer by path; ``/status/NNN`` answers that status; ``/echo`` echoes the request."""
    assert scope["type"] == "http"
    path: str = scope["path"]
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if path in FIXED:
        status, headers, payload = FIXED[path]
        headers = [*headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        return
    if path in {"/chunked-error", "/chunked-ok"}:
        status = 503 if path == "/chunked-error" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        for _ in range(CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    # /echo and everything else: what we received, as JSON.
    payload = json.dumps(
        {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body.decode("utf-8", "replace"),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="session")
def core_server() -> Iterator[RunningServer]:
    """The core app, served on 127.0.0.1 for the whole session."""
    with serve(core_app) as server:
        yield server
