"""The breaker's pure state machine: transitions, the sliding window, and its invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience._breaker_core import (
    BUCKETS,
    BreakerPolicy,
    Change,
    Circuit,
    CircuitState,
    Ticket,
    admit,
    force,
    peek,
    record,
    release,
    retry_after,
    ttl,
    window_counts,
)

CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
POLICY = BreakerPolicy(
    failure_ratio=0.5,
    minimum_calls=4,
    window=10.0,
    consecutive_failures=3,
    open_for=5.0,
    max_open_for=20.0,
    half_open_probes=2,
)


def _run(policy: BreakerPolicy, outcomes: list[bool], now: float = 0.0) -> Circuit | None:
    circuit: Circuit | None = None
    for failed in outcomes:
        circuit, decision = admit(policy, circuit, now)
        assert decision.ticket is not None
        circuit, _ = record(policy, circuit, decision.ticket, failed, now)
    return circuit


def _open(now: float = 0.0) -> Circuit:
    circuit = _run(POLICY, [True, True, True], now)
    assert circuit is not None
    assert circuit.state is OPEN
    return circuit


def test_defaults_are_documented_values() -> None:
    policy = BreakerPolicy()
    assert (policy.failure_ratio, policy.minimum_calls, policy.window) == (0.5, 20, 30.0)
    assert (policy.consecutive_failures, policy.open_for, policy.max_open_for) == (10, 10.0, 120.0)
    assert policy.half_open_probes == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_ratio": 0.0},
        {"failure_ratio": 1.5},
        {"minimum_calls": 0},
        {"window": 0.0},
        {"consecutive_failures": -1},
        {"open_for": 0.0},
        {"open_for": 10.0, "max_open_for": 5.0},
        {"half_open_probes": 0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_run_of_consecutive_failures_trips() -> None:
    circuit = _run(POLICY, [True, True])
    assert circuit is not None
    assert circuit.state is CLOSED
    assert circuit.consecutive == 2
    circuit = _run(POLICY, [True, True, True])
    assert circuit is not None
    assert circuit.state is OPEN
    assert circuit.open_until == 5.0


def test_a_success_breaks_the_run() -> None:
    runs_only = BreakerPolicy(minimum_calls=100, consecutive_failures=3)
    circuit = _run(runs_only, [True, True, False, True, True])
    assert circuit is not None
    assert circuit.state is CLOSED


def test_the_failure_ratio_trips_only_with_minimum_calls() -> None:
    relaxed = BreakerPolicy(minimum_calls=4, consecutive_failures=0, window=10.0)
    circuit = _run(relaxed, [False, True, True])  # 2/3 failed, but only 3 calls
    assert circuit is not None
    assert circuit.state is CLOSED
    circuit = _run(relaxed, [False, True, False, True])  # 2/4 = 0.5
    assert circuit is not None
    assert circuit.state is OPEN


@pytest.mark.parametrize(
    ("ratio", "calls"), [(0.5, 20), (0.28, 25), (0.14, 50), (0.07, 100), (0.7, 10), (0.1, 30)]
)
def test_exactly_the_failure_ratio_trips(ratio: float, calls: int) -> None:
    """Where ``ratio * calls`` rounds up in floating point (0.28 * 25 = 7.000000000000001)."""
    policy = BreakerPolicy(failure_ratio=ratio, minimum_calls=calls, consecutive_failures=0)
    failures = round(ratio * calls)
    one_short = _run(policy, [False] * (calls - failures + 1) + [True] * (failures - 1))
    assert one_short is not None
    assert one_short.state is CLOSED
    circuit = _run(policy, [False] * (calls - failures) + [True] * failures)
    assert circuit is not None
    assert circuit.state is OPEN


def test_consecutive_failures_zero_turns_the_run_off() -> None:
    relaxed = BreakerPolicy(minimum_calls=100, consecutive_failures=0)
    circuit = _run(relaxed, [True] * 50)
    assert circuit is not None
    assert circuit.state is CLOSED


def test_the_window_slides_old_failures_out() -> None:
    relaxed = BreakerPolicy(minimum_calls=4, consecutive_failures=0, window=10.0)
    circuit: Circuit | None = None
    for i, failed in enumerate([True, True, False]):
        circuit, _ = record(relaxed, circuit, Ticket(None, 0, probe=False), failed, float(i))
    assert circuit is not None
    assert window_counts(relaxed, circuit, 2.0) == (3, 2)
    assert window_counts(relaxed, circuit, 10.5) == (2, 1)  # the bucket of t=0 has left
    assert window_counts(relaxed, circuit, 100.0) == (0, 0)
    # Long after, one failure among three new successes does not trip on stale counts.
    for failed in [False, False, False, True]:
        circuit, _ = record(relaxed, circuit, Ticket(None, 0, probe=False), failed, 10.5)
    assert circuit.state is CLOSED
    assert window_counts(relaxed, circuit, 10.5) == (6, 2)
    circuit, _ = record(relaxed, circuit, Ticket(None, 0, probe=False), False, 200.0)
    assert window_counts(relaxed, circuit, 200.0) == (1, 0)


def test_open_rejects_with_the_time_left_then_lets_probes_through() -> None:
    circuit = _open()
    decision = peek(circuit, 1.0)
    assert decision is not None
    assert decision.ticket is None
    assert decision.retry_after == 4.0
    assert peek(circuit, 5.0) is None  # needs a transition
    circuit2, first = admit(POLICY, circuit, 5.0)
    assert first.change == Change(OPEN, HALF)
    assert first.ticket is not None
    assert first.ticket.probe
    circuit3, second = admit(POLICY, circuit2, 5.0)
    assert second.ticket is not None
    assert second.change is None
    _, third = admit(POLICY, circuit3, 5.0)  # both probe slots taken
    assert third.ticket is None
    assert third.retry_after is None
    assert circuit3 is not None
    assert circuit3.probes == 2


def test_probes_that_succeed_close_and_reset_the_trips() -> None:
    circuit = _open()
    circuit, a = admit(POLICY, circuit, 5.0)
    circuit, b = admit(POLICY, circuit, 5.0)
    assert a.ticket is not None
    assert b.ticket is not None
    circuit, change = record(POLICY, circuit, a.ticket, False, 6.0)
    assert change is None
    assert circuit.state is HALF
    circuit, change = record(POLICY, circuit, b.ticket, False, 6.0)
    assert change == Change(HALF, CLOSED)
    assert (circuit.state, circuit.trips) == (CLOSED, 0)


def test_a_failed_probe_reopens_for_longer_up_to_the_cap() -> None:
    circuit: Circuit | None = _open()
    periods = []
    now = 0.0
    for _ in range(5):
        assert circuit is not None
        now = circuit.open_until
        circuit, decision = admit(POLICY, circuit, now)
        assert decision.ticket is not None
        circuit, change = record(POLICY, circuit, decision.ticket, True, now)
        assert change == Change(HALF, OPEN)
        periods.append(circuit.open_until - now)
    assert periods == [10.0, 20.0, 20.0, 20.0, 20.0]


def test_outcomes_of_stale_tickets_do_not_move_a_probe() -> None:
    circuit = _open()
    circuit, old = admit(POLICY, circuit, 5.0)
    assert old.ticket is not None
    circuit, other = admit(POLICY, circuit, 5.0)
    assert other.ticket is not None
    circuit, _ = record(POLICY, circuit, other.ticket, True, 5.0)  # re-opens
    assert circuit.state is OPEN
    # Late results of a call admitted before the trip change nothing while open.
    assert record(POLICY, circuit, old.ticket, False, 6.0) == (circuit, None)
    assert record(POLICY, circuit, Ticket(None, 0, probe=False), True, 6.0) == (circuit, None)
    circuit, fresh = admit(POLICY, circuit, circuit.open_until)
    assert circuit is not None
    assert circuit.state is HALF
    # The old probe's success neither closes the new half-open period nor frees its slots.
    assert record(POLICY, circuit, old.ticket, False, 30.0) == (circuit, None)
    assert release(circuit, old.ticket) == (circuit, None)
    assert record(POLICY, circuit, Ticket(None, 0, probe=False), False, 30.0) == (circuit, None)
    assert fresh.ticket is not None
    released, _ = release(circuit, fresh.ticket)
    assert released is not None
    assert released.probes == circuit.probes - 1


def test_release_of_a_non_probe_changes_nothing() -> None:
    assert release(None, Ticket(None, 0, probe=True)) == (None, None)
    circuit = _open()
    assert release(circuit, Ticket(circuit.born, circuit.generation, probe=True)) == (
        circuit,
        None,
    )


def test_forced_states_ignore_outcomes_and_time() -> None:
    circuit, change = force(None, OPEN, 0.0)
    assert change == Change(CLOSED, OPEN)
    assert circuit is not None
    decision = peek(circuit, 1e9)
    assert decision is not None
    assert decision.ticket is None
    assert decision.retry_after is None
    assert ttl(POLICY, circuit, 0.0) == math.inf
    circuit, change = force(circuit, CLOSED, 1.0)
    assert change == Change(OPEN, CLOSED)
    assert circuit is not None
    for _ in range(10):
        circuit, _ = record(POLICY, circuit, Ticket(None, 0, probe=False), True, 1.0)
    assert (circuit.state, circuit.forced) == (CLOSED, True)
    assert force(circuit, CLOSED, 2.0)[1] is None
    assert force(circuit, None, 2.0) == (None, None)
    assert force(_open(), None, 2.0) == (None, Change(OPEN, CLOSED))


def test_ttl_covers_the_open_period_and_the_window() -> None:
    circuit = _open()
    assert ttl(POLICY, circuit, 1.0) == 4.0 + POLICY.window
    assert ttl(POLICY, circuit, 100.0) == POLICY.window
    half, _ = admit(POLICY, circuit, 5.0)
    assert half is not None
    assert ttl(POLICY, half, 5.0) == POLICY.window + POLICY.max_open_for
    assert ttl(POLICY, Circuit(born=0.0), 0.0) == POLICY.window
    assert retry_after(Circuit(born=0.0), 0.0) is None


def test_open_period_stays_finite_for_huge_trip_counts() -> None:
    assert POLICY.open_period(10_000) == POLICY.max_open_for


# -- properties ------------------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["admit", "ok", "fail", "release"]),
        st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_invariants_hold_for_any_sequence(steps: list[tuple[str, float]]) -> None:
    """Never leaves OPEN before its time, never over-admits probes, never stuck half-open."""
    circuit: Circuit | None = None
    now = 0.0
    tickets: list[Ticket] = []
    for action, dt in steps:
        now += dt
        before = circuit
        if action == "admit":
            circuit, decision = admit(POLICY, circuit, now)
            if decision.ticket is not None:
                tickets.append(decision.ticket)
            if before is not None and before.state is OPEN and now < before.open_until:
                assert decision.ticket is None
                assert circuit is before
                assert decision.retry_after == pytest.approx(before.open_until - now)
        elif tickets:
            ticket = tickets.pop(0)
            if action == "release":
                circuit, _ = release(circuit, ticket)
            else:
                circuit, _ = record(POLICY, circuit, ticket, action == "fail", now)
            if before is not None and before.state is OPEN:
                assert circuit is before
        if circuit is not None:
            assert circuit.probes >= 0
            assert circuit.probes + circuit.succeeded <= POLICY.half_open_probes
            assert len(circuit.calls) == len(circuit.failures) == BUCKETS
            if circuit.state is OPEN:
                assert circuit.open_until - now <= POLICY.max_open_for
    # Whatever happened, once every ticket is released the circuit can admit a probe again.
    for ticket in tickets:
        circuit, _ = release(circuit, ticket)
    later = now + POLICY.max_open_for + 1.0
    _, decision = admit(POLICY, circuit, later)
    assert decision.ticket is not None
