"""The pure retry decision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import Classification, Kind
from resilience._retry_core import Decision, decide

RETRYABLE_SENT = Classification(kind=Kind.SERVER_ERROR, retryable=True, may_have_executed=True)
REFUSED = Classification(kind=Kind.RATE_LIMITED, retryable=True, may_have_executed=False)


def _decide(verdict: Classification = RETRYABLE_SENT, **overrides: object) -> Decision:
    arguments: dict[str, object] = {
        "attempt": 1,
        "attempts": 3,
        "idempotent": True,
        "replayable": True,
        "responded": True,
        "backoff": 1.0,
        "max_retry_after": 60.0,
        "time_left": math.inf,
    }
    arguments.update(overrides)
    return decide(verdict, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("verdict", "overrides", "reason"),
    [
        (Classification(kind=Kind.NOT_FOUND), {}, "not_retryable"),
        (RETRYABLE_SENT, {"idempotent": False}, "not_idempotent"),
        (REFUSED, {"replayable": False}, "body_not_replayable"),
        (RETRYABLE_SENT, {"attempt": 3}, "attempts_exhausted"),
        (
            Classification(kind=Kind.RATE_LIMITED, retryable=True, retry_after=61.0),
            {},
            "retry_after_above_max",
        ),
        (RETRYABLE_SENT, {"time_left": 1.0}, "deadline"),
    ],
)
def test_each_way_out(verdict: Classification, overrides: dict[str, object], reason: str) -> None:
    assert _decide(verdict, **overrides) == Decision(retry=False, reason=reason)


def test_refused_requests_are_resent_for_any_method() -> None:
    assert _decide(REFUSED, idempotent=False) == Decision(retry=True, delay=1.0, source="backoff")


def test_an_unread_stream_is_resent_after_a_failure_before_sending() -> None:
    not_sent = Classification(kind=Kind.NETWORK, retryable=True, may_have_executed=False)
    assert _decide(not_sent, replayable=False, responded=False).retry


@given(
    retry_after=st.none() | st.floats(0, 100),
    backoff=st.floats(0, 100),
    time_left=st.floats(0, 1000) | st.just(math.inf),
    idempotent=st.booleans(),
    sent=st.booleans(),
)
def test_retry_after_is_a_floor_and_no_wait_outlives_the_deadline(
    retry_after: float | None, backoff: float, time_left: float, idempotent: bool, sent: bool
) -> None:
    verdict = Classification(
        kind=Kind.RATE_LIMITED, retryable=True, retry_after=retry_after, may_have_executed=sent
    )
    decision = _decide(verdict, backoff=backoff, time_left=time_left, idempotent=idempotent)
    if decision.retry:
        assert decision.delay >= (retry_after or 0.0)
        assert decision.delay >= backoff
        assert decision.delay < time_left
        assert idempotent or not sent
        assert decision.source in {"retry_after", "backoff"}
