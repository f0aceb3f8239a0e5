"""The ``CircuitBreaker`` layer: stop calling a server that is down, and probe its recovery.

The decisions are made by the pure state machine in ``_breaker_core``; this module drives it
through a :class:`~resilience._store.StateStore` (in memory by default), reads each attempt's
verdict from the inner ``Classify`` layer, and reports state changes to listeners and telemetry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from functools import partial

import attrs
import httpx

from . import _breaker_core as core
from . import _events as ev
from ._batch import Batch
from ._breaker_core import BreakerPolicy, Change, Circuit, CircuitState, Decision, Ticket
from ._clock import DEFAULT_CLOCK, Clock
from ._context import (
    CONTEXT_KEY,
    CallContext,
    call_context,
    classification_of,
    cut_by_attempt_timeout,
    url_origin,
)
from ._exceptions import CircuitOpenError, RejectedError
from ._layer import Layer, LayerTransport
from ._redact import key_fingerprint
from ._store import MemoryStore, StateStore, shielded_write

__all__ = [
    "BreakerStatistics",
    "CircuitBreaker",
    "CircuitState",
    "CircuitStatistics",
    "StateListener",
    "origin_key",
]

_log = logging.getLogger("resilience.breaker")

#: A state-change listener: ``callback(key, old_state, new_state)``.
StateListener = Callable[[Hashable, CircuitState, CircuitState], None]


def origin_key(request: httpx.Request) -> Hashable:
    """The default breaker key: the request's origin, ``(scheme, host, port)``.

    The port is filled in for the scheme's default, so ``https://a`` and ``https://a:443`` share
    a circuit. Userinfo, path and query never take part.
    """
    return url_origin(request.url)


@attrs.frozen(kw_only=True)
class CircuitStatistics:
    """A snapshot of one key's circuit.

    Attributes:
        state: The state a call arriving now would find (an open circuit whose time is up
            reads as half-open).
        calls: Calls counted in the current window (closed state).
        failures: Failures among them.
        failure_ratio: ``failures / calls`` (0.0 without calls).
        consecutive_failures: Failures in a row.
        trips: Trips since the last recovery (sets the open period).
        retry_after: Seconds until an open circuit lets a probe through, or None.
        probes_in_flight: Half-open probes under way.
        forced: Whether the state is held by hand.
    """

    state: CircuitState
    calls: int
    failures: int
    failure_ratio: float
    consecutive_failures: int
    trips: int
    retry_after: float | None
    probes_in_flight: int
    forced: bool


@attrs.frozen(kw_only=True)
class BreakerStatistics:
    """A snapshot of a :class:`CircuitBreaker` (counters are since it was created).

    Attributes:
        keys: Circuits held in memory (None for a store that cannot say).
        max_keys: The bound on them.
        admitted: Calls let through.
        rejected: Calls refused with :class:`~resilience.CircuitOpenError`.
        probes: Calls let through as half-open probes.
        opened: Times a circuit opened (tripped, or forced).
        closed: Times a circuit closed again.
        circuit: The requested key's circuit, or None (no key given, or a store that cannot be
            read without awaiting).
    """

    keys: int | None
    max_keys: int
    admitted: int
    rejected: int
    probes: int
    opened: int
    closed: int
    circuit: CircuitStatistics | None = None


class _Counts:
    """A breaker's running counters (``BreakerStatistics`` reads them).

    Slots, not a dict keyed by name: ``admitted`` is counted on every call's hot path.
    """

    __slots__ = ("admitted", "closed", "opened", "probes", "rejected")

    def __init__(self) -> None:
        self.admitted = self.rejected = self.probes = self.opened = self.closed = 0


@attrs.define(kw_only=True, eq=False)
class CircuitBreaker(Layer):
    """Reject calls to a key (an origin by default) while its server keeps failing.

    Only verdicts with ``counts_as_failure`` count as failures: server errors, network errors
    and timeouts. 4xx answers, 429 and cancellations never do. The defaults suit an API client
    making a few to a few hundred calls a second to one origin.

    Attributes:
        failure_ratio: Trip when this share of the calls in the window failed (0.5).
        minimum_calls: ...but only with at least this many calls in the window (20).
        window: Seconds of the sliding window (30.0), kept in 10 buckets of 3 s.
        consecutive_failures: Also trip after this many failures in a row, whatever the traffic
            (10; 0 turns it off).
        open_for: Seconds a tripped circuit rejects before probing (10.0); doubled on each trip
            in a row ...
        max_open_for: ... up to this cap (120.0); back to ``open_for`` after a recovery.
        half_open_probes: Probes let through half-open; the circuit closes once that many
            succeeded and re-opens on the first failure (3).
        key: ``request -> hashable key``; default :func:`origin_key` (scheme, host, port).
        clock: Time source (default: the event loop's).
        max_keys: Circuits kept in memory (10 000); idle ones expire after ``window`` (longer
            while open), and the least recently used go first beyond the bound.
        store: Where circuits live; default an in-memory store of ``max_keys`` entries.
    """

    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window: float = 30.0
    consecutive_failures: int = 10
    open_for: float = 10.0
    max_open_for: float = 120.0
    half_open_probes: int = 3
    key: Callable[[httpx.Request], Hashable] | None = None
    clock: Clock | None = attrs.field(default=None, repr=False)
    max_keys: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    store: StateStore[Circuit] | None = attrs.field(default=None, repr=False)

    _policy: BreakerPolicy = attrs.field(init=False, repr=False)
    _store: StateStore[Circuit] = attrs.field(init=False, repr=False)
    _clock: Clock = attrs.field(init=False, repr=False)
    _key: Callable[[httpx.Request], Hashable] = attrs.field(init=False, repr=False)
    _listeners: list[StateListener] = attrs.field(init=False, repr=False, factory=list)
    _counts: _Counts = attrs.field(init=False, repr=False)
    _successes: Batch[Circuit] = attrs.field(init=False, repr=False)
    _bucket_width: float = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._policy = BreakerPolicy(
            failure_ratio=self.failure_ratio,
            minimum_calls=self.minimum_calls,
            window=self.window,
            consecutive_failures=self.consecutive_failures,
            open_for=self.open_for,
            max_open_for=self.max_open_for,
            half_open_probes=self.half_open_probes,
        )
        self._store = self.store if self.store is not None else MemoryStore(max_keys=self.max_keys)
        self._clock = self.clock or DEFAULT_CLOCK
        self._key = self.key or origin_key
        self._counts = _Counts()
        policy = self._policy
        self._bucket_width = policy.bucket_width
        self._successes = Batch(
            self.max_keys,
            apply=partial(core.with_successes, policy),  # partials: no frame of their own
            ttl=partial(core.ttl, policy),
        )

    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """Return a transport that applies this breaker around ``inner``."""
        return _BreakerTransport(inner, self)

    # -- keys, listeners, statistics -----------------------------------------------------

    def key_of(self, target: httpx.Request | httpx.URL | str) -> Hashable:
        """The key a request (or a URL, as a GET) would use, for the manual controls."""
        if not isinstance(target, httpx.Request):
            target = httpx.Request("GET", target)
        return self._key(target)

    def add_listener(self, callback: StateListener) -> None:
        """Call ``callback(key, old_state, new_state)`` on every state change.

        The key is the breaker's own key (an origin by default): hash it before it leaves the
        process. Telemetry events carry a fingerprint of it only. A listener that raises is
        logged and does not affect the call.
        """
        self._listeners.append(callback)

    def remove_listener(self, callback: StateListener) -> None:
        """Stop calling ``callback`` (ValueError if it was never added)."""
        self._listeners.remove(callback)

    def statistics(self, key: Hashable | None = None) -> BreakerStatistics:
        """A frozen snapshot of the counters and, given a key, of its circuit."""
        store = self._store
        if not isinstance(store, MemoryStore):
            keys, circuit = None, None
        else:
            keys, circuit = len(store), None
            if key is not None:
                now = self._clock.now()
                stored = store.get_now(key, now=now)
                pending = self._successes.pending(key)
                if pending:  # successes counted in bulk, not yet written: read, not written
                    stored, _ = core.record_successes(
                        self._policy, stored, pending, self._successes.now
                    )
                circuit = _snapshot(self._policy, stored, now)
        counts = self._counts
        return BreakerStatistics(
            keys=keys,
            max_keys=self.max_keys,
            admitted=counts.admitted,
            rejected=counts.rejected,
            probes=counts.probes,
            opened=counts.opened,
            closed=counts.closed,
            circuit=circuit,
        )

    # -- manual control ------------------------------------------------------------------

    async def force_open(self, key: Hashable) -> None:
        """Hold ``key``'s circuit open (every call rejected) until reset or forced closed."""
        await self._force(key, CircuitState.OPEN)

    async def force_closed(self, key: Hashable) -> None:
        """Hold ``key``'s circuit closed (failures not counted) until reset or forced open."""
        await self._force(key, CircuitState.CLOSED)

    async def reset(self, key: Hashable | None = None) -> None:
        """Forget ``key``'s circuit (or every circuit): it starts closed, trips back to zero."""
        if key is not None:
            await self._force(key, None)
            return
        self._successes.clear()
        await self._store.clear()

    async def _force(self, key: Hashable, state: CircuitState | None) -> None:
        self._successes.clear(key)  # counted before the reset: they belong to no circuit now
        now = self._clock.now()
        change = await self._store.update(
            key, lambda c: core.force(c, state, now), now=now, ttl=self._ttl(now)
        )
        if change is not None:
            self._changed(key, change, None)

    # -- driving the core ----------------------------------------------------------------

    def _ttl(self, now: float) -> Callable[[Circuit], float]:
        policy = self._policy

        def ttl(circuit: Circuit) -> float:
            if circuit.state is CircuitState.CLOSED and not circuit.forced:
                return policy.window  # the common case, without a call into the core
            return core.ttl(policy, circuit, now)

        return ttl

    def _changed(self, key: Hashable, change: Change, request: httpx.Request | None) -> None:
        if change.new is CircuitState.OPEN:
            self._counts.opened += 1
        elif change.new is CircuitState.CLOSED:
            self._counts.closed += 1
        for listener in tuple(self._listeners):
            _notify(listener, key, change)
        if request is not None:
            ctx = call_context(request)
            if ctx.listeners:
                ctx.emit(
                    ev.BREAKER_STATE_CHANGED,
                    {
                        ev.KEY: key_fingerprint(key),
                        ev.BREAKER_STATE: change.new.value,
                        ev.PREVIOUS_STATE: change.old.value,
                    },
                )

    def _reject(
        self, request: httpx.Request, key: Hashable, retry_after: float | None
    ) -> CircuitOpenError:
        self._counts.rejected += 1
        ctx = call_context(request)
        if ctx.listeners:
            attributes: dict[str, object] = {ev.KEY: key_fingerprint(key)}
            if retry_after is not None:
                attributes[ev.RETRY_AFTER] = retry_after
            ctx.emit(ev.BREAKER_REJECTED, attributes)
        if retry_after is None:
            message = "circuit breaker is open"
        else:
            message = f"circuit breaker is open; retry in {retry_after:.3f}s"
        return CircuitOpenError(message, request=request, retry_after=retry_after)

    def _memory(self) -> MemoryStore[Circuit] | None:
        """The in-memory store, which the hot path drives synchronously (no await needed)."""
        store = self._store
        return store if isinstance(store, MemoryStore) else None

    async def _admit(self, request: httpx.Request, key: Hashable) -> Ticket:
        """Admit a call to ``key`` through a store that is awaited (raises CircuitOpenError).

        The in-memory store is driven by :meth:`_admit_now` instead.
        """
        now = self._clock.now()
        decision = core.peek(await self._store.get(key, now=now), now)
        if decision is None:
            decision = await self._store.update(
                key, self._admission(now), now=now, ttl=self._ttl(now)
            )
        return self._ticket(request, key, decision)

    def _admit_now(
        self, request: httpx.Request, key: Hashable, memory: MemoryStore[Circuit]
    ) -> Ticket:
        """:meth:`_admit` for the in-memory store, without a coroutine (an open circuit's path)."""
        now = self._clock.now()
        decision = core.peek(memory.get_now(key, now=now), now)
        if decision is None:
            decision = memory.update_now(key, self._admission(now), now=now, ttl=self._ttl(now))
        return self._ticket(request, key, decision)

    def _admission(self, now: float) -> Callable[[Circuit | None], tuple[Circuit | None, Decision]]:
        policy = self._policy

        def transition(c: Circuit | None) -> tuple[Circuit | None, Decision]:
            return core.admit(policy, c, now)

        return transition

    def _ticket(self, request: httpx.Request, key: Hashable, decision: Decision) -> Ticket:
        """The ticket ``decision`` gives, counted; raises :class:`CircuitOpenError` if none."""
        if decision.change is not None:
            self._changed(key, decision.change, request)
        ticket = decision.ticket
        if ticket is None:
            raise self._reject(request, key, decision.retry_after)
        counts = self._counts
        counts.admitted += 1
        if ticket.probe:
            counts.probes += 1
        return ticket

    async def _record(
        self, request: httpx.Request, key: Hashable, ticket: Ticket, failed: bool
    ) -> None:
        now = self._clock.now()
        memory = self._memory()
        if memory is not None:  # every success before this verdict is counted before it
            self._successes.flush(memory, key, now)
        policy = self._policy

        def transition(c: Circuit | None) -> tuple[Circuit | None, Change | None]:
            return core.record(policy, c, ticket, failed, now)

        ttl = self._ttl(now)
        change = None
        if memory is not None:
            change = memory.update_now(key, transition, now=now, ttl=ttl)
        elif failed or ticket.probe:
            # Shielded, for a bounded time: a failure or a probe's verdict is written even if
            # the call is cancelled meanwhile (a lost probe verdict would hold its slot).
            with shielded_write(_log, "a verdict"):
                change = await self._store.update(key, transition, now=now, ttl=ttl)
        else:  # a plain success: not worth holding a cancelled caller for
            change = await self._store.update(key, transition, now=now, ttl=ttl)
        if change is not None:
            self._changed(key, change, request)

    async def _release(self, key: Hashable, ticket: Ticket) -> None:
        if not ticket.probe:
            return
        # Shielded, for a bounded time: a cancelled probe gives its slot back even if the store
        # has to await.
        with shielded_write(_log, "a probe slot's release"):
            now = self._clock.now()
            await self._store.update(
                key, lambda c: core.release(c, ticket), now=now, ttl=self._ttl(now)
            )


def _notify(listener: StateListener, key: Hashable, change: Change) -> None:
    try:
        listener(key, change.old, change.new)
    except Exception:  # noqa: BLE001 - a listener's bug must not fail the call
        _log.exception("circuit breaker state listener %r failed", listener)


def _snapshot(policy: BreakerPolicy, circuit: Circuit | None, now: float) -> CircuitStatistics:
    if circuit is None:
        circuit = Circuit(born=now)
    calls, failures = core.window_counts(policy, circuit, now)
    state = circuit.state
    if state is CircuitState.OPEN and not circuit.forced and now >= circuit.open_until:
        state = CircuitState.HALF_OPEN
    return CircuitStatistics(
        state=state,
        calls=calls,
        failures=failures,
        failure_ratio=failures / calls if calls else 0.0,
        consecutive_failures=circuit.consecutive,
        trips=circuit.trips,
        retry_after=core.retry_after(circuit, now) if state is CircuitState.OPEN else None,
        probes_in_flight=circuit.probes if state is CircuitState.HALF_OPEN else 0,
        forced=circuit.forced,
    )


_CLOSED = Ticket(None, 0, probe=False)
_CLOSED_STATE = CircuitState.CLOSED  # a module global: a class-level enum lookup is slow


class _BreakerTransport(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, layer: CircuitBreaker) -> None:
        super().__init__(inner)
        self._layer = layer
        self._memory = memory = layer._memory()  # noqa: SLF001 - the layer's own transport
        # The (expires, circuit) entry of a key in a MemoryStore, expired or not, read without
        # a Python call (nothing is ever found for another store: it is asked in _admit()).
        nothing: dict[Hashable, tuple[float, Circuit]] = {}
        self._peek = (nothing if memory is None else memory._entries).get  # noqa: SLF001
        self._key = layer._key  # noqa: SLF001
        self._by_origin = self._key is origin_key
        self._clock = layer._clock  # noqa: SLF001
        self._successes = layer._successes  # noqa: SLF001
        self._bucket_width = layer._bucket_width  # noqa: SLF001

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        layer, memory = self._layer, self._memory
        ctx = request.extensions.get(CONTEXT_KEY) or call_context(request)
        key = url_origin(request.url) if self._by_origin else self._key(request)
        # A stored closed circuit admits whether or not it has expired (an expired one reads as
        # a fresh closed circuit), so the hot path needs neither the clock nor the core.
        entry = self._peek(key)
        if memory is None:
            ticket = await layer._admit(request, key)  # noqa: SLF001
        elif entry is None or entry[1].state is _CLOSED_STATE:
            ticket = _CLOSED
            layer._counts.admitted += 1  # noqa: SLF001
        else:  # open or half-open: decided without awaiting, so a refusal costs no coroutine
            ticket = layer._admit_now(request, key, memory)  # noqa: SLF001
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as exc:
            await self._unwind(request, ctx, key, ticket, exc)
            raise
        verdict = ctx.last  # what classification_of() answers first, without the call
        if verdict is None or ctx.last_source is not response:
            verdict = classification_of(request, response, ctx)
        failed = verdict.counts_as_failure
        if failed or ticket.probe or memory is None:
            await self._settle(request, key, ticket, response, failed=failed)
        else:  # the hot path: a closed-state success, counted in bulk (see resilience._batch)
            now = self._clock.now()
            epoch = now // self._bucket_width  # BreakerPolicy.bucket_width's index, a float
            self._successes.count(memory, key, epoch, now)
        return response

    async def _unwind(
        self,
        request: httpx.Request,
        ctx: CallContext,
        key: Hashable,
        ticket: Ticket,
        exc: BaseException,
    ) -> None:
        """Settle ``ticket`` for an attempt that raised ``exc`` (the caller re-raises it)."""
        layer = self._layer
        if isinstance(exc, RejectedError):  # a decision below, not an attempt
            await layer._release(key, ticket)  # noqa: SLF001
        elif isinstance(exc, Exception):
            failed = classification_of(request, exc, ctx).counts_as_failure
            await layer._record(request, key, ticket, failed)  # noqa: SLF001
        elif cut_by_attempt_timeout(ctx, exc):  # the server was too slow: a timeout
            await layer._record(request, key, ticket, failed=True)  # noqa: SLF001
        else:  # cancelled: no verdict
            await layer._release(key, ticket)  # noqa: SLF001

    async def _settle(
        self,
        request: httpx.Request,
        key: Hashable,
        ticket: Ticket,
        response: httpx.Response,
        *,
        failed: bool,
    ) -> None:
        """Record an attempt that answered, past the hot path (a failure, a probe, a store)."""
        try:
            await self._layer._record(request, key, ticket, failed)  # noqa: SLF001
        except BaseException:  # cancelled while a store wrote: the response goes nowhere
            with shielded_write(_log, "a response's close"):  # bounded, as a write is
                await response.aclose()
            raise
