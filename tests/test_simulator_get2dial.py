"""The Get2Dial simulator, through real sockets: envelopes, strict bodies and the real lockout."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.simulators import Fault, Get2DialSimulator
from adapters.simulators.get2dial import (
    ADMIN_EMAIL,
    AGENT_EMAIL,
    DISABLED_EMAIL,
    OTHER_TENANT_EMAIL,
    PASSWORD,
    TENANT,
)
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


@pytest.fixture
async def client(served: Served, sim: Get2DialSimulator) -> AsyncIterator[httpx.AsyncClient]:
    del sim
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as c:
        yield c


async def login(client: httpx.AsyncClient, email: str = ADMIN_EMAIL, **extra: str) -> str:
    response = await client.post(LOGIN, json={"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_returns_a_jwt_in_the_success_envelope(
    client: httpx.AsyncClient, sim: Get2DialSimulator
) -> None:
    response = await client.post(
        LOGIN, json={"email": ADMIN_EMAIL, "password": PASSWORD, "tenant_domain": TENANT}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    data = body["data"]
    assert set(data) == {"token", "expires_at", "user"}
    assert data["token"].count(".") == 2
    assert data["expires_at"].endswith("Z")
    assert data["user"]["email"] == ADMIN_EMAIL
    me = await client.get("/api/v1/auth/me", headers=bearer(data["token"]))
    assert me.json() == {"status": "ok", "data": data["user"]}
    assert sim.counters.logins[ADMIN_EMAIL] == 1
    recorded = sim.requests[0]
    assert recorded.body == {"email": ADMIN_EMAIL, "password": "REDACTED", "tenant_domain": TENANT}


@pytest.mark.parametrize(
    "content",
    [
        b'{"email":"a@b.com","password":"x","tenant":"oops"}',  # the docs' own example
        b'{"email":"a@b.com"}',
        b'{"email":"","password":"x"}',
        b'{"email":"a@b.com","password":7}',
        b'{"email":"a@b.com","password":"x","tenant_domain":1}',
        b"[1]",
        b"{not json",
        b"",
    ],
)
async def test_bad_login_bodies_are_400_and_not_failed_logins(
    client: httpx.AsyncClient, sim: Get2DialSimulator, content: bytes
) -> None:
    response = await client.post(LOGIN, content=content)
    assert response.status_code == 400
    assert response.json() == {"status": "error", "message": "invalid request body"}
    assert sim.counters.failed_logins.total() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"email": ADMIN_EMAIL, "password": "wrong"},
        {"email": "nobody@acme.test", "password": PASSWORD},
        {"email": ADMIN_EMAIL, "password": PASSWORD, "tenant_domain": "globex"},
    ],
)
async def test_wrong_credentials_are_a_generic_401(
    client: httpx.AsyncClient, sim: Get2DialSimulator, body: dict[str, str]
) -> None:
    response = await client.post(LOGIN, json=body)
    assert response.status_code == 401
    assert response.json() == {"status": "error", "message": "invalid credentials"}
    assert sim.counters.failed_logins[body["email"]] == 1


async def test_ten_failures_lock_the_account_for_fifteen_minutes(
    client: httpx.AsyncClient, sim: Get2DialSimulator, clock: VirtualClock
) -> None:
    wrong = {"email": ADMIN_EMAIL, "password": "wrong"}
    statuses = [(await client.post(LOGIN, json=wrong)).status_code for _ in range(10)]
    assert statuses == [401] * 10
    assert sim.is_locked(ADMIN_EMAIL)
    assert sim.counters.lockouts == 1
    locked = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert locked.status_code == 403
    assert "account temporarily locked" in locked.json()["message"]
    # Other accounts are not affected.
    await login(client, AGENT_EMAIL)
    clock.advance(899)
    still = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert still.status_code == 403
    clock.advance(1)
    assert not sim.is_locked(ADMIN_EMAIL)
    await login(client)
    assert sim.counters.failed_logins[ADMIN_EMAIL] == 10
    assert sim.count(path=LOGIN, status=403) == 2


async def test_failures_outside_the_window_do_not_count(
    client: httpx.AsyncClient, sim: Get2DialSimulator, clock: VirtualClock
) -> None:
    wrong = {"email": ADMIN_EMAIL, "password": "wrong"}
    for _ in range(9):
        await client.post(LOGIN, json=wrong)
    assert sim.failures(ADMIN_EMAIL) == 9
    clock.advance(900)
    assert sim.failures(ADMIN_EMAIL) == 0
    await client.post(LOGIN, json=wrong)
    assert not sim.is_locked(ADMIN_EMAIL)


async def test_a_success_clears_the_failures(
    client: httpx.AsyncClient, sim: Get2DialSimulator
) -> None:
    wrong = {"email": ADMIN_EMAIL, "password": "wrong"}
    for _ in range(9):
        await client.post(LOGIN, json=wrong)
    await login(client)
    await client.post(LOGIN, json=wrong)
    assert sim.failures(ADMIN_EMAIL) == 1
    assert not sim.is_locked(ADMIN_EMAIL)


async def test_a_disabled_account_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, json={"email": DISABLED_EMAIL, "password": PASSWORD})
    assert response.status_code == 403
    assert response.json() == {"status": "error", "message": "account disabled"}


async def test_token_required_and_checked(
    client: httpx.AsyncClient, sim: Get2DialSimulator, clock: VirtualClock
) -> None:
    missing = await client.get("/api/v1/auth/me")
    assert missing.status_code == 401
    assert missing.json() == {
        "status": "error",
        "message": "missing or invalid authorization header",
    }
    basic = await client.get("/api/v1/auth/me", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    forged = await client.get("/api/v1/auth/me", headers=bearer("a.b.c"))
    assert forged.json()["message"] == "invalid or expired token"
    token = await login(client)
    clock.advance(sim.token_ttl)
    expired = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert expired.status_code == 401
    assert sim.requests[-1].headers["authorization"] == "REDACTED"


async def test_contacts_conflicts_and_tenants(client: httpx.AsyncClient) -> None:
    auth = bearer(await login(client))
    listed = await client.get("/api/v1/contacts", headers=auth)
    assert [c["id"] for c in listed.json()["data"]] == ["ct_acme_1"]
    created = await client.post(
        "/api/v1/contacts", json={"name": "Cy", "phone": "+15550003"}, headers=auth
    )
    assert created.status_code == 201
    contact = created.json()["data"]
    duplicate = await client.post(
        "/api/v1/contacts", json={"name": "Cy", "phone": "+15550003"}, headers=auth
    )
    assert duplicate.status_code == 409
    unknown_field = await client.post(
        "/api/v1/contacts", json={"name": "Cy", "phone": "+1", "tag": "x"}, headers=auth
    )
    assert unknown_field.status_code == 400
    path = f"/api/v1/contacts/{contact['id']}"
    assert (await client.get(path, headers=auth)).json()["data"] == contact
    updated = await client.put(path, json={"name": "Cyd", "version": 1}, headers=auth)
    assert updated.json()["data"]["version"] == 2
    stale = await client.put(path, json={"name": "Cyril", "version": 1}, headers=auth)
    assert stale.status_code == 409
    assert stale.json() == {"status": "error", "message": "version conflict"}
    for bad in (b"{", b'{"version": "2"}', b'{"version": 2, "x": 1}'):
        assert (await client.put(path, content=bad, headers=auth)).status_code == 400
    # Another tenant's contact: 404, never a hint that it exists.
    for method in ("GET", "PUT", "DELETE"):
        other = await client.request(method, "/api/v1/contacts/ct_globex_1", headers=auth)
        assert other.status_code == 404
    assert (await client.get("/api/v1/tenants/acme", headers=auth)).status_code == 200
    cross = await client.get("/api/v1/tenants/globex", headers=auth)
    assert cross.status_code == 403
    assert cross.json()["status"] == "error"


async def test_only_admins_delete(client: httpx.AsyncClient) -> None:
    agent = bearer(await login(client, AGENT_EMAIL))
    denied = await client.delete("/api/v1/contacts/ct_acme_1", headers=agent)
    assert denied.status_code == 403
    assert denied.json()["message"] == "insufficient permissions"
    admin = bearer(await login(client))
    deleted = await client.delete("/api/v1/contacts/ct_acme_1", headers=admin)
    assert deleted.json() == {"status": "ok", "data": None}
    assert (await client.get("/api/v1/contacts/ct_acme_1", headers=admin)).status_code == 404


async def test_calls_are_counted_per_operation(
    client: httpx.AsyncClient, sim: Get2DialSimulator
) -> None:
    auth = {**bearer(await login(client, OTHER_TENANT_EMAIL)), "X-Demo-Operation": "dial-1"}
    for _ in range(2):
        created = await client.post("/api/v1/calls", json={"to": "+15550100"}, headers=auth)
        assert created.status_code == 201
        assert created.json()["data"]["tenant"] == "globex"
    assert sim.counters.calls_created == 2
    assert sim.counters.duplicated_calls == 1
    assert (await client.post("/api/v1/calls", json={}, headers=auth)).status_code == 400


async def test_faults_use_the_envelope_and_no_retry_after_by_default(
    client: httpx.AsyncClient, sim: Get2DialSimulator
) -> None:
    auth = bearer(await login(client))
    sim.faults.add(Fault(kind="status", status=500, count=1))
    error = await client.get("/api/v1/contacts", headers=auth)
    assert error.status_code == 500
    assert error.json() == {"status": "error", "message": "internal server error"}
    sim.faults.add("rate_limit,count=1")
    limited = await client.get("/api/v1/contacts", headers=auth)
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert limited.json()["status"] == "error"
    assert (await client.get("/api/v1/nothing", headers=auth)).status_code == 404
    assert (await client.get(LOGIN)).json()["message"] == "method not allowed"
