"""Helpers shared by the breaker and lockout guard tests: small ASGI apps served on 127.0.0.1.

No tests here: the apps, a test classifier with a login rule, and an event recorder.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx

import resilience
from resilience._context import call_context

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Events = list[tuple[str, dict[str, object]]]


async def _body(receive: Receive) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def _answer(send: Send, status: int, payload: bytes = b"", headers: Any = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class FlakyApp:
    """Answers ``status`` (settable) to everything; ``/status/NNN`` answers NNN; ``/hang``
    waits until released. Counts what reaches it, to prove the breaker did not send."""

    def __init__(self) -> None:
        self.status = 503
        self.hits = 0
        self.received = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await _body(receive)
        self.hits += 1
        path: str = scope["path"]
        if path == "/hang":
            self.received.set()
            while not self.release.is_set():  # noqa: ASYNC110 - the server's own loop, a thread
                await asyncio.sleep(0.005)
            await _answer(send, 200)
            return
        status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else self.status
        await _answer(send, status)


LOCKED_MESSAGE = "account temporarily locked"


class LoginApp:
    """A Get2Dial-like login endpoint: ``POST /login`` with ``{"email", "password"}``.

    The password is ``right``. Ten failed logins for an email within 15 minutes lock it: every
    later login answers 403 ``account temporarily locked`` (with ``Retry-After`` when
    ``retry_after`` is set). ``/status/NNN`` answers NNN; anything else is 200. ``outage`` answers
    logins with that status instead, before the login runs or, with ``outage_after_login``, after.
    """

    def __init__(self, *, limit: int = 10, retry_after: int | None = None) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.failures: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.other = 0
        self.received = threading.Event()
        self.release = threading.Event()
        self.hang = False
        self.outage: int | None = None  # answer logins with this status (a server fault)
        self.outage_after_login = False  # run the login (count a failure), then answer `outage`
        self.inflight = 0
        self.max_inflight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = await _body(receive)
        path: str = scope["path"]
        if path.startswith("/status/"):
            await _answer(send, int(path.rsplit("/", 1)[1]))
            return
        if path != "/login":
            self.other += 1
            await _answer(send, 200, b"{}")
            return
        data = resilience.json_object(body)
        email = data.get("email") if data else None
        if not isinstance(email, str):
            await _answer(send, 400, b'{"error": "bad request"}')
            return
        self.attempts[email] = self.attempts.get(email, 0) + 1
        self.inflight += 1
        self.max_inflight[email] = max(self.max_inflight.get(email, 0), self.inflight)
        try:
            await self._login(send, data, email)
        finally:
            self.inflight -= 1

    async def _login(self, send: Send, data: Mapping[str, object], email: str) -> None:
        if self.hang:
            self.received.set()
            while not self.release.is_set():  # noqa: ASYNC110 - the server's own loop, a thread
                await asyncio.sleep(0.005)
        if self.outage is not None and not self.outage_after_login:
            await _answer(send, self.outage)
            return
        # A tiny pause, so overlapping logins would be seen overlapping.
        await asyncio.sleep(0.002)
        if self.failures.get(email, 0) >= self.limit:
            headers = []
            if self.retry_after is not None:
                headers.append((b"retry-after", str(self.retry_after).encode()))
            payload = json.dumps({"error": LOCKED_MESSAGE}).encode()
            await _answer(send, self.outage or 403, payload, headers)
            return
        if data.get("password") != "right":
            self.failures[email] = self.failures.get(email, 0) + 1
            await _answer(send, self.outage or 401, b'{"error": "invalid credentials"}')
            return
        self.failures.pop(email, None)
        await _answer(send, self.outage or 200, b'{"token": "t0k3n"}')


class LoginClassifier(resilience.HTTPClassifier):
    """Test rules: ``POST /login`` is a login (10 failures in 15 min lock for 15 min)."""

    def __init__(self) -> None:
        super().__init__(name="test-login")

    def login(self, request: httpx.Request) -> resilience.Login | None:
        if request.method != "POST" or request.url.path != "/login":
            return None
        data = resilience.json_object(request.content)
        email = data.get("email") if data else None
        if not isinstance(email, str):
            return None
        return resilience.Login(
            identity=resilience.fingerprint(email.lower()),
            max_failures=10,
            window=900.0,
            lockout=900.0,
        )

    def classify_status(
        self,
        request: httpx.Request,
        response: httpx.Response,
        error: resilience.VendorError | None,
    ) -> resilience.Classification:
        verdict = super().classify_status(request, response, error)
        if response.status_code == 403 and error is not None and LOCKED_MESSAGE in error.message:
            return resilience.Classification(
                kind=resilience.Kind.LOCKED_OUT, error=error, vendor=self.name
            )
        return verdict

    def parse_error(self, response: httpx.Response, body: bytes) -> resilience.VendorError | None:
        data = resilience.json_object(body)
        if response.status_code < 400:
            return None
        message = data.get("error") if data else None
        return resilience.VendorError(
            status=response.status_code,
            message=message if isinstance(message, str) else response.reason_phrase,
        )


def recording(events: Events) -> Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]:
    """A stack entry that records every decision event of the calls passing through it."""

    def listener(name: str, attributes: Mapping[str, object]) -> None:
        events.append((name, dict(attributes)))

    class _Recording(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            call_context(request).listen(listener)
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    return _Recording
