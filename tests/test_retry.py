"""The Retry layer through real loopback sockets, in virtual time, on asyncio and trio."""

from __future__ import annotations

import io
import random
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer
from resilience import _events as ev
from resilience._context import call_context
from resilience._layer import LayerTransport
from resilience.testing import VirtualClock

from .test_retry_scripted import Attempts, EventLog, hits, scripted, token

pytestmark = pytest.mark.anyio

__all__ = ["scripted"]  # the module-scoped server fixture

STEADY = resilience.Backoff(initial=1.0, maximum=10.0, jitter="none")
PLAIN = resilience.HTTPClassifier()


def stack(
    clock: VirtualClock,
    *,
    log: EventLog | None = None,
    count: Attempts | None = None,
    classifier: resilience.Classifier = PLAIN,
    **retry: object,
) -> resilience.Stack:
    settings: dict[str, object] = {"backoff": STEADY, "clock": clock, "rng": random.Random(7)}
    settings.update(retry)
    layers: list[resilience._layer.LayerLike] = []
    if log is not None:
        layers.append(log)
    layers.append(resilience.Retry(**settings))  # type: ignore[arg-type]
    if count is not None:
        layers.append(count)
    layers.append(resilience.Classify(classifier))
    return resilience.Stack(*layers)


def client(server: RunningServer, s: resilience.Stack, **kwargs: object) -> httpx.AsyncClient:
    inner = httpx.AsyncHTTPTransport(**kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(base_url=server.url, transport=s.transport(inner))


class IdempotencyKeyClassifier(resilience.HTTPClassifier):
    """Marks a request carrying an Idempotency-Key as idempotent, as an adapter would."""

    def is_idempotent(self, request: httpx.Request) -> bool:
        return "idempotency-key" in request.headers or super().is_idempotent(request)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- attempts, backoff and Retry-After ------------------------------------------------------


async def test_retries_until_success_with_backoff(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    async with client(scripted, stack(clock, log=log)) as c:
        response = await c.get(f"/script/{t}", params={"s": "503,502,200"})
    assert response.status_code == 200
    assert response.text == "answer 3: 200"
    result = resilience.outcome(response)
    assert (result.attempts, result.waited) == (3, 3.0)
    assert clock.sleeps == [1.0, 2.0]
    scheduled = log.named(ev.RETRY_SCHEDULED)
    assert [e[ev.ATTEMPT] for e in scheduled] == [1, 2]
    assert {e[ev.DELAY_SOURCE] for e in scheduled} == {"backoff"}
    assert scheduled[0][ev.KIND] == "server_error"


async def test_jittered_sleeps_stay_within_the_backoff_bounds(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    backoff = resilience.Backoff(initial=1.0, maximum=4.0, jitter="full")
    async with client(scripted, stack(clock, backoff=backoff, attempts=5)) as c:
        response = await c.get(f"/script/{token()}", params={"s": "503"})
    assert response.status_code == 503
    assert len(clock.sleeps) == 4
    for retry, slept in enumerate(clock.sleeps, 1):
        assert 0.0 <= slept <= backoff.ceiling(retry)


async def test_exhausted_retries_return_the_last_response_unchanged(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    async with client(scripted, stack(clock, log=log)) as c:
        response = await c.get(f"/script/{t}", params={"s": "500,502,503"})
    assert response.status_code == 503
    assert response.text == "answer 3: 503"
    assert len(hits(t)) == 3
    assert log.named(ev.RETRY_GIVEN_UP)[-1][ev.REASON] == "attempts_exhausted"


async def test_retry_after_is_a_floor_for_the_delay(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    log = EventLog()
    async with client(scripted, stack(clock, log=log)) as c:
        response = await c.get(f"/script/{token()}", params={"s": "429,503,200", "ra": "5"})
    assert response.status_code == 200
    assert clock.sleeps == [5.0, 5.0]  # backoff would have been 1 and 2
    assert {e[ev.DELAY_SOURCE] for e in log.named(ev.RETRY_SCHEDULED)} == {"retry_after"}


async def test_backoff_longer_than_retry_after_wins(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    backoff = resilience.Backoff(initial=4.0, maximum=10.0, jitter="none")
    async with client(scripted, stack(clock, backoff=backoff)) as c:
        response = await c.get(f"/script/{token()}", params={"s": "429,200", "ra": "1"})
    assert response.status_code == 200
    assert clock.sleeps == [4.0]


@pytest.mark.parametrize("values", [["30", "30"], ["5", "30"], ["soon", "30"]])
async def test_a_retry_after_sent_twice_is_still_a_floor(
    scripted: RunningServer, clock: VirtualClock, values: list[str]
) -> None:
    """Two Retry-After fields arrive joined ("5, 30"): the longest is waited, never none."""
    params = [("s", "503,200"), *(("ra", value) for value in values)]
    async with client(scripted, stack(clock)) as c:
        response = await c.get(f"/script/{token()}", params=params)
    assert response.status_code == 200
    assert clock.sleeps == [30.0]


async def test_retry_after_above_the_cap_comes_back_at_once(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    async with client(scripted, stack(clock, log=log, max_retry_after=60.0)) as c:
        response = await c.get(f"/script/{t}", params={"s": "429,200", "ra": "120"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "120"
    assert clock.sleeps == []
    assert len(hits(t)) == 1
    assert log.named(ev.RETRY_GIVEN_UP)[0][ev.REASON] == "retry_after_above_max"


async def test_errors_that_will_not_change_are_not_retried(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    async with client(scripted, stack(clock)) as c:
        response = await c.get(f"/script/{t}", params={"s": "404,200"})
    assert response.status_code == 404
    assert len(hits(t)) == 1
    assert resilience.outcome(response).attempts == 1


# -- only what is safe is resent ------------------------------------------------------------


async def test_maybe_sent_post_is_not_resent(scripted: RunningServer, clock: VirtualClock) -> None:
    t = token()
    log = EventLog()
    async with client(scripted, stack(clock, log=log)) as c:
        response = await c.post(f"/script/{t}", params={"s": "503,200"}, json={"call": 1})
    assert response.status_code == 503
    assert len(hits(t)) == 1
    assert log.named(ev.RETRY_GIVEN_UP)[0][ev.REASON] == "not_idempotent"


async def test_refused_post_is_resent_with_the_same_body(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    async with client(scripted, stack(clock)) as c:
        response = await c.post(f"/script/{t}", params={"s": "429,200", "ra": "1"}, json={"n": 1})
    assert response.status_code == 200
    assert [h.body for h in hits(t)] == [b'{"n":1}', b'{"n":1}']


async def test_post_with_an_idempotency_key_is_resent(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    s = stack(clock, classifier=IdempotencyKeyClassifier())
    async with client(scripted, s) as c:
        response = await c.post(
            f"/script/{t}",
            params={"s": "503,200"},
            content=b"payload",
            headers={"Idempotency-Key": "op-1"},
        )
    assert response.status_code == 200
    assert [(h.body, h.headers["idempotency-key"]) for h in hits(t)] == [(b"payload", "op-1")] * 2


async def test_connect_failure_is_resent_for_any_method_and_reraised_as_itself(
    clock: VirtualClock,
) -> None:
    count = Attempts(clock.now)
    s = stack(clock, count=count)
    async with httpx.AsyncClient(transport=s.transport(httpx.AsyncHTTPTransport())) as c:
        with pytest.raises(httpx.ConnectError):
            await c.post(f"http://127.0.0.1:{closed_port()}/calls", json={"to": "+1555"})
    assert len(count) == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_streaming_body_is_never_resent(scripted: RunningServer, clock: VirtualClock) -> None:
    t = token()

    async def body() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    async with client(scripted, stack(clock)) as c:
        response = await c.put(f"/script/{t}", params={"s": "429,200", "ra": "1"}, content=body())
    assert response.status_code == 429
    assert [h.body for h in hits(t)] == [b"part one, part two"]


class _Pipe(io.RawIOBase):
    """A file that reads once and cannot seek, as a pipe or a socket does."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data, self._data = self._data, b""
        return data


_FILES: dict[str, Callable[[], Any]] = {
    "bytes": lambda: b"file bytes",
    "seekable-file": lambda: io.BytesIO(b"file bytes"),
    "pipe": lambda: _Pipe(b"file bytes"),
}


@pytest.mark.parametrize(
    ("kind", "resent"), [("bytes", True), ("seekable-file", True), ("pipe", False)]
)
async def test_a_multipart_body_is_resent_whole_when_its_files_rewind(
    scripted: RunningServer, clock: VirtualClock, kind: str, resent: bool
) -> None:
    t = token()
    file = _FILES[kind]()
    async with client(scripted, stack(clock)) as c:
        response = await c.put(
            f"/script/{t}", params={"s": "503,200"}, data={"note": "n"}, files={"f": file}
        )
    bodies = [h.body for h in hits(t)]
    assert b"file bytes" in bodies[0]
    if resent:
        assert response.status_code == 200
        assert bodies == [bodies[0], bodies[0]]  # the same bytes, file included
    else:  # a second send would carry an empty file: the 503 comes back instead
        assert response.status_code == 503
        assert len(bodies) == 1


async def test_streaming_body_is_resent_when_it_was_never_sent(clock: VirtualClock) -> None:
    count = Attempts(clock.now)

    async def body() -> AsyncIterator[bytes]:
        yield b"never read"

    s = stack(clock, count=count)
    async with httpx.AsyncClient(transport=s.transport(httpx.AsyncHTTPTransport())) as c:
        with pytest.raises(httpx.ConnectError):
            await c.put(f"http://127.0.0.1:{closed_port()}/x", content=body())
    assert len(count) == 3  # a connect failure never read the stream, so it is still whole


async def test_a_pool_of_one_connection_survives_a_hundred_retried_calls(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    s = stack(clock, backoff=resilience.testing.NO_BACKOFF, budget=None)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=scripted.url,
        transport=s.transport(httpx.AsyncHTTPTransport(limits=limits)),
        timeout=httpx.Timeout(5.0, pool=2.0),
    ) as c:
        for _ in range(100):
            response = await c.get(f"/script/{token()}", params={"s": "503,200"})
            assert response.status_code == 200
            assert resilience.outcome(response).attempts == 2


# -- rejections and cancellation ------------------------------------------------------------


class _Reject(LayerTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise resilience.CircuitOpenError("open", request=request, retry_after=1.0)


async def test_rejections_from_inner_layers_are_not_retried(clock: VirtualClock) -> None:
    count = Attempts(clock.now)
    s = resilience.Stack(resilience.Retry(clock=clock), count, _Reject)
    async with httpx.AsyncClient(
        transport=s.transport(httpx.MockTransport(lambda _: httpx.Response(200)))
    ) as c:
        with pytest.raises(resilience.CircuitOpenError):
            await c.get("http://example.test/")
    assert len(count) == 1
    assert clock.sleeps == []


class BlockingClock(VirtualClock):
    """A virtual clock whose sleeps block until cancelled, to cancel a call mid-backoff."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await anyio.sleep_forever()


async def test_cancelling_during_a_backoff_sleep_returns_promptly(scripted: RunningServer) -> None:
    clock = BlockingClock()
    t = token()
    s = stack(clock)
    limits = httpx.Limits(max_connections=1)
    async with client(scripted, s, limits=limits) as c:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await c.get(f"/script/{t}", params={"s": "503,200"})
                pytest.fail("the call was not cancelled")

            tg.start_soon(call)
            await clock.sleeping.wait()
            tg.cancel_scope.cancel()
        assert len(hits(t)) == 1  # never retried
        # The discarded 503 was closed before the sleep: the only connection is free again.
        with anyio.fail_after(5):
            assert (await c.get(f"/script/{token()}")).status_code == 200


async def test_cancelling_an_attempt_is_not_retried(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    count = Attempts(clock.now)
    async with client(scripted, stack(clock, count=count)) as c:
        with anyio.move_on_after(0.2) as scope:
            await c.get(f"/hang/{token()}")
    assert scope.cancelled_caught
    assert len(count) == 1
    assert clock.sleeps == []


# -- deadlines ------------------------------------------------------------------------------


async def test_no_sleep_ends_after_the_deadline(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    async with client(scripted, stack(clock, log=log, deadline=4.0, attempts=5)) as c:
        response = await c.get(f"/script/{t}", params={"s": "503"})
    # 1 s, then 2 s (ends at 3 < 4); the next, 4 s, would end after the deadline.
    assert clock.sleeps == [1.0, 2.0]
    assert response.status_code == 503
    assert len(hits(t)) == 3
    assert log.named(ev.RETRY_GIVEN_UP)[-1][ev.REASON] == "deadline"
    assert log.named(ev.DEADLINE_EXCEEDED)


async def test_retry_after_past_the_deadline_comes_back_at_once(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    async with client(scripted, stack(clock, deadline=10.0, max_retry_after=10.0)) as c:
        response = await c.get(f"/script/{token()}", params={"s": "503,200", "ra": "10"})
    assert response.status_code == 503
    assert clock.sleeps == []


class _PastDeadline(LayerTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call_context(request).deadline = -1.0
        return await self.inner.handle_async_request(request)


async def test_a_deadline_already_past_raises_without_sending(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    s = resilience.Stack(log, _PastDeadline, resilience.Retry(clock=clock), resilience.Classify())
    async with client(scripted, s) as c:
        with pytest.raises(resilience.DeadlineExceededError) as caught:
            await c.get(f"/script/{t}")
    assert isinstance(caught.value, httpx.TimeoutException)
    assert hits(t) == []
    assert log.named(ev.DEADLINE_EXCEEDED)


async def test_the_deadline_cuts_an_attempt_in_flight(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    """The attempt may have reached the server, so the error is a timeout, not a RejectedError
    (whose promise is that nothing was sent: code may resend on it)."""
    count = Attempts(clock.now)
    async with client(scripted, stack(clock, count=count, deadline=0.2)) as c:
        with pytest.raises(httpx.TimeoutException) as caught:
            await c.post(f"/hang/{token()}", content=b"amount=100")
    assert not isinstance(caught.value, resilience.RejectedError)
    assert "deadline ran out during attempt 1" in str(caught.value)
    assert len(count) == 1


async def test_the_attempt_timeout_cuts_and_retries_what_is_safe(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    gets, posts = Attempts(clock.now), Attempts(clock.now)
    async with client(scripted, stack(clock, count=gets, attempt_timeout=0.1, attempts=2)) as c:
        with pytest.raises(httpx.TimeoutException) as caught:
            await c.get(f"/hang/{token()}")
    async with client(scripted, stack(clock, count=posts, attempt_timeout=0.1, attempts=2)) as c:
        with pytest.raises(httpx.TimeoutException):
            await c.post(f"/hang/{token()}", content=b"x")
    assert not isinstance(caught.value, resilience.DeadlineExceededError)
    assert "attempt timed out" in str(caught.value)
    assert len(gets) == 2
    assert len(posts) == 1  # a POST that may have been sent is not resent


async def test_the_call_deadline_is_set_on_the_context(clock: VirtualClock) -> None:
    seen: list[float | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(call_context(request).deadline)
        return httpx.Response(200)

    s = resilience.Stack(resilience.Retry(clock=clock, deadline=30.0))
    async with httpx.AsyncClient(transport=s.transport(httpx.MockTransport(handler))) as c:
        await c.get("http://example.test/")
    assert seen == [clock.now() + 30.0]


async def test_no_sleep_outlives_the_cancel_scope(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    async with client(scripted, stack(clock)) as c:
        with anyio.fail_after(10):
            response = await c.get(f"/script/{t}", params={"s": "503,200", "ra": "30"})
    assert response.status_code == 503
    assert clock.sleeps == []
    assert len(hits(t)) == 1


async def test_failures_that_are_not_transport_errors_are_not_retried(clock: VirtualClock) -> None:
    count = Attempts(clock.now)

    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in a transport")

    s = resilience.Stack(resilience.Retry(clock=clock), count, resilience.Classify())
    async with httpx.AsyncClient(transport=s.transport(httpx.MockTransport(handler))) as c:
        with pytest.raises(RuntimeError, match="a bug"):
            await c.get("http://api.test/")
    assert len(count) == 1
