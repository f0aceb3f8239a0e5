"""The in-memory state store: atomic transitions, expiry, and a hard bound on keys."""

from __future__ import annotations

import pytest

from resilience._store import MemoryStore

pytestmark = pytest.mark.anyio


def _incr(state: int | None) -> tuple[int, int]:
    value = (state or 0) + 1
    return value, value


async def test_update_applies_the_transition_and_returns_its_result() -> None:
    store: MemoryStore[int] = MemoryStore()
    assert await store.update("k", _incr, now=0.0, ttl=10.0) == 1
    assert await store.update("k", _incr, now=1.0, ttl=10.0) == 2
    assert await store.get("k", now=2.0) == 2


async def test_a_none_state_deletes_the_key() -> None:
    store: MemoryStore[int] = MemoryStore()
    await store.update("k", _incr, now=0.0, ttl=10.0)
    assert await store.update("k", lambda s: (None, s), now=0.0, ttl=10.0) == 1
    assert await store.get("k", now=0.0) is None
    assert len(store) == 0


async def test_entries_expire_after_their_ttl() -> None:
    store: MemoryStore[int] = MemoryStore()
    await store.update("k", _incr, now=0.0, ttl=5.0)
    assert await store.get("k", now=4.9) == 1
    assert await store.get("k", now=5.0) is None
    assert store.statistics().expired == 1


def test_idle_keys_are_swept_by_later_updates() -> None:
    store: MemoryStore[int] = MemoryStore()
    for i in range(100):
        store.update_now(i, _incr, now=float(i) * 0.01, ttl=1.0)
    for step in range(100):
        store.update_now("hot", _incr, now=10.0 + step, ttl=1.0)
    assert len(store) == 1


def test_a_million_distinct_keys_stay_within_the_bound() -> None:
    store: MemoryStore[int] = MemoryStore(max_keys=1000)
    for i in range(1_000_000):
        store.update_now(i, _incr, now=0.0, ttl=3600.0)
    stats = store.statistics()
    assert (stats.keys, stats.max_keys, stats.evicted) == (1000, 1000, 999_000)
    assert store.get_now(999_999, now=0.0) == 1
    assert store.get_now(0, now=0.0) is None


def test_a_store_that_never_evicts_says_when_it_is_full() -> None:
    store: MemoryStore[int] = MemoryStore(max_keys=3, evict=False)
    for key, ttl in (("a", 10.0), ("b", 1.0), ("c", 10.0)):
        store.update_now(key, _incr, now=0.0, ttl=ttl)
    assert store.full_now(now=0.5)
    store.update_now("d", _incr, now=0.5, ttl=10.0)  # past the bound: kept, nothing dropped
    assert (len(store), store.statistics().evicted) == (4, 0)
    assert [store.get_now(k, now=0.5) for k in "abcd"] == [1, 1, 1, 1]
    # "b" expires behind live keys, where the amortised sweep does not reach: full_now finds it.
    store.update_now("d", lambda s: (None, s), now=2.0, ttl=10.0)
    assert not store.full_now(now=2.0)
    assert store.statistics().expired == 1


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryStore(max_keys=0)


def test_every_change_to_the_entries_bumps_the_version() -> None:
    store: MemoryStore[int] = MemoryStore(max_keys=2)
    seen = [store.version]

    def changed() -> bool:
        seen.append(store.version)
        return seen[-1] != seen[-2]

    store.update_now("a", lambda s: (1, None), now=0.0, ttl=10.0)
    assert changed()
    assert store.get_now("a", now=1.0) == 1
    assert not changed()  # a read changes nothing
    assert store.get_now("a", now=11.0) is None  # expired on reading
    assert changed()
    store.update_now("b", lambda s: (1, None), now=0.0, ttl=1.0)
    store.update_now("c", lambda s: (1, None), now=0.0, ttl=1.0)
    store.update_now("d", lambda s: (1, None), now=0.0, ttl=1.0)  # evicts the oldest
    assert changed()
    store.expire_now(5.0)
    assert changed()
    store.update_now("e", lambda s: (1, None), now=5.0, ttl=1.0)
    store.update_now("f", lambda s: (1, None), now=5.0, ttl=1.0)
    changed()
    assert not store.full_now(now=7.0)  # at the bound: the expired are dropped first
    assert changed()
    store.update_now("g", lambda s: (1, None), now=7.0, ttl=1.0)
    store.clear_now()
    assert changed()
    assert len(store) == 0
