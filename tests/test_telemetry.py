"""Telemetry: one INTERNAL span per call, one CLIENT span per attempt, events and metrics."""

from __future__ import annotations

import random

import anyio
import attrs
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

import resilience
from adapters.simulators import RunningServer
from resilience import Backoff, Classify, Retry, RetryAfterGate, Stack, Telemetry, outcome
from resilience import _events as ev
from resilience._budget import RetryBudget
from resilience._context import call_context
from resilience._telemetry import CALL_KEY, safe_attributes
from resilience._telemetry_attempt import AttemptTransport, TracedHTTPTransport
from resilience.testing import VirtualClock
from tests.test_retry_scripted import scripted
from tests.test_telemetry_support import (  # noqa: F401 - fixtures
    Otel,
    otel_fixture,
    scripted_server_fixture,
    token,
)

__all__ = ["scripted"]  # the module-scoped server fixture with /hang/<token>

pytestmark = pytest.mark.anyio

NO_JITTER = Backoff(initial=0.5, maximum=10.0, jitter="none")
#: Every attribute a metric data point may carry: all bounded, none names a URL or an account.
METRIC_ATTRIBUTES = {
    "http.request.method",
    "http.response.status_code",
    "error.type",
    "network.protocol.version",
    "server.address",
    "server.port",
    "resilience.kind",
    "resilience.vendor",
    "resilience.event",
    "resilience.breaker.state",
}


def retry(clock: VirtualClock, attempts: int = 5, **options: object) -> Retry:
    return Retry(attempts=attempts, backoff=NO_JITTER, clock=clock, rng=random.Random(7),
                 **options)  # type: ignore[arg-type]  # fmt: skip


async def test_a_call_that_met_a_503_and_a_429_then_succeeded(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(retry(clock), RetryAfterGate(clock=clock), Classify(),
                  telemetry=otel.telemetry(clock))  # fmt: skip
    url = f"{scripted_server.url}/flaky/{token()}?api_key=sk_live_query&page=2"
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert outcome(response).attempts == 3

    (call,) = otel.spans(SpanKind.INTERNAL)
    attempts = otel.spans(SpanKind.CLIENT)
    assert [s.attributes["http.response.status_code"] for s in attempts] == [503, 429, 200]
    assert [s.attributes.get("error.type") for s in attempts] == ["503", "429", None]
    assert [s.attributes.get("http.request.resend_count") for s in attempts] == [None, 1, 2]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    for span in attempts:
        assert span.name == "GET"
        assert span.parent is not None
        assert span.parent.span_id == call.context.span_id
        assert span.attributes["http.request.method"] == "GET"
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == int(scripted_server.url.rsplit(":", 1)[1])
        assert span.attributes["url.full"].endswith("?api_key=REDACTED&page=REDACTED")

    # The call succeeded after retries: no error on its span.
    assert call.status.status_code is StatusCode.UNSET
    assert "error.type" not in call.attributes
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["resilience.attempts"] == 3
    assert call.attributes["resilience.waited"] == pytest.approx(1.5)
    assert call.attributes["resilience.kind"] == "success"
    scheduled = [e for e in call.events if e.name == ev.RETRY_SCHEDULED]
    assert [(e.attributes[ev.DELAY_SOURCE], e.attributes[ev.DELAY]) for e in scheduled] == [
        ("backoff", 0.5),
        ("retry_after", 1.0),
    ]
    assert [e.attributes[ev.KIND] for e in scheduled] == ["server_error", "rate_limited"]

    metrics = otel.metrics()
    (attempts_point,) = metrics["resilience.call.attempts"]
    assert (attempts_point.count, attempts_point.sum) == (1, 3)
    (duration,) = metrics["resilience.call.duration"]
    assert duration.sum == pytest.approx(1.5)  # virtual time: the two waits
    assert dict(duration.attributes) == {"http.request.method": "GET", "resilience.kind": "success",
                                         "resilience.vendor": "http"}  # fmt: skip
    assert sum(p.count for p in metrics["http.client.request.duration"]) == 3
    assert otel.event_counts() == {ev.RETRY_SCHEDULED: 2}


async def test_a_call_that_fails_in_the_end_carries_the_error(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(retry(clock, attempts=2), Classify(), telemetry=otel.telemetry(clock))
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        response = await client.get(f"{scripted_server.url}/status/503")
    assert response.status_code == 503
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "503"
    assert call.attributes["resilience.kind"] == "server_error"
    assert len(otel.spans(SpanKind.CLIENT)) == 2
    assert [e.name for e in call.events] == [ev.RETRY_SCHEDULED, ev.RETRY_GIVEN_UP]
    (point,) = otel.metrics()["resilience.call.duration"]
    assert point.attributes["error.type"] == "503"


async def test_transport_errors_are_error_types_on_attempts_and_call(
    otel: Otel, clock: VirtualClock
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    stack = Stack(retry(clock, attempts=3), Classify(), telemetry=otel.telemetry(clock))
    async with httpx.AsyncClient(transport=stack.transport(httpx.MockTransport(refuse))) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("https://api.example.com/calls", content=b"{}")
    attempts = otel.spans(SpanKind.CLIENT)
    assert [s.attributes["error.type"] for s in attempts] == ["ConnectError"] * 3
    assert [s.attributes.get("http.request.resend_count") for s in attempts] == [None, 1, 2]
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert call.attributes["error.type"] == "ConnectError"
    assert call.attributes["resilience.kind"] == "network"
    assert call.status.status_code is StatusCode.ERROR
    assert "http.response.status_code" not in call.attributes
    # Exceptions are described by type only: their messages may quote anything.
    assert all(not s.events for s in attempts)


async def test_decisions_become_events_with_their_reasons(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    gate = RetryAfterGate(clock=clock)
    stingy = RetryBudget(ratio=0.0, min_per_second=0.0)
    stack = Stack(retry(clock, attempts=3, budget=stingy), gate, Classify(),
                  telemetry=otel.telemetry(clock))  # fmt: skip
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        held = await client.get(f"{scripted_server.url}/status/429")  # budget refuses the retry
        waited = await client.get(f"{scripted_server.url}/status/200")  # waits out the hold
    assert (held.status_code, waited.status_code) == (429, 200)
    first, second = otel.spans(SpanKind.INTERNAL)
    budget = {e.name: dict(e.attributes or {}) for e in first.events}
    assert budget[ev.RETRY_GIVEN_UP][ev.REASON] == "budget_exhausted"
    assert len(str(budget[ev.BUDGET_EXHAUSTED][ev.KEY])) == 16  # hashed, never the origin
    (wait,) = second.events
    assert wait.name == ev.GATE_WAIT
    assert wait.attributes[ev.DELAY] == pytest.approx(5.0)
    assert otel.event_counts() == {ev.BUDGET_EXHAUSTED: 1, ev.RETRY_GIVEN_UP: 1, ev.GATE_WAIT: 1}
    # A rejection without sending is a decision: a span event, no CLIENT span.
    clock_gate = RetryAfterGate(clock=clock, max_wait=0.0)
    otel.exporter.clear()
    stack = Stack(clock_gate, Classify(), telemetry=otel.telemetry(clock))
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        await client.get(f"{scripted_server.url}/status/429")
        with pytest.raises(resilience.RateLimitedError):
            await client.get(f"{scripted_server.url}/status/200")
    assert len(otel.spans(SpanKind.CLIENT)) == 1
    rejected = otel.spans(SpanKind.INTERNAL)[1]
    assert [e.name for e in rejected.events] == [ev.GATE_REJECTED]
    assert rejected.attributes["error.type"] == "RateLimitedError"
    assert "resilience.kind" not in rejected.attributes


class Emitter(resilience.LayerTransport):
    """Stands in for a layer that reports decisions: emits every event it is given."""

    events: tuple[tuple[str, dict[str, object]], ...] = ()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name, attributes in self.events:
            call_context(request).emit(name, attributes)
        return await self.inner.handle_async_request(request)


async def test_every_decision_kind_is_counted_by_name_only(otel: Otel) -> None:
    Emitter.events = (
        (
            ev.BREAKER_STATE_CHANGED,
            {ev.BREAKER_STATE: "open", ev.PREVIOUS_STATE: "closed", ev.KEY: "0123456789abcdef"},
        ),
        (ev.BREAKER_REJECTED, {ev.KEY: "0123456789abcdef", ev.RETRY_AFTER: 30.0}),
        (ev.LOCKOUT_ENGAGED, {ev.KEY: "fedcba9876543210", ev.REASON: "3 failed logins"}),
        (ev.LOCKOUT_REJECTED, {ev.KEY: "fedcba9876543210", "ignored": object(), "none": None}),
    )
    stack = Stack(Emitter, Classify(), telemetry=otel.telemetry())
    transport = stack.transport(httpx.MockTransport(lambda r: httpx.Response(204)))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.delete("https://api.example.com/calls/1")
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert [e.name for e in call.events] == [name for name, _ in Emitter.events]
    assert dict(call.events[0].attributes or {}) == Emitter.events[0][1]
    assert dict(call.events[3].attributes or {}) == {ev.KEY: "fedcba9876543210"}
    assert otel.event_counts() == {name: 1 for name, _ in Emitter.events}
    for point in otel.metrics()["resilience.events"]:
        assert set(point.attributes) == {ev.EVENT}


async def test_metric_attributes_are_bounded(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(retry(clock), RetryAfterGate(clock=clock), Classify(),
                  telemetry=otel.telemetry(clock))  # fmt: skip
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        for path in (f"/flaky/{token()}?user=a@b.example", "/status/404", "/echo?id=42"):
            await client.request("PURGE" if "404" in path else "GET", scripted_server.url + path)
    metrics = otel.metrics()
    assert set(metrics) >= {"resilience.call.duration", "resilience.call.attempts",
                            "resilience.events", "http.client.request.duration"}  # fmt: skip
    for points in metrics.values():
        for point in points:
            assert set(point.attributes) <= METRIC_ATTRIBUTES
            for value in point.attributes.values():
                assert "/" not in str(value)
                assert "@" not in str(value)
    methods = {p.attributes["http.request.method"] for p in metrics["resilience.call.duration"]}
    assert methods == {"GET", "_OTHER"}
    purge = next(s for s in otel.spans(SpanKind.CLIENT) if s.attributes.get("error.type") == "404")
    assert purge.attributes["http.request.method_original"] == "PURGE"


async def test_telemetry_is_free_when_no_sdk_is_configured() -> None:
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get(CALL_KEY))
        seen.append(len(call_context(request).listeners))
        return httpx.Response(200)

    quiet = Telemetry(tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())
    for telemetry in (quiet, resilience.Stack().telemetry):
        assert telemetry is not None
        assert not telemetry.tracing()
        assert not telemetry.measuring()
        transport = Stack(Classify(), telemetry=telemetry).transport(httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get("https://api.example.com/")
        assert response.status_code == 200
    assert seen == [None, 0, None, 0]


async def test_metrics_without_traces(clock: VirtualClock) -> None:
    recorded = Otel()
    telemetry = Telemetry(
        tracer_provider=NoOpTracerProvider(), meter_provider=recorded.meter_provider, clock=clock
    )
    assert telemetry.measuring()
    assert not telemetry.tracing()
    stack = Stack(retry(clock, attempts=2), Classify(), telemetry=telemetry)
    transport = stack.transport(httpx.MockTransport(lambda r: httpx.Response(500)))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    assert recorded.spans() == []
    (point,) = recorded.metrics()["resilience.call.attempts"]
    assert point.sum == 2
    assert recorded.event_counts() == {ev.RETRY_SCHEDULED: 1, ev.RETRY_GIVEN_UP: 1}
    recorded.shutdown()


async def test_client_spans_can_be_turned_off(otel: Otel) -> None:
    stack = Stack(Classify(), telemetry=otel.telemetry(client_spans=False))
    transport = stack.transport(httpx.MockTransport(lambda r: httpx.Response(200)))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://api.example.com/")
    assert "traceparent" not in response.request.headers
    assert [s.kind for s in otel.spans()] == [SpanKind.INTERNAL]
    assert len(otel.metrics()["http.client.request.duration"]) == 1


async def test_attempts_carry_the_trace_context_to_the_server(
    otel: Otel, scripted_server: RunningServer
) -> None:
    stack = Stack(Classify(), telemetry=otel.telemetry())
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        echoed = (await client.get(f"{scripted_server.url}/echo")).json()
    (attempt,) = otel.spans(SpanKind.CLIENT)
    trace_id = f"{attempt.context.trace_id:032x}"
    span_id = f"{attempt.context.span_id:016x}"
    assert echoed["headers"]["traceparent"].split("-")[1:3] == [trace_id, span_id]


async def cancel_mid_attempt(stack: Stack) -> None:
    """Start a call through ``stack`` whose attempt never answers, and cancel it in flight."""
    entered = anyio.Event()

    async def never(request: httpx.Request) -> httpx.Response:
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    transport = stack.transport(httpx.MockTransport(never))
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as group:
        group.start_soon(client.get, "https://api.example.com/slow")
        await entered.wait()
        group.cancel_scope.cancel()


async def test_cancelled_calls_end_their_spans_without_an_error_status(
    otel: Otel, clock: VirtualClock
) -> None:
    await cancel_mid_attempt(Stack(Classify(), telemetry=otel.telemetry(clock)))
    (call,) = otel.spans(SpanKind.INTERNAL)
    (attempt,) = otel.spans(SpanKind.CLIENT)
    for span in (call, attempt):
        assert span.status.status_code is StatusCode.UNSET
        assert str(span.attributes["error.type"]) in {"CancelledError", "Cancelled"}


async def test_an_attempt_cut_by_the_attempt_timeout_is_a_timeout_not_a_cancellation(
    otel: Otel, scripted: RunningServer, clock: VirtualClock
) -> None:
    stack = Stack(retry(clock, attempts=2, attempt_timeout=0.05), Classify(),
                  telemetry=otel.telemetry(clock))  # fmt: skip
    async with httpx.AsyncClient(transport=stack.transport()) as client:
        with pytest.raises(httpx.TimeoutException, match="attempt timed out"):
            await client.get(f"{scripted.url}/hang/{token()}")  # answers after 5 s
    (call,) = otel.spans(SpanKind.INTERNAL)
    attempts = otel.spans(SpanKind.CLIENT)
    assert [s.attributes["error.type"] for s in attempts] == ["TimeoutException"] * 2
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR] * 2
    assert call.attributes["error.type"] == "TimeoutException"


async def test_a_cancellation_within_a_bounded_attempt_stays_a_cancellation(
    otel: Otel, clock: VirtualClock
) -> None:
    # Cancelled long before the attempt timeout: a cancellation, not a timeout.
    await cancel_mid_attempt(
        Stack(retry(clock, attempt_timeout=60.0), Classify(), telemetry=otel.telemetry(clock))
    )
    (attempt,) = otel.spans(SpanKind.CLIENT)
    assert attempt.status.status_code is StatusCode.UNSET
    assert str(attempt.attributes["error.type"]) in {"CancelledError", "Cancelled"}


async def test_nested_stacks_each_trace_their_own_call(otel: Otel) -> None:
    inner = Stack(Classify(), telemetry=otel.telemetry()).transport(
        httpx.MockTransport(lambda r: httpx.Response(200))
    )
    outer = Stack(Classify(), telemetry=otel.telemetry()).transport(inner)
    async with httpx.AsyncClient(transport=outer) as client:
        request = client.build_request("GET", "https://api.example.com/")
        await client.send(request)
    kinds = [s.kind for s in otel.spans()]
    assert sorted(kinds, key=str) == sorted([SpanKind.INTERNAL, SpanKind.CLIENT] * 2, key=str)
    assert CALL_KEY not in request.extensions


def test_stack_places_the_attempt_transport_below_every_layer() -> None:
    inner = httpx.MockTransport(lambda r: httpx.Response(200))
    built = Stack(Classify()).transport(inner)
    assert isinstance(built.inner.inner, AttemptTransport)  # type: ignore[attr-defined]
    assert built.inner.inner.inner is inner  # type: ignore[attr-defined]
    assert "AttemptTransport" in repr(built.inner.inner)  # type: ignore[attr-defined]
    assert isinstance(Stack(Classify()).transport().inner.inner, TracedHTTPTransport)  # type: ignore[attr-defined]
    untraced = Stack(Classify(), telemetry=None)
    assert untraced.telemetry is None
    assert untraced.transport(inner).inner.inner is inner  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="Telemetry"):
        Stack(Classify(), telemetry="otel")  # type: ignore[arg-type]


def test_event_attributes_keep_only_what_opentelemetry_accepts() -> None:
    assert safe_attributes({"a": 1, "b": "x", "c": [1, 2], "d": None, "e": object(),
                            "f": [object()], "g": 0.5, "h": True}) == {
        "a": 1, "b": "x", "c": (1, 2), "g": 0.5, "h": True}  # fmt: skip


async def test_the_default_telemetry_follows_global_providers_once_set(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = Telemetry()
    assert not telemetry.active()
    # What set_tracer_provider / set_meter_provider do (they can run once per process; the
    # test swaps the API's globals back afterwards).
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", otel.tracer_provider)
    monkeypatch.setattr(_metrics_internal, "_METER_PROVIDER", otel.meter_provider)
    assert telemetry.active()
    assert telemetry.tracing()
    assert telemetry.measuring()
    stack = Stack(Classify(), telemetry=telemetry)
    transport = stack.transport(httpx.MockTransport(lambda r: httpx.Response(200)))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    assert [s.kind for s in otel.spans()] == [SpanKind.INTERNAL, SpanKind.CLIENT]
    assert otel.metrics()["resilience.call.duration"]


async def test_a_sampled_out_call_still_counts_in_metrics() -> None:
    recorded = Otel()
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    telemetry = Telemetry(tracer_provider=unsampled, meter_provider=recorded.meter_provider)
    assert telemetry.tracing()
    stack = Stack(Classify(), telemetry=telemetry)
    transport = stack.transport(httpx.MockTransport(lambda r: httpx.Response(200)))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://api.example.com/")
    flags = response.request.headers["traceparent"].rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0  # "not sampled", passed on to the server
    assert len(recorded.metrics()["resilience.call.attempts"]) == 1
    assert len(recorded.metrics()["http.client.request.duration"]) == 1
    recorded.shutdown()
    unsampled.shutdown()


class BodyErrors(resilience.HTTPClassifier):
    """A vendor that answers some errors with 200 and an error envelope."""

    def classify_response(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> resilience.Classification:
        verdict = super().classify_response(request, response, body)
        if response.headers.get("x-error"):
            return attrs.evolve(verdict, kind=resilience.Kind.VALIDATION)
        return verdict


async def test_an_error_in_a_200_is_an_error_of_the_call(otel: Otel) -> None:
    stack = Stack(Classify(BodyErrors(name="vendor")), telemetry=otel.telemetry())
    reply = httpx.Response(200, headers={"x-error": "1"})
    transport = stack.transport(httpx.MockTransport(lambda r: reply))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "validation"
    (point,) = otel.metrics()["resilience.call.duration"]
    assert dict(point.attributes) == {
        "http.request.method": "GET",
        "resilience.vendor": "vendor",
        "resilience.kind": "validation",
        "error.type": "validation",
    }


class Broken(resilience.HTTPClassifier):
    def classify_response(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> resilience.Classification:
        raise RuntimeError("adapter bug")


class UsesBroken(resilience.LayerTransport):
    """A stack without Classify whose context carries a classifier that raises."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call_context(request).classifier = Broken(name="broken")
        return await self.inner.handle_async_request(request)


async def test_a_classifier_bug_does_not_break_the_call(otel: Otel) -> None:
    stack = Stack(UsesBroken, telemetry=otel.telemetry())
    transport = stack.transport(httpx.MockTransport(lambda r: httpx.Response(502)))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://api.example.com/")
    assert response.status_code == 502
    (call,) = otel.spans(SpanKind.INTERNAL)
    assert call.attributes["error.type"] == "502"
    assert "resilience.kind" not in call.attributes
