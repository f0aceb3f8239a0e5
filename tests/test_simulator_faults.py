"""Fault schedules: the pure rules, and every fault kind through a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.simulators import DialStackSimulator, Fault, FaultKind, FaultSchedule, parse_fault
from adapters.simulators._asgi import MAX_BODY
from adapters.simulators.dialstack import ACCOUNT, API_KEY
from resilience.testing import VirtualClock
from tests.test_simulator_support import Served, serving

AUTH = {"Authorization": f"Bearer {API_KEY}", "DialStack-Account": ACCOUNT}


# -- the pure schedule -------------------------------------------------------------------------


def test_count_based_faults_are_spent_in_order() -> None:
    schedule = FaultSchedule()
    first = schedule.add("status=503,count=2")
    second = schedule.add("status=500,count=1")
    taken = [schedule.take("GET", "/x", 0.0) for _ in range(4)]
    assert taken == [[first], [first], [second], []]
    assert schedule.active == []


def test_method_and_path_prefix_filter() -> None:
    schedule = FaultSchedule()
    fault = schedule.add(Fault(kind="drop", method="post", path="/v1/calls"))
    assert fault.method == "POST"
    assert schedule.take("GET", "/v1/calls", 0.0) == []
    assert schedule.take("POST", "/v1/users", 0.0) == []
    assert schedule.take("POST", "/v1/calls/abc", 0.0) == [fault]


def test_time_windows_are_half_open() -> None:
    schedule = FaultSchedule()
    fault = schedule.add("outage,start=10,end=20")
    assert [bool(schedule.take("GET", "/", t)) for t in (9.99, 10.0, 19.99, 20.0)] == [
        False,
        True,
        True,
        False,
    ]
    assert schedule.active == [fault]  # a window is never spent


def test_slow_faults_combine_with_one_answering_fault() -> None:
    schedule = FaultSchedule()
    slow = schedule.add("slow=1")
    slower = schedule.add("slow=2,count=1")
    status = schedule.add("status=500,count=1")
    outage = schedule.add("outage,count=1")
    assert schedule.take("GET", "/", 0.0) == [slow, slower, status]
    assert schedule.take("GET", "/", 0.0) == [slow, outage]
    schedule.remove(slow)
    assert schedule.active == []
    schedule.add(slow)
    schedule.clear()
    assert schedule.active == []


def test_defaults_per_kind() -> None:
    assert Fault(kind="outage").status == 503
    assert Fault(kind="status").status == 500
    assert Fault(kind="drop").executed
    assert Fault(kind="slow").executed
    assert not Fault(kind="status").executed
    assert Fault(kind=FaultKind.STATUS, retry_after=1.5).retry_after_header() == "1.5"
    assert Fault(kind="status", retry_after=2.0).retry_after_header() == "2"
    assert Fault(kind="status").retry_after_header() is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "status=503,count=2,retry_after=1",
            Fault(kind="status", status=503, count=2, retry_after=1.0),
        ),
        (
            "rate_limit, path=/v1/calls, start=5, end=15",
            Fault(kind="rate_limit", path="/v1/calls", start=5, end=15),
        ),
        ("outage=502", Fault(kind="outage", status=502)),
        ("slow=2.5,method=GET", Fault(kind="slow", delay=2.5, method="GET")),
        ("drop,method=POST,count=1", Fault(kind="drop", method="POST", count=1)),
        ("status,executed=yes", Fault(kind="status", executed=True)),
        (
            "rate_limit,retry_after=Wed, 21 Oct 2015 07:28:00 GMT",
            Fault(kind="rate_limit", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        ),
    ],
)
def test_parse_fault(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("bogus", "unknown fault kind"),
        ("status=abc", "bad value for 'status'"),
        ("status,colour=red", "unknown key"),
        ("status,count", "unknown fault kind"),
        ("status,count=", "expected KEY=VALUE"),
        ("status,executed=maybe", "expected true or false"),
        ("status,count=0", "count"),
        ("status=700", "status"),
        ("outage,start=5,end=5", "window is empty"),
        ("drop,executed=false", "always executed"),
        ("slow=-1", "delay"),
    ],
)
def test_bad_specs_are_refused_clearly(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_fault(spec)


@given(
    kind=st.sampled_from(list(FaultKind)),
    method=st.sampled_from([None, "GET", "POST"]),
    path=st.sampled_from(["/", "/v1/calls", "/api/v1/auth/login"]),
    count=st.none() | st.integers(1, 100),
    start=st.none() | st.floats(0, 1000, allow_nan=False),
    status=st.integers(100, 599),
    retry_after=st.none() | st.floats(0, 3600, allow_nan=False),
    delay=st.floats(0, 60, allow_nan=False),
)
def test_spec_round_trips(
    kind: FaultKind,
    method: str | None,
    path: str,
    count: int | None,
    start: float | None,
    status: int,
    retry_after: float | None,
    delay: float,
) -> None:
    fault = Fault(
        kind=kind,
        method=method,
        path=path,
        count=count,
        start=start,
        end=None if start is None else start + 1,
        status=status,
        retry_after=retry_after,
        delay=delay,
    )
    assert parse_fault(fault.spec()) == fault


# -- through a socket ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sim(served: Served, clock: VirtualClock, sleeps: list[float]) -> DialStackSimulator:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    simulator = DialStackSimulator(clock=clock.now, sleep=record_sleep)
    served.use(simulator)
    return simulator


@pytest.fixture
async def client(served: Served, sim: DialStackSimulator) -> AsyncIterator[httpx.AsyncClient]:
    del sim
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=10) as c:
        yield c


CALL = {"to": "+15550100"}


@pytest.mark.anyio
async def test_status_fault_answers_instead_of_the_vendor(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    sim.add_fault("status=503,count=2,retry_after=3")
    answers = [await client.post("/v1/calls", json=CALL) for _ in range(3)]
    assert [r.status_code for r in answers] == [503, 503, 201]
    assert answers[0].headers["retry-after"] == "3"
    assert sim.counters.calls_created == 1
    assert [r.fault for r in sim.requests] == ["status", "status", None]


@pytest.mark.anyio
async def test_an_executed_status_fault_hides_a_side_effect(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    sim.add_fault(Fault(kind="status", status=500, count=1, executed=True))
    response = await client.post("/v1/calls", json=CALL, headers={"X-Demo-Operation": "op"})
    assert response.status_code == 500
    assert sim.counters.calls_by_operation["op"] == 1


@pytest.mark.anyio
async def test_outage_window_on_the_simulator_clock(
    client: httpx.AsyncClient, sim: DialStackSimulator, clock: VirtualClock
) -> None:
    sim.add_fault(Fault(kind="outage", start=10, end=20, status=502))
    assert (await client.get("/v1/calls")).status_code == 200
    clock.advance(10)
    assert sim.now() == 10
    down = await client.get("/v1/calls")
    assert down.status_code == 502
    assert down.headers["content-type"] == "text/html"
    assert b"502 Bad Gateway" in down.content
    assert (await client.post("/partner/v1/accounts", json={"name": "x"})).status_code == 502
    clock.advance(10)
    assert (await client.get("/v1/calls")).status_code == 200
    assert sim.counters.outage_requests == 2
    assert [r.time for r in sim.requests] == [0, 10, 10, 20]


@pytest.mark.anyio
async def test_slow_fault_waits_then_answers(
    client: httpx.AsyncClient, sim: DialStackSimulator, sleeps: list[float]
) -> None:
    sim.add_fault("slow=2.5,method=GET")
    sim.add_fault("slow=1,method=GET,count=1")
    assert (await client.get("/v1/calls")).status_code == 200
    assert (await client.get("/v1/calls")).status_code == 200
    assert (await client.post("/v1/calls", json=CALL)).status_code == 201
    assert sleeps == [3.5, 2.5]
    assert [r.fault for r in sim.requests] == ["slow", "slow", None]


@pytest.mark.anyio
async def test_a_slow_answer_past_the_clients_timeout_is_a_read_timeout(
    served: Served, clock: VirtualClock
) -> None:
    # Real sleeping on the server; the client gives up long before, and the server stops
    # waiting as soon as the client has gone.
    sim = served.use(DialStackSimulator(clock=clock.now))
    sim.add_fault("slow=30,count=1")
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/v1/calls", json=CALL, timeout=0.2)
    assert sim.counters.calls_created == 1  # it ran: a read timeout may have executed


@pytest.mark.anyio
async def test_a_dropped_connection_is_a_remote_protocol_error(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    sim.add_fault("drop,method=POST,count=1")
    with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
        await client.post("/v1/calls", json=CALL, headers={"X-Demo-Operation": "op"})
    # The call was made before the connection dropped: resending it duplicates it.
    await client.post("/v1/calls", json=CALL, headers={"X-Demo-Operation": "op"})
    assert sim.counters.dropped == 1
    assert sim.counters.duplicated_calls == 1
    assert sim.requests[0].fault == "drop"
    assert sim.requests[0].status == 201


@pytest.mark.anyio
async def test_a_drop_while_streaming_fails_on_the_body(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    sim.add_fault("drop,count=1")
    async with client.stream("GET", "/v1/calls") as response:
        assert response.status_code == 200  # the head arrives
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()
    assert (await client.get("/v1/calls")).status_code == 200


@pytest.mark.anyio
async def test_requests_are_recorded_with_credentials_redacted(
    client: httpx.AsyncClient, sim: DialStackSimulator
) -> None:
    await client.get("/v1/calls", params={"limit": "5"}, headers={"Cookie": "s=1"})
    (recorded,) = sim.requests
    assert recorded.method == "GET"
    assert recorded.path == "/v1/calls"
    assert recorded.query == {"limit": "5"}
    assert recorded.headers["authorization"] == "REDACTED"
    assert recorded.headers["cookie"] == "REDACTED"
    assert recorded.headers["dialstack-account"] == ACCOUNT
    assert recorded.body is None
    assert recorded.status == 200
    await client.post("/partner/v1/accounts", json={"name": "x", "secret": {"token": "t"}})
    assert sim.requests[-1].body == {"name": "x", "secret": "REDACTED"}
    await client.post("/partner/v1/accounts", json=[{"password": "p"}])
    assert sim.requests[-1].body == [{"password": "REDACTED"}]
    assert sim.count() == 3
    assert sim.count(method="post", path="/partner") == 2
    assert sim.count(status=200) == 1
    sim.reset()
    assert sim.requests == []
    assert sim.counters.calls_created == 0


@pytest.mark.anyio
async def test_a_huge_body_is_413(client: httpx.AsyncClient, sim: DialStackSimulator) -> None:
    response = await client.post("/v1/calls", content=b"x" * (MAX_BODY + 1))
    assert response.status_code == 413
    assert sim.counters.calls_created == 0


@pytest.mark.anyio
async def test_lifespan_and_other_scopes() -> None:
    sim = DialStackSimulator()
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await sim({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    await sim({"type": "websocket"}, receive, send)
    assert len(sent) == 2


@pytest.mark.anyio
async def test_the_default_sleep_is_real_and_short_delays_still_answer(
    served: Served, clock: VirtualClock
) -> None:
    sim = served.use(DialStackSimulator(clock=clock.now))
    sim.add_fault("slow=0.01,count=1")
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH) as client:
        with anyio.fail_after(10):
            assert (await client.get("/v1/calls")).status_code == 200
