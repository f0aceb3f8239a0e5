"""Helpers for testing code that uses resilience stacks, in virtual time.

On trio, ``trio.testing.MockClock`` drives the default clock for free. :class:`VirtualClock`
works on any backend: inject it with ``clock=`` and every wait in the stack takes no real time.
:func:`without_backoff` zeroes the backoff of a stack or a ``Retry`` layer in your own tests,
keeping every other setting (attempts, Retry-After handling, safety rules) as it is.
"""

from __future__ import annotations

from typing import overload

import anyio.lowlevel
import attrs

from ._backoff import Backoff
from ._retry import Retry
from ._stack import Stack

__all__ = ["NO_BACKOFF", "VirtualClock", "without_backoff"]

#: A backoff that never waits.
NO_BACKOFF = Backoff(initial=0.0, maximum=0.0, jitter="none")


class VirtualClock:
    """A clock whose sleeps return at once, moving virtual time forward instead.

    ``now()`` starts at ``start`` and only moves when someone sleeps: a sleep of ``d`` started
    at ``t`` returns (after one checkpoint, so other tasks run) with ``now() >= t + d``. Time never
    moves backwards, so a concurrent sleeper can only see more time pass, never less: a wait is
    never shortened, which is the property the stack's tests care about.

    It is no scheduler: concurrent sleepers wake together, each seeing the latest of their
    wake times, not one by one in time order. A task that sleeps 1 s beside one that sleeps
    30 s sees 30 s pass, so a test that needs many tasks to interleave in time (a short
    deadline beside a long Retry-After, say) should run on trio with
    ``trio.testing.MockClock(autojump_threshold=0)``, which the default clock follows.

    Attributes:
        sleeps: Every requested sleep, in order, for assertions.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (>= 0) without sleeping."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, yield once, and move time to at least its end."""
        seconds = max(seconds, 0.0)
        self.sleeps.append(seconds)
        wake = self._now + seconds
        await anyio.lowlevel.checkpoint()
        self._now = max(self._now, wake)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"


@overload
def without_backoff(target: Stack) -> Stack: ...
@overload
def without_backoff(target: Retry) -> Retry: ...


def without_backoff(target: Stack | Retry) -> Stack | Retry:
    """A copy of ``target`` whose ``Retry`` layers never back off.

    Only the backoff changes: a server's ``Retry-After`` is still a floor (inject a
    :class:`VirtualClock` to make those waits free too), and what is retried stays the same.
    The retry budget and every other layer (with its state) are shared with the original, and
    a stack keeps its ``telemetry``.

    Args:
        target: A :class:`~resilience.Stack` (e.g. ``adapters.dialstack.stack()``) or a
            :class:`~resilience.Retry`.

    Returns:
        A new Stack or Retry of the same shape.

    Raises:
        TypeError: For anything else.
    """
    if isinstance(target, Retry):
        return attrs.evolve(target, backoff=NO_BACKOFF)
    if isinstance(target, Stack):
        return Stack(
            *(
                attrs.evolve(layer, backoff=NO_BACKOFF) if isinstance(layer, Retry) else layer
                for layer in target.layers
            ),
            telemetry=target.telemetry,
        )
    raise TypeError(f"without_backoff() takes a Stack or a Retry, not {type(target).__name__}")
