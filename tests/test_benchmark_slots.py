"""benchmarks/bench_slots.py times what it says: a busy slot, and a new slot every request.

The quiet variant must make the breaker write its store on every request (each one opens a
slot) and the busy one only on the first, or the table would time the wrong thing.
"""

from __future__ import annotations

import httpx
import pytest

from benchmarks import bench_slots, compare
from resilience._store import MemoryStore
from resilience.testing import VirtualClock


def _inner() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))


@pytest.mark.anyio
@pytest.mark.parametrize(("step", "writes"), [(0.0, 1), (bench_slots.WIDTH, 20)])
async def test_store_writes_follow_the_clock_step(step: float, writes: int) -> None:
    clock, store = VirtualClock(1000.0), MemoryStore[object]()
    stack = bench_slots.virtual_stack(clock, store)
    async with httpx.AsyncClient(transport=stack.transport(_inner())) as client:
        before = store.version
        for _ in range(20):
            clock.advance(step)
            await client.get(compare.URL)
        assert store.version - before == writes


@pytest.mark.anyio
async def test_every_variant_answers_a_request() -> None:
    made = bench_slots.variants()
    assert set(made) == {bench_slots.BARE, bench_slots.DEFAULT, bench_slots.BUSY, bench_slots.QUIET}
    for make in made.values():
        client, call = make(_inner(), compare.URL)
        async with client:
            await call()
            assert (await client.get(compare.URL)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(("step", "writes"), [(0.0, 1), (bench_slots.WIDTH, 5)])
async def test_a_variant_moves_its_clock_before_each_call(step: float, writes: int) -> None:
    store = MemoryStore[object]()
    client, call = bench_slots._on_virtual_clock(step, store)(_inner(), compare.URL)
    async with client:
        for _ in range(5):
            await call()
    assert store.version == writes
