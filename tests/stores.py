"""A state store with only the async protocol, for tests of layers behind a shared store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import anyio.lowlevel

from resilience._store import MemoryStore

S = TypeVar("S")
R = TypeVar("R")


class SuspendingStore(Generic[S]):
    """Only the four methods of the store protocol, each suspending like a network store would.

    A check and the update after it are never atomic by accident, and a layer cannot use the
    in-memory store's synchronous shortcuts (the breaker's bulk counting among them). ``inner``
    holds the state; ``calls`` counts gets and updates.
    """

    def __init__(self) -> None:
        self.inner: MemoryStore[S] = MemoryStore()
        self.calls = 0

    async def get(self, key: Hashable, *, now: float) -> S | None:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        return self.inner.get_now(key, now=now)

    async def update(
        self,
        key: Hashable,
        transition: Callable[[S | None], tuple[S | None, R]],
        *,
        now: float,
        ttl: float | Callable[[S], float],
    ) -> R:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        return self.inner.update_now(key, transition, now=now, ttl=ttl)

    async def clear(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.inner.clear_now()

    def lock(self, key: Hashable) -> contextlib.AbstractAsyncContextManager[None]:
        return self.inner.lock(key)
