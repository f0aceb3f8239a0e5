"""The gate's pure decisions."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from resilience._gate_core import Admission, Verdict, admit, extend


def test_no_hold_or_an_expired_one_lets_the_request_through() -> None:
    assert admit(None, now=5.0, may_wait=0.0).verdict is Verdict.PROCEED
    assert admit(5.0, now=5.0, may_wait=0.0).verdict is Verdict.PROCEED


def test_wait_when_allowed_reject_otherwise() -> None:
    assert admit(12.0, now=10.0, may_wait=2.0) == Admission(Verdict.WAIT, 2.0)
    assert admit(12.0, now=10.0, may_wait=1.9) == Admission(Verdict.REJECT, 2.0)
    assert admit(12.0, now=10.0, may_wait=math.inf).verdict is Verdict.WAIT


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=30))
def test_a_hold_is_never_shortened(untils: list[float]) -> None:
    hold: float | None = None
    for seen, until in enumerate(untils, 1):
        before = hold
        hold, grew = extend(hold, until)
        assert hold == max(untils[:seen])
        assert grew == (before is None or until > before)


@given(st.floats(0, 1e6) | st.none(), st.floats(0, 1e6), st.floats(-10, 1e6))
def test_a_request_never_passes_before_the_hold_ends(
    until: float | None, now: float, may_wait: float
) -> None:
    decision = admit(until, now=now, may_wait=may_wait)
    if decision.verdict is Verdict.PROCEED:
        assert until is None or until <= now
    else:
        assert until is not None
        assert decision.remaining == until - now > 0
