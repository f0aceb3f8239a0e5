"""OpenTelemetry for stacks: what a logical call did, attempt by attempt, decision by decision.

How it works: the stack's outermost transport hands each logical call to
:meth:`Telemetry.observe_call`, which opens one INTERNAL span, subscribes to the call's decision
events (``CallContext.emit``) and, when the call ends, records its duration and attempt count.
Below every layer, the attempt transport (``_telemetry_attempt``) opens one CLIENT span per
physical attempt with the HTTP semantic conventions. Decisions become span events on the
INTERNAL span and counts in ``resilience.events``.

Nothing here costs more than two provider look-ups per call while no OpenTelemetry SDK is
configured: with the API's no-op (or proxy) providers, calls go straight through.
Secrets never leave: URLs are redacted, headers and bodies are never read, metric attributes
are bounded (method, kind, vendor, event name, error type).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import attrs
import httpx
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _events as ev
from ._breaker import CircuitBreaker
from ._clock import DEFAULT_CLOCK, Clock
from ._context import CallContext, classification_of
from ._exceptions import RejectedError
from ._redact import redact_url
from ._telemetry_breaker import BREAKER_CIRCUITS, BreakerWatch, feed_for

try:  # The API's own proxy, used until an SDK is configured; private, so looked up defensively.
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _ProxyMeter
except ImportError:  # pragma: no cover - depends on the installed API
    _ProxyMeter = metrics.NoOpMeterProvider  # type: ignore[misc,assignment]

#: Whether the API keeps its global providers in the module attributes read below (None until
#: set). The public getters read the environment on every call, a microsecond or more; should a
#: release move the attributes, the getters decide instead: correct, only slower.
_SLOTS = hasattr(trace, "_TRACER_PROVIDER") and hasattr(_metrics_internal, "_METER_PROVIDER")


def _global_set(module: object, name: str) -> bool:
    """Whether the API's global provider ``name`` is set."""
    return not _SLOTS or getattr(module, name) is not None


__all__ = ["CALL_KEY", "DEFAULT_TELEMETRY", "CallRecorder", "Telemetry", "http_attributes"]

#: ``request.extensions`` key of the per-call recorder, read by the attempt transport.
CALL_KEY = "resilience.telemetry"
SCOPE = "resilience"

# HTTP semantic conventions (stable names; the semconv package is not a runtime dependency).
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_REQUEST_METHOD_ORIGINAL = "http.request.method_original"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
URL_FULL = "url.full"
ERROR_TYPE = "error.type"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"

# Metric names.
CALL_DURATION = "resilience.call.duration"
CALL_ATTEMPTS = "resilience.call.attempts"
EVENTS = "resilience.events"
ATTEMPT_DURATION = "http.client.request.duration"

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
                     30, 60, 120)  # fmt: skip
_ATTEMPT_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)
_NOOP_TRACING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_NOOP_METRICS = (_ProxyMeter, metrics.NoOpMeterProvider)
_ATTRIBUTE_TYPES = (str, bool, int, float)

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


@attrs.define
class _Decisions:
    """What a :class:`Telemetry` records; None while no provider is known."""

    tracing: bool | None = None
    measuring: bool | None = None
    primed: bool = False
    #: Primed, both providers left to the globals, and the API keeps them where ``active``
    #: reads them: until one is set, nothing records.
    on_globals: bool = False
    #: Both decided, for good: ``active`` is the answer.
    settled: bool = False
    active: bool = False


@attrs.frozen(kw_only=True)
class Telemetry:
    """Where a stack sends its traces and metrics, and which spans it makes.

    Every :class:`~resilience.Stack` has one (``Stack(..., telemetry=Telemetry(...))``); the
    default uses the global OpenTelemetry providers, so it records nothing until an SDK is set
    up and costs almost nothing until then. ``telemetry=None`` turns it off altogether.

    What it records: an INTERNAL span per logical call with the decisions as events, a CLIENT
    span per physical attempt, and the metrics ``resilience.call.duration``,
    ``resilience.call.attempts``, ``resilience.events``, ``resilience.breaker.circuits`` and
    ``http.client.request.duration`` (see the README's OpenTelemetry section).

    Attributes:
        tracer_provider: Traces go here (default: the global provider, from the moment one is
            set, even after the stack was built).
        meter_provider: Metrics go here (default: the global provider, likewise).
        client_spans: Open a CLIENT span per physical attempt (default True). While they are on,
            ``opentelemetry-instrumentation-httpx`` is suppressed for the stack's attempts, so
            each attempt has exactly one CLIENT span. Turn them off to keep the instrumentor's.
        clock: Measures call and attempt durations (default: the event loop's clock).
    """

    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None
    client_spans: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    clock: Clock | None = None
    # The tracer and instruments, made on first use (not at import, so an SDK configured from
    # the environment is not loaded early), and whether they record anything.
    _cache: dict[str, _Instruments] = attrs.field(init=False, repr=False, eq=False, factory=dict)
    _decided: _Decisions = attrs.field(init=False, repr=False, eq=False, factory=_Decisions)
    _breakers: BreakerWatch = attrs.field(init=False, repr=False, eq=False, factory=BreakerWatch)

    def watch(self, layers: Iterable[object]) -> None:
        """Report the states of the circuit breakers among ``layers`` (a Stack calls this)."""
        for layer in layers:
            if isinstance(layer, CircuitBreaker):
                self._breakers.watch(layer)

    @property
    def instruments(self) -> _Instruments:
        """The tracer and metric instruments, made once."""
        try:
            return self._cache["instruments"]
        except KeyError:
            made = self._cache["instruments"] = _Instruments(self)
            return made

    def active(self) -> bool:
        """Whether a call would record anything now: spans or metrics.

        This is the whole cost of telemetry per call while no SDK is configured, so it reads
        the decisions kept below before anything else.
        """
        decided = self._decided
        if decided.settled:
            return decided.active
        if (
            decided.on_globals
            and trace._TRACER_PROVIDER is None  # noqa: SLF001 - the API's own global (_SLOTS)
            and _metrics_internal._METER_PROVIDER is None  # noqa: SLF001
        ):
            return False  # no SDK yet: the common case, kept to three attribute reads
        self._decide(decided)
        return bool(decided.tracing or decided.measuring)

    def tracing(self) -> bool:
        """Whether spans would be recorded now (False under the API's no-op providers)."""
        decided = self._decided
        if decided.tracing is None:
            self._decide(decided)
        return bool(decided.tracing)

    def measuring(self) -> bool:
        """Whether metrics would be recorded now (False under the API's no-op providers)."""
        decided = self._decided
        if decided.measuring is None:
            self._decide(decided)
        return bool(decided.measuring)

    def _decide(self, decided: _Decisions) -> None:
        """Decide what records, once a provider is known: a global one is set once for good."""
        if not decided.primed:
            # The public getters load a provider named in the environment
            # (OTEL_PYTHON_TRACER_PROVIDER); ask them once so the globals read below are set.
            decided.primed = True
            if self.tracer_provider is None:
                trace.get_tracer_provider()
            if self.meter_provider is None:
                metrics.get_meter_provider()
            decided.on_globals = (
                _SLOTS and self.tracer_provider is None and self.meter_provider is None
            )
        if decided.tracing is None:
            tracer_provider = self.tracer_provider
            if tracer_provider is None and _global_set(trace, "_TRACER_PROVIDER"):
                tracer_provider = trace.get_tracer_provider()
            if tracer_provider is not None:
                decided.tracing = not isinstance(tracer_provider, _NOOP_TRACING)
        if decided.measuring is None:
            meter_provider = self.meter_provider
            if meter_provider is None and _global_set(_metrics_internal, "_METER_PROVIDER"):
                meter_provider = metrics.get_meter_provider()
            if meter_provider is not None:
                decided.measuring = not isinstance(meter_provider, _NOOP_METRICS)
        if decided.tracing is not None and decided.measuring is not None:
            decided.active = decided.tracing or decided.measuring
            decided.settled = True

    async def observe_call(
        self, request: httpx.Request, ctx: CallContext, send: Send
    ) -> httpx.Response:
        """Send one logical call through ``send``, recording its span, events and metrics."""
        tracing = self.tracing()
        if not (tracing or self.measuring()):
            return await send(request)  # StackTransport asks active() first; kept for others
        recorder = CallRecorder(self, request, ctx, tracing)
        previous = request.extensions.get(CALL_KEY)
        request.extensions[CALL_KEY] = recorder
        ctx.listen(recorder.on_event)
        token = None
        if recorder.span is not None:
            token = otel_context.attach(trace.set_span_in_context(recorder.span))
        try:
            response = await send(request)
        except BaseException as exc:
            recorder.finish(request, exc)
            raise
        else:
            recorder.finish(request, response)
        finally:
            if token is not None:
                otel_context.detach(token)
            if previous is None:
                request.extensions.pop(CALL_KEY, None)
            else:
                request.extensions[CALL_KEY] = previous
        return response


class _Instruments:
    """The tracer and metric instruments of one :class:`Telemetry`, made once."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.clock = telemetry.clock or DEFAULT_CLOCK
        self.client_spans = telemetry.client_spans
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=telemetry.tracer_provider)
        meter = metrics.get_meter(SCOPE, meter_provider=telemetry.meter_provider)
        self.call_duration = _histogram(
            meter, CALL_DURATION, "s", "Duration of logical calls, retries and waits included.",
            _DURATION_BUCKETS,
        )  # fmt: skip
        self.call_attempts = _histogram(
            meter, CALL_ATTEMPTS, "{attempt}", "Physical attempts per logical call.",
            _ATTEMPT_BUCKETS,
        )  # fmt: skip
        self.attempt_duration = _histogram(
            meter, ATTEMPT_DURATION, "s", "Duration of HTTP client requests (one per attempt).",
            _DURATION_BUCKETS,
        )  # fmt: skip
        self.events = meter.create_counter(
            EVENTS, unit="{event}", description="Resilience decisions, by event name."
        )
        # One gauge per meter, whatever the number of Telemetry objects reporting through it:
        # a second one of the name would be handed back with its callback dropped.
        feed, new = feed_for(meter)
        feed.add(telemetry._breakers)  # noqa: SLF001 - its own settings object
        if new:
            meter.create_observable_gauge(
                BREAKER_CIRCUITS,
                callbacks=[feed.observe],
                unit="{circuit}",
                description="Circuit breaker circuits in memory, by state.",
            )


def _histogram(
    meter: metrics.Meter, name: str, unit: str, description: str, buckets: Sequence[float]
) -> metrics.Histogram:
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=buckets
        )
    except TypeError:  # pragma: no cover - API releases before bucket advice
        return meter.create_histogram(name, unit=unit, description=description)


def method_of(request: httpx.Request) -> str:
    """The request method as the semantic conventions name it (``_OTHER`` if unknown)."""
    return request.method if request.method in _KNOWN_METHODS else "_OTHER"


def http_attributes(request: httpx.Request) -> dict[str, str | int]:
    """Span attributes describing ``request``: method, server, redacted URL. Never headers."""
    url = request.url
    attributes: dict[str, str | int] = {
        HTTP_REQUEST_METHOD: method_of(request),
        SERVER_ADDRESS: url.host,
        SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
        URL_FULL: redact_url(url),
    }
    if attributes[HTTP_REQUEST_METHOD] == "_OTHER":
        attributes[HTTP_REQUEST_METHOD_ORIGINAL] = request.method
    return attributes


def safe_attributes(attributes: Mapping[str, object]) -> dict[str, object]:
    """Keep the attribute values OpenTelemetry accepts; drop the rest (None, objects)."""
    clean: dict[str, object] = {}
    for name, value in attributes.items():
        if isinstance(value, _ATTRIBUTE_TYPES):
            clean[name] = value
        elif isinstance(value, (tuple, list)) and all(
            isinstance(item, _ATTRIBUTE_TYPES) for item in value
        ):
            clean[name] = tuple(value)
    return clean


def error_type(source: httpx.Response | BaseException) -> str | None:
    """``error.type`` for an outcome: the status code of an error response, or the exception."""
    if isinstance(source, httpx.Response):
        return str(source.status_code) if source.status_code >= 400 else None
    return type(source).__qualname__


class CallRecorder:
    """The telemetry of one logical call: its INTERNAL span, events, attempts and duration."""

    __slots__ = ("ctx", "instruments", "method", "recording", "sent", "span", "started")

    def __init__(
        self, telemetry: Telemetry, request: httpx.Request, ctx: CallContext, tracing: bool
    ) -> None:
        self.instruments = instruments = telemetry.instruments
        self.ctx = ctx
        self.method = method_of(request)
        #: Physical attempts that reached the attempt transport.
        self.sent = 0
        self.started = instruments.clock.now()
        #: The call's span while tracing (a sampled-out one too: its context still decides
        #: for the attempts, and travels in ``traceparent``); None otherwise.
        self.span: trace.Span | None = None
        self.recording = False
        if tracing:
            self.span = instruments.tracer.start_span(
                f"resilience {self.method}",
                kind=SpanKind.INTERNAL,
                attributes=http_attributes(request),
            )
            self.recording = self.span.is_recording()

    def on_event(self, name: str, attributes: Mapping[str, object]) -> None:
        """Listener for ``CallContext.emit``: a span event and one count of its kind."""
        self.instruments.events.add(1, {ev.EVENT: name})
        span = self.span
        if self.recording and span is not None:
            span.add_event(name, safe_attributes(attributes))  # type: ignore[arg-type]

    def finish(self, request: httpx.Request, source: httpx.Response | BaseException) -> None:
        """End the call: set the outcome on its span, record its duration and attempts."""
        ctx = self.ctx
        attempts = max(ctx.attempts, self.sent, 1)
        verdict = None
        metric: dict[str, str] = {HTTP_REQUEST_METHOD: self.method, ev.VENDOR: ctx.classifier.name}
        failed = True
        if isinstance(source, httpx.Response) or (
            isinstance(source, Exception) and not isinstance(source, RejectedError)
        ):
            try:
                verdict = classification_of(request, source)
            except Exception:  # noqa: BLE001 - a classifier bug must not break the call
                verdict = None
            if verdict is not None:
                metric[ev.KIND] = verdict.kind.value
                failed = not verdict.kind.is_success
        elif not isinstance(source, Exception):
            failed = False  # cancelled: not a failure of the call
        error = error_type(source)
        if failed and error is None:
            error = metric.get(ev.KIND)  # an error the vendor reported with a 2xx status
        if error is not None and (failed or not isinstance(source, httpx.Response)):
            metric[ERROR_TYPE] = error
        duration = max(self.instruments.clock.now() - self.started, 0.0)
        self.instruments.call_duration.record(duration, metric)
        self.instruments.call_attempts.record(attempts, metric)
        span = self.span
        if span is None or not self.recording:
            return
        span.set_attribute(ev.ATTEMPTS, attempts)
        span.set_attribute(ev.WAITED, ctx.waited)
        if isinstance(source, httpx.Response):
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, source.status_code)
        for name in (ev.KIND, ERROR_TYPE):
            if name in metric:
                span.set_attribute(name, metric[name])
        if verdict is not None and verdict.error is not None:  # for a support ticket
            span.set_attributes(ev.vendor_ids(verdict))
        if failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


#: What a Stack uses unless told otherwise: the global providers, all spans on.
DEFAULT_TELEMETRY = Telemetry()
