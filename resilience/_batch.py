"""Counting the common event in bulk: one store write per key per time slot, not one per call.

Most calls succeed, and what a success changes is one counter in the current slot of a sliding
window (a breaker's calls, a retry budget's requests). Writing the store on every call was the
largest cost of the success path, so the layers count such events here:

- the first event of a key in a slot is written to the store at once (so the store always
  knows every key in use, and its bound and expiry work as before);
- later events of that key in the same slot only add to a pending count;
- pending counts are written as one transition with the total when the slot changes, and for
  one key before any event that *reads* its window (a failure, a retry), so every decision sees
  every call counted before it.

Readers (``statistics()``) add the pending count to what the store holds without writing, so
they stay safe to call from a metrics thread. The store's transitions stay pure; they are
applied to ``n`` events at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from ._store import MemoryStore

__all__ = ["Batch"]

S = TypeVar("S")


class Batch(Generic[S]):
    """Pending event counts per key within one time slot, and how to write them.

    Args:
        max_keys: The most keys counted at once; past it, events are written one by one.
        apply: ``(state, n, at) -> state``: the state with ``n`` events at time ``at`` added
            (a pure transition of the layer's core).
        ttl: ``(state, at) -> seconds``: how long a state written at ``at`` is kept.

    Attributes:
        slot: The slot the counts belong to: its index, a whole number, int or float (None
            before the first event).
        now: The time of the slot's first event: a time inside ``slot``, for writing them.
        counts: Pending events per key (0 for a key whose only event was written at once).
    """

    __slots__ = ("_apply", "_ttl", "counts", "max_keys", "now", "slot")

    def __init__(
        self,
        max_keys: int,
        apply: Callable[[S | None, int, float], S | None],
        ttl: Callable[[S, float], float],
    ) -> None:
        self.max_keys = max_keys
        self._apply = apply
        self._ttl = ttl
        self.slot: float | None = None
        self.now = 0.0
        self.counts: dict[Hashable, int] = {}

    def count(self, store: MemoryStore[S], key: Hashable, slot: float, now: float) -> None:
        """Count one event of ``key`` at ``now`` (in ``slot``), writing ``store`` when due.

        A new slot writes the previous one's counts and drops expired keys; a key's first
        event in a slot (or any event once ``max_keys`` keys are counted) is written at once.
        """
        if slot != self.slot:
            at, previous = self.now, self.counts
            self.slot, self.now, self.counts = slot, now, {}
            self._write(store, at, previous, now)
            store.expire_now(now)
        counts = self.counts
        pending = counts.get(key)
        if pending is not None:
            counts[key] = pending + 1
            return
        if len(counts) < self.max_keys:
            counts[key] = 0
        self._write(store, now, {key: 1}, now)

    def flush(self, store: MemoryStore[S], key: Hashable, now: float) -> None:
        """Write ``key``'s pending count, before a decision that reads its state."""
        pending = self.counts.get(key, 0)
        if pending:
            self.counts[key] = 0
            self._write(store, self.now, {key: pending}, now)

    def pending(self, key: Hashable) -> int:
        """``key``'s pending count (0 if none)."""
        return self.counts.get(key, 0)

    def clear(self, key: Hashable | None = None) -> None:
        """Forget ``key``'s pending count, or every one."""
        if key is None:
            self.counts = {}
        else:
            self.counts.pop(key, None)

    def _write(
        self, store: MemoryStore[S], at: float, counts: dict[Hashable, int], now: float
    ) -> None:
        """Write events counted at ``at`` (a time in their slot), by ``now``."""
        apply, keep, late = self._apply, self._ttl, now - at

        def ttl(state: S) -> float:
            return keep(state, at) - late  # as if written at ``at``

        for key, events in counts.items():
            if events:

                def transition(state: S | None, n: int = events) -> tuple[S | None, None]:
                    return apply(state, n, at), None

                store.update_now(key, transition, now=now, ttl=ttl)
