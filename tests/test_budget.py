"""The retry budget: pure transitions, the per-key budget, and a total outage over sockets."""

from __future__ import annotations

import itertools

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import resilience
from adapters.simulators import RunningServer
from resilience import RetryBudget
from resilience import _events as ev
from resilience._budget import BudgetState, allows, record
from resilience.testing import NO_BACKOFF, VirtualClock

from .test_retry_scripted import EventLog, hits, scripted, token

__all__ = ["scripted"]  # the module-scoped server fixture


@given(
    st.lists(st.tuples(st.booleans(), st.floats(0, 5)), max_size=200),
    st.floats(0, 1),
    st.floats(0, 3),
)
def test_retries_never_exceed_their_share_of_the_window(
    events: list[tuple[bool, float]], ratio: float, floor: float
) -> None:
    window = 10.0
    state: BudgetState | None = None
    now = 0.0
    for is_request, step in events:
        now += step
        if is_request:
            state = record(state, now, window, requests=1)
        elif allows(state, now=now, window=window, ratio=ratio, min_per_second=floor):
            state = record(state, now, window, retries=1)
            # At the moment a retry is allowed, the window holds no more than its share.
            requests = sum(b[1] for b in state)
            retries = sum(b[2] for b in state)
            assert retries <= ratio * requests + floor * window + 1e-6
        assert state is None or len(state) <= 10


def test_old_traffic_leaves_the_window() -> None:
    state = None
    for _ in range(10):
        state = record(state, 0.0, 10.0, retries=1)
    assert not allows(state, now=5.0, window=10.0, ratio=0.0, min_per_second=1.0)
    assert allows(state, now=10.5, window=10.0, ratio=0.0, min_per_second=1.0)


def test_a_lone_key_gets_the_floor_then_its_share() -> None:
    budget = RetryBudget(ratio=0.5, window=10.0, min_per_second=0.2)
    budget.deposit("k", now=0.0)
    assert [budget.withdraw("k", now=0.0) for _ in range(3)] == [True, True, False]
    for _ in range(4):
        budget.deposit("k", now=1.0)
    assert [budget.withdraw("k", now=1.0) for _ in range(3)] == [True, True, False]
    assert budget.withdraw("other", now=1.0)
    stats = budget.statistics()
    assert (stats.keys, stats.requests, stats.retries, stats.refused) == (2, 5, 5, 2)


def test_weighing_a_retry_starts_a_window_of_counting() -> None:
    budget = RetryBudget(window=10.0)
    assert not budget.counting(0.0)  # nothing to judge yet
    budget.withdraw("k", now=1.0)
    assert budget.counting(1.0)
    assert budget.counting(10.9)
    assert not budget.counting(11.0)


class CountingClock(VirtualClock):
    """A virtual clock that counts how often it is read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        return super().now()


@pytest.mark.anyio
async def test_an_idle_budget_costs_the_success_path_no_clock_reading() -> None:
    clock = CountingClock()
    budget = RetryBudget(window=10.0)
    statuses = itertools.chain([503], itertools.repeat(200))
    transport = httpx.MockTransport(lambda _: httpx.Response(next(statuses)))
    retry = resilience.Retry(backoff=NO_BACKOFF, budget=budget, clock=clock)
    async with httpx.AsyncClient(transport=resilience.Stack(retry).transport(transport)) as client:
        await client.get("http://api.test/")  # 503 then 200: the budget weighs a retry
        assert budget.counting(clock.now())
        reads = clock.reads
        await client.get("http://api.test/")  # counted: within the window of that retry
        assert clock.reads > reads
        assert budget.statistics().requests == 2

        clock.advance(10.0)  # a window with no retry: the next call finds the budget idle
        await client.get("http://api.test/")
        reads = clock.reads
        for _ in range(5):
            await client.get("http://api.test/")
        assert clock.reads == reads  # idle: nothing counted, the clock not even read
    assert budget.statistics().requests == 2


def test_a_refused_retry_also_keeps_the_budget_counting() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, window=10.0)
    assert not budget.withdraw("k", now=5.0)
    assert budget.counting(14.0)


def test_defaults() -> None:
    budget = RetryBudget()
    assert (budget.ratio, budget.window, budget.min_per_second) == (0.2, 10.0, 2.0)


@pytest.mark.parametrize("kwargs", [{"ratio": -0.1}, {"window": 0.0}, {"min_per_second": -1.0}])
def test_invalid_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryBudget(**kwargs)


@pytest.mark.anyio
async def test_under_a_total_outage_retries_stop_adding_load(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    log = EventLog()
    budget = RetryBudget(min_per_second=0.5)  # a floor of 5 retries per 10 s
    retry = resilience.Retry(attempts=5, backoff=NO_BACKOFF, budget=budget, clock=clock)
    stack = resilience.Stack(log, retry, resilience.Classify())
    calls = 30
    async with httpx.AsyncClient(base_url=scripted.url, transport=stack.transport()) as client:
        responses = [await client.get(f"/script/{t}", params={"s": "503"}) for _ in range(calls)]
    assert {r.status_code for r in responses} == {503}
    assert responses[-1].text.startswith("answer")  # returned unchanged, body readable
    sent = len(hits(t))
    assert calls + 5 <= sent <= calls * 1.2 + 5  # naive retry would send 150
    assert log.named(ev.BUDGET_EXHAUSTED)
    assert log.named(ev.RETRY_GIVEN_UP)[-1][ev.REASON] == "budget_exhausted"
    assert budget.statistics().refused > 0


@pytest.mark.anyio
async def test_a_lone_request_still_retries(scripted: RunningServer, clock: VirtualClock) -> None:
    t = token()
    retry = resilience.Retry(attempts=4, backoff=NO_BACKOFF, clock=clock)
    stack = resilience.Stack(retry, resilience.Classify())
    async with httpx.AsyncClient(base_url=scripted.url, transport=stack.transport()) as client:
        response = await client.get(f"/script/{t}", params={"s": "503,503,503,200"})
    assert response.status_code == 200
    assert len(hits(t)) == 4
    assert retry.budget is not None
    assert retry.budget.statistics().retries == 3


@pytest.mark.anyio
async def test_an_idle_budget_counts_nothing_until_a_call_asks_for_a_retry(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    t = token()
    budget = RetryBudget(window=10.0)
    retry = resilience.Retry(attempts=3, backoff=NO_BACKOFF, budget=budget, clock=clock)
    stack = resilience.Stack(retry, resilience.Classify())
    async with httpx.AsyncClient(base_url=scripted.url, transport=stack.transport()) as client:
        for _ in range(5):
            assert (await client.get(f"/script/{t}", params={"s": "200"})).status_code == 200
        assert (budget.statistics().requests, budget.statistics().keys) == (0, 0)
        # The first call that asks for a retry is counted before its retry is weighed...
        retried = await client.get(f"/script/{token()}", params={"s": "503,200"})
        assert retried.status_code == 200
        assert (budget.statistics().requests, budget.statistics().retries) == (1, 1)
        # ...and every call is counted for a window after it.
        for _ in range(4):
            await client.get(f"/script/{t}", params={"s": "200"})
        assert budget.statistics().requests == 5
        clock.advance(10.0)
        await client.get(f"/script/{t}", params={"s": "200"})
    assert budget.statistics().requests == 5  # idle again: a window without a retry


@pytest.mark.anyio
async def test_a_call_is_counted_once_whatever_its_key(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    budget = RetryBudget()
    retry = resilience.Retry(
        attempts=3, backoff=NO_BACKOFF, budget=budget, clock=clock, key=lambda _: None
    )
    stack = resilience.Stack(retry, resilience.Classify())
    async with httpx.AsyncClient(base_url=scripted.url, transport=stack.transport()) as client:
        response = await client.get(f"/script/{token()}", params={"s": "503,503,200"})
    assert response.status_code == 200
    stats = budget.statistics()
    assert (stats.requests, stats.retries, stats.keys) == (1, 2, 1)
