"""The lockout guard's state machine: pure, synchronous, no I/O.

How it works. A vendor locks an account after ``max_failures`` failed logins within ``window``
seconds. The guard keeps, per identity (a fingerprint, never the name itself), an
:class:`Account`: the times of its recent failed logins and, when the vendor said the account is
locked, until when.

- A login may go when the account is not locked and fewer than the local budget of failures
  (:func:`budget`: ``share`` of the vendor's limit, always below it) fell within the window.
  Otherwise it is refused, with the seconds until the oldest counted failure leaves the window
  (or the lock ends).
- After a login: a failure (``auth``) is counted; the vendor's lockout signal (``locked_out``)
  locks the identity for the vendor's duration; a success forgets the account.
- A login the vendor may have run without saying how it went (a 5xx, a read timeout, a cut
  connection, a call cancelled while it was out) is counted like a failure: if the password was
  wrong the vendor counted it, and the budget must hold whatever the answers were. A login the
  vendor did not run (a connect failure, a 429) says nothing and changes nothing.

The transition table, by outcome: see :data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
import math

import attrs

__all__ = [
    "TRANSITIONS",
    "Account",
    "Outcome",
    "Refusal",
    "budget",
    "check",
    "record",
    "ttl",
]


class Outcome(str, enum.Enum):
    """What a login's response says about the account."""

    FAILED = "failed"  # wrong credentials: counts toward the budget
    UNKNOWN = "unknown"  # the vendor may have run it, the answer does not say how: counts too
    LOCKED = "locked"  # the vendor's lockout is active
    SUCCEEDED = "succeeded"  # the count starts again
    OTHER = "other"  # the vendor did not run it: says nothing about the credentials


#: Outcome -> what happens to the account.
TRANSITIONS: dict[Outcome, str] = {
    Outcome.FAILED: "count the failure (engages the guard when the budget is spent)",
    Outcome.UNKNOWN: "count it as a failure (the vendor may have counted one)",
    Outcome.LOCKED: "lock locally for the vendor's duration (engages the guard)",
    Outcome.SUCCEEDED: "forget the account",
    Outcome.OTHER: "no change",
}


@attrs.frozen(kw_only=True)
class Account:
    """One identity's recent failed logins and lock.

    Attributes:
        failures: Times of the failed (or possibly failed) logins still inside the window,
            oldest first.
        locked_until: When the vendor's lockout ends, as far as we know (0.0: not locked).
    """

    failures: tuple[float, ...] = ()
    locked_until: float = 0.0


@attrs.frozen
class Refusal:
    """Why a login may not go, and for how long.

    Attributes:
        reason: ``"locked"`` (the vendor's lockout) or ``"budget"`` (the local budget is spent).
        retry_after: Seconds until a login may go again.
    """

    reason: str
    retry_after: float


def budget(max_failures: int, share: float) -> int:
    """Failed logins allowed locally: ``share`` of the vendor's limit, at least 1, below it.

    Staying strictly below ``max_failures`` is what makes sure this client is never the one
    that triggers the lockout. With a limit of 1 nothing can avoid that; one attempt is allowed.
    """
    return max(1, min(max_failures - 1, math.floor(max_failures * share)))


def _recent(failures: tuple[float, ...], window: float, now: float) -> tuple[float, ...]:
    return tuple(t for t in failures if t > now - window)


def check(account: Account | None, allowed: int, window: float, now: float) -> Refusal | None:
    """None if a login may go now, else why not."""
    if account is None:
        return None
    if account.locked_until > now:
        return Refusal("locked", account.locked_until - now)
    recent = _recent(account.failures, window, now)
    if len(recent) >= allowed:
        # The login may go once enough failures have left the window to be below the budget.
        return Refusal("budget", recent[-allowed] + window - now)
    return None


def record(
    account: Account | None,
    outcome: Outcome,
    *,
    allowed: int,
    window: float,
    lockout: float,
    now: float,
) -> tuple[Account | None, Refusal | None]:
    """Apply a login's outcome; return the new account and, if the guard engages, why.

    Args:
        account: The identity's state (None: nothing known).
        outcome: What the response said.
        allowed: The local budget (:func:`budget`).
        window: The vendor's counting window, seconds.
        lockout: For ``LOCKED``: seconds the vendor locks the account for.
        now: The current time.
    """
    if outcome is Outcome.SUCCEEDED:
        return None, None
    if outcome is Outcome.OTHER:
        return account, None
    account = account or Account()
    if outcome is Outcome.LOCKED:
        until = max(account.locked_until, now + lockout)
        return attrs.evolve(account, locked_until=until), Refusal("locked", until - now)
    # FAILED or UNKNOWN. Only the newest `allowed` failures can ever matter.
    failures = (*_recent(account.failures, window, now), now)[-allowed:]
    updated = attrs.evolve(account, failures=failures)
    return updated, check(updated, allowed, window, now)


def ttl(account: Account, window: float, now: float) -> float:
    """Seconds the account is worth keeping: until its lock ends and its failures expire."""
    newest = account.failures[-1] if account.failures else -math.inf
    return max(account.locked_until - now, newest + window - now, 0.0)
