"""resilience.testing: zeroing backoff in a user's own tests."""

from __future__ import annotations

import httpx
import pytest

import resilience
from adapters.simulators import RunningServer
from resilience.testing import NO_BACKOFF, VirtualClock, without_backoff

from .test_retry_scripted import scripted, token

__all__ = ["scripted"]  # the module-scoped server fixture


def test_without_backoff_keeps_every_other_setting() -> None:
    retry = resilience.Retry(attempts=7, deadline=30.0, max_retry_after=20.0)
    quick = without_backoff(retry)
    assert quick.backoff == NO_BACKOFF
    assert (quick.attempts, quick.deadline, quick.max_retry_after) == (7, 30.0, 20.0)
    assert quick.budget is retry.budget
    assert retry.backoff == resilience.Backoff()


def test_without_backoff_on_a_stack_replaces_only_the_retry() -> None:
    gate, classify = resilience.RetryAfterGate(), resilience.Classify()
    stack = resilience.Stack(resilience.Retry(attempts=4), gate, classify)
    quick = without_backoff(stack)
    first, *rest = quick.layers
    assert isinstance(first, resilience.Retry)
    assert (first.backoff, first.attempts) == (NO_BACKOFF, 4)
    assert rest == [gate, classify]


def test_without_backoff_refuses_anything_else() -> None:
    with pytest.raises(TypeError, match="Stack or a Retry"):
        without_backoff(resilience.Classify())  # type: ignore[call-overload]


@pytest.mark.anyio
async def test_a_user_stack_runs_without_waiting_but_still_honours_retry_after(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    stack = without_backoff(resilience.Stack(resilience.Retry(clock=clock), resilience.Classify()))
    async with httpx.AsyncClient(base_url=scripted.url, transport=stack.transport()) as client:
        backed_off = await client.get(f"/script/{token()}", params={"s": "503,503,200"})
        assert clock.sleeps == [0.0, 0.0]
        limited = await client.get(f"/script/{token()}", params={"s": "429,200", "ra": "3"})
    assert (backed_off.status_code, limited.status_code) == (200, 200)
    assert clock.sleeps == [0.0, 0.0, 3.0]


@pytest.mark.anyio
async def test_virtual_clock_makes_default_backoff_free(
    scripted: RunningServer, clock: VirtualClock
) -> None:
    stack = resilience.Stack(resilience.Retry(clock=clock), resilience.Classify())
    async with httpx.AsyncClient(base_url=scripted.url, transport=stack.transport()) as client:
        response = await client.get(f"/script/{token()}", params={"s": "503,200"})
    assert response.status_code == 200
    assert clock.now() == 1_000.0 + clock.sleeps[0]
