"""``Stack``: layers listed outermost first, built into one transport.

The standard order, outermost first, and why:

1. ``Retry``          - owns the logical call: attempts, backoff, deadline.
2. ``RetryAfterGate`` - every attempt, first or retried, waits out a server's Retry-After.
3. ``LockoutGuard``   - logins are checked per attempt, so a retry cannot burn the budget.
4. ``CircuitBreaker`` - counts physical attempts and rejects while the server is down.
5. ``Classify``       - innermost: one verdict per physical attempt, read by all of the above.

Other transports (OpenTelemetry's, a cache, respx) can sit between layers: a Stack accepts any
callable ``inner -> httpx.AsyncBaseTransport`` in the list.

Telemetry (``telemetry=``, see :class:`~resilience.Telemetry`) is not a layer: the outermost
transport traces the logical call, and a transport below every layer traces each attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from ._classifier import DEFAULT_CLASSIFIER, Classifier
from ._classify import Classify
from ._context import CONTEXT_KEY, CallContext
from ._layer import Layer, LayerLike, LayerTransport
from ._telemetry import DEFAULT_TELEMETRY, Telemetry
from ._telemetry_attempt import AttemptTransport, TracedHTTPTransport

__all__ = ["Stack", "StackTransport"]


class Stack:
    """An ordered list of layers, outermost first.

    Args:
        *layers: :class:`Layer` instances, or factories ``inner -> transport``.
        telemetry: Where traces and metrics go (default: the global OpenTelemetry providers,
            which record nothing until an SDK is configured); ``None`` for none at all.

    Raises:
        TypeError: For something that is neither.
        ValueError: For settings that contradict each other across layers.
    """

    def __init__(self, *layers: LayerLike, telemetry: Telemetry | None = DEFAULT_TELEMETRY) -> None:
        if telemetry is not None and not isinstance(telemetry, Telemetry):
            raise TypeError(f"telemetry must be a resilience.Telemetry or None: {telemetry!r}")
        self._telemetry = telemetry
        for layer in layers:
            if not (isinstance(layer, Layer) or callable(layer)):
                raise TypeError(f"not a layer or a transport factory: {layer!r}")
        self._layers = tuple(layers)
        if telemetry is not None:
            telemetry.watch(self._layers)
        for layer in self._layers:
            if isinstance(layer, Layer):
                layer.check(self._layers)

    @property
    def classifier(self) -> Classifier:
        """The classifier of the stack's ``Classify`` layer (plain HTTP if it has none).

        Every layer of a call sees it from the start, so an outer layer (the lockout guard, the
        retry) knows the vendor's rules before the inner ``Classify`` has run.
        """
        for layer in self._layers:
            if isinstance(layer, Classify):
                return layer.classifier
        return DEFAULT_CLASSIFIER

    @property
    def telemetry(self) -> Telemetry | None:
        """The stack's telemetry settings (None when it records nothing)."""
        return self._telemetry

    @property
    def layers(self) -> tuple[LayerLike, ...]:
        """The layers, outermost first."""
        return self._layers

    def __iter__(self) -> Iterator[LayerLike]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def transport(
        self, inner: httpx.AsyncBaseTransport | None = None, *, express: bool = True
    ) -> StackTransport:
        """Build the stack around ``inner`` (default: a new ``httpx.AsyncHTTPTransport()``).

        The standard layers in the standard order make an express transport, which sends a
        call's first attempt past the layers' frames when none of them has anything to do
        (see ``resilience._express``); it decides what the layered chain would. With
        ``express=False`` every call takes the layered path (to compare the two).
        """
        transport: httpx.AsyncBaseTransport
        if self._telemetry is None:
            transport = inner if inner is not None else httpx.AsyncHTTPTransport()
        else:  # below every layer, so each physical attempt is traced once
            transport = AttemptTransport(inner) if inner is not None else TracedHTTPTransport()
        for layer in reversed(self._layers):
            transport = layer.wrap(transport) if isinstance(layer, Layer) else layer(transport)
        if express:
            from ._express import express_transport  # noqa: PLC0415 - it builds on this module

            lane = express_transport(self._layers, transport, self)
            if lane is not None:
                return lane
        return StackTransport(transport, self)

    def describe(self) -> tuple[dict[str, object], ...]:
        """The layers in order with their settings, for logs and tests."""
        return tuple(
            layer.describe()
            if isinstance(layer, Layer)
            else {"layer": getattr(layer, "__qualname__", repr(layer))}
            for layer in self._layers
        )

    def __repr__(self) -> str:
        names = ", ".join(str(d["layer"]) for d in self.describe())
        return f"Stack({names})"


class StackTransport(LayerTransport):
    """The outermost transport of a built stack: gives each logical call a fresh context."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stack: Stack) -> None:
        super().__init__(inner)
        self.stack = stack
        self._classifier = stack.classifier
        self._telemetry = stack.telemetry

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        previous = extensions.get(CONTEXT_KEY)
        ctx = extensions[CONTEXT_KEY] = CallContext(self._classifier)
        telemetry = self._telemetry
        try:
            if telemetry is None or not telemetry.active():
                response = await self.inner.handle_async_request(request)
            else:
                response = await telemetry.observe_call(
                    request, ctx, self.inner.handle_async_request
                )
        finally:
            if previous is None:
                extensions.pop(CONTEXT_KEY, None)
            else:
                extensions[CONTEXT_KEY] = previous
        response.extensions[CONTEXT_KEY] = ctx
        return response

    def __setattr__(self, name: str, value: Any) -> None:
        # opentelemetry-instrumentation-httpx's instrument_client() patches the client's transport
        # object, here the whole logical call: its CLIENT span would wrap every attempt and the
        # stack's INTERNAL span. The stack's own per-attempt CLIENT spans take its place.
        if (
            name == "handle_async_request"
            and self._telemetry is not None
            and self._telemetry.client_spans
            and _is_instrumentor_patch(value)
        ):
            return
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"<StackTransport {self.stack!r}>"


def _is_instrumentor_patch(value: object) -> bool:
    """Whether ``value`` is an OpenTelemetry instrumentation's wrapper (a ``wrapt`` proxy)."""
    wrapper = getattr(value, "_self_wrapper", None)  # what wrapt.FunctionWrapper wraps with
    function = getattr(wrapper, "func", wrapper)  # the instrumentor passes a functools.partial
    module = getattr(function, "__module__", None) or ""
    return module.startswith("opentelemetry.instrumentation")
