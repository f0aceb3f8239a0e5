"""The retry decision, pure.

How it works: after an attempt fails, :func:`decide` looks at its classification and the
call's situation and says whether to send again and after how long. The checks run in a fixed
order (the table :data:`GIVE_UP_REASONS` names each way out): is it worth retrying, is it safe
to resend, is there an attempt left, does the server's Retry-After fit under the cap, does the
wait end before the deadline. The shell (``_retry``) then asks the budget, sleeps and resends.
"""

from __future__ import annotations

import attrs

from ._classification import Classification

__all__ = ["GIVE_UP_REASONS", "Decision", "decide"]

NOT_RETRYABLE = "not_retryable"
NOT_IDEMPOTENT = "not_idempotent"
NOT_REPLAYABLE = "body_not_replayable"
EXHAUSTED = "attempts_exhausted"
RETRY_AFTER_TOO_LONG = "retry_after_above_max"
DEADLINE = "deadline"

#: Every reason :func:`decide` gives for not retrying, in the order it checks them.
GIVE_UP_REASONS = (
    NOT_RETRYABLE,
    NOT_IDEMPOTENT,
    NOT_REPLAYABLE,
    EXHAUSTED,
    RETRY_AFTER_TOO_LONG,
    DEADLINE,
)


@attrs.frozen
class Decision:
    """Retry after ``delay`` seconds (``source`` says what set it), or give up for ``reason``."""

    retry: bool
    delay: float = 0.0
    source: str = ""
    reason: str = ""


def decide(
    verdict: Classification,
    *,
    attempt: int,
    attempts: int,
    idempotent: bool,
    replayable: bool,
    responded: bool,
    backoff: float,
    max_retry_after: float,
    time_left: float,
) -> Decision:
    """Whether to retry after an attempt, and after how long.

    Args:
        verdict: The failed attempt's classification.
        attempt: Its number (1-based).
        attempts: Total attempts allowed.
        idempotent: Whether the request may be sent twice with the effect of once.
        replayable: Whether the request body can be sent again.
        responded: Whether the attempt got a response (so the body was consumed).
        backoff: The backoff delay for this retry, seconds.
        max_retry_after: The longest Retry-After that is waited for, seconds.
        time_left: Seconds until the deadline (infinite when there is none).

    Returns:
        A :class:`Decision`. The delay is ``max(retry_after, backoff)``: the server's
        Retry-After is a floor, never shortened.
    """
    if not verdict.retryable:
        return Decision(retry=False, reason=NOT_RETRYABLE)
    if verdict.may_have_executed and not idempotent:
        return Decision(retry=False, reason=NOT_IDEMPOTENT)
    if not replayable and (responded or verdict.may_have_executed):
        return Decision(retry=False, reason=NOT_REPLAYABLE)
    if attempt >= attempts:
        return Decision(retry=False, reason=EXHAUSTED)
    retry_after = verdict.retry_after
    delay, source = backoff, "backoff"
    if retry_after is not None:
        if retry_after > max_retry_after:
            return Decision(retry=False, reason=RETRY_AFTER_TOO_LONG)
        if retry_after >= backoff:
            delay, source = retry_after, "retry_after"
    if delay >= time_left:
        return Decision(retry=False, reason=DEADLINE)
    return Decision(retry=True, delay=delay, source=source)
