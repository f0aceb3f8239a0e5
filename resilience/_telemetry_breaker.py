"""The ``resilience.breaker.circuits`` gauge: how many circuits are in each state, now.

Each :class:`~resilience.Stack` with telemetry hands its circuit breakers to the telemetry's
:class:`BreakerWatch`, which listens for state changes (``CircuitBreaker.add_listener``) and
remembers which keys are not closed. When a metric reader collects, it asks each breaker for
those keys' circuits (``statistics(key)``, so a circuit whose open time is up reads as half-open
and one that expired is dropped) and reports counts by state only: keys never leave the process.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation

from . import _events as ev
from ._breaker import CircuitBreaker, CircuitState

__all__ = ["BREAKER_CIRCUITS", "BreakerWatch"]

BREAKER_CIRCUITS = "resilience.breaker.circuits"
_STATES = tuple(state.value for state in CircuitState)


class BreakerWatch:
    """Circuit breakers whose states the gauge reports; held weakly, watched once each."""

    def __init__(self) -> None:
        self._breakers: weakref.WeakKeyDictionary[CircuitBreaker, dict[Hashable, CircuitState]]
        self._breakers = weakref.WeakKeyDictionary()

    def watch(self, breaker: CircuitBreaker) -> None:
        """Follow ``breaker``'s state changes (again for the same breaker: nothing happens)."""
        if breaker in self._breakers:
            return
        not_closed: dict[Hashable, CircuitState] = {}
        self._breakers[breaker] = not_closed
        breaker.add_listener(_Follower(not_closed, breaker.max_keys))

    def observe(self, options: CallbackOptions | None = None) -> Iterable[Observation]:
        """One observation per state: circuits in it, over every watched breaker."""
        counts = dict.fromkeys(_STATES, 0)
        for breaker, not_closed in list(self._breakers.items()):
            statistics = breaker.statistics()
            open_now = 0
            for key, recorded in list(not_closed.items()):
                state: CircuitState | None = recorded  # a store that cannot say: last change
                if statistics.keys is not None:
                    circuit = breaker.statistics(key).circuit
                    state = None if circuit is None else circuit.state  # None: expired
                if state is None or state is CircuitState.CLOSED:
                    not_closed.pop(key, None)
                    continue
                counts[state.value] += 1
                open_now += 1
            if statistics.keys is not None:
                counts[CircuitState.CLOSED.value] += max(statistics.keys - open_now, 0)
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
