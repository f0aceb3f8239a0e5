"""Per-call state shared by the layers of one stack.

One logical call (what the user's ``client.send`` asked for) may become several physical
attempts. The layers of a stack share a :class:`CallContext` through the request's
``extensions``, so an outer layer sees how an inner one classified the attempt, and
:func:`resilience.outcome` can tell the user how many attempts were made and how long the
stack waited. It is internal: users read :class:`~resilience.Outcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TypeAlias

import anyio
import httpx

from ._classification import Classification
from ._classifier import DEFAULT_CLASSIFIER, Classifier

__all__ = [
    "CLASSIFICATION_KEY",
    "AttemptCut",
    "CONTEXT_KEY",
    "CallContext",
    "Origin",
    "call_context",
    "classification_of",
    "cut_by_attempt_timeout",
    "url_origin",
]

CONTEXT_KEY = "resilience.call"
CLASSIFICATION_KEY = "resilience.classification"


_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Told of each decision event of a call: ``(event name, attributes)``.
Listener: TypeAlias = Callable[[str, Mapping[str, object]], None]

#: A request's origin: ``(scheme, host, port)``, the port filled in for the scheme's default.
Origin: TypeAlias = tuple[str, str, int | None]


def url_origin(url: httpx.URL) -> Origin:
    """``(scheme, host, port)`` of ``url``, with the scheme's default port filled in.

    The host is the one sent on the wire: lower case, IDNA-encoded (``url.raw_host``). httpx
    already drops a default port from the URL (``https://a:443`` has port None), so the filled-in
    port only makes the key read plainly; two spellings of one origin share it.

    An origin is returned as the same tuple object call after call (while it is its host's
    latest): the breaker's and the batch's dicts then find it by identity. An equal tuple
    made anew is compared field by field in each lookup, which was about a tenth of the
    express lane's instructions.
    """
    try:
        # httpx's parsed URL, a named tuple (scheme, userinfo, host, port, ...): indexing it
        # costs a fifth of the instructions of the public properties, and every call reads it.
        # A test holds this equal to the public reading, which is the fallback.
        parts = url._uri_reference  # noqa: SLF001
        scheme, host, port = parts[0], parts[2], parts[3]
    except (AttributeError, TypeError, IndexError):  # pragma: no cover - another httpx
        scheme, host, port = url.scheme, url.raw_host.decode("ascii"), url.port
    port = port or _DEFAULT_PORTS.get(scheme)
    known = _ORIGINS.get(host)
    if known is None or known[2] != port or known[0] != scheme:
        return _new_origin(scheme, host, port)
    return known


#: The tuple last made for each host's origin (see url_origin), at most _MAX_ORIGINS of them.
_ORIGINS: dict[str, Origin] = {}
_MAX_ORIGINS = 1024


def _new_origin(scheme: str, host: str, port: int | None) -> Origin:
    """A new origin tuple, kept as its host's; the cache is emptied when it is full."""
    if len(_ORIGINS) >= _MAX_ORIGINS:
        _ORIGINS.clear()
    origin = _ORIGINS[host] = (scheme, host, port)
    return origin


class CallContext:
    """Mutable state of one logical call, owned by the stack's outermost transport.

    A plain class with slots rather than an attrs class: one is made for every call the
    layers see, and its construction is part of their success path's cost. (The express lane
    makes none for a plain success: see ``resilience._express``.)
    """

    __slots__ = (
        "__weakref__",  # the lockout guard remembers failed logins per call, weakly
        "attempts",
        "classifier",
        "cut",
        "deadline",
        "key",
        "last",
        "last_source",
        "listeners",
        "waited",
    )

    def __init__(self, classifier: Classifier = DEFAULT_CLASSIFIER) -> None:
        self.classifier = classifier
        #: Physical attempts started so far (set by the retry layer; 0 means "no retry layer").
        self.attempts = 0
        #: Seconds spent waiting: backoff sleeps and gate waits.
        self.waited = 0.0
        #: The last attempt's verdict and the response or exception it is about.
        self.last: Classification | None = None
        self.last_source: object = None
        #: Absolute time (on the stack's clock) after which nothing more may be sent, or None.
        self.deadline: float | None = None
        #: While the retry layer bounds an attempt: how and when it cuts it (see AttemptCut).
        self.cut: AttemptCut | None = None
        #: Listeners for decision events (see ``resilience._events``); telemetry adds one with
        #: listen(). A tuple, shared while empty: most calls have none and allocate nothing.
        self.listeners: tuple[Listener, ...] = ()
        #: The default retry/gate key of this call, once computed (see ``_gate.key_for``).
        self.key: Hashable = None

    def listen(self, listener: Listener) -> None:
        """Add ``listener`` for this call's decision events."""
        self.listeners = (*self.listeners, listener)

    def emit(self, event: str, attributes: Mapping[str, object]) -> None:
        """Report a decision (a name from ``resilience._events``) to every listener."""
        for listener in self.listeners:
            listener(event, attributes)

    def record(self, source: object, verdict: Classification) -> None:
        """Remember the verdict on ``source`` (a response or an exception)."""
        self.last = verdict
        self.last_source = source

    def __repr__(self) -> str:
        return (
            f"CallContext(classifier={self.classifier!r}, attempts={self.attempts}, "
            f"waited={self.waited!r}, last={self.last!r}, deadline={self.deadline!r})"
        )


class AttemptCut:
    """How the retry layer cuts the attempt in flight: a cancel scope, and why it is set.

    Layers below read it: the breaker and the attempt's span tell a cut from a cancellation,
    and the Retry-After gate moves the cut later by its own wait, which is no time of the
    server's, and judges what the caller may wait by the caller's own deadline, not the cut's.

    Attributes:
        scope: The attempt's cancel scope; its ``deadline`` is the cut, in anyio time.
        by_timeout: The cut is ``attempt_timeout`` (the server was too slow: a timeout, which
            the breaker counts), not what is left of the call's ``deadline``.
        cap: The call's deadline in anyio time (``inf`` without one): no cut moves past it.
        caller_deadline: The caller's own effective deadline outside the scope (``inf``).
    """

    __slots__ = ("by_timeout", "caller_deadline", "cap", "scope")

    def __init__(
        self, scope: anyio.CancelScope, *, by_timeout: bool, cap: float, caller_deadline: float
    ) -> None:
        self.scope = scope
        self.by_timeout = by_timeout
        self.cap = cap
        self.caller_deadline = caller_deadline

    @property
    def deadline(self) -> float:
        """When the attempt is cut, in anyio time."""
        return self.scope.deadline

    def extend(self, seconds: float) -> None:
        """Move an ``attempt_timeout`` cut ``seconds`` later (a wait before sending).

        Never past the call's deadline: a cut moved that far is the deadline's from then on.
        A deadline's cut does not move, since waits count against the deadline.
        """
        if not self.by_timeout or seconds <= 0:
            return
        wanted = self.scope.deadline + seconds
        if wanted >= self.cap:
            wanted, self.by_timeout = self.cap, False
        self.scope.deadline = wanted

    def caught(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this cut: the loop's cancellation, this scope's deadline reached.

        When the caller's own deadline has passed too (a busy loop, or the same instant), it is
        the caller's cancellation, which is never counted.
        """
        if not isinstance(exc, anyio.get_cancelled_exc_class()) or not self.scope.cancel_called:
            return False
        now = anyio.current_time()
        return self.scope.deadline <= now < self.caller_deadline


def cut_by_attempt_timeout(ctx: CallContext, exc: BaseException) -> bool:
    """Whether ``exc`` is the retry layer's ``attempt_timeout`` cutting the attempt.

    The retry layer cuts an attempt with a cancel scope, so a layer below it sees the event
    loop's cancellation; past the cut's time, and when the cut is the attempt timeout's, that
    cancellation stands for a timeout of the server.
    """
    cut = ctx.cut
    return cut is not None and cut.by_timeout and cut.caught(exc)


def call_context(request: httpx.Request) -> CallContext:
    """Return the request's call context, creating it for a layer used outside a stack.

    Layers on the success path write ``request.extensions.get(CONTEXT_KEY) or
    call_context(request)``: the same, without a call when a stack made the context.
    """
    ctx = request.extensions.get(CONTEXT_KEY)
    if ctx is None:
        ctx = request.extensions[CONTEXT_KEY] = CallContext()
    return ctx


def classification_of(
    request: httpx.Request, source: httpx.Response | Exception, ctx: CallContext | None = None
) -> Classification:
    """The verdict an inner ``Classify`` layer gave ``source``, or a plain-HTTP one.

    Without a ``Classify`` layer below, responses are judged from their status and headers
    only (their body is never read here) and exceptions by their type.

    Args:
        request: The request of the attempt.
        source: What the attempt gave: a response, or the exception raised instead.
        ctx: The call's context, when the caller holds it already.
    """
    if ctx is None:
        ctx = call_context(request)
    last = ctx.last
    if last is not None and ctx.last_source is source:
        return last
    if isinstance(source, httpx.Response):
        stored = source.extensions.get(CLASSIFICATION_KEY)
        if isinstance(stored, Classification):
            return stored
        verdict = ctx.classifier.classify_response(request, source, b"")
    else:
        verdict = ctx.classifier.classify_exception(request, source)
    ctx.record(source, verdict)
    return verdict
