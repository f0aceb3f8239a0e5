"""The circuit breaker's state machine: pure, synchronous, no I/O.

How it works. Each key (an origin by default) has a :class:`Circuit`:

- **closed**: calls pass. Outcomes go into a sliding window of ``window`` seconds, kept as a ring
  of :data:`BUCKETS` time buckets (so memory per key is fixed however busy the key is). The circuit
  trips when, with at least ``minimum_calls`` calls in the window, the share of failures reaches
  ``failure_ratio``, or when ``consecutive_failures`` calls in a row fail (which catches a dead
  server at low traffic), whichever comes first.
- **open**: calls are rejected without touching the network until ``open_until``. The open
  period is ``open_for * 2 ** (trips - 1)``, capped at ``max_open_for``: it grows while the server
  keeps failing its probes and resets once it recovers.
- **half_open**: the first call after ``open_until`` moves the circuit here. At most
  ``half_open_probes`` probe calls are let through; when that many have succeeded the circuit
  closes, and one failure re-opens it. A probe that ends without a verdict (cancelled, or refused
  by an inner layer) gives its slot back, so the circuit can never be stuck half-open.

Each admitted call gets a :class:`Ticket` naming the circuit (``born``) and state period
(``generation``) it was admitted in; an outcome only moves a half-open circuit if its ticket is a
probe of that very period. Forced circuits (``force_open``/``force_closed``) ignore outcomes.

Every function here is ``(settings, state, event, now) -> (new state, decision)``; the layer in
``_breaker.py`` drives them through a :class:`~resilience._store.StateStore`.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import attrs

__all__ = [
    "BUCKETS",
    "BreakerPolicy",
    "Change",
    "Circuit",
    "CircuitState",
    "Decision",
    "Ticket",
    "admit",
    "force",
    "peek",
    "record",
    "release",
    "retry_after",
    "ttl",
    "window_counts",
]

#: Buckets in the sliding window; the window slides in steps of ``window / BUCKETS``.
BUCKETS = 10
_EMPTY = (0,) * BUCKETS


class CircuitState(str, enum.Enum):
    """The state of one circuit. A ``str`` enum: it logs and compares as its value."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


def _ratio(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"failure_ratio must be in (0, 1], got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class BreakerPolicy:
    """The breaker's settings, validated (see :class:`resilience.CircuitBreaker`)."""

    failure_ratio: float = attrs.field(default=0.5, converter=_ratio)
    minimum_calls: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    window: float = attrs.field(default=30.0, validator=attrs.validators.gt(0.0))
    consecutive_failures: int = attrs.field(default=10, validator=attrs.validators.ge(0))
    open_for: float = attrs.field(default=10.0, validator=attrs.validators.gt(0.0))
    max_open_for: float = attrs.field(default=120.0)
    half_open_probes: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: Seconds of one window bucket: ``window / BUCKETS``. A bucket's index (its *epoch*) is
    #: ``math.floor(now / bucket_width)``; the layer computes it on every success.
    bucket_width: float = attrs.field(init=False)

    @bucket_width.default
    def _width(self) -> float:
        return self.window / BUCKETS

    @max_open_for.validator
    def _check_max(self, _: attrs.Attribute[float], value: float) -> None:
        if value < self.open_for:
            raise ValueError(f"max_open_for ({value}) must be >= open_for ({self.open_for})")

    def open_period(self, trips: int) -> float:
        """Seconds the circuit stays open after its ``trips``-th trip in a row (1-based)."""
        # Past 2**64 the cap has long been reached; keeps the float power finite.
        return min(self.open_for * 2.0 ** min(trips - 1, 64), self.max_open_for)


class Circuit(NamedTuple):
    """The state of one key's circuit (immutable; transitions return a new one).

    A named tuple rather than an attrs class: one is built on every recorded call, and a tuple
    is several times cheaper to build than a frozen attrs instance.

    Attributes:
        state: Closed, open or half-open.
        born: When this circuit was created (tells a recreated circuit from an expired one).
        generation: Counts state changes; tickets of an older period do not move a probe.
        epoch: Index of the newest window bucket (``floor(now / bucket width)``).
        calls: Calls per bucket, a ring indexed by ``epoch % BUCKETS``.
        failures: Failures per bucket, the same ring.
        consecutive: Failures in a row (closed state).
        trips: Trips since the last recovery; sets the open period.
        open_until: When an open circuit lets its first probe through.
        probes: Probes in flight (half-open state).
        succeeded: Probes that succeeded (half-open state).
        forced: True while held open or closed by hand.
    """

    born: float
    state: CircuitState = CircuitState.CLOSED
    generation: int = 0
    epoch: int = 0
    calls: tuple[int, ...] = _EMPTY
    failures: tuple[int, ...] = _EMPTY
    consecutive: int = 0
    trips: int = 0
    open_until: float = 0.0
    probes: int = 0
    succeeded: int = 0
    forced: bool = False


class Ticket(NamedTuple):
    """Proof of admission, handed back with the call's outcome."""

    born: float | None
    generation: int
    probe: bool


class Change(NamedTuple):
    """A state change, for listeners and telemetry."""

    old: CircuitState
    new: CircuitState


class Decision(NamedTuple):
    """The answer to "may this call go?".

    Attributes:
        ticket: The admission, or None when rejected.
        retry_after: For a rejection: seconds until the circuit lets a probe through (None when
            that is unknown: forced open, or every probe slot taken).
        change: The state change admitting this call caused, if any.
    """

    ticket: Ticket | None
    retry_after: float | None = None
    change: Change | None = None


_ALLOW = Decision(Ticket(None, 0, probe=False))


def _epoch(policy: BreakerPolicy, now: float) -> int:
    return math.floor(now / policy.bucket_width)


def window_counts(policy: BreakerPolicy, circuit: Circuit, now: float) -> tuple[int, int]:
    """Calls and failures in the window ending at ``now``."""
    age = _epoch(policy, now) - circuit.epoch
    if age >= BUCKETS:
        return 0, 0
    if age <= 0:
        return sum(circuit.calls), sum(circuit.failures)
    # Buckets older than the window are the `age` slots after the newest one.
    stale = {(circuit.epoch + i) % BUCKETS for i in range(1, age + 1)}
    calls = sum(c for i, c in enumerate(circuit.calls) if i not in stale)
    failures = sum(f for i, f in enumerate(circuit.failures) if i not in stale)
    return calls, failures


def _slide(policy: BreakerPolicy, circuit: Circuit, now: float) -> tuple[int, list[int], list[int]]:
    """The ring moved forward to ``now``: (epoch, calls, failures) with stale buckets zeroed."""
    epoch = _epoch(policy, now)
    age = epoch - circuit.epoch
    if age >= BUCKETS:
        return epoch, [0] * BUCKETS, [0] * BUCKETS
    calls, failures = list(circuit.calls), list(circuit.failures)
    for i in range(1, age + 1):
        slot = (circuit.epoch + i) % BUCKETS
        calls[slot] = failures[slot] = 0
    return max(epoch, circuit.epoch), calls, failures


def retry_after(circuit: Circuit, now: float) -> float | None:
    """Seconds until an open circuit lets a probe through (None if forced open or not open)."""
    if circuit.state is not CircuitState.OPEN or circuit.forced:
        return None
    return max(circuit.open_until - now, 0.0)


def peek(circuit: Circuit | None, now: float) -> Decision | None:
    """Decide without changing state where possible (the hot path: no write needed).

    Returns None when deciding needs :func:`admit` (an open circuit whose time is up, or a
    half-open one handing out probe slots).
    """
    if circuit is None:
        return _ALLOW
    state = circuit.state
    if state is CircuitState.CLOSED:
        return _ALLOW  # only probe tickets need to name their period: no allocation here
    if state is CircuitState.OPEN and (circuit.forced or now < circuit.open_until):
        return Decision(None, retry_after(circuit, now))
    return None


def admit(
    policy: BreakerPolicy, circuit: Circuit | None, now: float
) -> tuple[Circuit | None, Decision]:
    """May a call go now? Takes a probe slot when half-open."""
    decided = peek(circuit, now)
    if decided is not None or circuit is None:
        return circuit, decided or _ALLOW
    change = None
    if circuit.state is CircuitState.OPEN:
        circuit = Circuit(
            state=CircuitState.HALF_OPEN,
            born=circuit.born,
            generation=circuit.generation + 1,
            trips=circuit.trips,
            open_until=circuit.open_until,
        )
        change = Change(CircuitState.OPEN, CircuitState.HALF_OPEN)
    if circuit.probes + circuit.succeeded >= policy.half_open_probes:
        return circuit, Decision(None, None, change)
    ticket = Ticket(circuit.born, circuit.generation, probe=True)
    return circuit._replace(probes=circuit.probes + 1), Decision(ticket, None, change)


def _is_current_probe(circuit: Circuit, ticket: Ticket) -> bool:
    return (
        ticket.probe
        and circuit.state is CircuitState.HALF_OPEN
        and ticket.born == circuit.born
        and ticket.generation == circuit.generation
    )


def _trip(policy: BreakerPolicy, circuit: Circuit, now: float) -> Circuit:
    trips = circuit.trips + 1
    return Circuit(
        state=CircuitState.OPEN,
        born=circuit.born,
        generation=circuit.generation + 1,
        trips=trips,
        open_until=now + policy.open_period(trips),
    )


def record(
    policy: BreakerPolicy, circuit: Circuit | None, ticket: Ticket, failed: bool, now: float
) -> tuple[Circuit, Change | None]:
    """Count one call's outcome; ``failed`` is the verdict's ``counts_as_failure``."""
    if circuit is None:
        circuit = Circuit(born=now, epoch=_epoch(policy, now))
    if circuit.forced:
        return circuit, None
    state = circuit.state
    if state is CircuitState.HALF_OPEN:
        if not _is_current_probe(circuit, ticket):
            return circuit, None
        if failed:
            return _trip(policy, circuit, now), Change(state, CircuitState.OPEN)
        if circuit.succeeded + 1 >= policy.half_open_probes:
            closed = Circuit(
                born=circuit.born, generation=circuit.generation + 1, epoch=_epoch(policy, now)
            )
            return closed, Change(state, CircuitState.CLOSED)
        return circuit._replace(probes=circuit.probes - 1, succeeded=circuit.succeeded + 1), None
    if state is CircuitState.OPEN:
        return circuit, None  # a call admitted before the trip: the verdict is already in
    if not failed and circuit.epoch == (epoch := _epoch(policy, now)):
        # The hot path (a success in the current bucket): positional fields, one list copy.
        counts = list(circuit.calls)
        counts[epoch % BUCKETS] += 1
        return Circuit(
            circuit.born, state, circuit.generation, epoch, tuple(counts), circuit.failures
        ), None
    epoch, calls, failures = _slide(policy, circuit, now)
    slot = epoch % BUCKETS
    calls[slot] += 1
    consecutive = 0
    if failed:
        failures[slot] += 1
        consecutive = circuit.consecutive + 1
        total = sum(calls)
        if (policy.consecutive_failures and consecutive >= policy.consecutive_failures) or (
            # A ratio, not failures >= ratio * total: 0.28 * 25 is 7.000000000000001, so 7
            # failures in 25 would miss a ratio of 0.28; 7 / 25 is 0.28 exactly as a float.
            total >= policy.minimum_calls and sum(failures) / total >= policy.failure_ratio
        ):
            return _trip(policy, circuit, now), Change(state, CircuitState.OPEN)
    updated = Circuit(
        born=circuit.born,
        generation=circuit.generation,
        epoch=epoch,
        calls=tuple(calls),
        failures=tuple(failures),
        consecutive=consecutive,
    )
    return updated, None


def record_successes(
    policy: BreakerPolicy, circuit: Circuit | None, successes: int, now: float
) -> tuple[Circuit | None, None]:
    """Count ``successes`` calls admitted closed (not probes) that succeeded by ``now``.

    The same as :func:`record` of each in turn, in one step: the breaker counts successes in
    bulk (see ``resilience._batch``). Successes never change the state; against an open or
    half-open circuit they are calls admitted before the trip, already decided, and ignored.
    """
    return with_successes(policy, circuit, successes, now), None


def with_successes(
    policy: BreakerPolicy, circuit: Circuit | None, successes: int, now: float
) -> Circuit:
    """:func:`record_successes`'s circuit: the batch's transition (see ``resilience._batch``)."""
    if circuit is None:
        circuit = Circuit(born=now, epoch=_epoch(policy, now))
    if circuit.forced or circuit.state is not CircuitState.CLOSED:
        return circuit
    epoch, calls, failures = _slide(policy, circuit, now)
    calls[epoch % BUCKETS] += successes
    return Circuit(
        born=circuit.born,
        generation=circuit.generation,
        epoch=epoch,
        calls=tuple(calls),
        failures=tuple(failures),
    )


def release(circuit: Circuit | None, ticket: Ticket) -> tuple[Circuit | None, None]:
    """A call ended without a verdict (cancelled, refused below): give back its probe slot."""
    if circuit is None or not _is_current_probe(circuit, ticket) or circuit.probes == 0:
        return circuit, None
    return circuit._replace(probes=circuit.probes - 1), None


def force(
    circuit: Circuit | None, state: CircuitState | None, now: float
) -> tuple[Circuit | None, Change | None]:
    """Hold a circuit open or closed by hand; None resets it to a fresh closed circuit."""
    old = circuit.state if circuit is not None else CircuitState.CLOSED
    new = state or CircuitState.CLOSED
    change = Change(old, new) if old is not new else None
    if state is None:
        return None, change
    generation = circuit.generation + 1 if circuit is not None else 0
    return Circuit(state=state, born=now, generation=generation, forced=True), change


def ttl(policy: BreakerPolicy, circuit: Circuit, now: float) -> float:
    """Seconds an untouched circuit is worth keeping; after that it is as good as new."""
    if circuit.forced:
        return math.inf
    if circuit.state is CircuitState.OPEN:
        return max(circuit.open_until - now, 0.0) + policy.window
    if circuit.state is CircuitState.HALF_OPEN:
        # Probes in flight may take a while; a forgotten circuit simply starts closed again.
        return policy.window + policy.max_open_for
    return policy.window
