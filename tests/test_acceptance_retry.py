"""Issue 3 (Retry) acceptance: the points no other test drove through real loopback sockets.

Each test names the point of the issue it closes. Timing is virtual (an injected
:class:`~resilience.testing.VirtualClock`) except where the point is about real time: a
cancellation during a real sleep must return promptly, so those use the event loop's clock and
measure how long the cancellation took. Every test runs on asyncio and trio.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import anyio
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer, serve
from resilience import _events as ev
from resilience.testing import NO_BACKOFF, VirtualClock, without_backoff

from .test_retry import IdempotencyKeyClassifier, closed_port
from .test_retry_scripted import Attempts, EventLog, hits, scripted, token

pytestmark = pytest.mark.anyio

__all__ = ["scripted"]  # the module-scoped server fixture

STEADY = resilience.Backoff(initial=1.0, maximum=10.0, jitter="none")
JITTERS = ("full", "equal", "decorrelated", "none")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def stack(
    clock: resilience.Clock, *layers: resilience._layer.LayerLike, **retry: Any
) -> resilience.Stack:
    """``Retry`` (steady 1 s backoff, seeded rng, the given settings), ``layers``, ``Classify``.

    A ``classifier=`` keyword goes to ``Classify``; everything else to ``Retry``.
    """
    classifier = retry.pop("classifier", resilience.HTTPClassifier())
    settings: dict[str, Any] = {"backoff": STEADY, "clock": clock, "rng": random.Random(7)}
    settings.update(retry)
    return resilience.Stack(resilience.Retry(**settings), *layers, resilience.Classify(classifier))


def client(server: RunningServer, s: resilience.Stack, **transport: Any) -> httpx.AsyncClient:
    inner = httpx.AsyncHTTPTransport(**transport)
    return httpx.AsyncClient(base_url=server.url, transport=s.transport(inner))


# -- 1. Backoff: every jitter mode, capped, reproducible from the injected rng ---------------


@pytest.mark.parametrize("jitter", JITTERS)
async def test_each_jitter_sleeps_exactly_what_the_seeded_backoff_says(
    scripted: RunningServer, clock: VirtualClock, jitter: str
) -> None:
    backoff = resilience.Backoff(initial=1.0, maximum=5.0, multiplier=3.0, jitter=jitter)  # type: ignore[arg-type]
    s = stack(clock, backoff=backoff, attempts=6, rng=random.Random(2024))
    async with client(scripted, s) as c:
        response = await c.get(f"/script/{token()}", params={"s": "503"})
    assert response.status_code == 503
    # The same seed, the same formula: the layer sleeps exactly these, retry after retry.
    rng, previous, expected = random.Random(2024), None, []
    for retry in range(1, 6):
        previous = backoff.delay(retry, rng, previous)
        expected.append(previous)
    assert clock.sleeps == expected
    for retry, slept in enumerate(clock.sleeps, 1):
        assert 0.0 <= slept <= backoff.maximum  # capped: ceilings 1, 3, 5, 5, 5
        if jitter != "decorrelated":
            assert slept <= backoff.ceiling(retry)


# -- 2. Retry-After as an HTTP-date, measured against the response's own Date header ---------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(epoch: float, form: str) -> str:
    """``epoch`` in one of RFC 9110's three HTTP-date forms (locale-independent)."""
    t = time.gmtime(epoch)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    month = _MONTHS[t.tm_mon - 1]
    if form == "imf":  # Sun, 06 Nov 1994 08:49:37 GMT
        return f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {month} {t.tm_year} {clock} GMT"
    if form == "rfc850":  # Sunday, 06-Nov-94 08:49:37 GMT
        return f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d}-{month}-{t.tm_year % 100:02d} {clock} GMT"
    return f"{_DAYS[t.tm_wday]} {month} {t.tm_mday:2d} {clock} {t.tm_year}"  # asctime


DATED: dict[str, int] = {}


async def dated_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/dated/<form>/<token>``: first a 503 whose Retry-After is an HTTP-date 5 s ahead of
    the server's own clock (in ``form``, or ``garbage``), then 200. The server (uvicorn) adds its
    ``Date`` header to every response, as real servers do."""
    assert scope["type"] == "http"
    _, _, form, key = scope["path"].split("/", 3)
    seen = DATED[key] = DATED.get(key, 0) + 1
    headers = [(b"content-length", b"2")]
    status = 200
    if seen == 1:
        status = 503
        value = "soon, maybe" if form == "garbage" else http_date(math.floor(time.time()) + 5, form)
        headers.append((b"retry-after", value.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def dated() -> Iterator[RunningServer]:
    with serve(dated_app) as running:
        yield running


@pytest.mark.parametrize("form", ["imf", "rfc850", "asctime"])
async def test_an_http_date_retry_after_is_measured_against_the_response_date(
    dated: RunningServer, clock: VirtualClock, form: str
) -> None:
    # The local wall clock is a day fast: measured against it, the date would be long past (0 s).
    skewed = resilience.HTTPClassifier(wall=lambda: time.time() + 86_400.0)
    log = EventLog()
    s = resilience.Stack(
        log,
        resilience.Retry(backoff=STEADY, clock=clock),
        resilience.Classify(skewed),
    )
    async with client(dated, s) as c:
        response = await c.get(f"/dated/{form}/{token()}")
    assert response.status_code == 200
    (slept,) = clock.sleeps
    # Date has one-second resolution and the server refreshes it about once a second.
    assert 4.0 <= slept <= 8.0
    (scheduled,) = log.named(ev.RETRY_SCHEDULED)
    assert scheduled[ev.DELAY_SOURCE] == "retry_after"


async def test_a_garbage_retry_after_falls_back_to_the_backoff(
    dated: RunningServer, clock: VirtualClock
) -> None:
    log = EventLog()
    s = resilience.Stack(log, resilience.Retry(backoff=STEADY, clock=clock), resilience.Classify())
    async with client(dated, s) as c:
        response = await c.get(f"/dated/garbage/{token()}")
    assert response.status_code == 200
    assert clock.sleeps == [1.0]
    (scheduled,) = log.named(ev.RETRY_SCHEDULED)
    assert scheduled[ev.DELAY_SOURCE] == "backoff"


# -- 3. The Retry layer ----------------------------------------------------------------------


async def test_retry_and_gate_wait_out_one_retry_after_once_not_twice(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    gate = resilience.RetryAfterGate(clock=clock)
    t = token()
    async with client(scripted, stack(clock, gate)) as c:
        response = await c.get(f"/script/{t}", params={"s": "429,200", "ra": "3"})
    assert response.status_code == 200
    assert clock.sleeps == [3.0]  # the retry's sleep; the gate's hold has ended by then
    assert resilience.outcome(response).waited == 3.0
    assert len(hits(t)) == 2
    assert gate.statistics().waits == 0


async def test_a_backoff_sleep_that_would_outlive_the_cancel_scope_is_not_started(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    slow = resilience.Backoff(initial=20.0, maximum=20.0, jitter="none")
    s = resilience.Stack(log, resilience.Retry(backoff=slow, clock=clock), resilience.Classify())
    async with client(scripted, s) as c:
        with anyio.move_on_after(10):
            response = await c.get(f"/script/{t}", params={"s": "503,200"})
    assert response.status_code == 503  # returned at once, not cut by the scope
    assert clock.sleeps == []
    assert len(hits(t)) == 1
    assert log.named(ev.RETRY_GIVEN_UP)[0][ev.REASON] == "deadline"


async def test_a_read_timeout_may_have_been_sent_so_only_idempotent_requests_are_resent(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    timeout = httpx.Timeout(5.0, read=0.05)
    gets, posts, keyed = token(), token(), token()
    s = stack(clock, classifier=IdempotencyKeyClassifier())
    async with httpx.AsyncClient(
        base_url=scripted.url, transport=s.transport(), timeout=timeout
    ) as c:
        with pytest.raises(httpx.ReadTimeout):  # re-raised as itself when retries run out
            await c.get(f"/hang/{gets}")
        with pytest.raises(httpx.ReadTimeout):
            await c.post(f"/hang/{posts}", json={"call": "+15550100"})
        with pytest.raises(httpx.ReadTimeout):
            await c.post(
                f"/hang/{keyed}", json={"call": "+15550100"}, headers={"Idempotency-Key": "op-7"}
            )
    assert len(hits(gets)) == 3
    assert len(hits(posts)) == 1  # a duplicated POST is a duplicated phone call
    assert [h.body for h in hits(keyed)] == [b'{"call":"+15550100"}'] * 3


async def test_discarded_error_bodies_larger_than_the_peek_are_closed(
    core_server: RunningServer, clock: VirtualClock
) -> None:
    # A 10 MB error body and a 3.2 MB chunked one: the stack reads 64 KiB of each to classify
    # it, and must close every one it discards, or the single connection is never given back.
    s = stack(clock, backoff=NO_BACKOFF, budget=None)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with client(core_server, s, limits=limits) as c:
        c.timeout = httpx.Timeout(10.0, pool=2.0)
        for path in ["/huge", "/chunked-error"] * 5:
            async with c.stream("GET", path) as response:
                assert response.status_code in {500, 503}
                assert resilience.outcome(response).attempts == 3
        with anyio.fail_after(5):
            assert (await c.get("/ok")).text == "fine"


# -- 5. Retry budget: spent, the last exception comes back unchanged -------------------------


async def test_a_spent_budget_reraises_the_transport_error_as_itself(clock: VirtualClock) -> None:
    count = Attempts(clock.now)
    log = EventLog()
    none_left = resilience.RetryBudget(ratio=0.0, min_per_second=0.0)
    s = resilience.Stack(
        log,
        resilience.Retry(attempts=5, backoff=STEADY, budget=none_left, clock=clock),
        count,
        resilience.Classify(),
    )
    async with httpx.AsyncClient(transport=s.transport(httpx.AsyncHTTPTransport())) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{closed_port()}/x")
    assert len(count) == 1
    assert clock.sleeps == []
    assert log.named(ev.BUDGET_EXHAUSTED)
    assert log.named(ev.RETRY_GIVEN_UP)[0][ev.REASON] == "budget_exhausted"
    assert none_left.statistics().refused == 1


# -- 8. Cancellation during a real sleep returns promptly, sends nothing more ----------------


class _Signal:
    """A stack entry (outermost) that sets ``event`` when the call reports decision ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.event = anyio.Event()

    def __call__(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        signal = self

        class _Transport(resilience.LayerTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                def listen(name: str, attributes: object) -> None:
                    if name == signal.name:
                        signal.event.set()

                resilience._context.call_context(request).listen(listen)
                return await self.inner.handle_async_request(request)

        return _Transport(inner)


async def _cancel_when(signal: _Signal, call: Callable[[], Awaitable[object]]) -> float:
    """Run ``call``, cancel it once ``signal`` fires; return the seconds the cancel took."""
    cancelled_at = 0.0
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await call()
            pytest.fail("the call was not cancelled")

        tg.start_soon(run)
        with anyio.fail_after(5):
            await signal.event.wait()
        cancelled_at = anyio.current_time()
        tg.cancel_scope.cancel()
    return anyio.current_time() - cancelled_at


async def test_a_cancel_during_a_real_backoff_sleep_returns_promptly(
    scripted: RunningServer,
) -> None:
    t = token()
    signal = _Signal(ev.RETRY_SCHEDULED)
    budget = resilience.RetryBudget()
    long = resilience.Backoff(initial=30.0, maximum=30.0, jitter="none")
    s = resilience.Stack(
        signal, resilience.Retry(backoff=long, budget=budget), resilience.Classify()
    )
    async with client(scripted, s) as c:
        took = await _cancel_when(signal, lambda: c.get(f"/script/{t}", params={"s": "503,200"}))
    assert took < 1.0  # not the 30 s the sleep asked for
    assert len(hits(t)) == 1  # never retried
    assert budget.statistics().retries == 1  # the retry was granted, then cancelled: no more


async def test_a_cancel_during_a_real_gate_wait_returns_promptly(scripted: RunningServer) -> None:
    t = token()
    signal = _Signal(ev.GATE_WAIT)
    gate = resilience.RetryAfterGate()
    s = resilience.Stack(signal, gate, resilience.Classify())
    async with client(scripted, s) as c:
        held = await c.get(f"/script/{t}", params={"s": "429,200", "ra": "30"})
        assert held.status_code == 429
        took = await _cancel_when(signal, lambda: c.get(f"/script/{t}"))
    assert took < 1.0
    assert len(hits(t)) == 1  # the waiting request was never sent
    stats = gate.statistics()
    assert (stats.waits, stats.rejected) == (1, 0)


# -- 7. resilience.testing -------------------------------------------------------------------


def test_without_backoff_keeps_the_stacks_telemetry() -> None:
    custom = resilience.Telemetry(client_spans=False)
    for telemetry in (custom, None):
        original = resilience.Stack(resilience.Retry(), resilience.Classify(), telemetry=telemetry)
        assert without_backoff(original).telemetry is telemetry


# -- 1. Backoff: a regression hypothesis found ------------------------------------------------


def test_a_tiny_initial_times_a_huge_power_does_not_overflow() -> None:
    # 3.25 ** 603 is past the float range although 5e-324 * 3.25 ** 603 is far below 1.
    backoff = resilience.Backoff(initial=5e-324, maximum=1.0, multiplier=3.25)
    assert 0.0 < backoff.ceiling(603) <= backoff.ceiling(604) <= backoff.maximum
    assert backoff.ceiling(10**6) == backoff.maximum
    assert 0.0 <= backoff.delay(604, random.Random(1)) <= backoff.maximum
