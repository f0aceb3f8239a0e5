"""The ``/_simulator`` control endpoints, for simulators started from the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.simulators import DialNexaSimulator
from adapters.simulators.dialnexa import API_KEY
from resilience.testing import VirtualClock
from tests.test_simulator_support import Served, serving

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


@pytest.fixture
def sim(served: Served, clock: VirtualClock) -> DialNexaSimulator:
    simulator = DialNexaSimulator(clock=clock.now)
    served.use(simulator)
    return simulator


@pytest.fixture
async def client(served: Served, sim: DialNexaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    del sim
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        yield c


async def test_faults_are_added_listed_and_cleared_over_http(
    client: httpx.AsyncClient, sim: DialNexaSimulator
) -> None:
    added = await client.post("/_simulator/faults", content=b"status=503,count=1")
    assert added.status_code == 201
    assert added.json() == {"fault": "status,count=1,status=503"}
    as_json = await client.post("/_simulator/faults", json={"spec": "slow=0,path=/nowhere"})
    assert as_json.status_code == 201
    state = (await client.get("/_simulator")).json()
    assert state["vendor"] == "dialnexa"
    assert state["faults"] == ["status,count=1,status=503", "slow,path=/nowhere"]
    auth = {"Authorization": f"Bearer {API_KEY}"}
    assert (await client.get("/v1/call-logs", headers=auth)).status_code == 503
    # Control requests are never faulted nor recorded.
    await client.post("/_simulator/faults", content=b"outage")
    assert (await client.get("/_simulator")).status_code == 200
    assert (await client.delete("/_simulator/faults")).json() == {"faults": []}
    assert (await client.get("/v1/call-logs", headers=auth)).status_code == 200
    assert sim.faults.active == []
    assert [r.path for r in sim.requests] == ["/v1/call-logs", "/v1/call-logs"]


async def test_counters_and_reset(client: httpx.AsyncClient, sim: DialNexaSimulator) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}", "X-Demo-Operation": "op"}
    call = {"agent_id": "agent_demo", "to_phone_number": "+15550100"}
    for _ in range(2):
        await client.post("/v1/calls", json=call, headers=auth)
    counters = (await client.get("/_simulator")).json()["counters"]
    assert counters["calls_created"] == 2
    assert counters["calls_by_operation"] == {"op": 2}
    assert counters["duplicated_calls"] == 1
    reset = await client.post("/_simulator/reset")
    assert reset.json()["requests"] == 0
    assert sim.counters.calls_created == 0


@pytest.mark.parametrize(
    ("method", "path", "content", "status"),
    [
        ("POST", "/_simulator/faults", b"bogus", 400),
        ("POST", "/_simulator/faults", b'{"nospec": 1}', 400),
        ("POST", "/_simulator/faults", b"{broken", 400),
        ("GET", "/_simulator/nothing", b"", 404),
        ("PUT", "/_simulator", b"", 404),
    ],
)
async def test_bad_control_requests(
    client: httpx.AsyncClient, method: str, path: str, content: bytes, status: int
) -> None:
    response = await client.request(method, path, content=content)
    assert response.status_code == status
    assert response.json()["error"]
