"""A retry budget: retries per key limited to a share of recent traffic.

How it works: time is cut into ``BUCKETS`` slices of ``window / BUCKETS`` seconds. Each key keeps
a short tuple of ``(slice, requests, retries)`` for the slices still inside the window. A retry is
allowed while

    retries_in_window + 1 <= ratio * requests_in_window + min_per_second * window

so under a total outage retries add at most ``ratio`` to the load (plus a small floor that lets a
lone request still retry). A request is a *logical* call (its first attempt); a retry is every
attempt after it. The transitions are pure functions of ``(state, now)``; the per-key states live
in a :class:`~resilience._store.MemoryStore`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import attrs

from ._batch import Batch
from ._store import MemoryStore

__all__ = ["BudgetState", "RetryBudget", "RetryBudgetStatistics", "allows", "record"]

BUCKETS = 10

#: ``counting_until`` of a budget that weighed no retry within its window.
IDLE = -math.inf

#: One slice: (slice number, requests, retries).
Bucket = tuple[int, int, int]


#: Recent traffic of one key: the slices still inside the window, oldest first.
BudgetState = tuple[Bucket, ...]


def _current(state: BudgetState | None, slot: int) -> BudgetState:
    if not state:
        return ()
    if state[0][0] > slot - BUCKETS:
        return state  # nothing has left the window (the common case)
    return tuple(b for b in state if b[0] > slot - BUCKETS)


def _slot(now: float, window: float) -> int:
    return math.floor(now * BUCKETS / window)


def record(
    state: BudgetState | None, now: float, window: float, requests: int = 0, retries: int = 0
) -> BudgetState:
    """Add ``requests`` and ``retries`` at ``now``; forget slices older than the window."""
    slot = _slot(now, window)
    buckets = _current(state, slot)
    if buckets and buckets[-1][0] == slot:
        _, req, ret = buckets[-1]
        return (*buckets[:-1], (slot, req + requests, ret + retries))
    return (*buckets, (slot, requests, retries))


def allows(
    state: BudgetState | None, *, now: float, window: float, ratio: float, min_per_second: float
) -> bool:
    """Whether one more retry fits in the budget at ``now``."""
    requests = retries = 0
    for _, req, ret in _current(state, _slot(now, window)):
        requests += req
        retries += ret
    return retries + 1 <= ratio * requests + min_per_second * window + 1e-9


@attrs.frozen
class RetryBudgetStatistics:
    """A snapshot of a :class:`RetryBudget`.

    Attributes:
        keys: Keys with traffic inside the window (or not yet expired).
        requests: Logical requests counted since the budget was made (requests are counted
            from a call that asks for a retry until a window after the last one; see
            :meth:`RetryBudget.counting`).
        retries: Retries allowed.
        refused: Retries refused because the budget was spent.
    """

    keys: int
    requests: int
    retries: int
    refused: int


@attrs.define
class _Counters:
    requests: int = 0
    retries: int = 0
    refused: int = 0
    #: Requests are counted until then: a window after the last retry weighed.
    counting_until: float = IDLE


@attrs.frozen(kw_only=True, eq=False)
class RetryBudget:
    """Limit retries per key to a share of recent requests.

    Attributes:
        ratio: Retries allowed per logical request over the window (default 0.2: 20%).
        window: Seconds of traffic the budget looks back on (default 10).
        min_per_second: A floor, in retries per second over the window, so a lone or quiet
            caller still retries (default 2: up to 20 retries in any 10 s).
        max_keys: Keys remembered at once (least recently used dropped first).
    """

    ratio: float = attrs.field(default=0.2, validator=attrs.validators.ge(0.0), converter=float)
    window: float = attrs.field(default=10.0, validator=attrs.validators.gt(0.0), converter=float)
    min_per_second: float = attrs.field(
        default=2.0, validator=attrs.validators.ge(0.0), converter=float
    )
    max_keys: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    _store: MemoryStore[BudgetState] = attrs.field(init=False, repr=False)
    _counters: _Counters = attrs.field(init=False, repr=False, factory=_Counters)
    _batch: Batch[BudgetState] = attrs.field(init=False, repr=False)

    @_store.default
    def _make_store(self) -> MemoryStore[BudgetState]:
        return MemoryStore(max_keys=self.max_keys)

    @_batch.default
    def _make_batch(self) -> Batch[BudgetState]:
        window = self.window
        return Batch(
            self.max_keys,
            apply=lambda state, n, at: record(state, at, window, n),
            ttl=lambda _, __: window,
        )

    def counting(self, now: float) -> bool:
        """Whether requests are counted at ``now``: a retry was weighed within the window.

        A budget that weighed no retry for a whole window has nothing to judge, so the retry
        layer does not count its requests (nor compute their keys) until a call asks for a
        retry again; that call is counted first, at that moment rather than when it began.
        Until the next window has passed, the budget then knows fewer requests than were sent:
        at the onset of an outage it allows fewer retries than a count of every request would.
        (A call whose attempt outlasted the window is counted later than it began, so it stays
        in the count later too.)
        """
        counters = self._counters
        if now < counters.counting_until:
            return True
        counters.counting_until = IDLE  # a caller may skip reading its clock until a retry
        return False

    def deposit(self, key: Hashable, *, now: float) -> None:
        """Record one logical request for ``key``.

        Every counted call deposits and few withdraw, so requests are counted in a
        :class:`~resilience._batch.Batch`: one store write per key and slot, plus one before a
        retry of that key is weighed.
        """
        self._counters.requests += 1
        self._batch.count(self._store, key, _slot(now, self.window), now)

    def withdraw(self, key: Hashable, *, now: float) -> bool:
        """Spend one retry for ``key`` if the budget allows it; return whether it did.

        Weighing a retry starts (or extends) the window in which requests are counted.
        """
        self._counters.counting_until = now + self.window
        self._batch.flush(self._store, key, now)

        def transition(state: BudgetState | None) -> tuple[BudgetState | None, bool]:
            if not allows(
                state,
                now=now,
                window=self.window,
                ratio=self.ratio,
                min_per_second=self.min_per_second,
            ):
                return state, False
            return record(state, now=now, window=self.window, retries=1), True

        allowed = self._store.update_now(key, transition, now=now, ttl=self.window)
        if allowed:
            self._counters.retries += 1
        else:
            self._counters.refused += 1
        return allowed

    def statistics(self) -> RetryBudgetStatistics:
        """Return a frozen snapshot of the budget's counters."""
        return RetryBudgetStatistics(
            keys=len(self._store),
            requests=self._counters.requests,
            retries=self._counters.retries,
            refused=self._counters.refused,
        )
