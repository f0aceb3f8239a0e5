"""Shared fixtures: both anyio backends, virtual clocks, and real loopback servers."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from resilience.testing import VirtualClock

# Property tests check results, not speed: on a loaded 2-core CI machine under coverage,
# generating examples can be slow, and that is not a failure of the code under test.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

pytest_plugins = ["tests.apps"]


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio."""
    return str(request.param)


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for the layers under test, on either backend."""
    return VirtualClock(start=1_000.0)
