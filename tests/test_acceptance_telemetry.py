"""Issue 6 (Telemetry) acceptance: the bullets no other test fully drove, with the SDK's
in-memory exporters, through real loopback sockets, on asyncio and trio, in virtual time."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import anyio
import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import resilience
from adapters.simulators import RunningServer
from resilience import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    Classify,
    Retry,
    RetryAfterGate,
    Stack,
    outcome,
)
from resilience import _events as ev
from resilience.testing import VirtualClock
from tests.test_telemetry_support import (  # noqa: F401 - fixtures
    Otel,
    otel_fixture,
    scripted_server_fixture,
    token,
)

pytestmark = pytest.mark.anyio

PACKAGE = Path(resilience.__file__).parent
BEARER = "sk_live_readme_bearer_0042"
QUERY_KEY = "sk_query_readme_0042"


# -- the README's example, exactly as the README describes it --------------------------------


async def test_the_readme_trace_of_a_503_a_429_and_a_success(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(
        Retry(attempts=5, backoff=Backoff(initial=0.5, jitter="none"), clock=clock),
        RetryAfterGate(clock=clock),
        CircuitBreaker(clock=clock),
        Classify(),
        telemetry=otel.telemetry(clock),
    )
    url = f"{scripted_server.url}/flaky/{token()}?api_key={QUERY_KEY}"
    headers = {"Authorization": f"Bearer {BEARER}"}
    async with httpx.AsyncClient(transport=stack.transport(), headers=headers) as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.json()["headers"]["authorization"] == f"Bearer {BEARER}"  # it was sent

    (call,) = otel.spans(SpanKind.INTERNAL)
    attempts = otel.spans(SpanKind.CLIENT)
    assert call.name == "resilience GET"
    assert call.status.status_code is StatusCode.UNSET
    redacted = url.replace(QUERY_KEY, "REDACTED")
    assert dict(call.attributes or {}) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": scripted_server.port,
        "url.full": redacted,
        "resilience.attempts": 3,
        "resilience.waited": 1.5,
        "http.response.status_code": 200,
        "resilience.kind": "success",
    }
    assert [(e.name, dict(e.attributes or {})) for e in call.events] == [
        (
            ev.RETRY_SCHEDULED,
            {ev.DELAY: 0.5, ev.DELAY_SOURCE: "backoff", ev.ATTEMPT: 1, ev.KIND: "server_error"},
        ),
        (
            ev.RETRY_SCHEDULED,
            {ev.DELAY: 1.0, ev.DELAY_SOURCE: "retry_after", ev.ATTEMPT: 2, ev.KIND: "rate_limited"},
        ),
    ]
    common = {"http.request.method": "GET", "server.address": "127.0.0.1",
              "server.port": scripted_server.port, "url.full": redacted,
              "network.protocol.version": "1.1"}  # fmt: skip
    assert [dict(s.attributes or {}) for s in attempts] == [
        {**common, "http.response.status_code": 503, "error.type": "503"},
        {**common, "http.request.resend_count": 1, "http.response.status_code": 429,
         "error.type": "429"},
        {**common, "http.request.resend_count": 2, "http.response.status_code": 200},
    ]  # fmt: skip
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    assert {s.parent.span_id for s in attempts if s.parent} == {call.context.span_id}

    metrics = otel.metrics()
    assert otel.event_counts() == {ev.RETRY_SCHEDULED: 2}
    (calls,) = metrics["resilience.call.attempts"]
    assert (calls.count, calls.sum) == (1, 3)
    (duration,) = metrics["resilience.call.duration"]
    assert duration.sum == pytest.approx(1.5)  # virtual time: the two waits
    assert (
        dict(calls.attributes)
        == dict(duration.attributes)
        == {
            "http.request.method": "GET",
            "resilience.vendor": "http",
            "resilience.kind": "success",
        }
    )
    server = {"http.request.method": "GET", "server.address": "127.0.0.1",
              "server.port": scripted_server.port, "network.protocol.version": "1.1"}  # fmt: skip
    by_status = {
        p.attributes["http.response.status_code"]: (dict(p.attributes), p.count, p.sum)
        for p in metrics["http.client.request.duration"]
    }
    assert by_status == {
        503: ({**server, "http.response.status_code": 503, "error.type": "503"}, 1, 0.0),
        429: ({**server, "http.response.status_code": 429, "error.type": "429"}, 1, 0.0),
        200: ({**server, "http.response.status_code": 200}, 1, 0.0),
    }
    circuits = {p.attributes[ev.BREAKER_STATE]: p.value for p in metrics[
        "resilience.breaker.circuits"]}  # fmt: skip
    assert circuits == {"closed": 1, "open": 0, "half_open": 0}
    everything = repr([(s.name, dict(s.attributes or {}), s.events) for s in otel.spans()])
    everything += repr(metrics)
    assert BEARER not in everything
    assert QUERY_KEY not in everything


# -- decision events: each with its reason ---------------------------------------------------


async def test_the_deadline_decisions_are_events_with_reasons(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    steady = Backoff(initial=1.0, maximum=10.0, jitter="none")
    stack = Stack(Retry(attempts=5, backoff=steady, deadline=4.0, clock=clock), Classify(),
                  telemetry=otel.telemetry(clock))  # fmt: skip
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        response = await client.get(f"{scripted_server.url}/status/503")
    assert response.status_code == 503
    (call,) = otel.spans(SpanKind.INTERNAL)
    named = [(e.name, dict(e.attributes or {})) for e in call.events]
    assert [name for name, _ in named] == [
        ev.RETRY_SCHEDULED,
        ev.RETRY_SCHEDULED,
        ev.RETRY_GIVEN_UP,
        ev.DEADLINE_EXCEEDED,
    ]
    assert named[2][1] == {ev.ATTEMPT: 3, ev.KIND: "server_error", ev.REASON: "deadline"}
    assert named[3][1][ev.REASON] == "wait too long"
    assert call.status.status_code is StatusCode.ERROR
    assert len(otel.spans(SpanKind.CLIENT)) == 3


async def test_an_open_circuit_under_a_retry_ends_the_call_without_another_client_span(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(
        Retry(attempts=5, backoff=Backoff(initial=0.1, jitter="none"), clock=clock),
        CircuitBreaker(consecutive_failures=2, clock=clock),
        Classify(),
        telemetry=otel.telemetry(clock),
    )
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        with pytest.raises(CircuitOpenError):
            await client.get(f"{scripted_server.url}/status/503")
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert len(otel.spans(SpanKind.CLIENT)) == 2  # the third attempt was refused, not sent
    names = [e.name for e in call.events]
    assert names == [
        ev.RETRY_SCHEDULED,
        ev.BREAKER_STATE_CHANGED,
        ev.RETRY_SCHEDULED,
        ev.BREAKER_REJECTED,
    ]
    assert call.attributes is not None
    assert call.attributes["error.type"] == "CircuitOpenError"
    assert call.attributes["resilience.attempts"] == 2  # attempts sent, not the refused one
    assert call.status.status_code is StatusCode.ERROR
    circuits = {p.attributes[ev.BREAKER_STATE]: p.value for p in otel.metrics()[
        "resilience.breaker.circuits"]}  # fmt: skip
    assert circuits["open"] == 1


class _HangingClock(VirtualClock):
    """Virtual time whose sleeps block until cancelled: to cancel a call mid-backoff."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await anyio.sleep_forever()


async def test_a_call_cancelled_during_its_backoff_is_not_an_error(
    otel: Otel, scripted_server: RunningServer
) -> None:
    clock = _HangingClock()
    stack = Stack(Retry(clock=clock), Classify(), telemetry=otel.telemetry(clock))
    async with (
        httpx.AsyncClient(transport=stack.transport()) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.get, f"{scripted_server.url}/status/503")
        await clock.sleeping.wait()
        tg.cancel_scope.cancel()
    (call,) = otel.spans(SpanKind.INTERNAL)
    (attempt,) = otel.spans(SpanKind.CLIENT)
    assert attempt.status.status_code is StatusCode.ERROR  # the 503 itself was a failure
    assert call.status.status_code is StatusCode.UNSET  # the cancelled call was not
    assert call.attributes is not None
    assert str(call.attributes["error.type"]) in {"CancelledError", "Cancelled"}
    assert [e.name for e in call.events] == [ev.RETRY_SCHEDULED]
    (point,) = otel.metrics()["resilience.call.attempts"]
    assert point.sum == 1


# -- every decision name lives in one module, under resilience. -------------------------------


def test_every_event_and_attribute_name_is_under_the_resilience_namespace() -> None:
    names = {name: getattr(ev, name) for name in ev.__all__}
    assert names
    for name, value in names.items():
        assert isinstance(value, str), name
        assert value.startswith("resilience."), (name, value)
    assert len(set(names.values())) == len(names)  # no two constants share a name


def test_layers_emit_only_names_from_the_events_module() -> None:
    """Every ``.emit(...)`` in the package names its event as ``ev.CONSTANT``: no string
    literal, so every decision name is one of the constants checked above."""
    emitted: set[str] = set()
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
            ):
                continue
            first = node.args[0]
            assert isinstance(first, ast.Attribute), f"{path.name}:{node.lineno}"
            assert isinstance(first.value, ast.Name), f"{path.name}:{node.lineno}"
            assert first.value.id == "ev", f"{path.name}:{node.lineno}"
            emitted.add(first.attr)
    decisions = {name for name in ev.__all__ if getattr(ev, name).count(".") >= 2}
    assert emitted <= set(ev.__all__)
    # Every decision event the module declares is emitted by some layer.
    events = {
        "RETRY_SCHEDULED", "RETRY_GIVEN_UP", "BUDGET_EXHAUSTED", "DEADLINE_EXCEEDED",
        "GATE_WAIT", "GATE_REJECTED", "BREAKER_STATE_CHANGED", "BREAKER_REJECTED",
        "LOCKOUT_ENGAGED", "LOCKOUT_REJECTED",
    }  # fmt: skip
    assert events <= decisions
    assert emitted == events


async def test_a_resilience_call_records_attempts_equal_to_client_spans(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    retry = Retry(attempts=4, backoff=Backoff(initial=0.1, jitter="none"), clock=clock,
                  rng=random.Random(1))  # fmt: skip
    stack = Stack(retry, Classify(), telemetry=otel.telemetry(clock))
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        response = await client.get(f"{scripted_server.url}/status/502")
    assert outcome(response).attempts == 4
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert call.attributes is not None
    assert call.attributes["resilience.attempts"] == len(otel.spans(SpanKind.CLIENT)) == 4
