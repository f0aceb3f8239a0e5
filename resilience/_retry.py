"""``Retry``: the logical call's owner. Attempts, backoff, Retry-After, deadline and budget.

Each failed attempt is judged by :func:`resilience._retry_core.decide` from its classification;
this module only drives it: it bounds attempts in time, asks the budget, closes discarded
responses and sleeps on the injected clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

import anyio
import attrs
import httpx

try:  # httpx's multipart body: private, but what files= always makes
    from httpx._multipart import MultipartStream as _MultipartStream
except ImportError:  # pragma: no cover - another httpx
    _MultipartStream = None  # type: ignore[assignment,misc]

from . import _events as ev
from ._backoff import Backoff
from ._budget import IDLE, RetryBudget
from ._classification import Classification, Kind
from ._clock import DEFAULT_CLOCK, Clock
from ._context import CONTEXT_KEY, AttemptCut, CallContext, call_context, classification_of
from ._exceptions import DeadlineExceededError, RejectedError
from ._gate import default_key, key_for, verdict_on
from ._layer import Layer, LayerLike, LayerTransport
from ._redact import key_fingerprint
from ._retry_core import DEADLINE, NOT_RETRYABLE, Decision, decide

__all__ = ["DEFAULT_MAX_RETRY_AFTER", "Retry"]

#: The longest server-requested wait that is slept by default, seconds.
DEFAULT_MAX_RETRY_AFTER = 60.0


#: The budget key of a call not counted yet (a custom key function may return None).
_UNCOUNTED: Hashable = object()


def _default_max_retry_after(self: Retry) -> float:
    if self.deadline is None:
        return DEFAULT_MAX_RETRY_AFTER
    return min(DEFAULT_MAX_RETRY_AFTER, self.deadline)


def _positive_attempts(instance: Retry, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Retry attempts must be at least 1 (it counts every attempt, the first one too; "
            f"1 means no retry), got {value!r}"
        )


@attrs.frozen(kw_only=True, eq=False)
class Retry(Layer):
    """Send a failed request again when that is worth it and safe.

    Attributes:
        attempts: Total attempts, the first included (default 3; 1 means no retry).
        backoff: Delay between attempts (default ``Backoff()``: full jitter, 0.5 s doubling
            up to 30 s).
        deadline: Seconds for the whole call, retries and waits included (default None).
        max_retry_after: The longest server Retry-After that is waited for (default 60 s, or
            the deadline if shorter). A longer one is not slept: the response comes back at once.
        attempt_timeout: Seconds one attempt may take before it is cut and treated as a timeout
            that may have been sent (default None).
        budget: Limits retries to a share of recent traffic per key (default
            ``RetryBudget()``); None disables it.
        clock: Time source (default: the event loop's clock).
        rng: Randomness for jitter (default: a fresh ``random.Random()`` per transport).
        key: ``request -> hashable`` for the budget; default origin plus credential fingerprint.

    Raises:
        ValueError: For zero attempts, an attempt timeout above the deadline, or a Retry-After
            cap above the deadline.
    """

    attempts: int = attrs.field(default=3, validator=_positive_attempts)
    backoff: Backoff = attrs.field(factory=Backoff, validator=attrs.validators.instance_of(Backoff))
    deadline: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0.0))
    )
    max_retry_after: float = attrs.field(
        default=attrs.Factory(_default_max_retry_after, takes_self=True),
        validator=attrs.validators.ge(0.0),
    )
    attempt_timeout: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0.0))
    )
    budget: RetryBudget | None = attrs.field(factory=RetryBudget)
    clock: Clock | None = None
    rng: random.Random | None = None
    key: Callable[[httpx.Request], Hashable] | None = None

    def __attrs_post_init__(self) -> None:
        if self.deadline is None:
            return
        if self.attempt_timeout is not None and self.attempt_timeout > self.deadline:
            raise ValueError(
                f"Retry attempt_timeout ({self.attempt_timeout} s) is above the deadline "
                f"({self.deadline} s): one attempt could never use it"
            )
        if self.max_retry_after > self.deadline:
            raise ValueError(
                f"Retry max_retry_after ({self.max_retry_after} s) is above the deadline "
                f"({self.deadline} s): such a Retry-After could never be waited for"
            )

    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """Return a transport that retries through ``inner``."""
        return _RetryTransport(inner, self)

    def check(self, layers: tuple[LayerLike, ...]) -> None:
        """Refuse a second ``Retry`` in the same stack: attempts would multiply."""
        if sum(isinstance(layer, Retry) for layer in layers) > 1:
            raise ValueError("a stack may hold one Retry layer: two would multiply attempts")


def replayable(stream: object) -> bool:
    """Whether a request body can be sent again exactly as it was sent the first time.

    Bytes (``content=``, ``json=``, ``data=``) can. So can a multipart body (``files=``) whose
    files are bytes or seekable: httpx rewinds each file as it renders the body, for every send.
    A generator, or a file that cannot seek (a pipe), cannot: it would go out empty or cut.
    """
    if isinstance(stream, httpx.ByteStream):
        return True
    if _MultipartStream is not None and isinstance(stream, _MultipartStream):
        return all(_rewinds(field) for field in stream.fields)
    return False


def _rewinds(field: object) -> bool:
    file = getattr(field, "file", None)  # a DataField has none
    if file is None or isinstance(file, (str, bytes)):
        return True
    seekable = getattr(file, "seekable", None)
    try:
        return bool(callable(seekable) and seekable())
    except (OSError, ValueError):  # a closed file
        return False


def retry_verdict(
    request: httpx.Request, ctx: CallContext, exc: Exception
) -> Classification | None:
    """The verdict on an attempt that raised ``exc`` when a retry may follow; None: re-raise it.

    A :class:`RejectedError` is a decision of a layer below: nothing was sent, so the attempt is
    not counted. A stack's express lane asks this too, for the first attempt it sent.
    """
    if isinstance(exc, RejectedError):
        ctx.attempts -= 1
        return None
    verdict = classification_of(request, exc, ctx)
    return verdict if verdict.retryable else None


def _time_left(ctx: CallContext, now: float) -> float:
    left = math.inf if ctx.deadline is None else ctx.deadline - now
    scope_deadline = anyio.current_effective_deadline()
    if not math.isinf(scope_deadline):
        left = min(left, scope_deadline - anyio.current_time())
    return left


class _RetryTransport(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, layer: Retry) -> None:
        super().__init__(inner)
        self._layer = layer
        self._clock = layer.clock or DEFAULT_CLOCK
        self._rng = layer.rng or random.Random()
        self._key = layer.key or default_key
        self._budget = layer.budget
        self._deadline = layer.deadline
        self._bounded = layer.deadline is not None or layer.attempt_timeout is not None

    def handle_async_request(self, request: httpx.Request) -> Coroutine[Any, Any, httpx.Response]:
        # Not a coroutine itself: what comes before the first attempt takes no await, and the
        # attempts are the coroutine of _attempts(), which a stack's express lane also resumes.
        ctx = request.extensions.get(CONTEXT_KEY) or call_context(request)
        clock, budget = self._clock, self._budget
        key: Hashable = _UNCOUNTED  # the budget's key, once this call is counted
        # An idle budget counts nothing (see RetryBudget.counting); while it stays idle, its
        # deadline reads IDLE and the clock is not even read.
        if budget is not None and budget._counters.counting_until != IDLE:  # noqa: SLF001
            now = clock.now()
            if budget.counting(now):
                key = key_for(request, ctx, self._key)
                budget.deposit(key, now=now)
        if self._deadline is not None:
            deadline = clock.now() + self._deadline
            if ctx.deadline is None or deadline < ctx.deadline:
                ctx.deadline = deadline
        return self._attempts(request, ctx, key, 0, None)

    async def _attempts(
        self,
        request: httpx.Request,
        ctx: CallContext,
        key: Hashable,
        attempt: int,
        previous: float | None,
    ) -> httpx.Response:
        """The attempts after ``attempt`` (0: all of them), the last backoff ``previous``."""
        clock = self._clock
        while True:
            if ctx.deadline is not None and clock.now() >= ctx.deadline:
                raise self._deadline_exceeded(request, ctx, attempt)
            attempt += 1
            ctx.attempts += 1
            try:
                if self._bounded or ctx.deadline is not None:
                    response = await self._bounded_attempt(request, ctx, attempt)
                else:
                    response = await self.inner.handle_async_request(request)
            except Exception as exc:
                failed = retry_verdict(request, ctx, exc)
                if failed is None:
                    raise
                verdict = failed
                key, backoff, decision = self._weigh(
                    request, ctx, key, verdict, attempt, previous, responded=False
                )
                if decision is None:
                    raise
            else:
                # The verdict a Classify layer below recorded, else verdict_on()'s.
                verdict_or_none = (
                    ctx.last if ctx.last_source is response else verdict_on(request, ctx, response)
                )
                if verdict_or_none is None or not verdict_or_none.retryable:
                    return response
                verdict = verdict_or_none
                key, backoff, decision = self._weigh(
                    request, ctx, key, verdict, attempt, previous, responded=True
                )
                if decision is None:
                    return response
                await response.aclose()
            previous = backoff
            await self._pause(ctx, decision, attempt, verdict)

    async def resume(
        self,
        request: httpx.Request,
        ctx: CallContext,
        verdict: Classification,
        outcome: httpx.Response | Exception,
    ) -> httpx.Response:
        """Go on after a first attempt that a stack's express lane sent (``resilience._express``).

        ``outcome`` is what the attempt answered or raised, ``verdict`` its retryable verdict.
        Returns what the retries end with, or re-raises ``outcome`` when none is made.
        """
        responded = isinstance(outcome, httpx.Response)
        key, backoff, decision = self._weigh(
            request, ctx, _UNCOUNTED, verdict, 1, None, responded=responded
        )
        if decision is None:
            if isinstance(outcome, httpx.Response):
                return outcome
            raise outcome
        if isinstance(outcome, httpx.Response):
            await outcome.aclose()
        await self._pause(ctx, decision, 1, verdict)
        return await self._attempts(request, ctx, key, 1, backoff)

    async def _pause(
        self, ctx: CallContext, decision: Decision, attempt: int, verdict: Classification
    ) -> None:
        """Wait before the next attempt, as ``decision`` says."""
        if ctx.listeners:
            ctx.emit(
                ev.RETRY_SCHEDULED,
                {
                    ev.DELAY: decision.delay,
                    ev.DELAY_SOURCE: decision.source,
                    ev.ATTEMPT: attempt,
                    ev.KIND: verdict.kind.value,
                    **ev.vendor_ids(verdict),
                },
            )
        await self._clock.sleep(decision.delay)
        ctx.waited += decision.delay

    def _weigh(
        self,
        request: httpx.Request,
        ctx: CallContext,
        key: Hashable,
        verdict: Classification,
        attempt: int,
        previous: float | None,
        *,
        responded: bool,
    ) -> tuple[Hashable, float, Decision | None]:
        """After a retryable failure: the budget key, the backoff, and the retry decision.

        The decision is None when the retry is not to be made (refused, or over budget).
        """
        key = self._counted(request, ctx, key)
        backoff = self._layer.backoff.delay(attempt, self._rng, previous)
        decision = self._decide(request, ctx, verdict, attempt, backoff, responded=responded)
        if not self._allowed(decision, ctx, key, attempt, verdict):
            return key, backoff, None
        return key, backoff, decision

    def _counted(self, request: httpx.Request, ctx: CallContext, key: Hashable) -> Hashable:
        """The call's budget key: a call begun while the budget was idle is counted now."""
        budget = self._budget
        if budget is None or key is not _UNCOUNTED:
            return key
        key = key_for(request, ctx, self._key)
        budget.deposit(key, now=self._clock.now())
        return key

    def _decide(
        self,
        request: httpx.Request,
        ctx: CallContext,
        verdict: Classification,
        attempt: int,
        backoff: float,
        *,
        responded: bool,
    ) -> Decision:
        layer = self._layer
        return decide(
            verdict,
            attempt=attempt,
            attempts=layer.attempts,
            idempotent=ctx.classifier.is_idempotent(request),
            replayable=replayable(request.stream),
            responded=responded,
            backoff=backoff,
            max_retry_after=layer.max_retry_after,
            time_left=_time_left(ctx, self._clock.now()),
        )

    def _allowed(
        self,
        decision: Decision,
        ctx: CallContext,
        key: Hashable,
        attempt: int,
        verdict: Classification,
    ) -> bool:
        """Whether to go on with a retry ``decision``; report why not when it is refused."""
        if not decision.retry:
            if ctx.listeners and decision.reason != NOT_RETRYABLE:
                attributes = {
                    ev.ATTEMPT: attempt,
                    ev.KIND: verdict.kind.value,
                    **ev.vendor_ids(verdict),
                }
                ctx.emit(ev.RETRY_GIVEN_UP, {**attributes, ev.REASON: decision.reason})
                if decision.reason == DEADLINE:
                    ctx.emit(ev.DEADLINE_EXCEEDED, {**attributes, ev.REASON: "wait too long"})
            return False
        budget = self._budget
        if budget is not None and not budget.withdraw(key, now=self._clock.now()):
            if ctx.listeners:
                attributes = {
                    ev.ATTEMPT: attempt,
                    ev.KIND: verdict.kind.value,
                    **ev.vendor_ids(verdict),
                }
                ctx.emit(ev.BUDGET_EXHAUSTED, {**attributes, ev.KEY: key_fingerprint(key)})
                ctx.emit(ev.RETRY_GIVEN_UP, {**attributes, ev.REASON: "budget_exhausted"})
            return False
        return True

    async def _bounded_attempt(
        self, request: httpx.Request, ctx: CallContext, attempt: int
    ) -> httpx.Response:
        """One attempt, cut by a cancel scope at the per-attempt timeout or the deadline."""
        limit = math.inf if self._layer.attempt_timeout is None else self._layer.attempt_timeout
        by_deadline = False
        if ctx.deadline is not None:
            left = ctx.deadline - self._clock.now()
            if left <= limit:
                limit, by_deadline = left, True
        start = anyio.current_time()
        cap = math.inf if ctx.deadline is None else start + left
        caller_deadline = anyio.current_effective_deadline()
        outer = ctx.cut  # a Retry further out, when layers are composed by hand
        with anyio.CancelScope(deadline=start + limit) as scope:
            cut = ctx.cut = AttemptCut(
                scope, by_timeout=not by_deadline, cap=cap, caller_deadline=caller_deadline
            )
            try:
                return await self.inner.handle_async_request(request)
            finally:
                ctx.cut = outer
        # Only reached when the scope cut the attempt: it may have been sent, so what is raised
        # is a timeout, never DeadlineExceededError (a RejectedError: "nothing was sent"). A
        # gate's wait below may have moved an attempt_timeout cut as far as the deadline.
        if not cut.by_timeout:
            if ctx.listeners:
                ctx.emit(ev.DEADLINE_EXCEEDED, {ev.ATTEMPT: attempt, ev.REASON: "cut in flight"})
            message = (
                f"the call's deadline ran out during attempt {attempt}, which may have been sent"
            )
            reason = "deadline ran out during the attempt (maybe sent)"
            retryable = failure = False  # nothing more may be sent; one caller's budget
        else:
            message = f"attempt timed out after {limit:g} s"
            reason = f"attempt timeout after {limit:g} s (maybe sent)"
            retryable = failure = True
        exc = httpx.TimeoutException(message, request=request)
        ctx.record(
            exc,
            Classification(
                kind=Kind.TIMEOUT,
                retryable=retryable,
                counts_as_failure=failure,
                may_have_executed=True,
                vendor=ctx.classifier.name,
                reason=reason,
            ),
        )
        raise exc

    def _deadline_exceeded(
        self, request: httpx.Request, ctx: CallContext, attempt: int
    ) -> DeadlineExceededError:
        if ctx.listeners:
            ctx.emit(ev.DEADLINE_EXCEEDED, {ev.ATTEMPT: attempt, ev.REASON: "deadline reached"})
        return DeadlineExceededError(
            f"the call's deadline ran out after {attempt} attempt(s)", request=request
        )
