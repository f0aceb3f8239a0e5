"""Clocks: the virtual clock for any backend, and the default one under trio's MockClock."""

from __future__ import annotations

import asyncio

import anyio
import pytest
import trio
import trio.testing

from resilience import AnyioClock, Clock
from resilience.testing import VirtualClock


@pytest.mark.anyio
async def test_virtual_sleeps_take_no_real_time_and_are_recorded(clock: VirtualClock) -> None:
    start = clock.now()
    real = anyio.current_time()
    await clock.sleep(3600.0)
    await clock.sleep(-1.0)  # a negative sleep still yields, and counts as zero
    assert clock.now() == start + 3600.0
    assert clock.sleeps == [3600.0, 0.0]
    assert anyio.current_time() - real < 5.0


@pytest.mark.anyio
async def test_concurrent_virtual_sleeps_are_never_shortened(clock: VirtualClock) -> None:
    woke: dict[str, float] = {}
    start = clock.now()

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke[name] = clock.now()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "long", 10.0)
        tg.start_soon(sleeper, "short", 1.0)
    assert woke["long"] >= start + 10.0
    assert woke["short"] >= start + 1.0


def test_virtual_clock_advances_but_never_backwards() -> None:
    clock = VirtualClock()
    clock.advance(2.5)
    assert clock.now() == 2.5
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert repr(clock) == "VirtualClock(now=2.5)"
    assert isinstance(clock, Clock)


def test_default_clock_follows_trios_mock_clock() -> None:
    clock = AnyioClock()
    assert repr(clock) == "AnyioClock()"

    async def main() -> tuple[float, float]:
        before = clock.now()
        await clock.sleep(3600.0)
        return before, clock.now()

    mock = trio.testing.MockClock(autojump_threshold=0)
    before, after = trio.run(main, clock=mock)
    assert after - before == pytest.approx(3600.0)


def test_default_clock_reads_an_asyncio_loop_with_a_clock_of_its_own() -> None:
    class ShiftedLoop(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return 1_000_000.0 + super().time()

    async def main() -> float:
        return AnyioClock().now()

    loop = ShiftedLoop()
    try:
        assert loop.run_until_complete(main()) >= 1_000_000.0
    finally:
        loop.close()


def test_default_clock_on_a_stock_asyncio_loop_is_the_loops_time() -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        return loop.time(), AnyioClock().now(), loop.time()

    before, now, after = asyncio.run(main())
    assert before <= now <= after
