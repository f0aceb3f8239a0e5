"""Clocks: the virtual clock for any backend, and the default one under trio's MockClock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import anyio
import pytest
import trio
import trio.testing

from resilience import AnyioClock, Clock, _clock
from resilience.testing import VirtualClock


class ShiftedLoop(asyncio.SelectorEventLoop):
    """An asyncio loop with a clock of its own: a million seconds ahead of the stock one."""

    def time(self) -> float:
        return 1_000_000.0 + super().time()


def loop_questions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time the clock asks asyncio which loop runs."""
    asked: list[int] = []
    real = _clock._get_running_loop

    def counting() -> object:
        asked.append(1)
        return real()

    monkeypatch.setattr(_clock, "_get_running_loop", counting)
    return asked


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


def test_default_clock_remembers_a_stock_loop_only_while_it_runs() -> None:
    # The remembered loop answers for this thread only while it runs here: a loop with a
    # clock of its own and a trio run that come after it are each asked.
    async def read() -> float:
        return AnyioClock().now()

    async def stock() -> tuple[object, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        AnyioClock().now()
        assert _clock.stock_loop is loop
        assert before <= AnyioClock().now() <= loop.time()
        return loop, loop.time()

    loop, stock_time = asyncio.run(stock())
    assert _clock.stock_loop is loop  # remembered, but no longer running anywhere
    shifted = ShiftedLoop()
    try:
        assert shifted.run_until_complete(read()) >= 1_000_000.0
    finally:
        shifted.close()
    assert _clock.stock_loop is loop  # a loop with its own clock is never remembered
    mock = trio.testing.MockClock(autojump_threshold=0)
    mock.jump(123_456.0)
    assert trio.run(read, clock=mock) == pytest.approx(123_456.0, abs=1.0)
    assert stock_time < 1_000_000.0


def test_default_clock_asks_in_a_thread_the_remembered_loop_is_not_running_in() -> None:
    # A stock loop runs in one thread, remembered; another thread's own loop, with a clock of
    # its own, is asked, and a thread with no loop gets what anyio says outside one.
    remembered, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    async def hold() -> None:
        seen["stock"] = AnyioClock().now()
        seen["loop"] = asyncio.get_running_loop()
        remembered.set()
        await asyncio.to_thread(release.wait, 10.0)  # the loop runs on meanwhile
        seen["still"] = AnyioClock().now()

    def shifted() -> None:
        async def read() -> float:
            return AnyioClock().now()

        loop = ShiftedLoop()
        try:
            seen["shifted"] = loop.run_until_complete(read())
        finally:
            loop.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert remembered.wait(10.0)
        assert _clock.stock_loop is seen["loop"]
        other = threading.Thread(target=shifted)
        other.start()
        other.join(10.0)
        with pytest.raises(type(_outside_a_loop(anyio.current_time))):
            AnyioClock().now()
    finally:
        release.set()
        holder.join(10.0)
    assert seen["shifted"] >= 1_000_000.0  # type: ignore[operator]
    assert seen["stock"] < 1_000_000.0  # type: ignore[operator]
    assert seen["still"] < 1_000_000.0  # type: ignore[operator]


def _outside_a_loop(read: Callable[[], float]) -> BaseException:
    try:
        read()
    except BaseException as exc:  # whatever it is, AnyioClock raises it too
        return exc
    raise AssertionError("read the time with no event loop")


@pytest.mark.anyio
async def test_default_clock_asks_no_more_once_it_has_found_a_stock_loop(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = loop_questions(monkeypatch)
    clock = AnyioClock()
    times = [clock.now() for _ in range(5)]
    assert times == sorted(times)
    assert abs(times[-1] - anyio.current_time()) < 5.0
    if anyio_backend == "asyncio":
        assert len(asked) <= 1  # asked once, unless an earlier test already found this loop
        assert _clock.stock_loop is asyncio.get_running_loop()
    else:
        assert len(asked) == 5
