"""The guard in Get2Dial's standard stack, against the Get2Dial simulator's real lockout."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

import resilience
from adapters import get2dial
from adapters.simulators import Get2DialSimulator
from adapters.simulators.get2dial import ADMIN_EMAIL, AGENT_EMAIL, PASSWORD
from resilience.testing import VirtualClock
from tests.test_simulator_support import Served, serving

pytestmark = pytest.mark.anyio

LOGIN = "/api/v1/auth/login"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


@pytest.fixture
def sim(served: Served, clock: VirtualClock) -> Get2DialSimulator:
    simulator = Get2DialSimulator(clock=clock.now)
    served.use(simulator)
    return simulator


async def _try(client: httpx.AsyncClient, email: str, password: str, out: list[object]) -> None:
    try:
        response = await client.post(LOGIN, json={"email": email, "password": password})
        out.append(response.status_code)
    except resilience.LockedOutError as exc:
        out.append(exc)


async def test_twenty_wrong_passwords_never_lock_the_account(
    served: Served, sim: Get2DialSimulator, clock: VirtualClock
) -> None:
    transport = get2dial.transport(clock=clock)
    results: list[object] = []
    async with httpx.AsyncClient(base_url=served.url, transport=transport) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(_try, client, ADMIN_EMAIL, "wrong", results)
        assert results.count(401) == 5
        assert sum(isinstance(r, resilience.LockedOutError) for r in results) == 15
        assert sim.failures(ADMIN_EMAIL) == 5
        assert not sim.is_locked(ADMIN_EMAIL)
        # The person who knows the password can still log in; another account is untouched.
        clock.advance(900.0)
        ok: list[object] = []
        await _try(client, ADMIN_EMAIL, PASSWORD, ok)
        await _try(client, AGENT_EMAIL, PASSWORD, ok)
        assert ok == [200, 200]


async def test_a_lockout_caused_elsewhere_is_honoured_locally(
    served: Served, sim: Get2DialSimulator, clock: VirtualClock
) -> None:
    for _ in range(10):  # someone else, with another client, locks the account
        sim._failed_login(ADMIN_EMAIL.lower(), clock.now())
    assert sim.is_locked(ADMIN_EMAIL)
    transport = get2dial.transport(clock=clock)
    results: list[object] = []
    async with httpx.AsyncClient(base_url=served.url, transport=transport) as client:
        await _try(client, ADMIN_EMAIL, PASSWORD, results)
        await _try(client, ADMIN_EMAIL, PASSWORD, results)
    assert results[0] == 403
    refused = results[1]
    assert isinstance(refused, resilience.LockedOutError)
    assert refused.retry_after == 900.0
