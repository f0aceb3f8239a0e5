"""The lockout guard's pure state machine: budget, window, vendor lock, and its invariants."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from resilience._lockout_core import (
    TRANSITIONS,
    Account,
    Outcome,
    Refusal,
    budget,
    check,
    record,
    ttl,
)

WINDOW = 900.0


def _apply(account: Account | None, outcome: Outcome, now: float, allowed: int = 5) -> Account:
    new, _ = record(account, outcome, allowed=allowed, window=WINDOW, lockout=600.0, now=now)
    assert new is not None
    return new


def test_the_budget_is_a_share_of_the_limit_always_below_it() -> None:
    assert budget(10, 0.5) == 5
    assert budget(10, 1.0) == 9
    assert budget(3, 0.5) == 1
    assert budget(1, 0.5) == 1  # nothing can avoid a limit of one; one attempt is allowed
    assert budget(100, 0.01) == 1


def test_failures_up_to_the_budget_then_refused_until_the_oldest_leaves_the_window() -> None:
    account = None
    for i in range(4):
        account = _apply(account, Outcome.FAILED, float(i))
        assert check(account, 5, WINDOW, float(i)) is None
    new, engaged = record(
        account, Outcome.FAILED, allowed=5, window=WINDOW, lockout=600.0, now=10.0
    )
    assert engaged == Refusal("budget", 890.0)  # until t=0 leaves the window
    assert check(new, 5, WINDOW, 10.0) == Refusal("budget", 890.0)
    assert check(new, 5, WINDOW, 900.0) is None  # t=0 has left the window


def test_an_unanswered_login_counts_like_a_failed_one() -> None:
    account = None
    for i in range(4):
        account = _apply(account, Outcome.UNKNOWN if i % 2 else Outcome.FAILED, float(i))
    new, engaged = record(
        account, Outcome.UNKNOWN, allowed=5, window=WINDOW, lockout=600.0, now=10.0
    )
    assert engaged == Refusal("budget", 890.0)
    assert new is not None
    assert new.failures == (0.0, 1.0, 2.0, 3.0, 10.0)


def test_the_vendor_lock_refuses_for_its_duration() -> None:
    new, engaged = record(None, Outcome.LOCKED, allowed=5, window=WINDOW, lockout=600.0, now=0.0)
    assert engaged == Refusal("locked", 600.0)
    assert check(new, 5, WINDOW, 100.0) == Refusal("locked", 500.0)
    assert check(new, 5, WINDOW, 600.0) is None
    # A shorter lock announced later never shortens a longer one.
    new, _ = record(new, Outcome.LOCKED, allowed=5, window=WINDOW, lockout=10.0, now=100.0)
    assert new is not None
    assert new.locked_until == 600.0


def test_success_forgets_and_other_outcomes_change_nothing() -> None:
    account = _apply(None, Outcome.FAILED, 0.0)
    assert record(account, Outcome.SUCCEEDED, allowed=5, window=WINDOW, lockout=1, now=1) == (
        None,
        None,
    )
    assert record(account, Outcome.OTHER, allowed=5, window=WINDOW, lockout=1, now=1) == (
        account,
        None,
    )
    assert record(None, Outcome.OTHER, allowed=5, window=WINDOW, lockout=1, now=1) == (None, None)
    assert check(None, 5, WINDOW, 0.0) is None
    assert set(TRANSITIONS) == set(Outcome)


def test_ttl_lasts_until_the_lock_ends_and_the_failures_expire() -> None:
    assert ttl(Account(), WINDOW, 0.0) == 0.0
    assert ttl(Account(failures=(10.0,)), WINDOW, 20.0) == 890.0
    assert ttl(Account(failures=(10.0,), locked_until=2000.0), WINDOW, 20.0) == 1980.0
    assert ttl(Account(locked_until=5.0), WINDOW, 20.0) == 0.0
    assert math.isfinite(ttl(Account(), WINDOW, 0.0))


steps = st.lists(
    st.tuples(
        st.sampled_from(list(Outcome)),
        st.floats(min_value=0.0, max_value=400.0, allow_nan=False),
        st.booleans(),  # for UNKNOWN: whether the vendor ran it as a failed login
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    steps,
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=0.05, max_value=1.0),
)
def test_a_client_that_obeys_the_guard_never_reaches_the_vendor_limit(
    sequence: list[tuple[Outcome, float, bool]], limit: int, share: float
) -> None:
    """Logins are only sent when ``check`` allows them; the vendor's count never hits its limit
    (for limits above one) within any window, whatever the unanswered logins were."""
    allowed = budget(limit, share)
    account: Account | None = None
    now = 0.0
    sent_failures: list[float] = []
    for outcome, dt, counted in sequence:
        now += dt
        refusal = check(account, allowed, WINDOW, now)
        if refusal is not None:
            assert refusal.retry_after > 0
            continue
        if outcome is Outcome.FAILED or (outcome is Outcome.UNKNOWN and counted):
            sent_failures.append(now)
        if outcome is Outcome.SUCCEEDED or (outcome is Outcome.UNKNOWN and not counted):
            sent_failures.clear()
        account, _ = record(account, outcome, allowed=allowed, window=WINDOW, lockout=60.0, now=now)
        in_window = [t for t in sent_failures if t > now - WINDOW]
        assert len(in_window) <= allowed
        if limit > 1:
            assert len(in_window) < limit
        if account is not None:
            assert len(account.failures) <= allowed
