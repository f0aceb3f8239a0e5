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

from collections.abc import Hashable

__all__ = ["Batch"]


class Batch:
    """Pending event counts per key within one time slot.

    Attributes:
        slot: The slot the counts belong to (None before the first event).
        now: The time of the slot's first event: a time inside ``slot``, for writing them.
        counts: Pending events per key (0 for a key whose only event was written at once).
    """

    __slots__ = ("counts", "max_keys", "now", "slot")

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.slot: int | None = None
        self.now = 0.0
        self.counts: dict[Hashable, int] = {}

    def roll(self, slot: int, now: float) -> tuple[float, dict[Hashable, int]]:
        """Start ``slot`` at ``now``; return the previous slot's counts and a time inside it."""
        previous = (self.now, self.counts)
        self.slot, self.now, self.counts = slot, now, {}
        return previous

    def add(self, key: Hashable) -> bool:
        """Count one event of ``key`` in the current slot.

        Returns:
            True when it is pending; False when the caller must write it now (the key's first
            event in this slot, or a batch already holding ``max_keys`` keys).
        """
        counts = self.counts
        pending = counts.get(key)
        if pending is not None:
            counts[key] = pending + 1
            return True
        if len(counts) < self.max_keys:
            counts[key] = 0
        return False

    def pending(self, key: Hashable) -> int:
        """``key``'s pending count (0 if none)."""
        return self.counts.get(key, 0)

    def take(self, key: Hashable) -> int:
        """Reset ``key``'s pending count to 0 and return it (it is about to be written)."""
        counts = self.counts
        pending = counts.get(key, 0)
        if pending:
            counts[key] = 0
        return pending

    def clear(self, key: Hashable | None = None) -> None:
        """Forget ``key``'s pending count, or every one."""
        if key is None:
            self.counts = {}
        else:
            self.counts.pop(key, None)
