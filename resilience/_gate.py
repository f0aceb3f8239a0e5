"""``RetryAfterGate``: a server's Retry-After honoured by every request, not only the retried one.

When a response for a key (default: origin and a hash of the credential) is classified
``rate_limited`` or ``server_error`` with a ``retry_after``, the key is *held* until then. New
requests for that key wait out the hold if the caller may wait that long (``max_wait``, what is
left of the call's deadline, and the anyio cancel scope's deadline), and otherwise fail at once
with :class:`~resilience.RateLimitedError` without sending. The decisions are in
``_gate_core``; holds live in a :class:`~resilience._store.MemoryStore`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable

import anyio
import attrs
import httpx

from . import _events as ev
from ._classification import Classification, Kind
from ._classifier import DEFAULT_CLASSIFIER
from ._clock import DEFAULT_CLOCK, Clock
from ._context import (
    CLASSIFICATION_KEY,
    CONTEXT_KEY,
    CallContext,
    call_context,
    classification_of,
    url_origin,
)
from ._exceptions import RateLimitedError
from ._gate_core import Verdict, admit, extend
from ._layer import Layer, LayerTransport
from ._redact import SENSITIVE_HEADERS, credential_fingerprint, key_fingerprint
from ._store import MemoryStore

__all__ = [
    "RetryAfterGate",
    "RetryAfterGateStatistics",
    "default_key",
    "key_for",
    "verdict_on",
]

_HOLDING_KINDS = frozenset({Kind.RATE_LIMITED, Kind.SERVER_ERROR})
_CREDENTIAL_HEADERS = frozenset(
    name.encode() for name in SENSITIVE_HEADERS - {"cookie", "set-cookie"}
)
_FINGERPRINTS: dict[tuple[tuple[bytes, bytes], ...], str] = {}
_FINGERPRINTS_MAX = 1024


def default_key(request: httpx.Request) -> Hashable:
    """The request's origin (scheme, host, port) and a fingerprint of its credential.

    Requests without a credential header share the origin's key, with ``""`` for the credential.
    """
    origin = url_origin(request.url)
    headers = request.headers
    try:
        # httpx keeps (raw name, lower-case name, value) triples: 6x faster than .raw here.
        triples = headers._list  # noqa: SLF001
    except AttributeError:  # pragma: no cover - a future httpx without the list
        triples = [(name, name.lower(), value) for name, value in headers.raw]
    # A plain loop: cheaper in instructions than itertools.compress over maps (measured).
    found: tuple[tuple[bytes, bytes], ...] = ()
    for _, name, value in triples:
        if name in _CREDENTIAL_HEADERS:
            found += ((name, value),)
    if not found:
        return (*origin, "")
    credential = _FINGERPRINTS.get(found)
    if credential is None:
        # Hashing once per distinct credential keeps SHA-256 off the hot path.
        if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
            _FINGERPRINTS.clear()
        credential = _FINGERPRINTS[found] = credential_fingerprint(request)
    return (*origin, credential)


def key_for(
    request: httpx.Request, ctx: CallContext, key: Callable[[httpx.Request], Hashable]
) -> Hashable:
    """``key(request)``, computed once per call when it is the default key.

    The retry layer and the gate both key on origin and credential; the default key is kept on
    the call's context, so the credential is fingerprinted once per call, not once per layer
    and attempt.
    """
    if key is not default_key:
        return key(request)
    cached = ctx.key
    if cached is None:
        cached = ctx.key = default_key(request)
    return cached


def verdict_on(
    request: httpx.Request, ctx: CallContext, response: httpx.Response
) -> Classification | None:
    """The verdict on ``response``, or None for a plain-HTTP success (nothing to decide).

    A ``Classify`` layer below records its verdict on the call's context (and on the response,
    for a transport between the layers that hands on another response object). Without one,
    plain HTTP never finds anything to act on in a 1xx-3xx answer, so no verdict is built for it.
    """
    last = ctx.last
    if last is not None and ctx.last_source is response:
        return last
    stored = response.extensions.get(CLASSIFICATION_KEY)
    if isinstance(stored, Classification):
        return stored
    if response.status_code < 400 and ctx.classifier is DEFAULT_CLASSIFIER:
        return None
    return classification_of(request, response, ctx)


@attrs.frozen
class RetryAfterGateStatistics:
    """A snapshot of a :class:`RetryAfterGate`.

    Attributes:
        held_keys: Keys currently held (or not yet expired).
        holds: Responses that set or extended a hold.
        waits: Requests that waited out a hold.
        waited: Total seconds requests spent waiting at the gate.
        rejected: Requests refused with ``RateLimitedError``.
    """

    held_keys: int
    holds: int
    waits: int
    waited: float
    rejected: int


@attrs.define
class _Counters:
    holds: int = 0
    waits: int = 0
    waited: float = 0.0
    rejected: int = 0


def _may_wait(max_wait: float, ctx: CallContext, now: float) -> float:
    allowed = max_wait
    if ctx.deadline is not None:
        allowed = min(allowed, ctx.deadline - now)
    # Under the retry layer's cut, the caller's own deadline: the cut is moved past the wait.
    cut = ctx.cut
    scope_deadline = anyio.current_effective_deadline() if cut is None else cut.caller_deadline
    if not math.isinf(scope_deadline):
        allowed = min(allowed, scope_deadline - anyio.current_time())
    return allowed


@attrs.frozen(kw_only=True, eq=False)
class RetryAfterGate(Layer):
    """Hold a key after a Retry-After, for every request to it.

    Attributes:
        max_wait: The longest a request waits at the gate, seconds (default 60). A longer hold
            (or one past the call's deadline or cancel scope) raises ``RateLimitedError``.
        key: ``request -> hashable``: which requests share a hold. Default: origin plus a
            fingerprint of the credential headers, so two API keys are held apart.
        clock: Time source (default: the event loop's clock).
        max_keys: Holds remembered at once (least recently used dropped first).
    """

    max_wait: float = attrs.field(default=60.0, validator=attrs.validators.ge(0.0))
    key: Callable[[httpx.Request], Hashable] | None = None
    clock: Clock | None = None
    max_keys: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    _store: MemoryStore[float] = attrs.field(init=False, repr=False)
    _counters: _Counters = attrs.field(init=False, repr=False, factory=_Counters)

    @_store.default
    def _make_store(self) -> MemoryStore[float]:
        return MemoryStore(max_keys=self.max_keys)

    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """Return a transport that applies the gate around ``inner``."""
        return _GateTransport(inner, self)

    def remaining(self, request: httpx.Request) -> float:
        """Seconds the hold on ``request``'s key still has to run (0 when not held)."""
        now = (self.clock or DEFAULT_CLOCK).now()
        until = self._store.get_now((self.key or default_key)(request), now=now)
        return 0.0 if until is None else max(until - now, 0.0)

    def statistics(self) -> RetryAfterGateStatistics:
        """Return a frozen snapshot of the gate's counters."""
        c = self._counters
        return RetryAfterGateStatistics(
            held_keys=len(self._store),
            holds=c.holds,
            waits=c.waits,
            waited=c.waited,
            rejected=c.rejected,
        )


class _GateTransport(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, layer: RetryAfterGate) -> None:
        super().__init__(inner)
        self._layer = layer
        self._clock = layer.clock or DEFAULT_CLOCK
        self._key = layer.key or default_key
        self._store = layer._store  # noqa: SLF001 - the layer's shared state
        self._counters = layer._counters  # noqa: SLF001
        # The store's entries, read on every call: is anything held at all? (A len() of the
        # store would be a Python call per request.)
        self._holds = layer._store._entries  # noqa: SLF001

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ctx = request.extensions.get(CONTEXT_KEY) or call_context(request)
        # With no hold anywhere (the common case) the key is not even computed.
        if self._holds:
            key = key_for(request, ctx, self._key)
            if self._store.get_now(key, now=self._clock.now()) is not None:
                await self._admit(request, ctx, key)
        response = await self.inner.handle_async_request(request)
        # The verdict a Classify layer below recorded (verdict_on's first answer, without a call).
        verdict = ctx.last if ctx.last_source is response else verdict_on(request, ctx, response)
        if verdict is not None and verdict.retry_after:  # None or 0: nothing to hold
            self._note(request, ctx, verdict)
        return response

    def _note(self, request: httpx.Request, ctx: CallContext, verdict: Classification) -> None:
        """Hold the key for a verdict's Retry-After, if its kind asks the client to wait."""
        delay = verdict.retry_after
        if delay is not None and delay > 0 and verdict.kind in _HOLDING_KINDS:
            self._hold(key_for(request, ctx, self._key), delay)

    def _hold(self, key: Hashable, delay: float) -> None:
        now = self._clock.now()
        wanted = now + delay
        current = self._store.get_now(key, now=now)
        until = wanted if current is None else max(current, wanted)
        grew = self._store.update_now(key, lambda u: extend(u, wanted), now=now, ttl=until - now)
        if grew:
            self._counters.holds += 1

    async def _admit(self, request: httpx.Request, ctx: CallContext, key: Hashable) -> None:
        clock = self._clock
        while True:
            now = clock.now()
            until = self._store.get_now(key, now=now)
            decision = admit(until, now=now, may_wait=_may_wait(self._layer.max_wait, ctx, now))
            if decision.verdict is Verdict.PROCEED:
                return
            if decision.verdict is Verdict.REJECT:
                self._counters.rejected += 1
                if ctx.listeners:
                    ctx.emit(
                        ev.GATE_REJECTED,
                        {ev.KEY: key_fingerprint(key), ev.RETRY_AFTER: decision.remaining},
                    )
                raise RateLimitedError(
                    f"{request.url.host} is held by Retry-After for {decision.remaining:.3g} s"
                    " more, longer than this call may wait",
                    request=request,
                    retry_after=decision.remaining,
                )
            self._counters.waits += 1
            if ctx.listeners:
                ctx.emit(ev.GATE_WAIT, {ev.KEY: key_fingerprint(key), ev.DELAY: decision.remaining})
            if ctx.cut is not None:  # the wait is not the server's time: the attempt keeps its own
                ctx.cut.extend(decision.remaining)
            await clock.sleep(decision.remaining)
            waited = max(clock.now() - now, decision.remaining)
            ctx.waited += waited
            self._counters.waited += waited
