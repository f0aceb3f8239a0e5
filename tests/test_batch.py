"""Successes and requests counted in bulk decide exactly as counting each one would.

The breaker and the retry budget write the common event (a success, a logical request) to the
store once per key and time slot. These tests drive a batched layer and an unbatched twin (the
same layer on a store that is not the in-memory one, or the pure transitions themselves) with
the same random history and require the same decisions and the same statistics at every step.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience import CircuitBreaker, CircuitOpenError, RetryBudget
from resilience._batch import Batch
from resilience._breaker import _snapshot
from resilience._breaker_core import (
    BreakerPolicy,
    Circuit,
    Ticket,
    record,
    record_successes,
    window_counts,
)
from resilience._budget import BudgetState, allows
from resilience._budget import record as budget_record
from resilience._store import MemoryStore
from resilience.testing import VirtualClock
from tests.stores import SuspendingStore

POLICY = BreakerPolicy(minimum_calls=4, window=10.0, consecutive_failures=3, open_for=5.0)


@given(st.integers(0, 12), st.floats(0.0, 100.0), st.integers(0, 40))
def test_record_successes_is_record_applied_n_times(calls: int, now: float, successes: int) -> None:
    ticket = Ticket(None, 0, probe=False)
    circuit: Circuit | None = None
    for i in range(calls):  # some history, failures and successes, a little earlier
        circuit, _ = record(POLICY, circuit, ticket, i % 3 == 0, max(now - i * 0.7, 0.0))
    expected = circuit
    for _ in range(successes):
        expected, _ = record(POLICY, expected, ticket, False, now)
    bulk, change = (
        record_successes(POLICY, circuit, successes, now) if successes else (circuit, None)
    )
    assert change is None
    if expected is None or bulk is None:
        assert expected is bulk
    else:
        assert (bulk.state, bulk.calls, bulk.failures, bulk.consecutive) == (
            expected.state,
            expected.calls,
            expected.failures,
            expected.consecutive,
        )


#: One step of a history: advance the clock, then one call to one of three origins.
steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.0, 0.0, 0.4, 1.5, 3.1, 12.0]), st.integers(0, 2), st.booleans()
    ),
    max_size=120,
)


@pytest.mark.anyio
@settings(max_examples=60, deadline=None)
@given(history=steps)
async def test_a_batched_breaker_decides_as_an_unbatched_one(
    history: list[tuple[float, int, bool]],
) -> None:
    clock = VirtualClock(start=1_000.0)
    status = {"code": 200}
    batched = CircuitBreaker(
        clock=clock, minimum_calls=4, window=10.0, consecutive_failures=3, open_for=5.0
    )
    plain = CircuitBreaker(
        clock=clock,
        minimum_calls=4,
        window=10.0,
        consecutive_failures=3,
        open_for=5.0,
        store=SuspendingStore[Circuit](),
    )
    inner = httpx.MockTransport(lambda _: httpx.Response(status["code"]))
    transports = [batched.wrap(inner), plain.wrap(inner)]
    for advance, origin, failed in history:
        clock.advance(advance)
        status["code"] = 503 if failed else 200
        request = httpx.Request("GET", f"https://h{origin}.test/")
        seen = []
        for transport in transports:
            try:
                response = await transport.handle_async_request(request)
            except CircuitOpenError as exc:  # noqa: PERF203 - the point of the test
                seen.append(("open", exc.retry_after))
            else:
                seen.append(("sent", response.status_code))
        assert seen[0] == seen[1]
        key = batched.key_of(str(request.url))
        # statistics() of the plain breaker's store is unavailable (not in-memory): compare the
        # batched breaker's read-only view with the plain one's stored circuit instead.
        view = batched.statistics(key).circuit
        stored = plain.store.inner.get_now(key, now=clock.now())  # type: ignore[union-attr]
        assert view is not None
        if stored is None:
            assert (view.calls, view.failures) == (0, 0)
        else:
            assert (view.state, view.consecutive_failures, view.trips) == (
                _state(stored, clock.now()),
                stored.consecutive,
                stored.trips,
            )
            assert (view.calls, view.failures) == _window(stored, clock.now())


def _state(circuit: Circuit, now: float) -> object:
    return _snapshot(POLICY, circuit, now).state


def _window(circuit: Circuit, now: float) -> tuple[int, int]:
    return window_counts(POLICY, circuit, now)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.3, 1.1, 4.0, 11.0]), st.integers(0, 2), st.booleans()
        ),
        max_size=200,
    )
)
def test_a_batched_budget_allows_what_the_pure_model_allows(
    history: list[tuple[float, int, bool]],
) -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.2)
    model: dict[int, BudgetState | None] = {}
    now = 0.0
    for advance, key, is_retry in history:
        now += advance
        if not is_retry:
            budget.deposit(key, now=now)
            model[key] = budget_record(model.get(key), now, 10.0, requests=1)
            continue
        expected = allows(model.get(key), now=now, window=10.0, ratio=0.2, min_per_second=0.2)
        assert budget.withdraw(key, now=now) is expected
        if expected:
            model[key] = budget_record(model.get(key), now, 10.0, retries=1)


#: Every write a key received: (events, at).
Writes = tuple[tuple[int, float], ...]


def test_the_batch_writes_a_key_once_per_slot_then_counts_it() -> None:
    store: MemoryStore[Writes] = MemoryStore()
    batch: Batch[Writes] = Batch(
        max_keys=2, apply=lambda s, n, at: (*(s or ()), (n, at)), ttl=lambda _, __: 100.0
    )
    for now in (10.0, 10.1, 10.2):
        batch.count(store, "a", 1, now)
    assert store.get_now("a", now=11.0) == ((1, 10.0),)  # the first at once, the rest pending
    assert batch.pending("a") == 2
    batch.flush(store, "a", 11.0)
    assert store.get_now("a", now=11.0) == ((1, 10.0), (2, 10.0))  # at a time in their slot
    assert batch.pending("a") == 0
    batch.flush(store, "a", 11.0)
    assert store.get_now("a", now=11.0) == ((1, 10.0), (2, 10.0))  # nothing pending: no write
    for now in (11.0, 11.1, 11.2):  # "a" and "b" fill the batch: "c" is written every time
        batch.count(store, "b" if now == 11.0 else "c", 1, now)
    assert store.get_now("c", now=12.0) == ((1, 11.1), (1, 11.2))
    batch.count(store, "b", 1, 12.0)
    batch.count(store, "a", 2, 13.0)  # a new slot writes the old one's counts first
    assert store.get_now("b", now=13.0) == ((1, 11.0), (1, 10.0))  # at once, then at roll
    assert (batch.slot, batch.now, batch.counts) == (2, 13.0, {"a": 0})
    batch.count(store, "a", 2, 13.5)
    batch.clear("a")
    assert batch.pending("a") == 0
    batch.count(store, "b", 2, 13.6)
    batch.clear()
    assert batch.counts == {}
