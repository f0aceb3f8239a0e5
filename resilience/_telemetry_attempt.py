"""One CLIENT span per physical attempt, placed below every layer of a stack.

``Stack.transport(inner)`` puts :class:`AttemptTransport` around ``inner`` (or, when it makes the
default transport itself, uses :class:`TracedHTTPTransport`), so each attempt the layers let
through passes here exactly once, after every decision has been taken.

``opentelemetry-instrumentation-httpx`` makes its own CLIENT spans: globally by patching
``httpx.AsyncHTTPTransport.handle_async_request`` (``instrument()``), or per client by patching
the client's transport objects (``instrument_client()``). While this module records a CLIENT span
it marks the attempt with the API's "suppress HTTP instrumentation" context key, which the
instrumentor honours, so the attempt is not traced twice; the instrumentor's own patch of a
stack's outermost transport (``instrument_client`` on a wrapped client) is declined by
``StackTransport``, because one span around every attempt of a call is not an HTTP client span.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._layer import LayerTransport
from ._telemetry import (
    CALL_KEY,
    ERROR_TYPE,
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_RESEND_COUNT,
    HTTP_RESPONSE_STATUS_CODE,
    NETWORK_PROTOCOL_VERSION,
    SERVER_ADDRESS,
    SERVER_PORT,
    CallRecorder,
    Send,
    error_type,
    http_attributes,
)

SUPPRESS_HTTP_KEY: str | None
try:  # Private in the API, shared with the instrumentations that honour it.
    from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY as SUPPRESS_HTTP_KEY
except ImportError:  # pragma: no cover - depends on the installed API
    SUPPRESS_HTTP_KEY = None

__all__ = ["AttemptTransport", "TracedHTTPTransport", "traced_attempt"]


async def traced_attempt(
    recorder: CallRecorder, send: Send, request: httpx.Request
) -> httpx.Response:
    """Send one physical attempt through ``send``, with its CLIENT span and duration."""
    recorder.sent += 1
    instruments = recorder.instruments
    started = instruments.clock.now()
    span: trace.Span | None = None
    token: object = None
    if recorder.span is not None and instruments.client_spans:
        if recorder.recording:
            attributes = http_attributes(request)
            if recorder.sent > 1:
                attributes[HTTP_REQUEST_RESEND_COUNT] = recorder.sent - 1
            span = instruments.tracer.start_span(
                str(attributes[HTTP_REQUEST_METHOD]),
                context=trace.set_span_in_context(recorder.span),
                kind=SpanKind.CLIENT,
                attributes=attributes,
            )
        # A sampled-out call still carries its decision to the server and the instrumentor.
        current = trace.set_span_in_context(span or recorder.span)
        if SUPPRESS_HTTP_KEY is not None:
            current = otel_context.set_value(SUPPRESS_HTTP_KEY, value=True, context=current)
        token = otel_context.attach(current)
        propagate.inject(request.headers, context=current)
    try:
        response = await send(request)
    except BaseException as exc:
        _end(recorder, request, span, _timed_out(recorder, request, exc), started)
        raise
    finally:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
    _end(recorder, request, span, response, started)
    return response


def _timed_out(recorder: CallRecorder, request: httpx.Request, exc: BaseException) -> BaseException:
    """``exc``, or the timeout it stands for when the retry layer's attempt timeout cut it.

    The retry layer cuts an attempt with a cancel scope, so what passes here is the event
    loop's cancellation; past the cut's time, the attempt timed out and its span says so
    (``error.type`` ``TimeoutException``, status ERROR), as the call's does.
    """
    cut = recorder.ctx.cut
    if cut is not None and cut.caught(exc):
        return httpx.TimeoutException("attempt timed out", request=request)
    return exc


def _end(
    recorder: CallRecorder,
    request: httpx.Request,
    span: trace.Span | None,
    source: httpx.Response | BaseException,
    started: float,
) -> None:
    instruments = recorder.instruments
    url = request.url
    metric: dict[str, str | int] = {
        HTTP_REQUEST_METHOD: recorder.method,
        SERVER_ADDRESS: url.host,
        SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
    }
    error = error_type(source)
    if isinstance(source, httpx.Response):
        metric[HTTP_RESPONSE_STATUS_CODE] = source.status_code
        version = source.extensions.get("http_version")
        if isinstance(version, bytes) and version.startswith(b"HTTP/"):
            metric[NETWORK_PROTOCOL_VERSION] = version[5:].decode("ascii", "replace")
    if error is not None:
        metric[ERROR_TYPE] = error
    duration = max(instruments.clock.now() - started, 0.0)
    instruments.attempt_duration.record(duration, metric)
    if span is None:
        return
    span.set_attributes({k: v for k, v in metric.items() if k not in {SERVER_ADDRESS, SERVER_PORT}})
    if error is not None and isinstance(source, (httpx.Response, Exception)):
        span.set_status(Status(StatusCode.ERROR))  # cancellation is not an error of the server
    span.end()


class AttemptTransport(LayerTransport):
    """Below every layer: one CLIENT span per physical attempt through ``inner``.

    ``handle_async_request`` is not a coroutine itself: an attempt that nothing records is
    handed on as the inner transport's own coroutine, at no cost of a frame (the common case
    while no OpenTelemetry SDK is configured).
    """

    def handle_async_request(self, request: httpx.Request) -> Coroutine[Any, Any, httpx.Response]:
        """Trace one attempt through the inner transport."""
        recorder = request.extensions.get(CALL_KEY)
        if recorder is None:  # nothing records this call
            return self.inner.handle_async_request(request)
        return traced_attempt(recorder, self.inner.handle_async_request, request)

    def __repr__(self) -> str:
        return f"<AttemptTransport {self.inner!r}>"


class TracedHTTPTransport(httpx.AsyncHTTPTransport):
    """The stack's default network transport, tracing each physical attempt."""

    def handle_async_request(self, request: httpx.Request) -> Coroutine[Any, Any, httpx.Response]:
        """Trace one attempt over the network (an untraced one costs no frame here)."""
        recorder = request.extensions.get(CALL_KEY)
        if recorder is None:
            return super().handle_async_request(request)
        return traced_attempt(recorder, super().handle_async_request, request)
