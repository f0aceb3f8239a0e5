"""The Retry-After gate through real loopback sockets, in virtual time, on asyncio and trio."""

from __future__ import annotations

import anyio
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer
from resilience import _events as ev
from resilience._gate import default_key
from resilience._layer import LayerTransport
from resilience.testing import VirtualClock

from .test_retry_scripted import EventLog, hits, scripted, token

pytestmark = pytest.mark.anyio

__all__ = ["scripted"]  # the module-scoped server fixture


class Timeline:
    """Sits under the gate: logs each send, and each rate-limited answer, in order."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.entries: list[tuple[str, float]] = []

    def __call__(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return _Timed(inner, self)

    def sends(self) -> list[float]:
        return [at for what, at in self.entries if what == "send"]


class _Timed(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, timeline: Timeline) -> None:
        super().__init__(inner)
        self.timeline = timeline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.timeline.entries.append(("send", self.timeline.clock.now()))
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            self.timeline.entries.append(("429", self.timeline.clock.now()))
        return response


def gated(
    clock: VirtualClock,
    gate: resilience.RetryAfterGate,
    *,
    log: EventLog | None = None,
    timeline: Timeline | None = None,
    retry: resilience.Retry | None = None,
) -> resilience.Stack:
    layers: list[resilience._layer.LayerLike] = []
    if log is not None:
        layers.append(log)
    if retry is not None:
        layers.append(retry)
    layers.append(gate)
    if timeline is not None:
        layers.append(timeline)
    layers.append(resilience.Classify())
    return resilience.Stack(*layers)


def client(server: RunningServer, s: resilience.Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, transport=s.transport())


async def test_a_retry_after_holds_the_next_request(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock)
    log = EventLog()
    async with client(scripted, gated(clock, gate, log=log)) as c:
        first = await c.get(f"/script/{t}", params={"s": "429,200", "ra": "2"})
        start = clock.now()
        second = await c.get(f"/script/{t}", params={"s": "429,200", "ra": "2"})
    assert (first.status_code, second.status_code) == (429, 200)
    assert clock.now() - start >= 2.0
    assert clock.sleeps == [2.0]
    assert resilience.outcome(second).waited == 2.0
    (wait,) = log.named(ev.GATE_WAIT)
    assert wait[ev.DELAY] == 2.0
    assert scripted.host not in str(wait[ev.KEY])
    stats = gate.statistics()
    assert (stats.holds, stats.waits, stats.waited, stats.rejected) == (1, 1, 2.0, 0)


async def test_two_hundred_callers_wait_out_one_429(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock)
    timeline = Timeline(clock)
    url, params = f"/script/{t}", {"s": "429,200", "ra": "2"}
    async with client(scripted, gated(clock, gate, timeline=timeline)) as c:
        assert (await c.get(url, params=params)).status_code == 429
        held_at = clock.now()
        statuses: list[int] = []

        async def call() -> None:
            statuses.append((await c.get(url, params=params)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(call)
    assert statuses == [200] * 200
    assert len(hits(t)) == 201
    later = timeline.sends()[1:]
    assert len(later) == 200
    assert min(later) >= held_at + 2.0
    assert gate.statistics().waits == 200


async def test_no_request_is_sent_during_a_hold_learned_mid_burst(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    timeline = Timeline(clock)
    retry = resilience.Retry(clock=clock, backoff=resilience.testing.NO_BACKOFF)
    s = gated(clock, resilience.RetryAfterGate(clock=clock), timeline=timeline, retry=retry)
    url, params = f"/script/{t}", {"s": "429,200", "ra": "2"}
    async with client(scripted, s) as c:

        async def call() -> None:
            await c.get(url, params=params)

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(call)
    marks = [i for i, (what, _) in enumerate(timeline.entries) if what == "429"]
    assert len(marks) == 1
    held_at = timeline.entries[marks[0]][1]
    after = [at for what, at in timeline.entries[marks[0] :] if what == "send"]
    assert after  # at least the retry of the rate-limited call
    assert min(after) >= held_at + 2.0
    assert len(hits(t)) == 201


async def test_a_hold_longer_than_the_caller_may_wait_fails_at_once(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock, max_wait=1.0)
    log = EventLog()
    async with client(scripted, gated(clock, gate, log=log)) as c:
        await c.get(f"/script/{t}", params={"s": "503,200", "ra": "2"})
        with pytest.raises(resilience.RateLimitedError) as caught:
            await c.get(f"/script/{t}")
    assert caught.value.retry_after == 2.0
    assert isinstance(caught.value, httpx.TransportError)
    assert "longer than this call may wait" in str(caught.value)
    assert len(hits(t)) == 1
    assert clock.sleeps == []
    assert log.named(ev.GATE_REJECTED)[0][ev.RETRY_AFTER] == 2.0
    assert gate.statistics().rejected == 1


async def test_the_call_deadline_limits_the_wait(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock)
    retry = resilience.Retry(clock=clock, deadline=1.0)
    async with client(scripted, gated(clock, gate, retry=retry)) as c:
        first = await c.get(f"/script/{t}", params={"s": "429,200", "ra": "2"})
        with pytest.raises(resilience.RateLimitedError):
            await c.get(f"/script/{t}")
    assert first.status_code == 429  # 2 s is above the 1 s deadline: returned at once
    assert len(hits(t)) == 1


async def test_the_cancel_scope_limits_the_wait(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock)
    async with client(scripted, gated(clock, gate)) as c:
        await c.get(f"/script/{t}", params={"s": "429,200", "ra": "30"})
        with anyio.fail_after(10), pytest.raises(resilience.RateLimitedError):
            await c.get(f"/script/{t}")
    assert len(hits(t)) == 1


async def test_an_attempt_timeout_does_not_limit_the_wait(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    """attempt_timeout bounds the server's time, not the gate's: a 3 s hold is waited out under
    a 1 s attempt timeout, while the caller's own cancel scope still limits it."""
    t = token()
    gate = resilience.RetryAfterGate(clock=clock)
    retry = resilience.Retry(clock=clock, attempts=1, attempt_timeout=1.0)
    async with client(scripted, gated(clock, gate, retry=retry)) as c:
        assert (await c.get(f"/script/{t}", params={"s": "429,200", "ra": "3"})).status_code == 429
        with anyio.fail_after(2), pytest.raises(resilience.RateLimitedError):
            await c.get(f"/script/{t}")  # the caller may wait 2 s, not 3
        assert (await c.get(f"/script/{t}")).status_code == 200
    assert clock.sleeps == [3.0]
    assert len(hits(t)) == 2


async def test_the_wait_does_not_eat_the_attempts_own_time(scripted: RunningServer) -> None:
    """Real time: a 0.2 s hold, then an answer in 0.15 s, under a 0.3 s attempt timeout."""
    t = token()
    gate = resilience.RetryAfterGate()
    retry = resilience.Retry(attempts=1, attempt_timeout=0.3)
    async with client(scripted, gated(VirtualClock(), gate, retry=retry)) as c:
        await c.post(f"/script/{t}", params={"s": "429,200", "ra": "0.2"})
        response = await c.post(f"/script/{t}", params={"d": "0.15"})
    assert response.status_code == 200
    assert gate.statistics().waits == 1


async def test_holds_are_per_credential(scripted: RunningServer, clock: VirtualClock) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock, max_wait=0.0)
    alice = {"Authorization": "Bearer alice-key"}
    bob = {"Authorization": "Bearer bob-key"}
    async with client(scripted, gated(clock, gate)) as c:
        await c.get(f"/script/{t}", params={"s": "429,200", "ra": "5"}, headers=alice)
        assert (await c.get(f"/script/{t}", headers=bob)).status_code == 200
        with pytest.raises(resilience.RateLimitedError):
            await c.get(f"/script/{t}", headers=alice)
    assert gate.remaining(httpx.Request("GET", scripted.url, headers=alice)) == 5.0
    assert gate.remaining(httpx.Request("GET", scripted.url, headers=bob)) == 0.0


async def test_errors_without_retry_after_hold_nothing(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    gate = resilience.RetryAfterGate(clock=clock)
    async with client(scripted, gated(clock, gate)) as c:
        await c.get(f"/script/{t}", params={"s": "500,200"})
        await c.get(f"/script/{t}", params={"s": "404", "ra": "5"})  # not a rate limit
        assert (await c.get(f"/script/{t}")).status_code == 200
    assert clock.sleeps == []
    assert gate.statistics().holds == 0


async def test_a_custom_key_shares_one_hold_across_origins(clock: VirtualClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return httpx.Response(429, headers={"Retry-After": "3"})
        return httpx.Response(200)

    gate = resilience.RetryAfterGate(clock=clock, key=lambda request: "one account")
    s = resilience.Stack(gate, resilience.Classify())
    async with httpx.AsyncClient(transport=s.transport(httpx.MockTransport(handler))) as c:
        await c.get("http://a.test/")
        await c.get("http://b.test/")
    assert clock.sleeps == [3.0]


async def test_without_a_classify_layer_plain_http_verdicts_still_hold(clock: VirtualClock) -> None:
    answers = iter([429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), headers={"Retry-After": "4"})

    gate = resilience.RetryAfterGate(clock=clock)
    s = resilience.Stack(gate)
    async with httpx.AsyncClient(transport=s.transport(httpx.MockTransport(handler))) as c:
        assert (await c.get("http://api.test/")).status_code == 429
        assert (await c.get("http://api.test/")).status_code == 200
    assert clock.sleeps == [4.0]


def test_default_keys_stay_bounded_and_stable() -> None:
    requests = [
        httpx.Request("GET", "https://api.test/x", headers={"X-Api-Key": f"key-{n}"})
        for n in range(1500)
    ]
    keys = [default_key(r) for r in requests]
    assert len(set(keys)) == 1500
    assert default_key(requests[0]) == keys[0]
    assert all("key-" not in repr(k) for k in keys)
    assert default_key(httpx.Request("GET", "https://api.test/y")) == (
        "https",
        "api.test",
        443,
        "",
    )
