"""Telemetry of the circuit breaker and the lockout guard: events, rejections, the state gauge."""

from __future__ import annotations

import gc
import json
import sys
import threading

import httpx
import pytest
from opentelemetry.trace import SpanKind

from adapters import get2dial
from adapters.simulators import RunningServer
from resilience import (
    BreakerStatistics,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Classify,
    LockedOutError,
    LockoutGuard,
    Stack,
)
from resilience import _events as ev
from resilience._telemetry_breaker import BreakerWatch
from resilience.testing import VirtualClock
from tests.test_telemetry_support import (  # noqa: F401 - fixtures
    Otel,
    otel_fixture,
    scripted_server_fixture,
    token,
)

pytestmark = pytest.mark.anyio


def circuits(otel: Otel) -> dict[str, int]:
    points = otel.metrics().get("resilience.breaker.circuits", [])
    return {str(p.attributes[ev.BREAKER_STATE]): p.value for p in points}


async def test_breaker_decisions_and_state_gauge(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker(consecutive_failures=2, open_for=10.0, half_open_probes=1,
                             clock=clock)  # fmt: skip
    stack = Stack(breaker, Classify(), telemetry=otel.telemetry(clock))
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        await client.get(f"{scripted_server.url}/status/200")
        assert circuits(otel) == {"closed": 1, "open": 0, "half_open": 0}
        for _ in range(2):
            await client.get(f"{scripted_server.url}/status/503")
        with pytest.raises(CircuitOpenError):
            await client.get(f"{scripted_server.url}/status/200")
        assert circuits(otel) == {"closed": 0, "open": 1, "half_open": 0}
        clock.advance(10.0)
        assert circuits(otel) == {"closed": 0, "open": 0, "half_open": 1}
        await client.get(f"{scripted_server.url}/status/200")  # the probe succeeds
        assert circuits(otel) == {"closed": 1, "open": 0, "half_open": 0}
        for _ in range(2):
            await client.get(f"{scripted_server.url}/status/503")
        assert circuits(otel)["open"] == 1
        clock.advance(100_000.0)  # long forgotten: the circuit expired
        assert (circuits(otel)["open"], circuits(otel)["half_open"]) == (0, 0)

    calls = otel.spans(SpanKind.INTERNAL)
    assert len(calls) == 7
    assert len(otel.spans(SpanKind.CLIENT)) == 6  # the rejected call sent nothing
    (opened,) = calls[2].events
    assert opened.name == ev.BREAKER_STATE_CHANGED
    assert (opened.attributes[ev.PREVIOUS_STATE], opened.attributes[ev.BREAKER_STATE]) == (
        "closed",
        "open",
    )
    assert "127.0.0.1" not in str(opened.attributes[ev.KEY])
    (rejected,) = calls[3].events
    assert rejected.name == ev.BREAKER_REJECTED
    assert rejected.attributes[ev.RETRY_AFTER] == pytest.approx(10.0)
    assert calls[3].attributes["error.type"] == "CircuitOpenError"
    counts = otel.event_counts()
    assert counts[ev.BREAKER_REJECTED] == 1
    assert counts[ev.BREAKER_STATE_CHANGED] >= 3  # closed->open, open->half_open, ->closed


async def test_lockout_engaged_then_rejected(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(LockoutGuard(clock=clock), Classify(get2dial.classifier),
                  telemetry=otel.telemetry(clock))  # fmt: skip
    login = {"email": "ops@example.com", "password": "not-it", "tenant_domain": "acme"}
    async with httpx.AsyncClient(base_url=scripted_server.url, transport=stack.transport()) as c:
        for _ in range(5):  # half of Get2Dial's 10 failed logins: the guard's budget
            response = await c.post("/api/v1/auth/login", content=json.dumps(login))
            assert response.status_code == 401
        with pytest.raises(LockedOutError):
            await c.post("/api/v1/auth/login", content=json.dumps(login))
    calls = otel.spans(SpanKind.INTERNAL)
    engaged = [e for e in calls[4].events if e.name == ev.LOCKOUT_ENGAGED]
    assert len(engaged) == 1
    assert engaged[0].attributes[ev.REASON] == "local budget spent"
    (rejected,) = calls[5].events
    assert rejected.name == ev.LOCKOUT_REJECTED
    assert calls[5].attributes["error.type"] == "LockedOutError"
    assert "ops@example.com" not in str(rejected.attributes)
    assert otel.event_counts() == {ev.LOCKOUT_ENGAGED: 1, ev.LOCKOUT_REJECTED: 1}
    assert len(otel.spans(SpanKind.CLIENT)) == 5


async def test_the_gauge_reads_from_the_sdks_export_thread_too(
    otel: Otel, scripted_server: RunningServer
) -> None:
    """A periodic reader collects in a thread of its own, where no event loop runs: an open
    circuit must still be counted (its clock could not be read there, once, and the gauge
    vanished exactly while a circuit was open)."""
    breaker = CircuitBreaker(consecutive_failures=2, open_for=10.0)  # the default clock
    stack = Stack(breaker, Classify(), telemetry=otel.telemetry())
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        for _ in range(2):
            await client.get(f"{scripted_server.url}/status/503")
        seen: list[dict[str, int]] = []
        reader = threading.Thread(target=lambda: seen.append(circuits(otel)))
        reader.start()
        reader.join()
    assert seen == [{"closed": 0, "open": 1, "half_open": 0}]


async def test_two_telemetries_on_one_meter_provider_count_every_breaker(
    otel: Otel, scripted_server: RunningServer
) -> None:
    """A meter keeps one gauge of a name, with one callback: both stacks' breakers in it."""
    breakers = [CircuitBreaker(consecutive_failures=1), CircuitBreaker(consecutive_failures=1)]
    stacks = [Stack(b, Classify(), telemetry=otel.telemetry()) for b in breakers]
    for stack in stacks:
        async with httpx.AsyncClient(transport=stack.transport()) as client:
            await client.get(f"{scripted_server.url}/status/503")
    assert circuits(otel) == {"closed": 0, "open": 2, "half_open": 0}


async def test_one_breaker_in_two_stacks_with_two_telemetries_is_counted_once(
    otel: Otel, scripted_server: RunningServer
) -> None:
    shared, other = CircuitBreaker(consecutive_failures=1), CircuitBreaker(consecutive_failures=1)
    stacks = [
        Stack(shared, Classify(), telemetry=otel.telemetry()),
        Stack(shared, Classify(), telemetry=otel.telemetry()),
        Stack(other, Classify(), telemetry=otel.telemetry()),
    ]
    for stack in stacks[::2]:
        async with httpx.AsyncClient(transport=stack.transport()) as client:
            await client.get(f"{scripted_server.url}/status/503")
    assert circuits(otel) == {"closed": 0, "open": 2, "half_open": 0}


def test_watching_and_collecting_from_two_threads_at_once_is_safe() -> None:
    """The SDK's export thread collects while the loop's thread builds stacks (and so watches
    more breakers): without a lock, iterating the watched breakers raised "dictionary changed
    size during iteration" about once in twenty collections."""
    watch, errors, keep = BreakerWatch(), [], []
    for _ in range(200):
        breaker = CircuitBreaker()
        keep.append(breaker)
        watch.watch(breaker)

    def build() -> None:
        for _ in range(3000):
            breaker = CircuitBreaker()
            keep.append(breaker)
            watch.watch(breaker)

    def collect() -> None:
        for _ in range(300):
            errors.extend(_collect_error(watch))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as it can be
    try:
        threads = [threading.Thread(target=build), threading.Thread(target=collect)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


def _collect_error(watch: BreakerWatch) -> list[RuntimeError]:
    try:
        list(watch.observe())
    except RuntimeError as exc:
        return [exc]
    return []


def test_breakers_are_watched_once_and_held_weakly() -> None:
    watch = BreakerWatch()
    breaker = CircuitBreaker()
    watch.watch(breaker)
    watch.watch(breaker)
    assert len(breaker._listeners) == 1
    assert {o.attributes[ev.BREAKER_STATE]: o.value for o in watch.observe()} == {  # type: ignore[index]
        "closed": 0,
        "open": 0,
        "half_open": 0,
    }
    del breaker
    gc.collect()
    assert len(watch._breakers) == 0


class StoreWithoutCounts:
    """A breaker whose store cannot be read without awaiting: statistics know no circuits."""

    max_keys = 2

    def __init__(self) -> None:
        self.listeners: list[object] = []

    def add_listener(self, callback: object) -> None:
        self.listeners.append(callback)

    def statistics(self, key: object = None) -> BreakerStatistics:
        return BreakerStatistics(keys=None, max_keys=2, admitted=0, rejected=0, probes=0,
                                 opened=0, closed=0)  # fmt: skip


def test_without_store_counts_the_gauge_reports_the_last_states_seen() -> None:
    watch = BreakerWatch()
    breaker = StoreWithoutCounts()
    watch.watch(breaker)  # type: ignore[arg-type]
    (follow,) = breaker.listeners
    follow("a", CircuitState.CLOSED, CircuitState.OPEN)  # type: ignore[operator]
    follow("b", CircuitState.CLOSED, CircuitState.OPEN)  # type: ignore[operator]
    follow("c", CircuitState.CLOSED, CircuitState.OPEN)  # type: ignore[operator]  # over the bound
    follow("b", CircuitState.OPEN, CircuitState.HALF_OPEN)  # type: ignore[operator]
    seen = {o.attributes[ev.BREAKER_STATE]: o.value for o in watch.observe()}  # type: ignore[index]
    assert seen == {"closed": 0, "open": 1, "half_open": 1}
    follow("a", CircuitState.OPEN, CircuitState.CLOSED)  # type: ignore[operator]
    seen = {o.attributes[ev.BREAKER_STATE]: o.value for o in watch.observe()}  # type: ignore[index]
    assert seen == {"closed": 0, "open": 0, "half_open": 1}
