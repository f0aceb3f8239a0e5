"""The DialStack simulator, through real sockets: every documented row and further fact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.simulators import DialStackSimulator, Fault
from adapters.simulators.dialstack import ACCOUNT, API_KEY, LIMITED_KEY, OTHER_ACCOUNT
from resilience.testing import VirtualClock
from tests.test_simulator_support import Served, serving

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {API_KEY}", "DialStack-Account": ACCOUNT}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


@pytest.fixture
def sim(served: Served, clock: VirtualClock) -> DialStackSimulator:
    simulator = DialStackSimulator(clock=clock.now)
    served.use(simulator)
    return simulator


@pytest.fixture
async def client(served: Served, sim: DialStackSimulator) -> AsyncIterator[httpx.AsyncClient]:
    del sim
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=10) as c:
        yield c


async def test_a_call_is_created_and_every_response_has_a_request_id(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    created = await client.post("/v1/calls", json={"to": "+15550100"})
    assert created.status_code == 201
    assert created.json()["to"] == "+15550100"
    fetched = await client.get(f"/v1/calls/{created.json()['id']}")
    assert fetched.json() == created.json()
    missing = await client.get("/v1/calls/call_nope")
    ids = {r.headers["x-request-id"] for r in (created, fetched, missing)}
    assert len(ids) == 3
    assert all(i.startswith("req_") for i in ids)
    assert sim.counters.calls_created == 1


async def test_missing_or_unknown_key_is_401_without_code(client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer sk_wrong"}):
        response = await client.get("/v1/calls", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["error"]
        assert "code" not in body
        assert "x-request-id" in response.headers


async def test_wrong_or_missing_account_is_403(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/calls", headers={"DialStack-Account": ""})
    assert missing.status_code == 403
    assert "DialStack-Account" in missing.json()["error"]
    limited = await client.get(
        "/v1/calls",
        headers={"Authorization": f"Bearer {LIMITED_KEY}", "DialStack-Account": OTHER_ACCOUNT},
    )
    assert limited.status_code == 403
    allowed = await client.get(
        "/v1/calls",
        headers={"Authorization": f"Bearer {LIMITED_KEY}", "DialStack-Account": ACCOUNT},
    )
    assert allowed.status_code == 200


async def test_another_accounts_resource_is_404(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/calls", json={"to": "+15550100"}, headers={"DialStack-Account": OTHER_ACCOUNT}
    )
    response = await client.get(f"/v1/calls/{created.json()['id']}")
    assert response.status_code == 404
    assert "code" not in response.json()


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        ({}, 400, "validation_error", {"to": "is required"}),
        ({"to": "5550100"}, 400, "validation_error", {"to": "must be E.164"}),
        ({"to": "+15550100", "from": "nope"}, 400, "validation_error", {"from": "must be E.164"}),
        ([1, 2], 400, "validation_error", {"body": "object"}),
        ({"to": "+442071838750"}, 400, "invalid_sandbox_phone_number", None),
        ({"to": "+15550100", "record": True}, 400, "sandbox_feature_unsupported", None),
        ({"to": "+15550100", "from": "+15550100"}, 422, None, None),
    ],
)
async def test_call_validation_rows(
    client: httpx.AsyncClient,
    sim: DialStackSimulator,
    body: object,
    status: int,
    code: str | None,
    details: dict[str, str] | None,
) -> None:
    response = await client.post("/v1/calls", json=body)
    assert response.status_code == status
    payload = response.json()
    assert isinstance(payload["error"], str)
    assert payload.get("code") == code
    assert payload.get("details") == details
    assert sim.counters.calls_created == 0


async def test_malformed_json_is_400_without_code(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/calls", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "code" not in response.json()


async def test_production_accounts_take_any_number(served: Served, clock: VirtualClock) -> None:
    served.use(DialStackSimulator(sandbox=False, clock=clock.now))
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH) as client:
        response = await client.post("/v1/calls", json={"to": "+442071838750", "record": True})
    assert response.status_code == 201


async def test_idempotency_key_replays_without_a_second_call(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    headers = {"Idempotency-Key": "op-1", "X-Demo-Operation": "op-1"}
    first = await client.post("/v1/calls", json={"to": "+15550100"}, headers=headers)
    second = await client.post("/v1/calls", json={"to": "+15550100"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert sim.counters.calls_created == 1
    assert sim.counters.duplicated_calls == 0
    other = await client.post("/v1/calls", json={"to": "+15550199"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


async def test_without_idempotency_key_a_resend_duplicates_the_call(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    headers = {"X-Demo-Operation": "op-2"}
    for _ in range(2):
        await client.post("/v1/calls", json={"to": "+15550100"}, headers=headers)
    assert sim.counters.calls_by_operation["op-2"] == 2
    assert sim.counters.duplicated_calls == 1


async def test_patch_is_idempotent_and_409_carries_a_legacy_code(
    client: httpx.AsyncClient,
) -> None:
    ada = await client.post("/v1/users", json={"handle": "ada"})
    bob = await client.post("/v1/users", json={"handle": "bob"})
    assert ada.status_code == bob.status_code == 201
    taken = await client.post("/v1/users", json={"handle": "ada"})
    assert taken.status_code == 409
    assert taken.json()["code"] == "duplicate_handle"
    headers = {"Idempotency-Key": "rename-bob"}
    path = f"/v1/users/{bob.json()['id']}"
    renamed = await client.patch(path, json={"handle": "robert"}, headers=headers)
    again = await client.patch(path, json={"handle": "robert"}, headers=headers)
    assert renamed.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert (await client.patch(path, json={"handle": "ada"})).status_code == 409
    assert (await client.patch("/v1/users/user_nope", json={"handle": "x"})).status_code == 404
    assert (await client.post("/v1/users", json={})).json()["code"] == "validation_error"


async def test_cursor_pagination_follows_next_page_url(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await client.post("/v1/calls", json={"to": f"+1555010{n}"})
    seen: list[str] = []
    url: str | None = "/v1/calls?limit=2"
    while url:
        page = await client.get(url)
        assert page.status_code == 200
        seen += [c["to"] for c in page.json()["data"]]
        url = page.json()["next_page_url"]
    assert seen == [f"+1555010{n}" for n in range(5)]


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
async def test_bad_limit_is_a_validation_error(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/v1/calls", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "limit" in response.json()["details"]


async def test_bad_foreign_or_expired_cursor_is_invalid_pagination(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    for n in range(3):
        await client.post("/v1/calls", json={"to": f"+1555010{n}"})
    next_url = (await client.get("/v1/calls?limit=1")).json()["next_page_url"]
    foreign = await client.get(next_url, headers={"DialStack-Account": OTHER_ACCOUNT})
    garbage = await client.get("/v1/calls", params={"cursor": "!!!not-a-cursor"})
    clock.advance(301)
    expired = await client.get(next_url)
    for response in (foreign, garbage, expired):
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_pagination"


async def test_device_provisioning_codes(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    device = {
        "vendor": "yealink",
        "model": "T54W",
        "mac": "00:15:65:aa:bb:cc",
        "endpoint_id": "ep_1",
    }
    cases = [
        ({**device, "vendor": "acme"}, 400, "unsupported_vendor"),
        ({**device, "mac": ""}, 400, "invalid_configuration"),
        ({**device, "endpoint_id": "ep_9"}, 404, "credentials_not_found"),
    ]
    for body, status, code in cases:
        response = await client.post("/v1/devices/provision", json=body)
        assert (response.status_code, response.json()["code"]) == (status, code)
    sim.generation_failures = 1
    headers = {"Idempotency-Key": "prov-1"}
    failed = await client.post("/v1/devices/provision", json=device, headers=headers)
    assert (failed.status_code, failed.json()["code"]) == (500, "generation_failed")
    retried = await client.post("/v1/devices/provision", json=device, headers=headers)
    assert retried.status_code == 201  # a 5xx is not stored: the retry runs for real
    assert "idempotent-replayed" not in retried.headers
    assert (await client.post("/v1/devices/provision", content=b"[")).status_code == 400


async def test_partner_api_nests_its_errors(client: httpx.AsyncClient) -> None:
    created = await client.post("/partner/v1/accounts", json={"name": "Acme"})
    assert created.status_code == 201
    listed = await client.get("/partner/v1/accounts")
    assert listed.json()["data"] == [created.json()]
    fetched = await client.get(f"/partner/v1/accounts/{created.json()['id']}")
    assert fetched.json() == created.json()
    cases = [
        (client.post("/partner/v1/accounts", json={"name": "Acme"}), 409, "account_exists"),
        (client.post("/partner/v1/accounts", json={}), 400, "validation_error"),
        (client.post("/partner/v1/accounts", content=b"{"), 400, "invalid_json"),
        (client.get("/partner/v1/accounts/acct_nope"), 404, "not_found"),
        (client.get("/partner/v1/accounts", headers={"Authorization": "x"}), 401, "unauthorized"),
        (client.delete("/partner/v1/accounts"), 405, "error"),
    ]
    for pending, status, code in cases:
        response = await pending
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code
        assert isinstance(error["message"], str)


async def test_unknown_path_and_method(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/nothing")).status_code == 404
    wrong = await client.delete("/v1/calls")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Method not allowed"}


async def test_rate_limit_fault_sends_retry_after(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    sim.faults.add(Fault(kind="rate_limit", count=1, retry_after=7))
    limited = await client.get("/v1/calls")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert "code" not in limited.json()
    sim.faults.add("rate_limit,path=/partner,count=1")
    partner = await client.get("/partner/v1/accounts")
    assert partner.headers["retry-after"] == "1"
    assert partner.json()["error"]["code"] == "rate_limited"
    assert (await client.get("/v1/calls")).status_code == 200
    assert sim.counters.rate_limited == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_use_the_envelope(
    client: httpx.AsyncClient, sim: DialStackSimulator, status: int
) -> None:
    sim.faults.add(Fault(kind="status", status=status, count=1))
    response = await client.get("/v1/calls")
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert "x-request-id" in response.headers
