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
  before anything is sent, as does telemetry that records;
- on the way out, anything but a plain success is handed to the layers' own methods: the
  classifier's ``judge`` and ``raised``, the breaker's ``_unwind`` and ``_settle``, the gate's
  ``_note``, and ``Retry.resume``, which goes on with the second attempt down the layered path.

A retry with a deadline or an attempt timeout, a breaker whose state is not in memory, and any
subclass of a standard layer get no lane (the stack is an ordinary ``StackTransport``).
``tests/test_express.py`` runs the same loopback scenarios through a lane and through the
layered path (``Stack.transport(express=False)``) and requires equal transcripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ._breaker import _CLOSED, _CLOSED_STATE, CircuitBreaker, _BreakerTransport
from ._budget import IDLE
from ._classifier import HTTPClassifier
from ._classify import Classify, _ClassifyTransport
from ._context import CLASSIFICATION_KEY, CONTEXT_KEY, CallContext, classification_of, url_origin
from ._exceptions import RejectedError
from ._gate import RetryAfterGate, _GateTransport
from ._layer import LayerLike
from ._lockout import LockoutGuard, _GuardTransport
from ._retry import Retry, _RetryTransport
from ._stack import Stack, StackTransport

__all__ = ["ExpressTransport", "express_transport"]

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
) -> ExpressTransport | None:
    """An express transport over the chain ``outermost`` that ``layers`` built, if it has a lane."""
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


class ExpressTransport(StackTransport):
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
        super().__init__(inner, stack)
        memory = breaker._memory  # noqa: SLF001
        if memory is None:
            raise ValueError("the express lane needs a breaker with its state in memory")
        # Everything the lane reads on each call, as the layers' own hot paths read it.
        budget = retry._budget  # noqa: SLF001
        self._budget = None if budget is None else budget._counters  # noqa: SLF001
        self._retry = retry
        self._holds = gate._holds  # noqa: SLF001
        self._gate = gate
        # A hook the classifier leaves as plain HTTP's no-op is not called at all.
        classifier = self._classifier
        self._login = classifier.login if guarded and _own(classifier, "login") else None
        self._prepare = classifier.prepare if _own(classifier, "prepare") else None
        self._breaker = breaker
        self._memory = memory
        self._peek = breaker._peek  # noqa: SLF001
        self._breaker_key = None if breaker._by_origin else breaker._key  # noqa: SLF001
        self._admitted = breaker._layer._counts  # noqa: SLF001
        self._successes = breaker._successes  # noqa: SLF001
        self._bucket_width = breaker._bucket_width  # noqa: SLF001
        self._breaker_clock = breaker._clock  # noqa: SLF001
        self._classify = classify
        self._plain = classify._plain  # noqa: SLF001
        self._below = classify.inner  # what Classify sends each attempt through

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0915
        # One frame on purpose: the frames of the layers are what the lane saves.
        telemetry = self._telemetry
        if telemetry is not None and telemetry.active():  # the layered path traces each layer
            return await super().handle_async_request(request)
        extensions = request.extensions
        previous = extensions.get(CONTEXT_KEY)
        ctx = extensions[CONTEXT_KEY] = CallContext(self._classifier)
        try:
            # Retry: an idle budget counts nothing. Gate: nothing held. Guard: not a login.
            counters, login = self._budget, self._login
            if (
                (counters is None or counters.counting_until == IDLE)
                and not self._holds
                and (login is None or login(request) is None)
            ):
                # Breaker: a stored closed circuit admits, expired or not (as its hot path).
                breaker_key = self._breaker_key
                key = url_origin(request.url) if breaker_key is None else breaker_key(request)
                entry = self._peek(key)
                express = entry is None or entry[1].state is _CLOSED_STATE
            else:
                express = False
            if not express:
                response = await self.inner.handle_async_request(request)
            else:
                self._admitted["admitted"] += 1
                ctx.attempts += 1
                classify = self._classify
                prepare = self._prepare
                if prepare is not None:
                    prepare(request)
                try:  # the retry's part: what the layers below raise or answer
                    try:  # the breaker's part
                        try:  # the classifier's part
                            response = await self._below.handle_async_request(request)
                        except RejectedError:
                            raise
                        except Exception as exc:
                            classify.raised(request, ctx, exc)
                            raise
                        status, plain = response.status_code, self._plain
                        verdict = plain.get(status) if plain is not None and status < 400 else None
                        if verdict is None:
                            verdict = await classify.judge(request, ctx, response)
                        answer = response.extensions
                        answer[CLASSIFICATION_KEY] = verdict
                        answer[CONTEXT_KEY] = ctx
                        ctx.last, ctx.last_source = verdict, response
                    except BaseException as exc:
                        await self._breaker._unwind(request, ctx, key, _CLOSED, exc)  # noqa: SLF001
                        raise
                    if verdict.counts_as_failure:
                        await self._breaker._settle(request, key, _CLOSED, response, failed=True)  # noqa: SLF001
                    else:  # a closed-state success, counted in bulk (see resilience._batch)
                        now = self._breaker_clock.now()
                        epoch = now // self._bucket_width  # math.floor's index, as a float
                        self._successes.count(self._memory, key, epoch, now)
                    if verdict.retry_after:  # the gate's part
                        self._gate._note(request, ctx, verdict)  # noqa: SLF001
                    outcome: httpx.Response | Exception = response
                except RejectedError:
                    ctx.attempts -= 1  # a decision of a layer below: nothing was sent
                    raise
                except Exception as exc:
                    verdict = classification_of(request, exc, ctx)
                    if not verdict.retryable:
                        raise
                    outcome = exc
                if verdict.retryable:  # outside the handler: a retry's error is not "during" it
                    response = await self._retry.resume(request, ctx, verdict, outcome)
        finally:
            if previous is None:
                extensions.pop(CONTEXT_KEY, None)
            else:
                extensions[CONTEXT_KEY] = previous
        response.extensions[CONTEXT_KEY] = ctx
        return response
