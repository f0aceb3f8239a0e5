"""Per-call state shared by the layers of one stack.

One logical call (what the user's ``client.send`` asked for) may become several physical
attempts. The layers of a stack share a :class:`CallContext` through the request's
``extensions``, so an outer layer sees how an inner one classified the attempt, and
:func:`resilience.outcome` can tell the user how many attempts were made and how long the
stack waited. It is internal: users read :class:`~resilience.Outcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import httpx

from ._classification import Classification
from ._classifier import DEFAULT_CLASSIFIER, Classifier

__all__ = ["CLASSIFICATION_KEY", "CONTEXT_KEY", "CallContext", "call_context", "classification_of"]

CONTEXT_KEY = "resilience.call"
CLASSIFICATION_KEY = "resilience.classification"


@attrs.define(eq=False)
class CallContext:
    """Mutable state of one logical call, owned by the stack's outermost transport."""

    classifier: Classifier = DEFAULT_CLASSIFIER
    #: Physical attempts started so far (set by the retry layer; 0 means "no retry layer").
    attempts: int = 0
    #: Seconds spent waiting: backoff sleeps and gate waits.
    waited: float = 0.0
    #: The last attempt's verdict and the response or exception it is about.
    last: Classification | None = None
    last_source: object = None
    #: Absolute time (on the stack's clock) after which nothing more may be sent, or None.
    deadline: float | None = None
    #: Listeners for decision events (see ``resilience._events``); telemetry adds one.
    listeners: list[Callable[[str, Mapping[str, object]], None]] = attrs.field(factory=list)

    def emit(self, event: str, attributes: Mapping[str, object]) -> None:
        """Report a decision (a name from ``resilience._events``) to every listener."""
        for listener in self.listeners:
            listener(event, attributes)

    def record(self, source: object, verdict: Classification) -> None:
        """Remember the verdict on ``source`` (a response or an exception)."""
        self.last = verdict
        self.last_source = source


def call_context(request: httpx.Request) -> CallContext:
    """Return the request's call context, creating it for a layer used outside a stack."""
    ctx = request.extensions.get(CONTEXT_KEY)
    if not isinstance(ctx, CallContext):
        ctx = CallContext()
        request.extensions[CONTEXT_KEY] = ctx
    return ctx


def classification_of(request: httpx.Request, source: httpx.Response | Exception) -> Classification:
    """The verdict an inner ``Classify`` layer gave ``source``, or a plain-HTTP one.

    Without a ``Classify`` layer below, responses are judged from their status and headers
    only (their body is never read here) and exceptions by their type.
    """
    ctx = call_context(request)
    if ctx.last is not None and ctx.last_source is source:
        return ctx.last
    if isinstance(source, httpx.Response):
        stored = source.extensions.get(CLASSIFICATION_KEY)
        if isinstance(stored, Classification):
            return stored
        verdict = ctx.classifier.classify_response(request, source, b"")
    else:
        verdict = ctx.classifier.classify_exception(request, source)
    ctx.record(source, verdict)
    return verdict
