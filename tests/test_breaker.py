"""CircuitBreaker through real loopback sockets, on asyncio and trio, in virtual time."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Hashable, Iterator
from typing import TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer, serve
from resilience import CircuitBreaker, CircuitOpenError, CircuitState, Classify, Stack
from resilience import _events as ev
from resilience._breaker_core import Circuit
from resilience._redact import key_fingerprint
from resilience.testing import VirtualClock
from tests.stores import SuspendingStore
from tests.test_breaker_support import Events, FlakyApp, recording

pytestmark = pytest.mark.anyio

R = TypeVar("R")
CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyApp, RunningServer]]:
    app = FlakyApp()
    with serve(app) as server:
        try:
            yield app, server
        finally:
            app.release.set()


def _client(breaker: CircuitBreaker, url: str, events: Events | None = None) -> httpx.AsyncClient:
    layers = [recording(events)] if events is not None else []
    stack = Stack(*layers, breaker, Classify())
    return httpx.AsyncClient(base_url=url, transport=stack.transport(), timeout=5.0)


def _key(server: RunningServer) -> Hashable:
    return ("http", "127.0.0.1", server.port)


async def test_consecutive_server_errors_open_it_and_open_rejects_without_sending(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=3, open_for=5.0)
    events: Events = []
    async with _client(breaker, server.url, events) as client:
        for _ in range(3):
            assert (await client.get("/x")).status_code == 503
        assert app.hits == 3
        with pytest.raises(CircuitOpenError) as caught:
            await client.get("/x")
        assert caught.value.retry_after == 5.0
        clock.advance(2.0)
        with pytest.raises(CircuitOpenError) as caught:
            await client.post("/y", json={"a": 1})
        assert caught.value.retry_after == 3.0
    assert app.hits == 3  # rejected calls never reached the server
    stats = breaker.statistics(_key(server))
    assert (stats.admitted, stats.rejected, stats.opened) == (3, 2, 1)
    assert stats.circuit is not None
    assert stats.circuit.state is OPEN
    assert stats.circuit.retry_after == 3.0
    hashed = key_fingerprint(_key(server))
    assert (
        ev.BREAKER_STATE_CHANGED,
        {ev.KEY: hashed, ev.BREAKER_STATE: "open", ev.PREVIOUS_STATE: "closed"},
    ) in events
    rejected = [a for name, a in events if name == ev.BREAKER_REJECTED]
    assert rejected == [
        {ev.KEY: hashed, ev.RETRY_AFTER: 5.0},
        {ev.KEY: hashed, ev.RETRY_AFTER: 3.0},
    ]
    assert str(server.port) not in repr(events)


async def test_the_failure_ratio_opens_it_once_there_are_enough_calls(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    breaker = CircuitBreaker(
        clock=clock, failure_ratio=0.5, minimum_calls=10, consecutive_failures=0, window=60.0
    )
    async with _client(breaker, server.url) as client:
        for _ in range(4):
            await client.get("/status/200")
            await client.get("/status/500")
        circuit = breaker.statistics(_key(server)).circuit
        assert circuit is not None
        assert (circuit.state, circuit.calls, circuit.failures) == (CLOSED, 8, 4)
        assert circuit.failure_ratio == 0.5
        await client.get("/status/200")
        await client.get("/status/502")  # 5 of 10
        with pytest.raises(CircuitOpenError):
            await client.get("/status/200")
    assert app.hits == 10


async def test_client_errors_429_and_not_found_never_count(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    _, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=2, minimum_calls=2)
    async with _client(breaker, server.url) as client:
        for status in (400, 401, 403, 404, 409, 422, 429, 429, 501) * 3:
            assert (await client.get(f"/status/{status}")).status_code == status
    circuit = breaker.statistics(_key(server)).circuit
    assert circuit is not None
    assert (circuit.state, circuit.failures, circuit.calls) == (CLOSED, 0, 27)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_network_errors_count(clock: VirtualClock) -> None:
    port = _free_port()  # nothing listens there: connection refused
    breaker = CircuitBreaker(clock=clock, consecutive_failures=2)
    async with _client(breaker, f"http://127.0.0.1:{port}") as client:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await client.get("/")
        with pytest.raises(CircuitOpenError) as caught:
            await client.get("/")
    assert isinstance(caught.value, httpx.TransportError)
    circuit = breaker.statistics(("http", "127.0.0.1", port)).circuit
    assert circuit is not None
    assert circuit.state is OPEN


async def test_timeouts_count(flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock) -> None:
    _, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    stack = Stack(breaker, Classify())
    async with httpx.AsyncClient(
        base_url=server.url, transport=stack.transport(), timeout=httpx.Timeout(5.0, read=0.05)
    ) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/hang")
        with pytest.raises(CircuitOpenError):
            await client.get("/status/200")


def _timed_client(
    breaker: CircuitBreaker, url: str, clock: VirtualClock, **retry: float
) -> httpx.AsyncClient:
    """One attempt per call, cut by the retry layer (``attempt_timeout=`` or ``deadline=``)."""
    layer = resilience.Retry(attempts=1, clock=clock, budget=None, **retry)  # type: ignore[arg-type]
    stack = Stack(layer, breaker, Classify())
    return httpx.AsyncClient(base_url=url, transport=stack.transport(), timeout=5.0)


async def test_attempts_cut_by_the_attempt_timeout_count_as_timeouts(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    """A hung server that only the retry layer's attempt_timeout cuts still trips the breaker."""
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=3)
    async with _timed_client(breaker, server.url, clock, attempt_timeout=0.05) as client:
        for _ in range(3):
            with pytest.raises(httpx.TimeoutException, match="attempt timed out"):
                await client.get("/hang")
        with pytest.raises(CircuitOpenError):
            await client.get("/status/200")
    assert app.hits == 3
    circuit = breaker.statistics(_key(server)).circuit
    assert circuit is not None
    assert (circuit.state, circuit.trips) == (OPEN, 1)


async def test_a_hung_probe_cut_by_the_attempt_timeout_reopens_it_for_longer(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    _, server = flaky
    key = _key(server)
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, open_for=4.0, half_open_probes=1)
    async with _timed_client(breaker, server.url, clock, attempt_timeout=0.05) as client:
        await _trip(client, breaker, key)
        clock.advance(4.0)
        with pytest.raises(httpx.TimeoutException):
            await client.get("/hang")  # the probe
    circuit = breaker.statistics(key).circuit
    assert circuit is not None
    assert (circuit.state, circuit.trips, circuit.probes_in_flight) == (OPEN, 2, 0)
    assert circuit.retry_after == 8.0


async def test_an_inner_retry_leaves_the_outer_cut_to_the_outer_breaker(
    clock: VirtualClock,
) -> None:
    """Layers composed by hand share one call context: an inner Retry's cut must give the
    outer one back, or the outer breaker takes the outer attempt timeout for a cancellation."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    inner = resilience.Retry(attempts=1, attempt_timeout=5.0, clock=clock)
    outer = resilience.Retry(attempts=1, attempt_timeout=0.05, clock=clock)
    transport = outer.wrap(breaker.wrap(inner.wrap(httpx.MockTransport(hang))))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get("https://api.example.com/")
    circuit = breaker.statistics(("https", "api.example.com", 443)).circuit
    assert circuit is not None
    assert circuit.state is OPEN


async def test_attempts_cut_by_the_calls_deadline_never_count(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    """A deadline is one caller's budget; the circuit is shared: running out of it says nothing
    about the server, so it counts as a cancellation does (not at all)."""
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    async with _timed_client(breaker, server.url, clock, deadline=0.05) as client:
        for _ in range(3):
            with pytest.raises(httpx.TimeoutException):
                await client.get("/hang")
        assert (await client.get("/status/200")).status_code == 200
    assert app.hits == 4
    circuit = breaker.statistics(_key(server)).circuit
    assert circuit is not None
    assert (circuit.state, circuit.calls, circuit.failures) == (CLOSED, 1, 0)


async def test_a_verdict_is_written_to_an_awaited_store_even_if_the_call_is_cancelled(
    clock: VirtualClock,
) -> None:
    """A probe's success lands while its caller is cancelled: the store still hears of it."""
    scopes: list[anyio.CancelScope] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not scopes:
            return httpx.Response(500)
        scopes[-1].cancel()  # the caller gives up just as the answer arrives
        return httpx.Response(200)

    store = SuspendingStore[Circuit]()
    breaker = CircuitBreaker(
        clock=clock, consecutive_failures=1, open_for=1.0, half_open_probes=1, store=store
    )
    key = ("https", "api.example.com", 443)
    transport = Stack(breaker, Classify()).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
        clock.advance(1.0)
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            # The probe. Unshielded, the store's write was where the cancellation landed.
            await client.get("https://api.example.com/")
    circuit = store.inner.get_now(key, now=clock.now())
    assert circuit is not None
    assert (circuit.state, circuit.probes) == (CLOSED, 0)


async def test_a_request_that_breaks_http_itself_never_counts_against_the_server(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    """One caller's illegal header must not open the circuit of a healthy origin for all."""
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=3)
    stack = Stack(resilience.Retry(clock=clock, attempts=3), breaker, Classify())
    async with httpx.AsyncClient(base_url=server.url, transport=stack.transport()) as client:
        for _ in range(5):
            with pytest.raises(httpx.LocalProtocolError):
                await client.get("/status/200", headers={"X-Bad": "a\nb"})
        assert (await client.get("/status/200")).status_code == 200
    assert app.hits == 1
    circuit = breaker.statistics(_key(server)).circuit
    assert circuit is not None
    assert (circuit.state, circuit.failures) == (CLOSED, 0)


class _StalledStore(SuspendingStore[Circuit]):
    """A store whose writes never answer (a remote store in its own outage)."""

    async def update(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        await anyio.sleep_forever()


async def test_a_store_that_stalls_holds_a_cancelled_call_only_briefly(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure's write outlives the caller's cancellation, but a store that never answers is
    given up on after SHIELDED_WRITE_SECONDS (here shortened), with a warning."""
    monkeypatch.setattr(resilience._store, "SHIELDED_WRITE_SECONDS", 0.05)
    scopes: list[anyio.CancelScope] = []

    def handler(request: httpx.Request) -> httpx.Response:
        scopes[-1].cancel()  # the caller gives up as the 500 arrives
        return httpx.Response(500)

    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, store=_StalledStore())
    transport = Stack(breaker, Classify()).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.fail_after(10):  # liveness only: without the bound it never returns
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await client.get("https://api.example.com/")
    assert scope.cancel_called
    assert "store did not answer; a verdict was not written" in caplog.text


class _Tracked(httpx.AsyncByteStream):
    closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"ok"

    async def aclose(self) -> None:
        type(self).closed = True


async def test_a_success_cancelled_while_its_store_writes_is_closed_not_leaked(
    clock: VirtualClock,
) -> None:
    scopes: list[anyio.CancelScope] = []

    def handler(request: httpx.Request) -> httpx.Response:
        scopes[-1].cancel()  # the caller gives up as the answer arrives
        return httpx.Response(200, stream=_Tracked())

    breaker = CircuitBreaker(clock=clock, store=SuspendingStore[Circuit]())
    transport = Stack(breaker, Classify()).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await client.get("https://api.example.com/")
    assert scope.cancelled_caught
    assert _Tracked.closed  # the response went nowhere, and its connection was let go


async def test_cancelled_calls_never_count(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    async with _client(breaker, server.url) as client:
        for _ in range(3):
            app.received.clear()
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get, "/hang")
                await anyio.to_thread.run_sync(app.received.wait)
                tg.cancel_scope.cancel()
        assert (await client.get("/status/200")).status_code == 200
    circuit = breaker.statistics(_key(server)).circuit
    assert circuit is not None
    assert (circuit.state, circuit.calls, circuit.failures) == (CLOSED, 1, 0)


async def _trip(client: httpx.AsyncClient, breaker: CircuitBreaker, key: Hashable) -> None:
    while True:
        circuit = breaker.statistics(key).circuit
        if circuit is not None and circuit.state is OPEN:
            return
        await client.get("/status/503")


async def test_half_open_probes_close_it_and_a_failed_probe_reopens_for_longer(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    key = _key(server)
    breaker = CircuitBreaker(
        clock=clock, consecutive_failures=1, open_for=4.0, max_open_for=10.0, half_open_probes=2
    )
    seen: list[tuple[Hashable, CircuitState, CircuitState]] = []
    breaker.add_listener(lambda k, old, new: seen.append((k, old, new)))
    async with _client(breaker, server.url) as client:
        await _trip(client, breaker, key)
        periods = []
        for _ in range(3):  # each failed probe doubles the open period, up to the cap
            retry_after = breaker.statistics(key).circuit.retry_after  # type: ignore[union-attr]
            assert retry_after is not None
            periods.append(retry_after)
            clock.advance(retry_after)
            assert (await client.get("/status/500")).status_code == 500
        assert periods == [4.0, 8.0, 10.0]
        clock.advance(10.0)
        hits = app.hits
        assert (await client.get("/status/200")).status_code == 200
        circuit = breaker.statistics(key).circuit
        assert circuit is not None
        assert circuit.state is HALF  # one probe of two has succeeded
        assert (await client.get("/status/404")).status_code == 404  # an answer is a success
        assert app.hits == hits + 2
        circuit = breaker.statistics(key).circuit
        assert circuit is not None
        assert (circuit.state, circuit.trips) == (CLOSED, 0)
        await _trip(client, breaker, key)  # recovered: the open period is back to open_for
        assert breaker.statistics(key).circuit.retry_after == 4.0  # type: ignore[union-attr]
    states = [(old, new) for _, old, new in seen]
    assert states[:3] == [(CLOSED, OPEN), (OPEN, HALF), (HALF, OPEN)]
    assert (HALF, CLOSED) in states
    assert {k for k, _, _ in seen} == {key}
    stats = breaker.statistics()
    assert stats.circuit is None
    assert stats.probes == 5
    assert stats.closed == 1


async def test_a_probe_cancelled_mid_flight_returns_its_slot(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    key = _key(server)
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, open_for=1.0, half_open_probes=1)
    async with _client(breaker, server.url) as client:
        await _trip(client, breaker, key)
        clock.advance(1.0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "/hang")  # the only probe
            await anyio.to_thread.run_sync(app.received.wait)
            circuit = breaker.statistics(key).circuit
            assert circuit is not None
            assert (circuit.state, circuit.probes_in_flight) == (HALF, 1)
            with pytest.raises(CircuitOpenError) as caught:
                await client.get("/status/200")  # no slot left
            assert caught.value.retry_after is None
            tg.cancel_scope.cancel()
        circuit = breaker.statistics(key).circuit
        assert circuit is not None
        assert (circuit.state, circuit.probes_in_flight) == (HALF, 0)
        assert (await client.get("/status/200")).status_code == 200  # the next probe goes
    circuit = breaker.statistics(key).circuit
    assert circuit is not None
    assert circuit.state is CLOSED


async def test_a_refusal_from_an_inner_layer_returns_the_probe_slot(clock: VirtualClock) -> None:
    mode = {"now": "fail"}

    def handler(request: httpx.Request) -> httpx.Response:
        if mode["now"] == "refuse":
            raise resilience.RateLimitedError("held", request=request, retry_after=1.0)
        return httpx.Response(503 if mode["now"] == "fail" else 200)

    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, open_for=1.0, half_open_probes=1)
    key = ("https", "api.example.com", 443)
    transport = breaker.wrap(httpx.MockTransport(handler))
    request = httpx.Request("GET", "https://api.example.com/")
    await transport.handle_async_request(request)
    clock.advance(1.0)
    mode["now"] = "refuse"
    for _ in range(3):  # each probe is refused below: a decision, not an attempt
        with pytest.raises(resilience.RateLimitedError):
            await transport.handle_async_request(request)
        circuit = breaker.statistics(key).circuit
        assert circuit is not None
        assert (circuit.state, circuit.probes_in_flight) == (HALF, 0)
    mode["now"] = "ok"
    assert (await transport.handle_async_request(request)).status_code == 200
    circuit = breaker.statistics(key).circuit
    assert circuit is not None
    assert circuit.state is CLOSED


async def test_any_async_store_can_hold_the_circuits(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    _, server = flaky
    store = SuspendingStore[Circuit]()
    breaker = CircuitBreaker(clock=clock, consecutive_failures=2, open_for=1.0, store=store)
    async with _client(breaker, server.url) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(client.get, "/status/500")
        with pytest.raises(CircuitOpenError):
            await client.get("/status/200")
        clock.advance(1.0)
        for _ in range(3):
            await client.get("/status/200")
        await breaker.reset()
    assert store.calls > 10
    stats = breaker.statistics(_key(server))
    assert (stats.keys, stats.circuit) == (None, None)  # cannot be read without awaiting
    assert (stats.opened, stats.closed) == (1, 1)


async def test_manual_control(flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock) -> None:
    app, server = flaky
    app.status = 200
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    key = breaker.key_of(server.url)
    assert key == _key(server)
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda _, old, new: seen.append((old, new)))
    async with _client(breaker, server.url) as client:
        await breaker.force_open(key)
        clock.advance(1e6)  # forced open does not time out
        with pytest.raises(CircuitOpenError) as caught:
            await client.get("/")
        assert caught.value.retry_after is None
        assert app.hits == 0
        await breaker.force_closed(key)
        for _ in range(5):
            await client.get("/status/503")  # not counted while forced closed
        circuit = breaker.statistics(key).circuit
        assert circuit is not None
        assert (circuit.state, circuit.forced) == (CLOSED, True)
        await breaker.reset(key)
        await client.get("/status/503")
        with pytest.raises(CircuitOpenError):
            await client.get("/")
        await breaker.reset()
        assert breaker.statistics().keys == 0
        assert (await client.get("/")).status_code == 200
    # reset(key) of a circuit forced closed changes no state; reset() forgets silently.
    assert seen == [(CLOSED, OPEN), (OPEN, CLOSED), (CLOSED, OPEN)]


async def test_keys_are_per_origin_and_a_key_function_can_be_given(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = flaky
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    async with _client(breaker, server.url) as client:
        await client.get("/status/500")
        with pytest.raises(CircuitOpenError):
            await client.get("/status/200")
        # localhost is another origin on the same server: untouched.
        other = f"http://localhost:{server.port}/status/200"
        assert (await client.get(other)).status_code == 200
    by_path = CircuitBreaker(clock=clock, consecutive_failures=1, key=lambda r: r.url.path)
    async with _client(by_path, server.url) as client:
        await client.get("/status/500")
        with pytest.raises(CircuitOpenError):
            await client.get("/status/500")
        assert (await client.get("/status/200")).status_code == 200
    assert by_path.key_of(httpx.Request("GET", "http://h/p")) == "/p"
    assert app.hits == 4


async def test_a_listener_that_raises_is_logged_and_the_call_goes_on(
    flaky: tuple[FlakyApp, RunningServer], clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    _, server = flaky

    def broken(key: Hashable, old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker(clock=clock, consecutive_failures=1)
    breaker.add_listener(broken)
    with caplog.at_level(logging.ERROR, logger="resilience.breaker"):
        async with _client(breaker, server.url) as client:
            assert (await client.get("/status/500")).status_code == 500
    assert "listener" in caplog.text
    breaker.remove_listener(broken)
    assert breaker.statistics().opened == 1


async def test_distinct_keys_stay_within_the_bound_and_idle_ones_expire(
    clock: VirtualClock,
) -> None:
    breaker = CircuitBreaker(clock=clock, max_keys=100, window=10.0, key=lambda r: r.url.path)
    transport = breaker.wrap(httpx.MockTransport(lambda _: httpx.Response(200)))
    for i in range(5_000):
        await transport.handle_async_request(httpx.Request("GET", f"https://h/{i}"))
    stats = breaker.statistics()
    assert (stats.keys, stats.max_keys) == (100, 100)
    clock.advance(11.0)
    for _ in range(30):  # later traffic sweeps idle keys
        await transport.handle_async_request(httpx.Request("GET", "https://h/hot"))
    assert breaker.statistics().keys == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_ratio"):
        CircuitBreaker(failure_ratio=2.0)
    with pytest.raises(ValueError, match="max_open_for"):
        CircuitBreaker(open_for=30.0, max_open_for=10.0)
    with pytest.raises(ValueError, match="max_keys"):
        CircuitBreaker(max_keys=0)


def test_describe_lists_the_settings() -> None:
    (described,) = Stack(CircuitBreaker(open_for=2.0, max_open_for=4.0)).describe()
    assert described["layer"] == "CircuitBreaker"
    assert described["open_for"] == 2.0
    assert described["half_open_probes"] == 3
    assert "clock" not in described
    assert "store" not in described


async def test_statistics_read_an_expired_open_period_as_half_open(clock: VirtualClock) -> None:
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, open_for=2.0)
    transport = breaker.wrap(httpx.MockTransport(lambda _: httpx.Response(500)))
    events: Events = []
    request = httpx.Request("GET", "https://api.example.com/")
    await transport.handle_async_request(request)
    clock.advance(2.0)
    circuit = breaker.statistics(breaker.key_of(request)).circuit
    assert circuit is not None
    assert (circuit.state, circuit.retry_after, str(circuit.state)) == (HALF, None, "half_open")
    await breaker.force_open(breaker.key_of(request))
    rejected = httpx.Request("GET", "https://api.example.com/")
    resilience._context.call_context(rejected).listen(
        lambda name, attributes: events.append((name, dict(attributes)))
    )
    with pytest.raises(CircuitOpenError, match=r"circuit breaker is open$"):
        await transport.handle_async_request(rejected)
    assert events == [(ev.BREAKER_REJECTED, {ev.KEY: key_fingerprint(breaker.key_of(request))})]
