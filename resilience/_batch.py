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

A caller whose events mostly fall on one key (the express lane: one origin, call after call)
can count them on the batch's :class:`Tally` instead of in ``counts``: once :meth:`Batch.follow`
has pointed the tally at a key already counted in the slot, each later event of that key until
the tally's ``until`` is ``tally.n += 1``, with no dict look-up and no hash of the key. The
batch folds the tally into ``counts`` before anything reads or writes them, so what it writes
and what readers see are as if every event had gone through :meth:`Batch.count`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from math import inf
from typing import Generic, TypeVar

from ._store import MemoryStore

__all__ = ["Batch", "Tally"]

S = TypeVar("S")

#: The key of a tally that follows none: equal to no key.
_NO_KEY = object()


class Tally:
    """Events of one key counted past a batch's ``counts``, until a time (see the module).

    Attributes:
        key: The key it counts (``_NO_KEY``, equal to none, when it follows none).
        n: Its events not yet in the batch's ``counts``.
        until: Until when a caller may add to ``n`` (the end of the batch's slot, or -inf).
    """

    __slots__ = ("key", "n", "until")

    def __init__(self) -> None:
        self.key: Hashable = _NO_KEY
        self.n = 0
        self.until = -inf


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
        counts: Pending events per key (0 for a key whose only event was written at once),
            but for those on the tally.
        tally: The key a caller counts on directly, and its events (see :meth:`follow`).
    """

    __slots__ = ("_apply", "_ttl", "counts", "max_keys", "now", "slot", "tally")

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
        self.tally = Tally()

    def count(self, store: MemoryStore[S], key: Hashable, slot: float, now: float) -> None:
        """Count one event of ``key`` at ``now`` (in ``slot``), writing ``store`` when due.

        A new slot writes the previous one's counts and drops expired keys; a key's first
        event in a slot (or any event once ``max_keys`` keys are counted) is written at once.
        """
        self._fold()
        if slot != self.slot:
            self._unfollow()
            at, previous = self.now, self.counts
            self.slot, self.now, self.counts = slot, now, {}
            if any(previous.values()):  # a quiet key's slot has its one event written already
                self._write(store, at, previous, now)
            store.expire_now(now)
        counts = self.counts
        pending = counts.get(key)
        if pending is not None:
            counts[key] = pending + 1
            return
        if len(counts) < self.max_keys:
            counts[key] = 0
        self._write_one(store, key, 1, now, now)

    def flush(self, store: MemoryStore[S], key: Hashable, now: float) -> None:
        """Write ``key``'s pending count, before a decision that reads its state."""
        self._fold()
        pending = self.counts.get(key, 0)
        if pending:
            self.counts[key] = 0
            self._write_one(store, key, pending, self.now, now)

    def pending(self, key: Hashable) -> int:
        """``key``'s pending count (0 if none). It writes nothing (a metrics thread may ask)."""
        tally = self.tally
        on_tally = tally.n if tally.key == key else 0
        return self.counts.get(key, 0) + on_tally

    def clear(self, key: Hashable | None = None) -> None:
        """Forget ``key``'s pending count, or every one."""
        if key is None or self.tally.key == key:
            self._unfollow()
        if key is None:
            self.counts = {}
        else:
            self.counts.pop(key, None)

    def follow(self, key: Hashable, until: float) -> None:
        """Point the tally at ``key`` until ``until`` (at most the end of the current slot).

        Only a key already in ``counts`` is followed (one past ``max_keys`` is written event by
        event); otherwise the tally follows none. Its events so far are folded in first.
        """
        self._fold()
        if key in self.counts:
            tally = self.tally
            tally.key, tally.until = key, until
        else:
            self._unfollow()

    def _fold(self) -> None:
        """Move the tally's events into ``counts`` (its key is there while it has any)."""
        tally = self.tally
        if tally.n:
            self.counts[tally.key] += tally.n
            tally.n = 0

    def _unfollow(self) -> None:
        """Follow no key: a caller's next event goes through :meth:`count`. Its count is lost."""
        tally = self.tally
        tally.key, tally.n, tally.until = _NO_KEY, 0, -inf

    def _write(
        self, store: MemoryStore[S], at: float, counts: dict[Hashable, int], now: float
    ) -> None:
        """Write events counted at ``at`` (a time in their slot), by ``now``."""
        for key, events in counts.items():
            if events:
                self._write_one(store, key, events, at, now)

    def _write_one(
        self, store: MemoryStore[S], key: Hashable, events: int, at: float, now: float
    ) -> None:
        """Write ``key``'s ``events``, counted at ``at`` (a time in their slot), by ``now``."""
        apply, keep, late = self._apply, self._ttl, now - at

        def transition(state: S | None) -> tuple[S | None, None]:
            return apply(state, events, at), None

        def ttl(state: S) -> float:
            return keep(state, at) - late  # as if written at ``at``

        store.update_now(key, transition, now=now, ttl=ttl)
