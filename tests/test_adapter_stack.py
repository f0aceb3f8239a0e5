"""Each vendor's standard stack, end to end: a real httpx client, real loopback sockets, and the
vendor's simulator counting what actually reached the server.

The stack (``adapters.<vendor>.transport(clock=..., rng=...)``) and the simulator share one
:class:`~resilience.testing.VirtualClock`, so Retry-After waits, backoff, breaker periods and the
vendors' own timers (rate-limit windows, call durations, lockouts) all run in virtual time. Only a
read timeout costs real time (a quarter of a second), because the socket's timeout is the OS's.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import attrs
import httpx
import pytest
from opentelemetry.trace import SpanKind

import resilience
from adapters import dialnexa, dialstack, get2dial
from adapters.simulators import (
    DialNexaSimulator,
    DialStackSimulator,
    Get2DialSimulator,
    RecordedRequest,
    Simulator,
)
from adapters.simulators import dialnexa as nexa_sim
from adapters.simulators import dialstack as stack_sim
from adapters.simulators import get2dial as g2d_sim
from adapters.simulators._asgi import Request, Response
from resilience import CircuitState, Kind, outcome, raise_for_error
from resilience import _events as ev
from resilience.testing import VirtualClock
from tests.test_simulator_support import Served, serving
from tests.test_telemetry_support import Otel, otel_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.anyio

L = TypeVar("L", bound=resilience.Layer)
S = TypeVar("S", bound=Simulator)

DS_AUTH = {"Authorization": f"Bearer {stack_sim.API_KEY}", "DialStack-Account": stack_sim.ACCOUNT}
DS_CALL = {"to": "+15550100001"}
PROVISION = {
    "vendor": "yealink",
    "model": "T46U",
    "mac": "00:15:65:00:00:01",
    "endpoint_id": "ep_1",
}
DN_AUTH = {"Authorization": f"Bearer {nexa_sim.API_KEY}"}
DN_OTHER = {"Authorization": f"Bearer {nexa_sim.OTHER_ORG_KEY}"}
DN_CALL = {"agent_id": "agent_demo", "to_phone_number": "+14155550100"}
LOGIN = get2dial.LOGIN_PATH
#: A read timeout far below the ``slow`` faults' delay (the server stops when the client goes).
SHORT_READ = httpx.Timeout(5.0, read=0.25)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


def _install(served: Served, sim: S) -> S:
    """Serve ``sim`` for this test (the server is the module's; the simulator is fresh)."""
    served.use(sim)
    return sim


def _virtual(clock: VirtualClock) -> dict[str, Any]:
    """The overrides that put a standard stack in virtual time, with seeded jitter."""
    return {"clock": clock, "rng": random.Random(20240601)}


def _layer(stack: resilience.Stack, kind: type[L]) -> L:
    found = [layer for layer in stack.layers if isinstance(layer, kind)]
    assert len(found) == 1, stack
    return found[0]


def _received(sim: Simulator, method: str, path: str) -> list[RecordedRequest]:
    return [r for r in sim.requests if r.method == method and r.path == path]


def _statuses(sim: Simulator, method: str, path: str) -> list[int]:
    return [r.status for r in _received(sim, method, path)]


def _backoff_ok(sleeps: list[float], initial: float) -> bool:
    """Full jitter: the n-th retry (0-based) waits somewhere in ``[0, initial * 2**n]``."""
    return all(0.0 <= s <= initial * 2**n for n, s in enumerate(sleeps))


# -- DialStack: mutations are idempotent by key, so their retries are safe ---------------------


async def test_dialstack_post_after_hidden_5xx_is_resent_under_one_key_creating_one_call(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    # Two 500s that each ran the vendor logic first: the first one created the call.
    sim.faults.add("status=500,method=POST,path=/v1/calls,count=2,executed=true")
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        response = await c.post("/v1/calls", json=DS_CALL, headers={"X-Demo-Operation": "op-1"})

    assert response.status_code == 201
    assert response.headers["idempotent-replayed"] == "true"  # the stored answer, not a new call
    sent = _received(sim, "POST", "/v1/calls")
    assert [r.status for r in sent] == [500, 500, 201]
    keys = {r.headers["idempotency-key"] for r in sent}
    assert len(keys) == 1  # the SAME key on every attempt
    assert uuid.UUID(keys.pop()).version == 4
    assert sim.counters.calls_created == 1
    assert sim.counters.duplicated_calls == 0
    assert len(sim.calls[stack_sim.ACCOUNT]) == 1
    result = outcome(response)
    assert (result.classification.kind, result.attempts) == (Kind.SUCCESS, 3)
    # Backed off twice on the virtual clock, within the vendor's advice (1 s doubling).
    assert len(clock.sleeps) == 2
    assert _backoff_ok(clock.sleeps, 1.0)
    assert result.waited == pytest.approx(sum(clock.sleeps))


async def test_dialstack_post_after_read_timeout_is_resent_under_one_key_creating_one_call(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    # The vendor creates the call, then the answer is late: the client's read times out.
    sim.faults.add("slow=30,method=POST,path=/v1/calls,count=1")
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(
        base_url=served.url, transport=transport, headers=DS_AUTH, timeout=SHORT_READ
    ) as client:
        response = await client.post("/v1/calls", json=DS_CALL)

    assert response.status_code == 201
    assert response.headers["idempotent-replayed"] == "true"
    sent = _received(sim, "POST", "/v1/calls")
    assert [r.fault for r in sent] == ["slow", None]
    assert len({r.headers["idempotency-key"] for r in sent}) == 1
    assert sim.counters.calls_created == 1
    assert outcome(response).attempts == 2


async def test_dialstack_keeps_the_callers_idempotency_key_on_every_attempt(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    sim.faults.add("status=503,method=POST,path=/v1/calls,count=1")
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        response = await c.post("/v1/calls", json=DS_CALL, headers={"Idempotency-Key": "op-42"})
        # The same logical operation sent again by the caller: replayed, not a second call.
        again = await c.post("/v1/calls", json=DS_CALL, headers={"Idempotency-Key": "op-42"})

    assert (response.status_code, again.status_code) == (201, 201)
    assert response.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    sent = _received(sim, "POST", "/v1/calls")
    assert [r.status for r in sent] == [503, 201, 201]
    assert [r.headers["idempotency-key"] for r in sent] == ["op-42"] * 3
    assert sim.counters.calls_created == 1


async def test_dialstack_patch_is_keyed_and_resent_too(served: Served, clock: VirtualClock) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        user = (await c.post("/v1/users", json={"handle": "ada"})).json()
        path = f"/v1/users/{user['id']}"
        sim.faults.add(f"status=502,method=PATCH,path={path},count=1,executed=true")
        response = await c.patch(path, json={"handle": "ada.l"})

    assert response.status_code == 200
    assert response.headers["idempotent-replayed"] == "true"
    sent = _received(sim, "PATCH", path)
    assert [r.status for r in sent] == [502, 200]
    assert len({r.headers["idempotency-key"] for r in sent}) == 1
    assert sim.users[user["id"]]["handle"] == "ada.l"
    assert outcome(response).attempts == 2


async def test_dialstack_cut_success_body_reaches_the_caller_who_can_resend_safely(
    served: Served, clock: VirtualClock
) -> None:
    """The stack never reads a success body (streams stay streams), so a connection cut in the
    middle of a 201 surfaces to the caller as itself; resending under the same key is safe."""
    sim = _install(served, DialStackSimulator(clock=clock.now))
    sim.faults.add("drop,method=POST,path=/v1/calls,count=1")
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post("/v1/calls", json=DS_CALL, headers={"Idempotency-Key": "op-7"})
        assert sim.counters.calls_created == 1  # the server did act on it
        response = await c.post("/v1/calls", json=DS_CALL, headers={"Idempotency-Key": "op-7"})

    assert response.status_code == 201
    assert response.headers["idempotent-replayed"] == "true"
    assert sim.counters.dropped == 1
    assert sim.counters.calls_created == 1
    assert [r.headers["idempotency-key"] for r in _received(sim, "POST", "/v1/calls")] == [
        "op-7",
        "op-7",
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("fault", ["rate_limit", "status=503"])
async def test_dialstack_retry_after_is_waited_out_in_full(
    served: Served, clock: VirtualClock, fault: str, method: str
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    sim.faults.add(f"{fault},method={method},path=/v1/calls,count=1,retry_after=7")
    transport = dialstack.transport(**_virtual(clock))
    start = clock.now()
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        response = await c.request(method, "/v1/calls", json=DS_CALL if method == "POST" else None)

    assert response.status_code == (201 if method == "POST" else 200)
    first, second = _received(sim, method, "/v1/calls")
    assert first.status == (429 if fault == "rate_limit" else 503)
    assert second.time - first.time >= 7.0  # as the server saw it, on the shared virtual clock
    assert clock.now() - start >= 7.0
    assert clock.sleeps == [7.0]  # the Retry-After, not the (shorter) backoff
    result = outcome(response)
    assert result.attempts == 2
    assert result.waited >= 7.0
    if method == "POST":
        assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
        assert sim.counters.calls_created == 1


async def test_dialstack_retry_after_beyond_the_cap_is_not_slept_and_holds_the_gate(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    sim.faults.add("rate_limit,method=GET,path=/v1/calls,count=1,retry_after=120")
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        response = await c.get("/v1/calls")
        # 120 s is above the 60 s cap: returned at once, unchanged.
        assert response.status_code == 429
        assert outcome(response).attempts == 1
        assert clock.sleeps == []
        with pytest.raises(resilience.TooManyRequestsError) as too_many:
            raise_for_error(response)
        assert too_many.value.retry_after == 120.0
        # The next call for the same key is refused without sending: the gate holds it.
        with pytest.raises(resilience.RateLimitedError) as held:
            await c.get("/v1/calls")
        assert held.value.retry_after == pytest.approx(120.0)
        assert sim.count(path="/v1/calls") == 1
        clock.advance(120.0)
        late = await c.get("/v1/calls")
    assert late.status_code == 200
    assert _statuses(sim, "GET", "/v1/calls") == [429, 200]


async def test_dialstack_deadline_override_bounds_every_wait(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    # The vendor's 60 s Retry-After cap comes down to the caller's deadline (not a ValueError).
    stack = dialstack.stack(deadline=10.0, **_virtual(clock))
    assert _layer(stack, resilience.Retry).max_retry_after == 10.0
    down = sim.faults.add("status=503,method=GET,path=/v1/calls")
    async with httpx.AsyncClient(
        base_url=served.url, transport=stack.transport(), headers=DS_AUTH
    ) as client:
        start = clock.now()
        failed = await client.get("/v1/calls")
        # Backoff went on only while the next attempt could still start before the deadline.
        assert failed.status_code == 503
        assert 1 < outcome(failed).attempts == sim.count() <= 5
        assert clock.now() - start < 10.0
        sim.faults.remove(down)

        sim.faults.add("rate_limit,method=GET,path=/v1/calls,count=1,retry_after=3")
        waited = await client.get("/v1/calls")
        assert waited.status_code == 200
        assert outcome(waited).waited >= 3.0

        sim.faults.add("rate_limit,method=GET,path=/v1/calls,count=1,retry_after=30")
        before = clock.now()
        limited = await client.get("/v1/calls")
        assert limited.status_code == 429  # 30 s would pass the deadline: back at once
        assert clock.now() == before
        with pytest.raises(resilience.RateLimitedError):  # and the gate will not wait 30 s
            await client.get("/v1/calls")
    assert _statuses(sim, "GET", "/v1/calls")[-3:] == [429, 200, 429]


CodeCase = tuple[str, str, Any, int, str, type[resilience.APIError]]

DIALSTACK_STABLE_4XX: list[CodeCase] = [
    ("POST", "/v1/calls", {"to": "12345"}, 400, "validation_error",
     dialstack.ValidationFailedError),
    ("POST", "/v1/calls", {"to": "+14155550100"}, 400, "invalid_sandbox_phone_number",
     dialstack.InvalidSandboxPhoneNumberError),
    ("GET", "/v1/calls?cursor=garbage", None, 400, "invalid_pagination",
     dialstack.InvalidPaginationError),
    ("POST", "/v1/devices/provision", {**PROVISION, "endpoint_id": "ep_9"}, 404,
     "credentials_not_found", dialstack.CredentialsNotFoundError),
]  # fmt: skip


@pytest.mark.parametrize("case", DIALSTACK_STABLE_4XX, ids=lambda c: c[4])
async def test_dialstack_stable_4xx_is_sent_once_and_typed(
    served: Served, clock: VirtualClock, case: CodeCase
) -> None:
    method, url, body, status, code, error = case
    sim = _install(served, DialStackSimulator(clock=clock.now))
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        response = await c.request(method, url, json=body)

    assert response.status_code == status
    assert len(sim.requests) == 1
    assert outcome(response).attempts == 1
    assert clock.sleeps == []
    with pytest.raises(error) as caught:
        raise_for_error(response)
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.request_id  # X-Request-Id kept


async def test_dialstack_generation_failed_is_retried_as_documented(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialStackSimulator(clock=clock.now))
    sim.generation_failures = 2
    transport = dialstack.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DS_AUTH) as c:
        response = await c.post("/v1/devices/provision", json=PROVISION)

    assert response.status_code == 201
    assert _statuses(sim, "POST", "/v1/devices/provision") == [500, 500, 201]
    assert outcome(response).attempts == 3


async def test_dialstack_request_ids_and_codes_reach_the_trace(
    served: Served, clock: VirtualClock, otel: Otel
) -> None:
    """The docs: record X-Request-Id on errors and spans. Each retried error's id is on its
    retry event, and a call that ends in an error carries that error's id and stable code."""
    sim = _install(served, DialStackSimulator(clock=clock.now))
    sim.faults.add("status=503,method=GET,path=/v1/calls,count=1")
    stack = resilience.Stack(*dialstack.stack(**_virtual(clock)).layers, telemetry=otel.telemetry())
    async with httpx.AsyncClient(
        base_url=served.url, transport=stack.transport(), headers=DS_AUTH
    ) as client:
        listed = await client.get("/v1/calls")
        refused = await client.post("/v1/calls", json={})
    assert (listed.status_code, refused.status_code) == (200, 400)
    retried, failed = otel.spans(SpanKind.INTERNAL)
    (scheduled,) = [e for e in retried.events if e.name == ev.RETRY_SCHEDULED]
    first_id = scheduled.attributes[ev.REQUEST_ID]  # type: ignore[index]
    assert str(first_id).startswith("req_")
    assert first_id != listed.headers["x-request-id"]  # the 503's own, not the success's
    assert ev.REQUEST_ID not in (retried.attributes or {})  # the call succeeded
    assert failed.attributes is not None
    assert failed.attributes[ev.REQUEST_ID] == refused.headers["x-request-id"]
    assert failed.attributes[ev.ERROR_CODE] == "validation_error"


# -- DialNexa: a POST /calls is a phone call, and there is no idempotency key ------------------


@pytest.mark.parametrize(
    ("executed", "headers"),
    [(True, {}), (False, {}), (True, {"Idempotency-Key": "mine"})],
    ids=["500-after-creating", "500-before-creating", "500-with-a-key-of-our-own"],
)
async def test_dialnexa_post_calls_is_not_resent_after_a_5xx(
    served: Served, clock: VirtualClock, executed: bool, headers: dict[str, str]
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now))
    sim.faults.add(f"status=500,method=POST,path=/v1/calls,count=1,executed={executed}")
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        response = await c.post("/v1/calls", json=DN_CALL, headers=headers)

    assert response.status_code == 500
    assert _statuses(sim, "POST", "/v1/calls") == [500]  # received exactly once
    assert sim.counters.calls_created == int(executed)
    assert outcome(response).attempts == 1
    assert clock.sleeps == []
    with pytest.raises(resilience.ServerError):
        raise_for_error(response)


@pytest.mark.parametrize(
    ("fault", "error"),
    [("slow=30", httpx.ReadTimeout), ("drop", httpx.RemoteProtocolError)],
    ids=["read-timeout", "connection-cut"],
)
async def test_dialnexa_post_calls_is_not_resent_after_reaching_the_server(
    served: Served, clock: VirtualClock, fault: str, error: type[Exception]
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now))
    sim.faults.add(f"{fault},method=POST,path=/v1/calls,count=1")
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(
        base_url=served.url, transport=transport, headers=DN_AUTH, timeout=SHORT_READ
    ) as client:
        with pytest.raises(error):  # re-raised as itself, not wrapped
            await client.post("/v1/calls", json=DN_CALL)

    assert len(_received(sim, "POST", "/v1/calls")) == 1
    assert sim.counters.calls_created == 1
    assert clock.sleeps == []


async def test_dialnexa_read_after_a_read_timeout_is_resent(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now))
    sim.faults.add("slow=30,method=GET,path=/v1/call-logs,count=1")
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(
        base_url=served.url, transport=transport, headers=DN_AUTH, timeout=SHORT_READ
    ) as client:
        response = await client.get("/v1/call-logs")

    assert response.status_code == 200
    assert [r.fault for r in _received(sim, "GET", "/v1/call-logs")] == ["slow", None]
    assert outcome(response).attempts == 2


class _RefuseFirstConnect(httpx.AsyncBaseTransport):
    """A real network transport whose first connection attempt is refused (nothing sent)."""

    def __init__(self) -> None:
        self.network = httpx.AsyncHTTPTransport()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.refused:
            self.refused += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.network.handle_async_request(request)

    async def aclose(self) -> None:
        await self.network.aclose()


async def test_dialnexa_post_calls_is_resent_after_a_connect_failure(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now))
    inner = _RefuseFirstConnect()
    transport = dialnexa.transport(inner, **_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        response = await c.post("/v1/calls", json=DN_CALL)

    assert response.status_code == 201
    assert inner.refused == 1
    assert _statuses(sim, "POST", "/v1/calls") == [201]
    assert sim.counters.calls_created == 1
    assert outcome(response).attempts == 2


@pytest.mark.parametrize(
    ("header", "wait"),
    [(None, dialnexa.CONCURRENCY_RETRY_AFTER), (5.0, 5.0)],
    ids=["default-delay", "server-retry-after"],
)
async def test_dialnexa_concurrency_limit_409_is_retried_after_a_delay(
    served: Served, clock: VirtualClock, header: float | None, wait: float
) -> None:
    sim = _install(
        served,
        DialNexaSimulator(
            clock=clock.now,
            concurrency_limit=1,
            call_duration=1.5,  # shorter than the wait, so the retry finds a free line
            concurrency_retry_after=header,
        ),
    )
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        first = await c.post("/v1/calls", json=DN_CALL)
        start = clock.now()
        second = await c.post("/v1/calls", json=DN_CALL)

    assert (first.status_code, second.status_code) == (201, 201)
    sent = _received(sim, "POST", "/v1/calls")
    assert [r.status for r in sent] == [201, 409, 201]
    assert sent[2].time - sent[1].time >= wait
    assert clock.now() - start >= wait
    result = outcome(second)
    assert result.attempts == 2
    assert result.waited >= wait
    assert sim.counters.calls_created == 2


async def test_dialnexa_concurrent_calls_wait_for_free_lines_and_each_is_created_once(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(
        served, DialNexaSimulator(clock=clock.now, concurrency_limit=2, call_duration=1.5)
    )
    transport = dialnexa.transport(**_virtual(clock))
    created: list[httpx.Response] = []

    async def call(client: httpx.AsyncClient) -> None:
        created.append(await client.post("/v1/calls", json=DN_CALL))

    async with (
        httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(5):
            tg.start_soon(call, client)

    assert [r.status_code for r in created] == [201] * 5
    assert len({r.json()["id"] for r in created}) == 5
    sent = _received(sim, "POST", "/v1/calls")
    assert sim.counters.calls_created == sum(r.status == 201 for r in sent) == 5
    # Never more than two lines at once: each burst of 201s sits in its own 2 s slot.
    by_time: dict[float, int] = {}
    for r in sent:
        if r.status == 201:
            by_time[r.time] = by_time.get(r.time, 0) + 1
    assert max(by_time.values()) <= 2
    assert all(b - a >= dialnexa.CONCURRENCY_RETRY_AFTER for a, b in itertools.pairwise(by_time))


async def test_dialnexa_concurrency_409_gives_up_after_its_attempts_without_a_call(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now, concurrency_limit=0))
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        response = await c.post("/v1/calls", json=DN_CALL)

    assert response.status_code == 409
    assert _statuses(sim, "POST", "/v1/calls") == [409, 409, 409]  # the standard 3 attempts
    assert sim.counters.calls_created == 0
    assert clock.sleeps == [dialnexa.CONCURRENCY_RETRY_AFTER] * 2
    with pytest.raises(resilience.ConflictError):
        raise_for_error(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/campaigns/camp_cancelled/resume"), ("DELETE", "/v1/agents/agent_demo")],
    ids=["resume-cancelled-campaign", "delete-busy-agent"],
)
async def test_dialnexa_state_conflict_409_is_not_retried(
    served: Served, clock: VirtualClock, method: str, path: str
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now))
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        response = await c.request(method, path)

    assert response.status_code == 409
    assert _statuses(sim, method, path) == [409]
    assert outcome(response).attempts == 1
    assert clock.sleeps == []
    with pytest.raises(resilience.ConflictError):
        raise_for_error(response)


async def test_dialnexa_304_is_a_success(served: Served, clock: VirtualClock) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now))
    stack = dialnexa.stack(**_virtual(clock))
    breaker = _layer(stack, resilience.CircuitBreaker)
    async with httpx.AsyncClient(
        base_url=served.url, transport=stack.transport(), headers=DN_AUTH
    ) as client:
        first = await client.get("/v1/call-logs")
        etag = first.headers["etag"]
        response = await client.get("/v1/call-logs", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert _statuses(sim, "GET", "/v1/call-logs") == [200, 304]
    result = outcome(response)
    assert (result.classification.kind, result.attempts) == (Kind.NOT_MODIFIED, 1)
    assert raise_for_error(response) is response
    circuit = breaker.statistics(breaker.key_of(served.url)).circuit
    assert circuit is not None
    assert (circuit.calls, circuit.failures) == (2, 0)


async def test_dialnexa_429_retry_after_from_its_rate_limit_is_waited_out(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now, rate_limit=2, rate_window=10.0))
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        await c.get("/v1/call-logs")
        await c.get("/v1/call-logs")
        start = clock.now()
        response = await c.get("/v1/call-logs")

    assert response.status_code == 200
    sent = _received(sim, "GET", "/v1/call-logs")
    assert [r.status for r in sent] == [200, 200, 429, 200]
    assert sent[3].time - sent[2].time >= 10.0
    assert clock.now() - start >= 10.0
    assert outcome(response).waited >= 10.0


async def test_dialnexa_post_calls_refused_by_the_rate_limit_is_resent_once(
    served: Served, clock: VirtualClock
) -> None:
    """A 429 created nothing (RFC 6585): even a phone call is safe to send again after it."""
    sim = _install(served, DialNexaSimulator(clock=clock.now, rate_limit=1, rate_window=10.0))
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        await c.get("/v1/call-logs")
        response = await c.post("/v1/calls", json=DN_CALL)

    assert response.status_code == 201
    sent = _received(sim, "POST", "/v1/calls")
    assert [r.status for r in sent] == [429, 201]
    assert sent[1].time - sent[0].time >= 10.0
    assert sim.counters.calls_created == 1
    assert outcome(response).attempts == 2


class _ResetOnlyDialNexa(DialNexaSimulator):
    """DialNexa behind a proxy that drops ``Retry-After``: only ``X-RateLimit-Reset`` is left."""

    def rate_limited_response(self, request: Request, retry_after: str | None) -> Response:
        return self.error_response(429, nexa_sim.RATE_LIMIT_MESSAGE)


@pytest.mark.parametrize("style", ["seconds", "timestamp"])
async def test_dialnexa_x_ratelimit_reset_is_honoured_without_retry_after(
    served: Served, clock: VirtualClock, style: Any
) -> None:
    sim = _install(
        served,
        _ResetOnlyDialNexa(clock=clock.now, rate_limit=1, rate_window=10.0, reset_style=style),
    )
    transport = dialnexa.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=DN_AUTH) as c:
        await c.get("/v1/call-logs")
        start = clock.now()
        response = await c.get("/v1/call-logs")

    assert response.status_code == 200
    statuses = _statuses(sim, "GET", "/v1/call-logs")
    assert statuses[:2] == [200, 429]
    # The first wait is the header's (about 10 s), not the backoff's (at most 0.5 s). A Unix
    # reset is measured against the response's Date, which has whole seconds and which uvicorn
    # refreshes every 0.1 s: up to 2 s over, never under.
    assert 9.0 < clock.sleeps[0] <= 12.0
    assert clock.now() - start >= 10.0
    if style == "seconds":
        assert statuses == [200, 429, 200]
        assert clock.sleeps == [10.0]
    # "timestamp" is a whole Unix second read against the wall clock, so the wait can fall a
    # hair short of the window and meet one more (short) 429; it still ends in a success.


async def test_dialnexa_gate_holds_one_api_key_not_the_other(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, DialNexaSimulator(clock=clock.now, rate_limit=1, rate_window=10.0))
    # One attempt only: the 429 comes back, and the gate remembers its Retry-After.
    transport = dialnexa.transport(attempts=1, **_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport) as client:
        await client.get("/v1/call-logs", headers=DN_AUTH)
        limited = await client.get("/v1/call-logs", headers=DN_AUTH)
        assert limited.status_code == 429
        other = await client.get("/v1/call-logs", headers=DN_OTHER)
        assert other.status_code == 200
        assert clock.sleeps == []  # the other key went straight through
        start = clock.now()
        held = await client.get("/v1/call-logs", headers=DN_AUTH)

    assert held.status_code == 200
    assert clock.now() - start >= 10.0  # waited at the gate before sending
    assert outcome(held).waited >= 10.0
    assert _statuses(sim, "GET", "/v1/call-logs") == [200, 429, 200, 200]


# -- Get2Dial: a lockout must never be ours; only reads are retried ----------------------------


def _login_body(email: str, password: str) -> dict[str, str]:
    return {"email": email, "password": password, "tenant_domain": g2d_sim.TENANT}


async def _login(
    client: httpx.AsyncClient, body: dict[str, str], out: list[httpx.Response | Exception]
) -> None:
    try:
        out.append(await client.post(LOGIN, json=body))
    except resilience.LockedOutError as exc:
        out.append(exc)


async def test_get2dial_logins_under_another_spelling_of_the_path_are_guarded_too(
    served: Served, clock: VirtualClock
) -> None:
    """The vendor answers /api/v1/auth/login/ as well: its failures count in the same budget
    (once, twelve of them went out uncounted and locked the account)."""
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    transport = get2dial.transport(**_virtual(clock))
    results: list[httpx.Response | Exception] = []
    async with httpx.AsyncClient(base_url=served.url, transport=transport) as client:
        for i in range(12):
            path = LOGIN + "/" if i % 2 else LOGIN
            try:
                results.append(
                    await client.post(path, json=_login_body(g2d_sim.ADMIN_EMAIL, "wrong"))
                )
            except resilience.LockedOutError as exc:
                results.append(exc)
    statuses = [r.status_code if isinstance(r, httpx.Response) else "refused" for r in results]
    assert statuses == [401] * 5 + ["refused"] * 7
    assert sim.failures(g2d_sim.ADMIN_EMAIL) == 5
    assert not sim.is_locked(g2d_sim.ADMIN_EMAIL)


async def test_get2dial_twenty_wrong_passwords_send_five_and_never_lock_the_account(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    stack = get2dial.stack(**_virtual(clock))
    guard = _layer(stack, resilience.LockoutGuard)
    admin: list[httpx.Response | Exception] = []
    agent: list[httpx.Response | Exception] = []
    async with httpx.AsyncClient(base_url=served.url, transport=stack.transport()) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(_login, client, _login_body(g2d_sim.ADMIN_EMAIL, "wrong"), admin)
            tg.start_soon(_login, client, _login_body(g2d_sim.AGENT_EMAIL, g2d_sim.PASSWORD), agent)

        sent = [r for r in admin if isinstance(r, httpx.Response)]
        refused = [r for r in admin if isinstance(r, resilience.LockedOutError)]
        assert len(sent) + len(refused) == 20
        assert [r.status_code for r in sent] == [401] * 5  # half of the vendor's 10
        assert all(outcome(r).attempts == 1 for r in sent)  # a failed login is never retried
        assert len(refused) == 15
        for exc in refused:
            assert isinstance(exc, resilience.RejectedError)
            assert exc.retry_after == pytest.approx(900.0)  # until the oldest failure expires
        # What the vendor saw: five failed logins, no lockout.
        assert sim.count(method="POST", path=LOGIN, status=401) == 5
        assert sim.counters.failed_logins[g2d_sim.ADMIN_EMAIL] == 5
        assert sim.failures(g2d_sim.ADMIN_EMAIL) == 5
        assert sim.counters.lockouts == 0
        assert not sim.is_locked(g2d_sim.ADMIN_EMAIL)
        # Another identity, in the middle of it all, is untouched.
        assert [r.status_code for r in agent if isinstance(r, httpx.Response)] == [200]
        assert clock.sleeps == []
        stats = guard.statistics()
        assert (stats.logins, stats.failed_logins, stats.rejected) == (6, 5, 15)
        assert stats.engaged == 1

        # Even the right password waits: the guard refuses the identity, not the password.
        with pytest.raises(resilience.LockedOutError):
            await client.post(LOGIN, json=_login_body(g2d_sim.ADMIN_EMAIL, g2d_sim.PASSWORD))
        clock.advance(900.0)
        ok = await client.post(LOGIN, json=_login_body(g2d_sim.ADMIN_EMAIL, g2d_sim.PASSWORD))
    assert ok.status_code == 200
    assert sim.counters.lockouts == 0
    assert sim.count(method="POST", path=LOGIN) == 5 + 1 + 1


async def test_get2dial_tenant_domain_cannot_double_the_failed_login_budget(
    served: Served, clock: VirtualClock
) -> None:
    """The vendor counts failed logins per email; ``tenant_domain`` is optional. Were it part of
    the guard's identity, five with it and five without would lock the account."""
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    transport = get2dial.transport(**_virtual(clock))
    with_tenant = _login_body(g2d_sim.ADMIN_EMAIL, "wrong")
    without_tenant = {"email": g2d_sim.ADMIN_EMAIL.upper(), "password": "wrong"}
    other_tenant = {**with_tenant, "tenant_domain": "globex"}
    results: list[httpx.Response | Exception] = []
    async with httpx.AsyncClient(base_url=served.url, transport=transport) as client:
        for body in [with_tenant] * 3 + [without_tenant] * 3 + [other_tenant] * 6:
            await _login(client, body, results)

    assert [getattr(r, "status_code", None) for r in results[:5]] == [401] * 5
    assert all(isinstance(r, resilience.LockedOutError) for r in results[5:])
    assert sim.counters.failed_logins[g2d_sim.ADMIN_EMAIL] == 5
    assert sim.counters.lockouts == 0
    assert not sim.is_locked(g2d_sim.ADMIN_EMAIL)


async def test_get2dial_login_meeting_a_500_is_not_resent_and_spends_the_budget(
    served: Served, clock: VirtualClock
) -> None:
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    sim.faults.add(f"status=500,method=POST,path={LOGIN},count=1")
    stack = get2dial.stack(**_virtual(clock))
    guard = _layer(stack, resilience.LockoutGuard)
    async with httpx.AsyncClient(base_url=served.url, transport=stack.transport()) as client:
        response = await client.post(LOGIN, json=_login_body(g2d_sim.ADMIN_EMAIL, "wrong"))

    assert response.status_code == 500
    assert _statuses(sim, "POST", LOGIN) == [500]
    assert outcome(response).attempts == 1
    # The 500 does not say whether the vendor counted a failure: the guard assumes it did.
    stats = guard.statistics()
    assert (stats.failed_logins, stats.unknown_logins) == (0, 1)


async def test_get2dial_wrong_passwords_hidden_behind_500s_never_lock_the_account(
    served: Served, clock: VirtualClock
) -> None:
    """A 5xx burst whose logins run before the 500: the vendor counts every wrong password the
    client never saw answered. The guard's budget holds all the same."""
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    sim.faults.add(f"status=500,method=POST,path={LOGIN},executed=true")
    transport = get2dial.transport(**_virtual(clock))
    results: list[httpx.Response | Exception] = []
    async with httpx.AsyncClient(base_url=served.url, transport=transport) as client:
        for _ in range(20):
            await _login(client, _login_body(g2d_sim.ADMIN_EMAIL, "wrong"), results)

    assert [getattr(r, "status_code", None) for r in results[:5]] == [500] * 5
    assert all(isinstance(r, resilience.LockedOutError) for r in results[5:])
    assert sim.counters.failed_logins[g2d_sim.ADMIN_EMAIL] == 5
    assert sim.counters.lockouts == 0
    assert not sim.is_locked(g2d_sim.ADMIN_EMAIL)


async def _token(served: Served) -> dict[str, str]:
    """A Bearer token for the admin, fetched without any stack."""
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.post(LOGIN, json=_login_body(g2d_sim.ADMIN_EMAIL, g2d_sim.PASSWORD))
    return {"Authorization": f"Bearer {response.json()['data']['token']}"}


async def test_get2dial_500_on_a_read_is_retried(served: Served, clock: VirtualClock) -> None:
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    auth = await _token(served)
    sim.faults.add("status=500,method=GET,path=/api/v1/contacts,count=1")
    transport = get2dial.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=auth) as c:
        response = await c.get("/api/v1/contacts")

    assert response.status_code == 200
    assert _statuses(sim, "GET", "/api/v1/contacts") == [500, 200]
    assert outcome(response).attempts == 2
    assert len(clock.sleeps) == 1
    assert _backoff_ok(clock.sleeps, 0.5)


WRITES: list[tuple[str, str, Any, Callable[[Get2DialSimulator], bool]]] = [
    ("POST", "/api/v1/calls", {"to": "+15550100"},
     lambda sim: sim.counters.calls_created == 1),
    ("PUT", "/api/v1/contacts/ct_acme_1", {"name": "Ada L.", "version": 1},
     lambda sim: sim.contacts["ct_acme_1"]["version"] == 2),
    ("DELETE", "/api/v1/contacts/ct_acme_1", None,
     lambda sim: "ct_acme_1" not in sim.contacts),
]  # fmt: skip


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w[0])
async def test_get2dial_500_on_a_write_is_not_resent(
    served: Served, clock: VirtualClock, write: tuple[str, str, Any, Any]
) -> None:
    method, path, body, done_once = write
    sim = _install(served, Get2DialSimulator(clock=clock.now))
    auth = await _token(served)
    # The write happens, then the answer is a 500: sending it again would repeat it.
    sim.faults.add(f"status=500,method={method},path={path},count=1,executed=true")
    transport = get2dial.transport(**_virtual(clock))
    async with httpx.AsyncClient(base_url=served.url, transport=transport, headers=auth) as c:
        response = await c.request(method, path, json=body)

    assert response.status_code == 500
    assert _statuses(sim, method, path) == [500]
    assert done_once(sim)
    assert outcome(response).attempts == 1
    assert clock.sleeps == []


# -- All three: an outage opens the circuit, and then nothing reaches the server ---------------


@attrs.frozen
class Vendor:
    """How to drive one vendor's standard stack through an outage."""

    name: str
    stack: Callable[..., resilience.Stack]
    simulator: Callable[[VirtualClock], Simulator]
    read: str
    attempts: int


VENDORS = [
    Vendor(name="dialstack", stack=dialstack.stack, read="/v1/calls", attempts=5,
           simulator=lambda clock: DialStackSimulator(clock=clock.now)),
    Vendor(name="get2dial", stack=get2dial.stack, read="/api/v1/contacts", attempts=3,
           simulator=lambda clock: Get2DialSimulator(clock=clock.now)),
    Vendor(name="dialnexa", stack=dialnexa.stack, read="/v1/call-logs", attempts=3,
           simulator=lambda clock: DialNexaSimulator(clock=clock.now)),
]  # fmt: skip


async def _auth(vendor: Vendor, served: Served) -> dict[str, str]:
    if vendor.name == "dialstack":
        return DS_AUTH
    if vendor.name == "dialnexa":
        return DN_AUTH
    return await _token(served)


async def _read_until_rejected(
    client: httpx.AsyncClient, url: str, answered: list[httpx.Response]
) -> None:
    # Ten consecutive failures trip the breaker, and every call makes at least one attempt.
    for _ in range(10):
        response = await client.get(url)
        answered.append(response)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
async def test_outage_opens_the_circuit_and_spares_the_server(
    served: Served, clock: VirtualClock, vendor: Vendor
) -> None:
    sim = _install(served, vendor.simulator(clock))
    auth = await _auth(vendor, served)
    sim.reset()
    outage = sim.faults.add("outage")  # a proxy's 503 page for everything
    stack = vendor.stack(**_virtual(clock))
    assert _layer(stack, resilience.Retry).attempts == vendor.attempts
    breaker = _layer(stack, resilience.CircuitBreaker)
    key = breaker.key_of(served.url)
    async with httpx.AsyncClient(
        base_url=served.url, transport=stack.transport(), headers=auth
    ) as client:
        answered: list[httpx.Response] = []
        with pytest.raises(resilience.CircuitOpenError) as tripped:
            await _read_until_rejected(client, vendor.read, answered)
        assert all(r.status_code == 503 for r in answered)
        assert all(outcome(r).attempts == vendor.attempts for r in answered)
        # The tenth failed attempt tripped it (default consecutive_failures).
        assert sim.count() == sim.counters.outage_requests == 10
        assert tripped.value.retry_after is not None
        assert 0.0 < tripped.value.retry_after <= 10.0

        # Open: every call fails at once, and the server sees none of them.
        before = clock.now()
        for _ in range(5):
            with pytest.raises(resilience.CircuitOpenError) as rejected:
                await client.get(vendor.read)
            assert isinstance(rejected.value, httpx.TransportError)  # httpx.HTTPError code works
        assert sim.count() == 10
        assert clock.now() == before  # rejected without waiting
        stats = breaker.statistics(key)
        assert stats.circuit is not None
        assert stats.circuit.state is CircuitState.OPEN
        assert stats.opened == 1
        assert stats.rejected >= 6

        # The server recovers; once the open period is over, three probes close the circuit.
        sim.faults.remove(outage)
        assert rejected.value.retry_after is not None
        clock.advance(rejected.value.retry_after)
        for _ in range(3):
            response = await client.get(vendor.read)
            assert response.status_code == 200
    assert sim.count() == 13
    stats = breaker.statistics(key)
    assert stats.circuit is not None
    assert stats.circuit.state is CircuitState.CLOSED
    assert stats.closed == 1
