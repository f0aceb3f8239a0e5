"""The Retry-After gate's decisions, pure.

How it works: each key has at most one *hold*, the absolute time (on the gate's clock) before
which the server asked not to be sent anything. A new hold only ever extends an existing one, so
a server's Retry-After is never shortened by a later, smaller one. A request meeting a hold waits
for it if the caller may wait that long, and is rejected at once otherwise.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["Admission", "Verdict", "admit", "extend"]


class Verdict(str, enum.Enum):
    """What the gate does with a request."""

    PROCEED = "proceed"
    WAIT = "wait"
    REJECT = "reject"


@attrs.frozen
class Admission:
    """A decision and the seconds the hold still has to run (0 when there is none)."""

    verdict: Verdict
    remaining: float = 0.0


PROCEED = Admission(Verdict.PROCEED)


def extend(until: float | None, new_until: float) -> tuple[float, bool]:
    """The hold after a response asks for ``new_until``; and whether it grew."""
    if until is not None and until >= new_until:
        return until, False
    return new_until, True


def admit(until: float | None, *, now: float, may_wait: float) -> Admission:
    """Whether a request at ``now`` passes, waits out the hold, or is rejected.

    Args:
        until: The key's hold (absolute time), or None.
        now: The current time on the same clock.
        may_wait: The longest the caller may wait, in seconds (may be infinite).
    """
    if until is None or until <= now:
        return PROCEED
    remaining = until - now
    if remaining <= may_wait:
        return Admission(Verdict.WAIT, remaining)
    return Admission(Verdict.REJECT, remaining)
