"""The ``LockoutGuard`` layer: make sure this client never locks an account out.

A server that locks an account after N failed logins punishes every user of that account. The
guard learns from the stack's classifier which requests are logins (and whose), which answers
are failed logins and which announce an active lockout; the decisions are made by the pure
state machine in ``_lockout_core``, driven here through a
:class:`~resilience._store.StateStore`. Logins for one identity go one at a time, so concurrent
tasks with a wrong password cannot spend the budget all at once.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Coroutine, Hashable
from typing import Any

import attrs
import httpx

from . import _events as ev
from . import _lockout_core as core
from ._classification import Classification, Kind, Login
from ._clock import DEFAULT_CLOCK, Clock
from ._context import CONTEXT_KEY, CallContext, call_context, classification_of
from ._exceptions import LockedOutError, RejectedError
from ._layer import Layer, LayerTransport
from ._lockout_core import Account, Outcome, Refusal
from ._redact import key_fingerprint
from ._store import MemoryStore, StateStore, shielded_write

__all__ = ["LockoutGuard", "LockoutStatistics"]


def _share(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class LockoutStatistics:
    """A snapshot of a :class:`LockoutGuard` (counters are since it was created).

    Attributes:
        identities: Identities with recent failed logins or a lock (None for a store that
            cannot say).
        max_keys: The bound on them.
        logins: Logins let through.
        failed_logins: Of those, failed ones (``auth``).
        unknown_logins: Of those, ones the vendor may have run without saying how they went (a
            5xx, a timeout, a cut connection, a cancelled call): counted against the budget
            like failed ones.
        lockouts_seen: Responses saying the vendor's lockout is active.
        rejected: Logins refused without sending (:class:`~resilience.LockedOutError`).
        engaged: Times the guard started refusing an identity.
        waiting: Logins waiting right now for another login of the same identity to finish.
    """

    identities: int | None
    max_keys: int
    logins: int
    failed_logins: int
    unknown_logins: int
    lockouts_seen: int
    rejected: int
    engaged: int
    waiting: int


_log = logging.getLogger("resilience.lockout")

#: Kinds of answer after which the vendor may have run the login without saying how it went.
_UNANSWERED = frozenset({Kind.SERVER_ERROR, Kind.TIMEOUT, Kind.NETWORK})


def _outcome(verdict: Classification) -> Outcome:
    if verdict.kind is Kind.AUTH:
        return Outcome.FAILED
    if verdict.kind is Kind.LOCKED_OUT:
        return Outcome.LOCKED
    if verdict.is_success:
        return Outcome.SUCCEEDED
    if verdict.may_have_executed and verdict.kind in _UNANSWERED:
        return Outcome.UNKNOWN
    return Outcome.OTHER


def _raised(verdict: Classification) -> Outcome:
    # An exception instead of an answer: whatever its kind, the vendor may have run the login.
    return Outcome.UNKNOWN if verdict.may_have_executed else Outcome.OTHER


@attrs.define(kw_only=True, eq=False)
class LockoutGuard(Layer):
    """Refuse logins that could make the vendor lock the account.

    The vendor's rules (which requests are logins, the identity, the limit, the window, the
    lockout duration) come from the stack's classifier (``Classifier.login``); the guard itself
    knows no vendor. Non-login requests pass untouched.

    Attributes:
        share: Fraction of the vendor's ``max_failures`` this client may spend per window (0.5:
            5 of Get2Dial's 10 in 15 minutes). Always kept below the vendor's limit.
        clock: Time source (default: the event loop's).
        max_keys: Identities kept in memory (10 000); each is forgotten once its failures have
            left the window and any lock has ended, never before: while that many identities
            have recent failed logins, a login for one more is refused (``LockedOutError``)
            rather than forgetting another's failures and so letting its budget start again.
        store: Where accounts live; default an in-memory store of ``max_keys`` entries that
            never evicts.
    """

    share: float = attrs.field(default=0.5, converter=_share)
    clock: Clock | None = attrs.field(default=None, repr=False)
    max_keys: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    store: StateStore[Account] | None = attrs.field(default=None, repr=False)

    _store: StateStore[Account] = attrs.field(init=False, repr=False)
    _clock: Clock = attrs.field(init=False, repr=False)
    _counts: dict[str, int] = attrs.field(init=False, repr=False)
    # Calls in which a login failed or may have: its identity key, for "never retried".
    _failed: weakref.WeakKeyDictionary[CallContext, Hashable] = attrs.field(
        init=False, repr=False, factory=weakref.WeakKeyDictionary
    )

    def __attrs_post_init__(self) -> None:
        self._store = (
            self.store
            if self.store is not None
            else MemoryStore(max_keys=self.max_keys, evict=False)
        )
        self._clock = self.clock or DEFAULT_CLOCK
        names = (
            "logins",
            "failed_logins",
            "unknown_logins",
            "lockouts_seen",
            "rejected",
            "engaged",
            "waiting",
        )
        self._counts = dict.fromkeys(names, 0)

    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """Return a transport that guards the logins sent through ``inner``."""
        return _GuardTransport(inner, self)

    def statistics(self) -> LockoutStatistics:
        """A frozen snapshot of the guard's counters."""
        store = self._store
        counts = self._counts
        return LockoutStatistics(
            identities=len(store) if isinstance(store, MemoryStore) else None,
            max_keys=self.max_keys,
            logins=counts["logins"],
            failed_logins=counts["failed_logins"],
            unknown_logins=counts["unknown_logins"],
            lockouts_seen=counts["lockouts_seen"],
            rejected=counts["rejected"],
            engaged=counts["engaged"],
            waiting=counts["waiting"],
        )

    # -- driving the core ----------------------------------------------------------------

    def _refuse(
        self, request: httpx.Request, login: Login, refusal: Refusal | None, reason: str
    ) -> LockedOutError:
        self._counts["rejected"] += 1
        retry_after = refusal.retry_after if refusal is not None else None
        ctx = call_context(request)
        if ctx.listeners:
            attributes: dict[str, object] = {
                ev.KEY: key_fingerprint(login.identity),
                ev.REASON: reason,
            }
            if retry_after is not None:
                attributes[ev.RETRY_AFTER] = retry_after
            ctx.emit(ev.LOCKOUT_REJECTED, attributes)
        message = f"login refused by the lockout guard: {reason}"
        if retry_after is not None:
            message += f"; retry in {retry_after:.3f}s"
        return LockedOutError(message, request=request, retry_after=retry_after)

    async def _check(self, key: Hashable, login: Login, allowed: int) -> Refusal | None:
        now = self._clock.now()
        return core.check(await self._store.get(key, now=now), allowed, login.window, now)

    async def _record(
        self,
        request: httpx.Request,
        key: Hashable,
        login: Login,
        allowed: int,
        outcome: Outcome,
        retry_after: float | None = None,
    ) -> None:
        counts, ctx = self._counts, call_context(request)
        if outcome is Outcome.FAILED:
            counts["failed_logins"] += 1
        elif outcome is Outcome.UNKNOWN:
            counts["unknown_logins"] += 1
        elif outcome is Outcome.LOCKED:
            counts["lockouts_seen"] += 1
        if outcome in _SPENT:
            self._failed[ctx] = key
        lockout = retry_after if retry_after is not None else login.lockout
        now = self._clock.now()
        window = login.window
        # Shielded, for a bounded time: a login's outcome is written even if the call is
        # cancelled meanwhile (a store that awaits could otherwise drop a failed login, and the
        # budget would not see it).
        engaged = None
        with shielded_write(_log, "a login's outcome"):
            engaged = await self._store.update(
                key,
                lambda a: core.record(
                    a, outcome, allowed=allowed, window=window, lockout=lockout, now=now
                ),
                now=now,
                ttl=lambda a: core.ttl(a, window, now),
            )
        if engaged is not None:
            counts["engaged"] += 1
            if ctx.listeners:
                reason = "vendor lockout" if engaged.reason == "locked" else "local budget spent"
                ctx.emit(
                    ev.LOCKOUT_ENGAGED,
                    {
                        ev.KEY: key_fingerprint(login.identity),
                        ev.REASON: reason,
                        ev.RETRY_AFTER: engaged.retry_after,
                    },
                )

    async def _guarded(
        self, inner: httpx.AsyncBaseTransport, request: httpx.Request, login: Login
    ) -> httpx.Response:
        ctx = call_context(request)
        # The identity alone: one account has one budget whatever spelling of the vendor's host
        # (a trailing dot, http or https, another mount) its logins go to.
        key = login.identity
        allowed = core.budget(login.max_failures, self.share)
        if self._failed.get(ctx) == key:
            refusal = await self._check(key, login, allowed)
            raise self._refuse(request, login, refusal, _NEVER_AGAIN)
        # Refuse at once when already refused: no need to queue behind the lock for that.
        refusal = await self._check(key, login, allowed)
        if refusal is not None:
            raise self._refuse(request, login, refusal, _REASONS[refusal.reason])
        start = self._clock.now()
        counts = self._counts
        counts["waiting"] += 1
        entered = False
        try:
            async with self._store.lock(key):
                entered = True
                counts["waiting"] -= 1
                ctx.waited += max(self._clock.now() - start, 0.0)
                # Another login of this identity may have just failed: decide again.
                refusal = await self._check(key, login, allowed)
                if refusal is not None:
                    raise self._refuse(request, login, refusal, _REASONS[refusal.reason])
                if self._full(key):
                    raise self._refuse(request, login, None, _FULL)
                return await self._send(inner, request, key, login, allowed)
        finally:
            if not entered:
                counts["waiting"] -= 1

    def _full(self, key: Hashable) -> bool:
        """Whether a login for an identity not held yet could not have its failure kept."""
        store = self._store
        if not isinstance(store, MemoryStore) or store.evict:
            return False  # another store keeps what it keeps
        now = self._clock.now()
        return store.get_now(key, now=now) is None and store.full_now(now=now)

    async def _send(
        self,
        inner: httpx.AsyncBaseTransport,
        request: httpx.Request,
        key: Hashable,
        login: Login,
        allowed: int,
    ) -> httpx.Response:
        self._counts["logins"] += 1
        try:
            response = await inner.handle_async_request(request)
        except RejectedError:
            raise  # a decision below, not a login
        except Exception as exc:
            outcome = _raised(classification_of(request, exc))
            await self._record(request, key, login, allowed, outcome)
            raise
        except BaseException:
            # Cancelled (or interrupted) while the login was out: the vendor may have run it.
            await self._record(request, key, login, allowed, Outcome.UNKNOWN)
            raise
        verdict = classification_of(request, response)
        await self._record(request, key, login, allowed, _outcome(verdict), verdict.retry_after)
        return response


#: The outcomes after which the same call may not send the login again.
_SPENT = frozenset({Outcome.FAILED, Outcome.UNKNOWN, Outcome.LOCKED})
_NEVER_AGAIN = "a login that failed or may have failed is never retried"
_REASONS = {"locked": "the account is locked", "budget": "the failed-login budget is spent"}
_FULL = (
    "the guard holds as many identities with recent failed logins as max_keys allows, and"
    " would have to forget one to track another"
)


class _GuardTransport(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, layer: LockoutGuard) -> None:
        super().__init__(inner)
        self._layer = layer

    def handle_async_request(self, request: httpx.Request) -> Coroutine[Any, Any, httpx.Response]:
        # Not a coroutine itself: a request that is no login is handed on as the inner
        # transport's own coroutine, so the guard costs it no frame of its own.
        ctx = request.extensions.get(CONTEXT_KEY) or call_context(request)
        login = ctx.classifier.login(request)
        if login is None:
            return self.inner.handle_async_request(request)
        return self._layer._guarded(self.inner, request, login)  # noqa: SLF001
