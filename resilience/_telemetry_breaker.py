"""The ``resilience.breaker.circuits`` gauge: how many circuits are in each state, now.

Each :class:`~resilience.Stack` with telemetry hands its circuit breakers to the telemetry's
:class:`BreakerWatch`, which listens for state changes (``CircuitBreaker.add_listener``) and
remembers which keys are not closed. When a metric reader collects, it asks each breaker for
those keys' circuits (``statistics(key)``, so a circuit whose open time is up reads as half-open
and one that expired is dropped) and reports counts by state only: keys never leave the process.

A meter holds one gauge of a name, with one callback: every :class:`~resilience.Telemetry` that
reports through the same meter adds its watch to that meter's :class:`GaugeFeed`, and the gauge
counts them all. The SDK may collect from its own export thread, outside any event loop and
while the loop's thread builds stacks: the feeds and watches lock what they share, and a breaker
whose clock cannot be read there (the default clock follows the running loop) is reported by
its circuits' last recorded states.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation

from . import _events as ev
from ._breaker import CircuitBreaker, CircuitState

__all__ = ["BREAKER_CIRCUITS", "BreakerWatch", "GaugeFeed", "feed_for"]

BREAKER_CIRCUITS = "resilience.breaker.circuits"
_STATES = tuple(state.value for state in CircuitState)


class BreakerWatch:
    """Circuit breakers whose states the gauge reports; held weakly, watched once each."""

    def __init__(self) -> None:
        self._breakers: weakref.WeakKeyDictionary[CircuitBreaker, dict[Hashable, CircuitState]]
        self._breakers = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def watch(self, breaker: CircuitBreaker) -> None:
        """Follow ``breaker``'s state changes (again for the same breaker: nothing happens)."""
        with self._lock:
            if breaker in self._breakers:
                return
            not_closed: dict[Hashable, CircuitState] = {}
            self._breakers[breaker] = not_closed
        breaker.add_listener(_Follower(not_closed, breaker.max_keys))

    def observe(self, options: CallbackOptions | None = None) -> Iterable[Observation]:
        """One observation per state: circuits in it, over every watched breaker."""
        counts = dict.fromkeys(_STATES, 0)
        self.count_into(counts)
        return _observations(counts)

    def count_into(self, counts: dict[str, int], seen: set[CircuitBreaker] | None = None) -> None:
        """Add this watch's circuits, by state, to ``counts``.

        Args:
            counts: Circuits per state, added to.
            seen: The breakers counted already (by another watch of the same meter: one
                breaker in two stacks with two telemetries is counted once). Held, not their
                ``id()``: a breaker collected meanwhile could hand its id to another.
        """
        with self._lock:
            watched = list(self._breakers.items())
        for breaker, not_closed in watched:
            if seen is not None:
                if breaker in seen:
                    continue
                seen.add(breaker)
            statistics = breaker.statistics()
            readable = statistics.keys is not None
            open_now = 0
            for key, recorded in list(not_closed.items()):
                state: CircuitState | None = recorded  # a store that cannot say: last change
                if readable:
                    try:
                        circuit = breaker.statistics(key).circuit
                    except RuntimeError:  # no event loop in this thread to read the clock by
                        readable = False
                    else:
                        state = None if circuit is None else circuit.state  # None: expired
                if state is None or state is CircuitState.CLOSED:
                    not_closed.pop(key, None)
                    continue
                counts[state.value] += 1
                open_now += 1
            if statistics.keys is not None:
                counts[CircuitState.CLOSED.value] += max(statistics.keys - open_now, 0)


class GaugeFeed:
    """Every watch that reports through one meter: the callback of that meter's one gauge."""

    def __init__(self) -> None:
        self._watches: weakref.WeakSet[BreakerWatch] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, watch: BreakerWatch) -> None:
        """Count ``watch``'s breakers too (held weakly, as the telemetry that owns it)."""
        with self._lock:
            self._watches.add(watch)

    def observe(self, options: CallbackOptions | None = None) -> Iterable[Observation]:
        """One observation per state: circuits in it, over every watch of this meter."""
        with self._lock:
            watches = list(self._watches)
        counts = dict.fromkeys(_STATES, 0)
        seen: set[CircuitBreaker] = set()
        for watch in watches:
            watch.count_into(counts, seen)
        return _observations(counts)


_FEEDS: weakref.WeakKeyDictionary[object, GaugeFeed] = weakref.WeakKeyDictionary()
_FEEDS_LOCK = threading.Lock()


def feed_for(meter: object) -> tuple[GaugeFeed, bool]:
    """``meter``'s feed, and whether it was made just now (then the gauge is still to make)."""
    with _FEEDS_LOCK:
        feed = _FEEDS.get(meter)
        if feed is not None:
            return feed, False
        feed = _FEEDS[meter] = GaugeFeed()
        return feed, True


def _observations(counts: dict[str, int]) -> list[Observation]:
    return [Observation(count, {ev.BREAKER_STATE: state}) for state, count in counts.items()]


class _Follower:
    """A breaker listener that remembers the keys whose circuits are not closed."""

    __slots__ = ("_limit", "_not_closed")

    def __init__(self, not_closed: dict[Hashable, CircuitState], limit: int) -> None:
        self._not_closed = not_closed
        self._limit = limit

    def __call__(self, key: Hashable, old: CircuitState, new: CircuitState) -> None:
        if new is CircuitState.CLOSED:
            self._not_closed.pop(key, None)
        elif key in self._not_closed or len(self._not_closed) < self._limit:
            self._not_closed[key] = new
