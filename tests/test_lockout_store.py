"""What the breaker and the guard added to the state store: a TTL from the new state, clear(),
and per-key locks that exist only while in use."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from resilience._store import KeyedLock, MemoryStore

pytestmark = pytest.mark.anyio


def _set(value: int) -> Callable[[int | None], tuple[int, int]]:
    return lambda _: (value, value)


async def test_the_ttl_can_depend_on_the_new_state() -> None:
    store: MemoryStore[int] = MemoryStore()
    await store.update("short", _set(1), now=0.0, ttl=float)
    await store.update("long", _set(50), now=0.0, ttl=float)
    assert await store.get("short", now=1.0) is None
    assert await store.get("long", now=49.0) == 50


async def test_clear_forgets_every_key() -> None:
    store: MemoryStore[int] = MemoryStore()
    for key in range(10):
        await store.update(key, _set(key), now=0.0, ttl=10.0)
    await store.clear()
    assert len(store) == 0
    assert await store.get(3, now=0.0) is None


async def test_a_key_lock_admits_one_holder_at_a_time_and_is_dropped_after() -> None:
    locks = KeyedLock()
    inside: list[str] = []
    peak = 0

    async def hold(key: str) -> None:
        nonlocal peak
        async with locks.hold(key):
            inside.append(key)
            peak = max(peak, inside.count("a"))
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            inside.remove(key)

    async with anyio.create_task_group() as tg:
        for key in ["a"] * 5 + ["b"] * 2:
            tg.start_soon(hold, key)
    assert peak == 1
    assert len(locks) == 0


async def test_a_waiter_cancelled_in_the_queue_leaves_no_lock_behind() -> None:
    store: MemoryStore[int] = MemoryStore()
    entered: list[str] = []

    async def waiter() -> None:
        async with store.lock("k"):
            entered.append("waiter")  # pragma: no cover - cancelled while queued

    async with store.lock("k"), anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert entered == []
    assert len(store._locks) == 0
    async with store.lock("k"):
        assert len(store._locks) == 1
