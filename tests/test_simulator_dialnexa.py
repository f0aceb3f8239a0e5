"""The DialNexa simulator, through real sockets: errors, rate limits, concurrency and ETags."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.simulators import DialNexaSimulator, Fault
from adapters.simulators.dialnexa import (
    API_KEY,
    OTHER_ORG_KEY,
    RATE_LIMIT_MESSAGE,
    READ_ONLY_KEY,
)
from resilience.testing import VirtualClock
from tests.test_simulator_support import Served, serving

pytestmark = pytest.mark.anyio

CALL = {"agent_id": "agent_demo", "to_phone_number": "+15550100"}
RATE_LIMIT_BODY = {"statusCode": 429, "message": RATE_LIMIT_MESSAGE, "error": "Too Many Requests"}


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
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=10) as c:
        yield c


async def test_a_call_is_created_with_201(
    client: httpx.AsyncClient, sim: DialNexaSimulator
) -> None:
    response = await client.post("/v1/calls", json=CALL)
    assert response.status_code == 201
    call = response.json()
    assert call["to_phone_number"] == "+15550100"
    assert (await client.get(f"/v1/calls/{call['id']}")).json() == call
    assert sim.counters.calls_created == 1
    assert sim.active_calls() == 1


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Bearer nocolon", "Bearer dk_demo:wrong", "Basic x:y"]
)
async def test_bad_keys_are_401(client: httpx.AsyncClient, authorization: str) -> None:
    response = await client.get("/v1/call-logs", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "Unauthorized",
        "error": "Unauthorized",
    }
    assert "x-ratelimit-limit" not in response.headers


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"agent_id": "agent_demo", "to_phone_number": "9876543210"},
            "Validation failed: to_phone_number must be in E.164 format",
        ),
        (
            {"agent_id": "", "to_phone_number": "+15550100"},
            "Validation failed: agent_id should not be empty",
        ),
        (
            {"agent_id": 5, "to_phone_number": "+15550100"},
            "Validation failed: agent_id must be a string",
        ),
        (
            {"agent_id": "", "to_phone_number": "+91 98765 43210"},
            ["to_phone_number must be in E.164 format", "agent_id should not be empty"],
        ),
        (
            {**CALL, "priority": "high"},
            "Validation failed: property priority should not exist",
        ),
        (["nope"], ["to_phone_number must be in E.164 format", "agent_id should not be empty"]),
    ],
)
async def test_validation_message_is_a_string_or_a_list(
    client: httpx.AsyncClient, sim: DialNexaSimulator, body: object, message: object
) -> None:
    response = await client.post("/v1/calls", json=body)
    assert response.status_code == 400
    assert response.json() == {"statusCode": 400, "message": message, "error": "Bad Request"}
    assert sim.counters.calls_created == 0


async def test_broken_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/calls", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)


@pytest.mark.parametrize(
    ("agent", "to", "status", "error"),
    [
        ("agent_other", "+15550100", 404, "Not Found"),
        ("agent_missing", "+15550100", 404, "Not Found"),
        ("agent_orphan", "+15550100", 422, "Unprocessable Entity"),
        ("agent_demo", "+8821234567", 403, "Forbidden"),
    ],
)
async def test_call_rejections(
    client: httpx.AsyncClient,
    sim: DialNexaSimulator,
    agent: str,
    to: str,
    status: int,
    error: str,
) -> None:
    response = await client.post("/v1/calls", json={"agent_id": agent, "to_phone_number": to})
    assert response.status_code == status
    body = response.json()
    assert (body["statusCode"], body["error"]) == (status, error)
    assert isinstance(body["message"], str)
    assert sim.counters.calls_created == 0


async def test_blocked_destination_message_names_telephony_config(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/calls", json={"agent_id": "agent_demo", "to_phone_number": "+8831234567"}
    )
    assert "Telephony Config" in response.json()["message"]


async def test_concurrency_limit_is_409_and_creates_no_call(
    client: httpx.AsyncClient, sim: DialNexaSimulator, clock: VirtualClock
) -> None:
    first = await client.post("/v1/calls", json=CALL)
    await client.post("/v1/calls", json=CALL)
    full = await client.post("/v1/calls", json=CALL)
    assert full.status_code == 409
    assert "retry-after" not in full.headers
    assert "concurrency limit reached" in full.json()["message"].lower()
    assert sim.counters.calls_created == 2
    ended = await client.post(f"/v1/calls/{first.json()['id']}/end")
    assert ended.status_code == 201
    assert (await client.post(f"/v1/calls/{first.json()['id']}/end")).status_code == 409
    assert (await client.post("/v1/calls", json=CALL)).status_code == 201
    assert (await client.post("/v1/calls", json=CALL)).status_code == 409
    clock.advance(sim.call_duration)  # every call ends on its own
    assert sim.active_calls() == 0
    assert (await client.post("/v1/calls", json=CALL)).status_code == 201
    sim.end_all_calls()
    assert sim.active_calls() == 0


async def test_the_concurrency_409_can_carry_a_retry_after(
    served: Served, clock: VirtualClock
) -> None:
    served.use(DialNexaSimulator(concurrency_limit=1, concurrency_retry_after=4, clock=clock.now))
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as client:
        assert (await client.post("/v1/calls", json=CALL)).status_code == 201
        busy = await client.post("/v1/calls", json=CALL)
    assert (busy.status_code, busy.headers["retry-after"]) == (409, "4")


async def test_other_organizations_resources_are_404(client: httpx.AsyncClient) -> None:
    call = (await client.post("/v1/calls", json=CALL)).json()
    other = {"Authorization": f"Bearer {OTHER_ORG_KEY}"}
    for method, path in [
        ("GET", f"/v1/calls/{call['id']}"),
        ("POST", f"/v1/calls/{call['id']}/end"),
        ("POST", "/v1/campaigns/camp_active/pause"),
        ("DELETE", "/v1/agents/agent_demo"),
    ]:
        response = await client.request(method, path, headers=other)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Not Found"


async def test_campaign_state_conflicts(client: httpx.AsyncClient) -> None:
    resumed = await client.post("/v1/campaigns/camp_cancelled/resume")
    assert resumed.status_code == 409
    assert resumed.json() == {
        "statusCode": 409,
        "message": "Cannot resume a cancelled campaign",
        "error": "Conflict",
    }
    renamed = await client.patch("/v1/agents/agent_demo", json={"name": "Ava"})
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Ava")
    unnamed = await client.patch("/v1/agents/agent_demo", json={})
    assert unnamed.json()["message"] == ["name should not be empty"]
    assert (await client.patch("/v1/agents/agent_other", json={"name": "x"})).status_code == 404
    busy = await client.delete("/v1/agents/agent_demo")
    assert busy.status_code == 409
    assert (await client.post("/v1/campaigns/camp_active/pause")).json()["status"] == "paused"
    assert (await client.post("/v1/campaigns/camp_active/dance")).status_code == 404
    assert (await client.delete("/v1/agents/agent_demo")).status_code == 200
    assert (await client.post("/v1/campaigns/camp_active/cancel")).status_code == 201
    assert (await client.post("/v1/campaigns/camp_active/resume")).status_code == 409


async def test_a_read_only_key_cannot_write(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {READ_ONLY_KEY}"}
    denied = await client.post("/v1/calls", json=CALL, headers=headers)
    assert denied.json() == {
        "statusCode": 403,
        "message": "Forbidden resource",
        "error": "Forbidden",
    }
    assert (await client.get("/v1/call-logs", headers=headers)).status_code == 200


async def test_call_logs_etag_and_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/v1/call-logs")
    etag = first.headers["etag"]
    assert first.json() == {"data": []}
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await client.get("/v1/call-logs", headers={"If-None-Match": validator})
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        assert "x-ratelimit-remaining" in cached.headers
    await client.post("/v1/calls", json=CALL)
    changed = await client.get("/v1/call-logs", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert len(changed.json()["data"]) == 1


async def test_rate_limit_per_key_with_headers(served: Served, clock: VirtualClock) -> None:
    sim = served.use(DialNexaSimulator(rate_limit=3, reset_style="seconds", clock=clock.now))
    async with httpx.AsyncClient(base_url=served.url) as client:
        mine = {"Authorization": f"Bearer {API_KEY}"}
        answers = [await client.get("/v1/call-logs", headers=mine) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
        assert {r.headers["x-ratelimit-limit"] for r in answers} == {"3"}
        assert answers[0].headers["x-ratelimit-reset"] == "60"
        limited = answers[3]
        assert limited.json() == RATE_LIMIT_BODY
        assert limited.headers["retry-after"] == "60"
        # Per key: another key still has its whole budget.
        other = await client.get(
            "/v1/call-logs", headers={"Authorization": f"Bearer {OTHER_ORG_KEY}"}
        )
        assert other.status_code == 200
        clock.advance(45)
        late = await client.get("/v1/call-logs", headers=mine)
        assert late.headers["retry-after"] == "15"
        clock.advance(15)
        assert (await client.get("/v1/call-logs", headers=mine)).status_code == 200
    assert sim.counters.rate_limited == 2


async def test_rate_limit_reset_defaults_to_a_unix_timestamp(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/call-logs")
    reset = int(response.headers["x-ratelimit-reset"])
    assert reset > time.time() - 5  # an absolute time, not "seconds from now"


async def test_rate_limit_fault_sends_the_documented_429(
    client: httpx.AsyncClient, sim: DialNexaSimulator
) -> None:
    sim.faults.add(Fault(kind="rate_limit", count=1, retry_after=3))
    response = await client.post("/v1/calls", json=CALL)
    assert response.status_code == 429
    assert response.json() == RATE_LIMIT_BODY
    assert response.headers["retry-after"] == "3"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert sim.counters.calls_created == 0


async def test_server_error_fault_envelope(
    client: httpx.AsyncClient, sim: DialNexaSimulator
) -> None:
    sim.faults.add("status=500,count=1")
    response = await client.get("/v1/call-logs")
    assert response.json() == {
        "statusCode": 500,
        "message": "Internal Server Error",
        "error": "Internal Server Error",
    }
    sim.faults.add("status=599,count=1")
    odd = await client.get("/v1/call-logs")
    assert odd.json()["error"] == "Error"
