"""Time, injected.

No layer calls ``time.*`` or ``anyio.sleep`` directly: each takes a ``clock=`` and asks it.
The default follows the running event loop's clock, so trio's ``MockClock`` drives it for free;
:class:`resilience.testing.VirtualClock` does the same on asyncio.
"""

from __future__ import annotations

from asyncio import BaseEventLoop, _get_running_loop
from threading import get_ident
from time import monotonic
from typing import Any, Protocol, runtime_checkable

import anyio

__all__ = ["AnyioClock", "Clock"]

#: ``asyncio.BaseEventLoop.time``: ``return time.monotonic()``, as every stock loop inherits it.
_STOCK_TIME = BaseEventLoop.time


class _NoLoop:
    """In place of a stock loop until one is seen: a loop that runs in no thread."""

    __slots__ = ()
    _thread_id = None


#: The stock asyncio loop :meth:`AnyioClock.now` last found running (see there). Module
#: state, not the clock's: every AnyioClock, and the express lane, read the same loop.
stock_loop: Any = _NoLoop()  # a BaseEventLoop; typeshed has no ``_thread_id``


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

        Which loop runs is ``asyncio._get_running_loop()``'s answer, but on CPython 3.11 that
        call also asks the kernel for the process id (a fork check): a system call, dearer
        than the rest of a layer's success path. So the stock loop last found running is
        remembered (:data:`stock_loop`). A loop's ``run_forever`` sets its ``_thread_id`` to
        the thread it runs in and clears it when it stops, and a thread runs one asyncio loop
        at a time: while the remembered loop's ``_thread_id`` is this thread's, it is the
        loop running here, and its time is ``monotonic()``.
        """
        if stock_loop._thread_id == get_ident():  # noqa: SLF001 - see above
            return monotonic()
        return _running_loops_time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await anyio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "AnyioClock()"


def _running_loops_time() -> float:
    """The running loop's time, asked for; a stock asyncio loop's is remembered."""
    global stock_loop  # noqa: PLW0603 - the one place it is written
    loop = _get_running_loop()
    if loop is None:
        return anyio.current_time()
    if isinstance(loop, BaseEventLoop) and type(loop).time is _STOCK_TIME:
        stock_loop = loop
        return monotonic()
    return loop.time()


DEFAULT_CLOCK: Clock = AnyioClock()
