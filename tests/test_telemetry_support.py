"""In-memory OpenTelemetry SDK and a scripted loopback server for the telemetry tests."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from adapters.simulators import RunningServer, serve
from resilience import Telemetry
from resilience.testing import VirtualClock

Scope = MutableMapping[str, Any]

_tokens = itertools.count()


def token() -> str:
    """A fresh path segment, so each test (and each backend) has its own script counters."""
    return f"t{next(_tokens)}"


class Otel:
    """An SDK tracer and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def telemetry(self, clock: VirtualClock | None = None, **options: Any) -> Telemetry:
        return Telemetry(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            clock=clock,
            **options,
        )

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return sorted(
            (s for s in spans if kind is None or s.kind is kind), key=lambda s: s.start_time or 0
        )

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (every scope)."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def event_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for point in self.metrics().get("resilience.events", []):
            counts[str(point.attributes["resilience.event"])] += point.value
        return counts

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


async def scripted_app(scope: Scope, receive: Any, send: Any) -> None:
    """``/flaky/<token>``: 503, then 429 (Retry-After: 1), then 200; ``/status/<n>``; ``/echo``.

    A path ending in ``/login`` answers 401 with everything it received (secrets included).
    """
    assert scope["type"] == "http"
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path: str = scope["path"]
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    status = 200
    if path.startswith("/flaky/"):
        seen = _counters[path] = _counters.get(path, 0) + 1
        status = {1: 503, 2: 429}.get(seen, 200)
        if status == 429:
            headers.append((b"retry-after", b"1"))
    elif path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        if status == 429:
            headers.append((b"retry-after", b"5"))
    elif path.endswith("/login"):
        status = 401
    payload = json.dumps(
        {
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body.decode("utf-8", "replace"),
        }
    ).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_counters: dict[str, int] = {}


@pytest.fixture(name="scripted_server", scope="session")
def scripted_server_fixture() -> Iterator[RunningServer]:
    with serve(scripted_app) as server:
        yield server


@pytest.fixture(name="otel")
def otel_fixture() -> Iterator[Otel]:
    recorded = Otel()
    yield recorded
    recorded.shutdown()
