"""The express lane: a standard stack's first attempt in one frame, each layer's part inline.

A built stack is a chain of transports, one per layer, and each is a coroutine frame with checks
of its own. On the common call (nothing held, not a login, the circuit closed, an answer that
needs no retry) every layer's part is a few reads. When a stack holds the standard layers in the
standard order, ``Retry > RetryAfterGate > [LockoutGuard] > CircuitBreaker > Classify``, its
outermost transport is an :class:`ExpressTransport`: it makes those reads itself, sends the
first attempt to the transport below ``Classify``, and does each layer's part of the outcome in
the order the layers would, innermost first: the classifier's, the breaker's, the gate's, the
retry's.

The lane decides nothing the layers would not:

- on the way in, anything a layer would act on (a Retry-After hold anywhere, a login, a circuit
  that is not closed, a retry budget that is counting) sends the call down the layered path
  (``StackTransport``'s) before anything is sent, as does telemetry that records;
- a classifier's own ``prepare`` hook (DialStack's idempotency key) is called where
  ``Classify`` calls it, after the entry checks and before sending; if it raises, what it
  raised is handed to the layers' handling of it;
- a plain success (a success whose verdict is its status alone, with no retry and no hold)
  ends the call in the lane's one frame, and no call context is made for it: the response
  carries its verdict, and :func:`resilience.outcome` reads one attempt and no wait from a
  response without a context, which is what the context would have said;
- anything else is handed to the layers' own methods, with a call context on the request as
  the layered path has it: the classifier's ``judge`` and ``raised``, the breaker's
  ``_unwind`` and ``_settle``, the gate's ``_note``, and ``Retry.resume``, which goes on with
  the second attempt down the layered path.

A retry with a deadline or an attempt timeout, a breaker whose state is not in memory, and any
subclass of a standard layer get no lane (the stack is an ordinary ``StackTransport``).

``Stack(Retry(), RetryAfterGate())`` alone has a lane of its own, :class:`RetryGateTransport`:
the same checks on the way in, the first attempt in its one frame, a plain-HTTP success (a
status below 400 that nothing below gave a verdict) ended there with no call context, and
anything else handed to the gate's and the retry's own code, with a call context made as the
layered path makes it.

``tests/test_express.py`` runs the same loopback scenarios through each lane and through the
layered path (``Stack.transport(express=False)``) and requires equal transcripts.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from threading import get_ident
from time import monotonic
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.metrics import _internal as _metrics_internal

from . import _clock
from ._breaker import _CLOSED, _CLOSED_STATE, CircuitBreaker, _BreakerTransport
from ._budget import IDLE
from ._classification import Classification
from ._classifier import HTTPClassifier
from ._classify import Classify, _ClassifyTransport
from ._clock import AnyioClock
from ._context import (
    _DEFAULT_PORTS,
    _ORIGINS,
    CLASSIFICATION_KEY,
    CONTEXT_KEY,
    CallContext,
    _new_origin,
)
from ._exceptions import RejectedError
from ._gate import RetryAfterGate, _GateTransport, verdict_on
from ._layer import LayerLike
from ._lockout import LockoutGuard, _GuardTransport
from ._retry import Retry, _RetryTransport, retry_verdict
from ._stack import Stack, StackTransport
from ._telemetry import CALL_KEY
from ._telemetry_attempt import AttemptTransport

__all__ = ["ExpressTransport", "RetryGateTransport", "express_transport"]

#: The standard layers and their transports, outermost first; the guard may be left out.
_STANDARD: tuple[tuple[type, type], ...] = (
    (Retry, _RetryTransport),
    (RetryAfterGate, _GateTransport),
    (LockoutGuard, _GuardTransport),
    (CircuitBreaker, _BreakerTransport),
    (Classify, _ClassifyTransport),
)


def _own(classifier: object, hook: str) -> bool:
    """Whether ``classifier``'s ``hook`` is its own, not plain HTTP's no-op."""
    method = getattr(classifier, hook)
    return getattr(method, "__func__", method) is not getattr(HTTPClassifier, hook)


def express_transport(
    layers: Sequence[LayerLike], outermost: httpx.AsyncBaseTransport, stack: Stack
) -> StackTransport | None:
    """An express transport over the chain ``outermost`` that ``layers`` built, if it has a lane."""
    if len(layers) == 2:  # Retry > RetryAfterGate, alone
        return _retry_gate_transport(layers, outermost, stack)
    with_guard = len(layers) == len(_STANDARD)
    expected = [pair for pair in _STANDARD if with_guard or pair[0] is not LockoutGuard]
    if len(layers) != len(expected):
        return None
    chain: list[Any] = []
    transport: Any = outermost
    for layer, (layer_type, transport_type) in zip(layers, expected, strict=True):
        if type(layer) is not layer_type or type(transport) is not transport_type:
            return None
        chain.append(transport)
        transport = chain[-1].inner
    retry, gate, *guard, breaker, classify = chain
    if retry._bounded or breaker._memory is None:  # noqa: SLF001
        return None
    return ExpressTransport(outermost, stack, retry, gate, bool(guard), breaker, classify)


class _Lane(StackTransport):
    """What both lanes read on the way in: telemetry's decisions, the retry budget, the holds."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        stack: Stack,
        retry: _RetryTransport,
        gate: _GateTransport,
    ) -> None:
        super().__init__(inner, stack)
        telemetry = self._telemetry
        self._decided = None if telemetry is None else telemetry._decided  # noqa: SLF001
        budget = retry._budget  # noqa: SLF001
        self._budget = None if budget is None else budget._counters  # noqa: SLF001
        self._retry = retry
        self._holds = gate._holds  # noqa: SLF001
        self._gate = gate

    def _call_context(self, request: httpx.Request) -> tuple[CallContext, object]:
        """A call context for a call leaving the lane after its first attempt, and what it replaced.

        It is put on the request as the layered path has it; ``_put_back`` gives the request
        back what it replaced.
        """
        ctx = CallContext(self._classifier)
        ctx.attempts = 1  # the retry's count: this is the first attempt
        extensions = request.extensions
        previous = extensions.get(CONTEXT_KEY)
        extensions[CONTEXT_KEY] = ctx
        return ctx, previous


def _put_back(request: httpx.Request, previous: object) -> None:
    """Give the request back the call context ``_call_context`` replaced (as StackTransport)."""
    if previous is None:
        request.extensions.pop(CONTEXT_KEY, None)
    else:
        request.extensions[CONTEXT_KEY] = previous


class ExpressTransport(_Lane):
    """A standard stack's outermost transport, with the express lane (see the module)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        stack: Stack,
        retry: _RetryTransport,
        gate: _GateTransport,
        guarded: bool,
        breaker: _BreakerTransport,
        classify: _ClassifyTransport,
    ) -> None:
        super().__init__(inner, stack, retry, gate)
        memory = breaker._memory  # noqa: SLF001
        if memory is None:
            raise ValueError("the express lane needs a breaker with its state in memory")
        # Everything else the lane reads on each call, as the layers' own hot paths read it.
        # A hook the classifier leaves as plain HTTP's no-op is not called at all.
        classifier = self._classifier
        self._login = classifier.login if guarded and _own(classifier, "login") else None
        self._prepare = classifier.prepare if _own(classifier, "prepare") else None
        self._breaker = breaker
        self._memory = memory
        self._peek = breaker._peek  # noqa: SLF001
        # (origin, key, version): the breaker key of the URLs whose parsed origin (scheme,
        # userinfo, host, port) is ``origin``, whose stored circuit the lane read admitting
        # when the memory's version was ``version``. One tuple, replaced whole.
        self._closed: tuple[object, Hashable, int] = (_NOTHING, _NOTHING, -1)
        # None: the origin key, read inline from httpx's parsed URL where this httpx has one.
        by_origin = breaker._by_origin and _PARSED_URL  # noqa: SLF001
        self._breaker_key = None if by_origin else breaker._key  # noqa: SLF001
        self._breaker_counts = breaker._layer._counts  # noqa: SLF001
        self._successes = breaker._successes  # noqa: SLF001
        self._tally = self._successes.tally
        self._bucket_width = breaker._bucket_width  # noqa: SLF001
        self._breaker_clock = breaker._clock  # noqa: SLF001
        # AnyioClock's time on the stock asyncio loop it remembers running here is
        # ``monotonic()``: read inline (see AnyioClock.now, and the lane's success below).
        self._anyio_clock = type(self._breaker_clock) is AnyioClock
        self._classify = classify
        plain = classify._plain  # noqa: SLF001 - a live dict, filled as statuses are seen
        self._plain: Mapping[int, Classification] = {} if plain is None else plain
        # The plain verdicts the lane finished a call on: successes with no retry and no hold.
        self._clean: dict[int, Classification] = {}
        # What Classify sends each attempt through; past the attempt transport too, unless an
        # outer stack records (its CALL_KEY on the request), as that transport would decide.
        self._below = classify.inner
        below = self._below
        self._untraced = below.inner if type(below) is AttemptTransport else below

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # One frame on purpose: the frames of the layers are what the lane saves.
        # Telemetry.active(), its common answer read inline: no SDK behind the global providers.
        decided = self._decided
        if (
            decided is not None
            and not (
                decided.on_globals
                and trace._TRACER_PROVIDER is None  # noqa: SLF001
                and _metrics_internal._METER_PROVIDER is None  # noqa: SLF001
            )
            and self._telemetry.active()  # type: ignore[union-attr]
        ):
            return await super().handle_async_request(request)  # it traces each layer
        # Retry: an idle budget counts nothing. Gate: nothing held. Guard: not a login.
        counters = self._budget
        if (
            (counters is not None and counters.counting_until != IDLE)
            or self._holds
            or (self._login is not None and self._login(request) is not None)
        ):
            return await super().handle_async_request(request)
        # Breaker: a stored closed circuit admits, expired or not (as its hot path). What the
        # lane last read closed stands while nothing in the breaker's memory has changed: the
        # same origin has the same key, so its circuit is read again only after a change.
        memory, closed = self._memory, self._closed
        origin: Any = request.url._uri_reference[:4]  # noqa: SLF001 - scheme, userinfo, host, port
        if origin == closed[0] and memory.version == closed[2]:
            key = closed[1]
        else:
            breaker_key = self._breaker_key
            if breaker_key is None:  # url_origin(request.url), inline (a test holds them equal)
                scheme, host = origin[0], origin[2]
                port = origin[3] or _default_port(scheme)
                key = _known_origin(host)
                if key is None or key[2] != port or key[0] != scheme:
                    key = _new_origin(scheme, host, port)
            else:  # a key of the breaker's own: asked each call, its circuit read on a change
                key, origin = breaker_key(request), _NOTHING
            if key is not closed[1] or memory.version != closed[2]:
                entry = self._peek(key)
                if entry is not None and entry[1].state is not _CLOSED_STATE:
                    return await super().handle_async_request(request)
            # Replaced whole (one store): a reader never pairs one origin with another's key.
            object.__setattr__(self, "_closed", (origin, key, memory.version))
        # The lane. A call context is made only if the call leaves it (see _general).
        self._breaker_counts.admitted += 1
        if self._prepare is not None:  # the classifier's hook, before sending, as in Classify
            unprepared = self._prepared(request)
            if unprepared is not None:
                return await self._general(request, key, unprepared)
        below = self._below if CALL_KEY in request.extensions else self._untraced
        try:
            response = await below.handle_async_request(request)
        except BaseException as exc:  # noqa: BLE001 - handed to the layers' own handling
            failure = exc
        else:
            status = response.status_code
            verdict = self._clean.get(status)
            if verdict is None:
                verdict = self._plain.get(status) if status < 400 else None
                if verdict is None or not _is_clean(verdict):
                    return await self._general(request, key, response)
                self._clean[status] = verdict
            # One attempt, no wait, a success: what outcome() reads from a response that
            # carries its verdict and no call context.
            response.extensions[CLASSIFICATION_KEY] = verdict
            # The breaker's closed-state success, counted in bulk (see resilience._batch):
            # within the slot of its last write, a key already counted only adds one.
            # AnyioClock.now's first test, inline: the stock loop it remembers runs here.
            if self._anyio_clock and _clock.stock_loop._thread_id == get_ident():  # noqa: SLF001
                now = monotonic()
            else:
                now = self._breaker_clock.now()
            tally = self._tally
            if now < tally.until and tally.key is key:
                tally.n += 1
            else:
                self._count_success(key, now)
            return response
        return await self._general(request, key, failure)

    def _prepared(self, request: httpx.Request) -> _Unprepared | None:
        """Call the classifier's ``prepare``; what it raised, for the layers' handling, or None."""
        try:
            self._prepare(request)  # type: ignore[misc]
        except BaseException as exc:  # noqa: BLE001 - raised again where Classify raises it
            return _Unprepared(exc)
        return None

    def _count_success(self, key: Hashable, now: float) -> None:
        """``Batch.count`` for a closed-state success; the tally then follows ``key``."""
        width, successes = self._bucket_width, self._successes
        slot = now // width  # BreakerPolicy.bucket_width's index, as a float
        successes.count(self._memory, key, slot, now)
        if successes.slot == slot:
            successes.follow(key, (slot + 1) * width)

    async def _general(
        self,
        request: httpx.Request,
        key: Hashable,
        sent: httpx.Response | BaseException | _Unprepared,
    ) -> httpx.Response:
        """The first attempt's outcome (``sent``), each layer's part.

        ``sent`` is what the attempt answered or raised, or what the classifier's ``prepare``
        raised before it was sent. Each part is as its layer's own code has it. The call
        context is made here and is on the request meanwhile, as the layered path has it, for
        ``Retry.resume`` and the hooks.
        """
        ctx, previous = self._call_context(request)
        try:
            try:  # the retry's part: what the layers below raise or answer
                try:  # the breaker's part
                    response, verdict = await self._classified(request, ctx, sent)
                except BaseException as exc:
                    await self._breaker._unwind(request, ctx, key, _CLOSED, exc)  # noqa: SLF001
                    raise
                if verdict.counts_as_failure:
                    await self._breaker._settle(request, key, _CLOSED, response, failed=True)  # noqa: SLF001
                else:  # a closed-state success, counted in bulk (see resilience._batch)
                    self._count_success(key, self._breaker_clock.now())
                if verdict.retry_after:  # the gate's part
                    self._gate._note(request, ctx, verdict)  # noqa: SLF001
                outcome: httpx.Response | Exception = response
            except Exception as exc:
                failed = retry_verdict(request, ctx, exc)
                if failed is None:
                    raise
                verdict, outcome = failed, exc
            if verdict.retryable:  # outside the handler: a retry's error is not "during" it
                response = await self._retry.resume(request, ctx, verdict, outcome)
        finally:
            _put_back(request, previous)
        response.extensions[CONTEXT_KEY] = ctx
        return response

    async def _classified(
        self,
        request: httpx.Request,
        ctx: CallContext,
        sent: httpx.Response | BaseException | _Unprepared,
    ) -> tuple[httpx.Response, Classification]:
        """The classifier's part: the first attempt's response and verdict, as Classify has it.

        ``sent`` is what the attempt answered or raised, or what ``prepare`` raised.
        """
        classify = self._classify
        if isinstance(sent, _Unprepared):  # outside the handler, as in Classify
            raise sent.exc
        try:
            if isinstance(sent, BaseException):
                raise sent  # noqa: TRY301 - raised again, in the layer's own handler
            response = sent
        except RejectedError:
            raise  # a decision of a layer below, not an attempt
        except Exception as exc:
            classify.raised(request, ctx, exc)
            raise
        status = response.status_code
        verdict = self._plain.get(status) if status < 400 else None
        if verdict is None:
            verdict = await classify.judge(request, ctx, response)
        answer = response.extensions
        answer[CLASSIFICATION_KEY] = verdict
        answer[CONTEXT_KEY] = ctx
        ctx.last, ctx.last_source = verdict, response
        return response, verdict


_NOTHING = object()


class _Unprepared:
    """What the classifier's ``prepare`` raised, for the layers' handling of it."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


# ``url_origin``'s two look-ups, bound once. On CPython 3.11 a method call on a name that the
# module imports compiles as an attribute load and a call (the compiler takes the name for a
# module), so ``_ORIGINS.get(host)`` in the lane would make a bound method on every call; a
# bound method kept here is called directly. Both dicts live for the process (the origin cache
# is cleared, never replaced).
_known_origin = _ORIGINS.get
_default_port = _DEFAULT_PORTS.get


def _is_clean(verdict: Classification) -> bool:
    """Whether a plain verdict ends the call where it is: a success, no retry, no hold."""
    return verdict.is_success and not (
        verdict.counts_as_failure or verdict.retryable or verdict.retry_after
    )


def _retry_gate_transport(
    layers: Sequence[LayerLike], outermost: httpx.AsyncBaseTransport, stack: Stack
) -> RetryGateTransport | None:
    """The lane of ``Stack(Retry(), RetryAfterGate())``, if these layers are that pair."""
    retry_layer, gate_layer = layers
    retry = outermost
    if (
        type(retry_layer) is not Retry
        or type(gate_layer) is not RetryAfterGate
        or type(retry) is not _RetryTransport  # what these two layers' wrap() make
        or type(retry.inner) is not _GateTransport
        or retry._bounded  # noqa: SLF001
    ):
        return None
    return RetryGateTransport(outermost, stack, retry, retry.inner)


class RetryGateTransport(_Lane):
    """``Stack(Retry(), RetryAfterGate())``'s outermost transport: its first attempt in one frame.

    The pair's layered path is three coroutine frames (the stack's, the retry's attempts, the
    gate's) around each call. This lane is one: the same idle checks as
    :class:`ExpressTransport` on the way in (telemetry that records, a retry budget that is
    counting or a hold anywhere send the call down the layered path before anything is sent),
    then the first attempt sent to the transport below the gate, and each layer's part of what
    it answers or raises as its own code has it: the gate's verdict and hold inside what the
    retry catches, then the retry's verdict, and ``Retry.resume`` for a second attempt. A plain
    HTTP success (a status below 400 that nothing below gave a verdict, with plain HTTP's
    classifier) ends the call in the lane's frame with no call context, as the full lane's does;
    anything else gets one, made as the layered path makes it.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        stack: Stack,
        retry: _RetryTransport,
        gate: _GateTransport,
    ) -> None:
        super().__init__(inner, stack, retry, gate)
        self._below = gate.inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Telemetry.active(), its common answer read inline: ExpressTransport's entry checks,
        # twice written so that neither lane pays a call for them (the transcript and
        # telemetry tests hold both lanes to their layers).
        decided = self._decided
        if (
            decided is not None
            and not (
                decided.on_globals
                and trace._TRACER_PROVIDER is None  # noqa: SLF001
                and _metrics_internal._METER_PROVIDER is None  # noqa: SLF001
            )
            and self._telemetry.active()  # type: ignore[union-attr]
        ):
            return await super().handle_async_request(request)
        counters = self._budget  # Retry: an idle budget counts nothing. Gate: nothing held.
        if (counters is not None and counters.counting_until != IDLE) or self._holds:
            return await super().handle_async_request(request)
        try:
            response = await self._below.handle_async_request(request)
        except Exception as exc:  # noqa: BLE001 - handed to the layers' own handling
            failure = exc
        else:
            # A success by plain HTTP's rules (a stack with no Classify has plain HTTP's
            # classifier) that nothing below gave a verdict: verdict_on() is None for both
            # layers, so neither has anything to do. No call context is made for it: outcome()
            # reads one attempt and no wait from a response without one, which is what the
            # context would have said.
            if response.status_code < 400 and CLASSIFICATION_KEY not in response.extensions:
                return response
            return await self._general(request, response)
        return await self._general(request, failure)

    async def _general(
        self, request: httpx.Request, sent: httpx.Response | Exception
    ) -> httpx.Response:
        """The first attempt's outcome (``sent``), the gate's part and the retry's.

        Each part is as its layer's own code has it, with the call context made here and on
        the request meanwhile, as the layered path has it.
        """
        ctx, previous = self._call_context(request)
        try:
            try:  # the retry's part: what the gate and the layers below it raise or answer
                if isinstance(sent, Exception):
                    raise sent  # noqa: TRY301 - raised again, in the layer's own handler
                response = sent
                # The gate's verdict, and the retry's: verdict_on() records on the context
                # what it classifies, so the retry's own reading of it gives the same one.
                verdict = (
                    ctx.last if ctx.last_source is response else verdict_on(request, ctx, response)
                )
                if verdict is not None and verdict.retry_after:  # the gate's part
                    self._gate._note(request, ctx, verdict)  # noqa: SLF001
                outcome: httpx.Response | Exception = response
            except Exception as exc:
                failed = retry_verdict(request, ctx, exc)
                if failed is None:
                    raise
                verdict, outcome = failed, exc
            if verdict is not None and verdict.retryable:  # outside the handler, as the retry's
                response = await self._retry.resume(request, ctx, verdict, outcome)
        finally:
            _put_back(request, previous)
        response.extensions[CONTEXT_KEY] = ctx
        return response


def _parsed_url_readable() -> bool:
    """Whether this httpx's URLs carry the parsed tuple the lane reads the origin from."""
    url = httpx.URL("https://Example.org:8443/a")
    try:
        parts = url._uri_reference  # noqa: SLF001
        return (parts[0], parts[2], parts[3]) == ("https", "example.org", 8443)
    except (AttributeError, TypeError, IndexError):  # pragma: no cover - another httpx
        return False


_PARSED_URL = _parsed_url_readable()
