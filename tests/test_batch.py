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


def test_events_on_the_tally_are_written_as_counted_ones() -> None:
    store: MemoryStore[Writes] = MemoryStore()
    batch: Batch[Writes] = Batch(
        max_keys=1, apply=lambda s, n, at: (*(s or ()), (n, at)), ttl=lambda _, __: 100.0
    )
    batch.count(store, "a", 1, 10.0)
    batch.follow("a", 11.0)
    tally = batch.tally
    assert (tally.key, tally.until) == ("a", 11.0)
    tally.n += 3  # what a caller adds while it follows "a"
    assert batch.pending("a") == 3  # read without writing
    assert batch.counts == {"a": 0}
    batch.flush(store, "a", 10.5)
    assert store.get_now("a", now=10.5) == ((1, 10.0), (3, 10.0))
    assert (batch.pending("a"), tally.n) == (0, 0)
    tally.n += 2
    batch.count(store, "a", 2, 20.0)  # a new slot: the tally's events go with the old slot's
    assert store.get_now("a", now=20.0) == ((1, 10.0), (3, 10.0), (2, 10.0), (1, 20.0))
    assert (tally.n, tally.until) == (0, float("-inf"))  # and it follows no key until told
    batch.count(store, "b", 2, 20.1)  # past max_keys: written at once, never followed
    batch.follow("b", 21.0)
    assert tally.until == float("-inf")
    assert batch.pending("b") == 0
    batch.follow("a", 30.0)
    tally.n += 4
    batch.clear("b")  # another key's clear leaves the tally be
    assert batch.pending("a") == 4
    batch.clear("a")  # forgotten, as a counted event would be
    assert (batch.pending("a"), tally.n, tally.until) == (0, 0, float("-inf"))


#: One step for a batch and its twin: advance, then an event, a flush or a clear of a key.
batch_steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.0, 0.2, 0.9, 2.5]),
        st.sampled_from(["event", "event", "event", "flush", "clear", "clear all"]),
        st.integers(0, 2),
    ),
    max_size=80,
)


@given(batch_steps)
def test_a_caller_on_the_tally_writes_what_counting_each_event_writes(
    history: list[tuple[float, str, int]],
) -> None:
    _tally_against_counting(history)


def test_the_tally_takes_a_keys_events_after_its_first_in_a_slot() -> None:
    history = [(0.0, "event", 0)] * 5 + [(0.0, "flush", 0), (0.0, "event", 1), (0.2, "event", 1)]
    history += [(0.0, "event", 0), (0.9, "event", 0), (0.0, "event", 0)]  # "k0", then a new slot
    assert _tally_against_counting(history) == 4 + 1 + 1


def _tally_against_counting(history: list[tuple[float, str, int]]) -> int:
    """Drive a batch as the express lane does and a twin that counts every event through
    Batch.count; require the same writes and pending counts at every step. Returns how many
    events went on the tally."""

    def apply(s: Writes | None, n: int, at: float) -> Writes:
        return (*(s or ()), (n, at))

    stores: list[MemoryStore[Writes]] = [MemoryStore(), MemoryStore()]
    tallied, counted = (Batch(max_keys=2, apply=apply, ttl=lambda _, __: 100.0) for _ in "ab")
    now, width, on_tally = 0.0, 1.0, 0
    for advance, action, k in history:
        now += advance
        key = KEYS[k]  # the same object each time, as the lane's origins are
        if action == "event":
            slot = now // width
            counted.count(stores[1], key, slot, now)
            tally = tallied.tally
            if now < tally.until and tally.key is key:  # the lane's test
                tally.n += 1
                on_tally += 1
            else:
                tallied.count(stores[0], key, slot, now)
                if tallied.slot == slot:
                    tallied.follow(key, (slot + 1) * width)
        elif action == "flush":
            for batch, store in zip((tallied, counted), stores, strict=True):
                batch.flush(store, key, now)
        else:
            for batch in (tallied, counted):
                batch.clear(None if action == "clear all" else key)
        for other in KEYS:
            assert tallied.pending(other) == counted.pending(other)
            assert stores[0].get_now(other, now=now) == stores[1].get_now(other, now=now)
    return on_tally


KEYS = ("k0", "k1", "k2")
