"""Beside opentelemetry-instrumentation-httpx: exactly one CLIENT span per physical attempt."""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from adapters.simulators import RunningServer
from resilience import Backoff, Classify, Retry, Stack, wrap
from resilience.testing import VirtualClock
from tests.test_telemetry_support import (  # noqa: F401 - fixtures
    Otel,
    otel_fixture,
    scripted_server_fixture,
    token,
)

pytestmark = pytest.mark.anyio

INSTRUMENTOR_SCOPE = "opentelemetry.instrumentation.httpx"


def stack(otel: Otel, clock: VirtualClock, *, client_spans: bool = True) -> Stack:
    retry = Retry(attempts=3, backoff=Backoff(initial=0.1, jitter="none"), clock=clock,
                  rng=random.Random(1))  # fmt: skip
    return Stack(retry, Classify(), telemetry=otel.telemetry(clock, client_spans=client_spans))


def scope_of(span: ReadableSpan) -> str:
    assert span.instrumentation_scope is not None
    return span.instrumentation_scope.name


def assert_one_client_span_per_attempt(otel: Otel, scope: str) -> None:
    """Three attempts (503, 429, 200): three CLIENT spans, all from ``scope``, under the call."""
    (call,) = otel.spans(SpanKind.INTERNAL)
    attempts = otel.spans(SpanKind.CLIENT)
    assert len(attempts) == 3
    for span in attempts:
        assert scope_of(span) == scope
        assert span.parent is not None
        assert span.parent.span_id == call.context.span_id
    # The instrumentor still uses the old semantic conventions unless told otherwise.
    statuses = [s.attributes.get("http.response.status_code") for s in attempts]
    if scope == INSTRUMENTOR_SCOPE:
        statuses = [s.attributes.get("http.status_code") for s in attempts]
    assert statuses == [503, 429, 200]


@pytest.fixture
def instrumented(otel: Otel) -> Iterator[HTTPXClientInstrumentor]:
    """The global instrumentation (it patches ``httpx.AsyncHTTPTransport``), undone after."""
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
    )
    yield instrumentor
    instrumentor.uninstrument()


@pytest.mark.usefixtures("instrumented")
async def test_global_instrument_is_not_doubled(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    async with httpx.AsyncClient() as plain:  # the instrumentation is really on
        await plain.get(f"{scripted_server.url}/echo")
    assert [scope_of(s) for s in otel.spans(SpanKind.CLIENT)] == [INSTRUMENTOR_SCOPE]
    for inner in (None, httpx.AsyncHTTPTransport()):  # the stack's default transport, or yours
        otel.exporter.clear()
        transport = stack(otel, clock).transport(inner)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"{scripted_server.url}/flaky/{token()}")
        assert response.status_code == 200
        assert_one_client_span_per_attempt(otel, "resilience")


@pytest.mark.usefixtures("instrumented")
async def test_global_instrument_keeps_its_spans_when_the_stack_makes_none(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    transport = stack(otel, clock, client_spans=False).transport()
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(f"{scripted_server.url}/flaky/{token()}")
    assert_one_client_span_per_attempt(otel, INSTRUMENTOR_SCOPE)


async def test_instrument_client_after_wrap_is_not_doubled(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    async with httpx.AsyncClient() as client:
        wrap(client, stack(otel, clock))
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=otel.tracer_provider)
        response = await client.get(f"{scripted_server.url}/flaky/{token()}")
        HTTPXClientInstrumentor.uninstrument_client(client)
    assert response.status_code == 200
    assert_one_client_span_per_attempt(otel, "resilience")


async def test_instrument_client_before_wrap_is_not_doubled(
    otel: Otel, scripted_server: RunningServer, clock: VirtualClock
) -> None:
    async with httpx.AsyncClient() as client:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=otel.tracer_provider)
        wrap(client, stack(otel, clock))
        await client.get(f"{scripted_server.url}/flaky/{token()}")
    assert_one_client_span_per_attempt(otel, "resilience")
    # Without the stack's CLIENT spans, the instrumented transport traces each attempt.
    otel.exporter.clear()
    async with httpx.AsyncClient() as client:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=otel.tracer_provider)
        wrap(client, stack(otel, clock, client_spans=False))
        await client.get(f"{scripted_server.url}/flaky/{token()}")
    assert_one_client_span_per_attempt(otel, INSTRUMENTOR_SCOPE)


async def test_other_patches_of_the_stack_transport_are_kept(otel: Otel) -> None:
    transport = Stack(Classify(), telemetry=otel.telemetry()).transport(
        httpx.MockTransport(lambda r: httpx.Response(200))
    )
    original = transport.handle_async_request
    seen: list[str] = []

    @functools.wraps(original)
    async def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return await original(request)

    transport.handle_async_request = spy  # type: ignore[method-assign]
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/spied")
    assert seen == ["/spied"]
