"""Time, injected.

No layer calls ``time.*`` or ``anyio.sleep`` directly: each takes a ``clock=`` and asks it.
The default follows the running event loop's clock, so trio's ``MockClock`` drives it for free;
:class:`resilience.testing.VirtualClock` does the same on asyncio.
"""

from __future__ import annotations

from asyncio import BaseEventLoop, _get_running_loop
from time import monotonic
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["AnyioClock", "Clock"]

#: ``asyncio.BaseEventLoop.time``: ``return time.monotonic()``, as every stock loop inherits it.
_STOCK_TIME = BaseEventLoop.time


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock in float seconds that can also wait."""

    def now(self) -> float:
        """Return the current time in seconds (monotonic, arbitrary origin)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a non-positive value still yields to the event loop once)."""
        ...


class AnyioClock:
    """The event loop's own clock: ``anyio.current_time`` and ``anyio.sleep``."""

    __slots__ = ()

    def now(self) -> float:
        """Return the event loop's time.

        On asyncio that is the loop's ``time()``, which is what ``anyio.current_time()``
        returns there; every layer asks it on every call, so it is read as directly as the
        loop allows: a stock asyncio loop's ``time()`` *is* ``time.monotonic()``, and a loop
        with a clock of its own (uvloop, a test loop) is asked. Elsewhere (trio) anyio answers.
        """
        loop = _get_running_loop()
        if loop is None:
            return anyio.current_time()
        if type(loop).time is _STOCK_TIME:
            return monotonic()
        return loop.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await anyio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "AnyioClock()"


DEFAULT_CLOCK: Clock = AnyioClock()
