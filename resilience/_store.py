"""Where per-key layer state lives: a small async store interface and its in-memory version.

Breaker circuits, gate holds, retry budgets and lockout counts are values of pure state
machines. Layers never mutate them in place: they hand the store a *transition*, a pure function
``old state -> (new state, result)``, and the store applies it atomically. The in-memory store
does that trivially (a transition never awaits); a shared store (several processes or hosts)
can implement the same two methods with compare-and-set, without touching any layer.

Memory is bounded: every entry has a time to live, and the store holds at most ``max_keys``
entries, dropping the least recently used first.

Some decisions need more than an atomic transition: the lockout guard lets only one login per
account be in flight at a time. :meth:`StateStore.lock` is that per-key mutual exclusion; the
in-memory store holds a lock per key only while someone holds or waits for it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from typing import Generic, Protocol, TypeVar

import anyio
import attrs

__all__ = ["KeyedLock", "MemoryStore", "StateStore", "StoreStatistics"]

S = TypeVar("S")
R = TypeVar("R")


class StateStore(Protocol[S]):
    """Per-key state with expiry and atomic transitions."""

    async def get(self, key: Hashable, *, now: float) -> S | None:
        """Return the state of ``key``, or None if it has none (or it expired)."""
        ...

    async def update(
        self,
        key: Hashable,
        transition: Callable[[S | None], tuple[S | None, R]],
        *,
        now: float,
        ttl: float | Callable[[S], float],
    ) -> R:
        """Atomically replace ``key``'s state by ``transition(state)[0]`` and return ``[1]``.

        A new state of None deletes the key. ``ttl`` (seconds from ``now``, or a function of the
        new state giving them) is when an untouched key is forgotten.
        """
        ...

    async def clear(self) -> None:
        """Forget every key."""
        ...

    def lock(self, key: Hashable) -> contextlib.AbstractAsyncContextManager[None]:
        """An async context manager that holds ``key`` exclusively (one holder at a time)."""
        ...


#: The longest a store write that must outlive a cancellation (a failure, a probe's verdict, a
#: failed login) may take, seconds. Such writes are shielded from the caller's cancellation; a
#: store that has not answered by then (a remote store in its own outage) is given up on, with a
#: warning, so it cannot hold a cancelled caller or an attempt timeout indefinitely.
SHIELDED_WRITE_SECONDS = 10.0


@contextlib.contextmanager
def shielded_write(log: logging.Logger, lost: str) -> Iterator[None]:
    """Finish a store write through a cancellation, for a bounded time.

    At most :data:`SHIELDED_WRITE_SECONDS`, cancelled or not: anyio cannot tell a shielded
    scope that the caller was cancelled, so the bound is on the write itself. A write given up
    on is logged on ``log`` as "<lost> was not written".
    """
    with anyio.move_on_after(SHIELDED_WRITE_SECONDS, shield=True) as scope:
        yield
    if scope.cancelled_caught:
        log.warning("%s store did not answer; %s was not written", log.name, lost)


@attrs.frozen
class StoreStatistics:
    """A snapshot of a :class:`MemoryStore`."""

    keys: int
    max_keys: int
    evicted: int
    expired: int


class MemoryStore(Generic[S]):
    """The in-memory :class:`StateStore`: an LRU dict with per-entry expiry.

    Args:
        max_keys: The most keys held at once; the least recently used go first.
        evict: Whether a new key past ``max_keys`` evicts the least recently used one. With
            False nothing live is ever dropped: the caller asks :meth:`full_now` before adding
            keys, and the store may hold a few more than ``max_keys`` meanwhile.
    """

    #: How many expired entries one call may sweep from the cold end (amortised cleanup).
    _SWEEP = 4

    def __init__(self, *, max_keys: int = 10_000, evict: bool = True) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self.evict = evict
        self._entries: OrderedDict[Hashable, tuple[float, S]] = OrderedDict()
        #: Bumped by every change to the entries (a write, an expiry, an eviction, a clear):
        #: a reader that saw an entry knows, while the version is the same, that it still is.
        self.version = 0
        self._evicted = 0
        self._expired = 0
        self._locks = KeyedLock()

    def expire_now(self, now: float) -> None:
        """Drop every expired entry at the cold end (for statistics; O(expired entries))."""
        self._sweep(now, len(self._entries))

    def _sweep(self, now: float, limit: int = _SWEEP) -> None:
        entries = self._entries
        for _ in range(limit):
            if not entries:
                return
            key = next(iter(entries))
            if entries[key][0] > now:
                return
            del entries[key]
            self.version += 1
            self._expired += 1

    def get_now(self, key: Hashable, *, now: float) -> S | None:
        """The synchronous core of :meth:`get` (for in-process callers on a hot path)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, state = entry
        if expires <= now:
            del self._entries[key]
            self.version += 1
            self._expired += 1
            return None
        return state

    def update_now(
        self,
        key: Hashable,
        transition: Callable[[S | None], tuple[S | None, R]],
        *,
        now: float,
        ttl: float | Callable[[S], float],
    ) -> R:
        """The synchronous core of :meth:`update`."""
        entries = self._entries
        self._sweep(now)
        self.version += 1  # whatever the transition does (at worst, a reader looks again)
        entry = entries.get(key)
        if entry is not None and entry[0] <= now:
            del entries[key]
            self._expired += 1
            entry = None
        state, result = transition(None if entry is None else entry[1])
        if state is None:
            if entry is not None:
                del entries[key]
            return result
        expires = now + (ttl(state) if callable(ttl) else ttl)
        if expires <= now:  # nothing left to keep (a state recorded late, already stale)
            if entry is not None:
                del entries[key]
            return result
        entries[key] = (expires, state)
        if entry is not None:
            entries.move_to_end(key)  # replacing a value keeps its place: mark it recent
        elif len(entries) > self.max_keys and self.evict:
            entries.popitem(last=False)
            self._evicted += 1
        return result

    def full_now(self, *, now: float) -> bool:
        """Whether ``max_keys`` live keys are held (expired ones are dropped first).

        O(1) below the bound; at it, one pass over the keys to drop every expired one.
        """
        entries = self._entries
        if len(entries) < self.max_keys:
            return False
        for key in [key for key, (expires, _) in entries.items() if expires <= now]:
            del entries[key]
            self.version += 1
            self._expired += 1
        return len(entries) >= self.max_keys

    async def get(self, key: Hashable, *, now: float) -> S | None:
        """Return the state of ``key``, or None."""
        return self.get_now(key, now=now)

    async def update(
        self,
        key: Hashable,
        transition: Callable[[S | None], tuple[S | None, R]],
        *,
        now: float,
        ttl: float | Callable[[S], float],
    ) -> R:
        """Apply ``transition`` to ``key``'s state atomically; return its result."""
        return self.update_now(key, transition, now=now, ttl=ttl)

    def clear_now(self) -> None:
        """The synchronous core of :meth:`clear`."""
        self._entries.clear()
        self.version += 1

    async def clear(self) -> None:
        """Forget every key (held locks are unaffected)."""
        self.clear_now()

    def lock(self, key: Hashable) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold ``key`` exclusively: waiters queue first come, first served."""
        return self._locks.hold(key)

    def __len__(self) -> int:
        return len(self._entries)

    def statistics(self) -> StoreStatistics:
        """Return a frozen snapshot: key count, bound, and how many were evicted or expired."""
        return StoreStatistics(
            keys=len(self._entries),
            max_keys=self.max_keys,
            evicted=self._evicted,
            expired=self._expired,
        )


class KeyedLock:
    """One :class:`anyio.Lock` per key, kept only while someone holds or waits for it.

    Memory follows the number of keys in use, not the number ever seen.
    """

    def __init__(self) -> None:
        # key -> (lock, holders and waiters)
        self._locks: dict[Hashable, tuple[anyio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for ``key``'s lock, hold it for the ``async with`` block, then release it."""
        lock, users = self._locks.get(key) or (anyio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
