"""Issue 4 (CircuitBreaker, LockoutGuard) acceptance: the bullets no other test fully drove.

Through real loopback sockets where the bullet is about calls, on asyncio and trio, in virtual
time; the memory bounds are driven through the layers' own transports at a scale sockets would
make slow, and checked on every structure that could grow with the number of keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.lowlevel
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer, serve
from resilience import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Classify,
    LockedOutError,
    LockoutGuard,
    Stack,
)
from resilience._lockout_core import Account
from resilience._telemetry_breaker import BreakerWatch
from resilience.testing import VirtualClock
from tests.stores import SuspendingStore
from tests.test_breaker_support import FlakyApp, LoginApp, LoginClassifier

pytestmark = pytest.mark.anyio

S = TypeVar("S")
R = TypeVar("R")
CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
ALICE = "alice@example.com"


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyApp, RunningServer]]:
    app = FlakyApp()
    with serve(app) as server:
        try:
            yield app, server
        finally:
            app.release.set()


@pytest.fixture
def login_server() -> Iterator[tuple[LoginApp, RunningServer]]:
    app = LoginApp()
    with serve(app) as server:
        try:
            yield app, server
        finally:
            app.release.set()


def _client(breaker: CircuitBreaker, url: str) -> httpx.AsyncClient:
    stack = Stack(breaker, Classify())
    return httpx.AsyncClient(base_url=url, transport=stack.transport(), timeout=5.0)


def _circuit(breaker: CircuitBreaker, server: RunningServer) -> resilience.CircuitStatistics:
    circuit = breaker.statistics(("http", "127.0.0.1", server.port)).circuit
    assert circuit is not None
    return circuit


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (real time, bounded) until ``condition()`` holds: a server thread must catch up."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - set by the server's thread, not a task
            await anyio.sleep(0.005)


# -- the failure ratio is over a sliding time window -----------------------------------------


async def test_failures_that_left_the_window_no_longer_count(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    _, server = flaky
    breaker = CircuitBreaker(
        clock=clock, failure_ratio=0.5, minimum_calls=4, consecutive_failures=0, window=10.0
    )
    async with _client(breaker, server.url) as client:
        for _ in range(3):
            await client.get("/status/500")
        clock.advance(11.0)  # the three failures leave the 10 s window
        for status in (200, 200, 200, 500):  # 1 of 4 in the window; 4 of 7 without sliding
            assert (await client.get(f"/status/{status}")).status_code == status
        circuit = _circuit(breaker, server)
        assert (circuit.state, circuit.calls, circuit.failures) == (CLOSED, 4, 1)
        await client.get("/status/500")  # 2 of 5: still under the ratio
        await client.get("/status/500")  # 3 of 6: the ratio is reached
        with pytest.raises(CircuitOpenError):
            await client.get("/status/200")


# -- half-open: a limited number of probes, however many callers arrive at once ---------------


async def test_half_open_lets_only_its_probes_through_to_a_crowd(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, open_for=5.0, half_open_probes=2)
    results: list[object] = []

    async def call(client: httpx.AsyncClient) -> None:
        try:
            results.append((await client.get("/hang")).status_code)
        except CircuitOpenError as exc:
            results.append(exc)

    async with _client(breaker, server.url) as client:
        await client.get("/status/503")
        clock.advance(5.0)
        hits = app.hits
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(call, client)
            await _until(lambda: len(results) == 18 and app.hits == hits + 2)
            circuit = _circuit(breaker, server)
            assert (circuit.state, circuit.probes_in_flight) == (HALF, 2)
            app.release.set()  # both probes succeed
    rejected = [r for r in results if isinstance(r, CircuitOpenError)]
    assert len(rejected) == 18
    assert {r.retry_after for r in rejected} == {None}  # waiting on probes, not on a timer
    assert results.count(200) == 2
    assert app.hits == hits + 2
    assert _circuit(breaker, server).state is CLOSED


# -- keys stay bounded: idle ones expire, a flood of new ones cannot grow memory --------------


async def test_keys_through_real_sockets_stay_bounded_and_idle_ones_expire(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    app.status = 200
    breaker = CircuitBreaker(
        clock=clock, max_keys=50, window=10.0, key=lambda r: r.headers["x-tenant"]
    )
    async with _client(breaker, server.url) as client:
        for tenant in range(150):
            await client.get("/", headers={"x-tenant": str(tenant)})
        assert breaker.statistics().keys == 50
        clock.advance(10.0)  # every circuit has been idle for a whole window
        for _ in range(20):  # later traffic sweeps the idle ones
            await client.get("/", headers={"x-tenant": "hot"})
    assert breaker.statistics().keys == 1


class _Answer(httpx.AsyncBaseTransport):
    """The cheapest inner transport: no network, so a flood of keys stays quick."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status)


async def test_a_flood_of_failing_keys_grows_no_structure_past_its_bound(
    clock: VirtualClock,
) -> None:
    # Every key fails once and trips (consecutive_failures=1): each is open, and each one is
    # remembered by the circuit store and by the telemetry gauge's follower. Both stay bounded.
    breaker = CircuitBreaker(
        clock=clock, max_keys=500, consecutive_failures=1, key=lambda r: r.extensions["tenant"]
    )
    watch = BreakerWatch()
    watch.watch(breaker)
    transport = breaker.wrap(_Answer(503))
    request = httpx.Request("GET", "https://api.example.com/")
    for tenant in range(20_000):
        request.extensions["tenant"] = tenant
        await transport.handle_async_request(request)
    stats = breaker.statistics()
    assert (stats.keys, stats.opened) == (500, 20_000)
    (follower,) = breaker._listeners
    assert len(follower._not_closed) <= 500  # type: ignore[attr-defined]
    gauge = {o.attributes["resilience.breaker.state"]: o.value for o in watch.observe()}  # type: ignore[index]
    assert sum(gauge.values()) <= 500
    assert len(breaker._store._locks) == 0  # type: ignore[attr-defined]


async def test_a_flood_of_identities_stays_within_the_guards_bound(clock: VirtualClock) -> None:
    """Past the bound the guard refuses new identities instead of forgetting failures: an
    evicted account's budget would start again, and its failures would add up at the vendor."""
    guard = LockoutGuard(clock=clock, max_keys=300)
    transport = Stack(guard, Classify(LoginClassifier())).transport(_Answer(401))

    async def login(n: int) -> None:
        request = httpx.Request(
            "POST", "https://api.example.com/login", json={"email": f"u{n}@example.com"}
        )
        with contextlib.suppress(LockedOutError):
            await transport.handle_async_request(request)

    for n in range(3_000):
        await login(n)
    stats = guard.statistics()
    assert (stats.identities, stats.failed_logins, stats.rejected) == (300, 300, 2_700)
    assert (stats.waiting, len(guard._store._locks)) == (0, 0)  # type: ignore[attr-defined]
    for n in range(300):  # the identities held keep their budgets: 4 more failures each
        for _ in range(4):
            await login(n)
    assert guard.statistics().failed_logins == 300 * 5
    clock.advance(900.0)  # the window passes: room again
    await login(3_000)
    assert guard.statistics().failed_logins == 300 * 5 + 1


# -- LockoutGuard behind any async store ------------------------------------------------------


async def _login(client: httpx.AsyncClient, email: str, password: str, out: list[object]) -> None:
    try:
        response = await client.post("/login", json={"email": email, "password": password})
        out.append(response.status_code)
    except LockedOutError as exc:
        out.append(exc)


async def test_the_guard_keeps_its_promise_behind_a_suspending_store(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    store: SuspendingStore[Account] = SuspendingStore()
    guard = LockoutGuard(clock=clock, store=store)
    stack = Stack(guard, Classify(LoginClassifier()))
    results: list[object] = []
    async with httpx.AsyncClient(base_url=server.url, transport=stack.transport()) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(_login, client, ALICE, "wrong", results)
        assert results.count(401) == 5
        assert sum(isinstance(r, LockedOutError) for r in results) == 15
        clock.advance(900.0)  # the failures leave the window
        ok: list[object] = []
        await _login(client, ALICE, "right", ok)
        assert ok == [200]
    assert app.attempts[ALICE] == 6
    assert app.max_inflight[ALICE] == 1
    assert store.calls > 20
    assert guard.statistics().identities is None  # a store that cannot be read without awaiting


async def test_a_locked_identity_is_refused_at_once_while_others_log_in(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    # The vendor said "locked": logins for that identity fail at once, without sending, and a
    # login of another identity in flight neither delays that refusal nor is touched by it.
    app, server = login_server
    app.failures[ALICE] = 10
    guard = LockoutGuard(clock=clock)
    stack = Stack(guard, Classify(LoginClassifier()))
    async with httpx.AsyncClient(base_url=server.url, transport=stack.transport()) as client:
        locked = await client.post("/login", json={"email": ALICE, "password": "right"})
        assert locked.status_code == 403
        app.hang = True
        results: list[object] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_login, client, "bob@example.com", "right", results)  # in flight
            await _until(app.received.is_set)
            with anyio.fail_after(1):
                with pytest.raises(LockedOutError) as caught:
                    await client.post("/login", json={"email": ALICE, "password": "right"})
            app.release.set()
    assert caught.value.retry_after == 900.0
    assert results == [200]
    assert app.attempts[ALICE] == 1
    assert clock.sleeps == []
