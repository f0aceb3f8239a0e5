"""What the demo's simulated services do against each vendor: the same code in both modes.

A workload is a list of *operations* (one logical call each: a phone call created, a list read),
run in a loop by a few workers. Each operation sends ``X-Demo-Operation`` so the simulator can
tell a duplicated phone call (two calls for one operation) from two calls.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable

import httpx

from adapters.simulators import dialnexa as nexa_sim
from adapters.simulators import dialstack as stack_sim
from adapters.simulators import get2dial as g2d_sim

__all__ = [
    "OPERATIONS",
    "PERSON_HEADER",
    "Operation",
    "get2dial_token",
    "headers_for",
    "person_login",
    "wrong_password_login",
]

Operation = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]
_numbers = itertools.count(1000)


def _operation_id() -> dict[str, str]:
    return {"X-Demo-Operation": uuid.uuid4().hex}


async def _dialstack_call(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    to = f"+1555010{next(_numbers) % 10000:04d}"
    return await client.post("/v1/calls", json={"to": to}, headers={**auth, **_operation_id()})


async def _dialstack_list(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    return await client.get("/v1/calls", params={"limit": "10"}, headers=auth)


async def _get2dial_call(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    to = f"+1415555{next(_numbers) % 10000:04d}"
    return await client.post("/api/v1/calls", json={"to": to}, headers={**auth, **_operation_id()})


async def _get2dial_contacts(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/contacts", headers=auth)


async def _dialnexa_call(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    body = {"agent_id": "agent_demo", "to_phone_number": f"+1415555{next(_numbers) % 10000:04d}"}
    return await client.post("/v1/calls", json=body, headers={**auth, **_operation_id()})


async def _dialnexa_logs(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    return await client.get("/v1/call-logs", headers=auth)


#: Per vendor, the operations each worker cycles through.
OPERATIONS: dict[str, tuple[Operation, ...]] = {
    "dialstack": (_dialstack_call, _dialstack_list),
    "get2dial": (_get2dial_call, _get2dial_contacts),
    "dialnexa": (_dialnexa_call, _dialnexa_logs),
}


def headers_for(vendor: str, token: str | None = None) -> dict[str, str]:
    """The credentials a vendor's operations send (the simulators' demo credentials)."""
    if vendor == "dialstack":
        return {
            "Authorization": f"Bearer {stack_sim.API_KEY}",
            "DialStack-Account": stack_sim.ACCOUNT,
        }
    if vendor == "dialnexa":
        return {"Authorization": f"Bearer {nexa_sim.API_KEY}"}
    return {"Authorization": f"Bearer {token}"}


async def get2dial_token(client: httpx.AsyncClient) -> str:
    """Log the demo's service account in (before any fault starts) and return its token."""
    response = await client.post(
        "/api/v1/auth/login",
        json={
            "email": g2d_sim.ADMIN_EMAIL,
            "password": g2d_sim.PASSWORD,
            "tenant_domain": g2d_sim.TENANT,
        },
    )
    response.raise_for_status()
    return str(response.json()["data"]["token"])


STALE_PASSWORD = "Summer2024!"  # noqa: S105 - the demo's deliberately wrong password


async def wrong_password_login(
    client: httpx.AsyncClient, *, password: str = STALE_PASSWORD
) -> httpx.Response:
    """A misconfigured integration: the agent account's login with a stale password."""
    return await client.post(
        "/api/v1/auth/login",
        json={"email": g2d_sim.AGENT_EMAIL, "password": password, "tenant_domain": g2d_sim.TENANT},
    )


#: Marks a person's own logins, so the simulator's records of them are not counted against the
#: client under test.
PERSON_HEADER = "X-Demo-Person"


async def person_login(client: httpx.AsyncClient) -> httpx.Response:
    """A person at the web console logging in to the same account, with the right password."""
    return await client.post(
        "/api/v1/auth/login",
        json={
            "email": g2d_sim.AGENT_EMAIL,
            "password": g2d_sim.PASSWORD,
            "tenant_domain": g2d_sim.TENANT,
        },
        headers={PERSON_HEADER: "yes"},
    )
