"""A scripted loopback server for the retry and gate tests, and the Retry layer's settings.

``GET|POST /script/<token>?s=503,429,200&ra=2`` answers the statuses in turn (the last one
repeats), with ``Retry-After: <ra>`` on every error; ``/hang/<token>`` answers after 5 s. Every
request is recorded in :data:`HITS` under its token, so a test can count what reached the server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import attrs
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer, serve
from resilience._context import call_context
from resilience._layer import LayerTransport

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@attrs.frozen
class Hit:
    method: str
    body: bytes
    headers: dict[str, str]


HITS: dict[str, list[Hit]] = {}


async def scripted_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    _, kind, token = scope["path"].split("/", 2)
    lists = parse_qs(scope["query_string"].decode())
    query = {k: v[0] for k, v in lists.items()}
    hits = HITS.setdefault(token, [])
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    hits.append(Hit(scope["method"], body, headers))
    if kind == "hang":
        await asyncio.sleep(5)
    if "d" in query:  # a slow answer: d seconds
        await asyncio.sleep(float(query["d"]))
    statuses = [int(s) for s in query.get("s", "200").split(",")]
    status = statuses[min(len(hits), len(statuses)) - 1]
    out = [(b"content-type", b"text/plain")]
    if status >= 400:  # each ra=... a Retry-After field of its own (ra=30&ra=30: sent twice)
        out.extend((b"retry-after", value.encode()) for value in lists.get("ra", []))
    # 204 and 304 have no body (RFC 9110 15.3.5, 15.4.5): h11 refuses to send one.
    payload = b"" if status in (204, 304) else f"answer {len(hits)}: {status}".encode()
    if payload:
        out.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": payload})


def token() -> str:
    return uuid.uuid4().hex


def hits(token: str) -> list[Hit]:
    return HITS.get(token, [])


@pytest.fixture(scope="module")
def scripted() -> Iterator[RunningServer]:
    with serve(scripted_app) as running:
        yield running


class EventLog:
    """A stack entry (outermost) that records every decision event of the calls through it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def __call__(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return _Listen(inner, self)

    def named(self, name: str) -> list[dict[str, object]]:
        return [attributes for event, attributes in self.events if event == name]


class _Listen(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, log: EventLog) -> None:
        super().__init__(inner)
        self.log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call_context(request).listen(
            lambda event, attributes: self.log.events.append((event, dict(attributes)))
        )
        return await self.inner.handle_async_request(request)


class Attempts:
    """A stack entry that counts the physical attempts passing through it, with their times."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.times: list[float] = []

    def __call__(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return _Count(inner, self)

    def __len__(self) -> int:
        return len(self.times)


class _Count(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, log: Attempts) -> None:
        super().__init__(inner)
        self.log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.times.append(self.log.clock())
        return await self.inner.handle_async_request(request)


# -- the scripted server itself ------------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_scripted_server_follows_its_script(scripted: RunningServer) -> None:
    t = token()
    async with httpx.AsyncClient(base_url=scripted.url) as client:
        statuses = [
            (await client.get(f"/script/{t}", params={"s": "503,200", "ra": "3"})).status_code
            for _ in range(3)
        ]
        first = await client.get(f"/script/{token()}", params={"s": "429", "ra": "3"})
    assert statuses == [503, 200, 200]
    assert first.headers["retry-after"] == "3"
    assert len(hits(t)) == 3


# -- settings that contradict each other are refused when the layer is built -----------------


@pytest.mark.parametrize("attempts", [0, -1])
def test_zero_attempts_is_refused(attempts: int) -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        resilience.Retry(attempts=attempts)


def test_attempt_timeout_above_the_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match=r"attempt_timeout \(5.0 s\) is above the deadline"):
        resilience.Retry(deadline=2.0, attempt_timeout=5.0)


def test_retry_after_cap_above_the_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match=r"max_retry_after \(30.0 s\) is above the deadline"):
        resilience.Retry(deadline=10.0, max_retry_after=30.0)


def test_default_retry_after_cap_follows_a_short_deadline() -> None:
    assert resilience.Retry().max_retry_after == 60.0
    assert resilience.Retry(deadline=5.0).max_retry_after == 5.0
    assert resilience.Retry(deadline=5.0, attempt_timeout=5.0).attempt_timeout == 5.0


@pytest.mark.parametrize(
    "kwargs",
    [{"deadline": 0.0}, {"attempt_timeout": -1.0}, {"max_retry_after": -1.0}, {"backoff": 1.0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        resilience.Retry(**kwargs)  # type: ignore[arg-type]


def test_two_retry_layers_in_one_stack_are_refused() -> None:
    with pytest.raises(ValueError, match="multiply attempts"):
        resilience.Stack(resilience.Retry(), resilience.Retry())


def test_describe_shows_every_default() -> None:
    (retry, gate) = resilience.Stack(resilience.Retry(), resilience.RetryAfterGate()).describe()
    assert retry["attempts"] == 3
    assert retry["backoff"] == resilience.Backoff(initial=0.5, maximum=30.0)
    assert retry["max_retry_after"] == 60.0
    assert retry["deadline"] is None
    assert retry["attempt_timeout"] is None
    assert isinstance(retry["budget"], resilience.RetryBudget)
    assert gate["max_wait"] == 60.0
    assert "_store" not in gate


def test_each_retry_gets_its_own_default_budget() -> None:
    first, second = resilience.Retry(), resilience.Retry()
    assert first.budget is not None
    assert first.budget is not second.budget
