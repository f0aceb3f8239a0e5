"""``--trace``: send the stacks' OpenTelemetry spans to the console or an OTLP/HTTP endpoint.

The stacks use the global OpenTelemetry API providers, so installing an SDK tracer provider here
is all it takes. Needs ``opentelemetry-sdk`` (in the ``demo`` extra); ``otlp`` also needs
``opentelemetry-exporter-otlp-proto-http``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["setup_tracing"]


def setup_tracing(spec: str) -> Callable[[], None]:
    """Install a global tracer provider exporting as ``spec`` says; return its shutdown.

    Args:
        spec: ``console`` (spans as JSON on stderr), or ``otlp`` / ``otlp=URL`` (default
            ``http://127.0.0.1:4318/v1/traces``).

    Raises:
        SystemExit: An unknown spec, or a missing exporter package (with the pip command).
    """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    kind, _, url = spec.partition("=")
    exporter: SpanExporter
    if kind == "console":
        exporter = ConsoleSpanExporter(out=sys.stderr)
    elif kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise SystemExit(
                "--trace otlp needs: pip install opentelemetry-exporter-otlp-proto-http"
            ) from None
        exporter = OTLPSpanExporter(endpoint=url or "http://127.0.0.1:4318/v1/traces")
    else:
        raise SystemExit(f"--trace takes console or otlp[=URL], not {spec!r}")
    provider = TracerProvider(resource=Resource.create({"service.name": "resilience-demo"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider.shutdown
