"""The express lane (``resilience._express``): when a stack takes it, and that it changes nothing.

Every scenario runs twice over real loopback sockets, through two stacks built alike from fresh
layers: one express, one layered (``transport(express=False)``). Each run is written down as a
transcript (statuses, what reached the server, sleeps, verdicts, errors and the layers'
statistics), and the two transcripts must be equal.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import resilience
from adapters import dialnexa, dialstack, get2dial
from adapters.simulators import RunningServer
from resilience import _retry
from resilience._context import CONTEXT_KEY, url_origin
from resilience._express import ExpressTransport
from resilience._stack import StackTransport
from resilience.testing import VirtualClock

from .stores import SuspendingStore
from .test_retry import closed_port
from .test_retry_scripted import hits, scripted, token

pytestmark = pytest.mark.anyio

__all__ = ["scripted"]  # the module-scoped server fixture

STEADY = resilience.Backoff(initial=1.0, maximum=10.0, jitter="full")
MOCK = httpx.MockTransport(lambda request: httpx.Response(200))


def standard(clock: resilience.Clock) -> resilience.Stack:
    """The standard order with every layer, a seeded rng and a breaker that trips soon."""
    return resilience.Stack(
        resilience.Retry(backoff=STEADY, clock=clock, rng=random.Random(11)),
        resilience.RetryAfterGate(clock=clock, max_wait=30.0),
        resilience.LockoutGuard(clock=clock),
        resilience.CircuitBreaker(clock=clock, failure_ratio=0.5, minimum_calls=4, open_for=60.0),
        resilience.Classify(),
    )


# -- which stacks take the lane ------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: standard(resilience.AnyioClock()),
        dialstack.stack,
        get2dial.stack,
        dialnexa.stack,
        lambda: resilience.Stack(  # no guard: a vendor without logins
            resilience.Retry(),
            resilience.RetryAfterGate(),
            resilience.CircuitBreaker(),
            resilience.Classify(),
        ),
        lambda: resilience.Stack(
            resilience.Retry(budget=None),
            resilience.RetryAfterGate(),
            resilience.LockoutGuard(),
            resilience.CircuitBreaker(),
            resilience.Classify(),
            telemetry=None,
        ),
    ],
    ids=["standard", "dialstack", "get2dial", "dialnexa", "no-guard", "no-budget-no-telemetry"],
)
def test_standard_stacks_are_express(build: Callable[[], resilience.Stack]) -> None:
    stack = build()
    assert type(stack.transport(MOCK)) is ExpressTransport
    assert type(stack.transport(MOCK, express=False)) is StackTransport


class MyRetry(resilience.Retry):
    """A subclass may change what its transport does: it gets no lane."""


@pytest.mark.parametrize(
    "layers",
    [
        [resilience.Retry(deadline=10.0)],
        [resilience.Retry(attempt_timeout=1.0)],
        [MyRetry()],
        [resilience.Retry(), lambda inner: inner],  # a third-party transport in the chain
    ],
    ids=["deadline", "attempt-timeout", "subclass", "factory"],
)
def test_stacks_the_lane_cannot_stand_for_are_layered(layers: list[Any]) -> None:
    rest = [resilience.RetryAfterGate(), resilience.CircuitBreaker(), resilience.Classify()]
    stack = resilience.Stack(*layers, *rest)
    assert type(stack.transport(MOCK)) is StackTransport


def test_other_orders_and_shared_stores_are_layered() -> None:
    gate, breaker, classify = (
        resilience.RetryAfterGate(),
        resilience.CircuitBreaker(),
        resilience.Classify(),
    )
    swapped = resilience.Stack(gate, resilience.Retry(), breaker, classify)
    assert type(swapped.transport(MOCK)) is StackTransport
    shared = resilience.CircuitBreaker(store=SuspendingStore())
    stored = resilience.Stack(resilience.Retry(), gate, shared, classify)
    assert type(stored.transport(MOCK)) is StackTransport
    assert type(resilience.Stack(classify).transport(MOCK)) is StackTransport


# -- the lane changes nothing: transcripts of both ways ------------------------------------


Step = tuple[str, str, dict[str, str]]  # method, path kind ("script" or "closed"), query


async def transcript(server: RunningServer, steps: list[Step], *, express: bool) -> list[object]:
    """Run ``steps`` through a fresh standard stack; write down everything observable."""
    clock = VirtualClock(start=1_000.0)
    stack = standard(clock)
    retry, gate, guard, breaker, _ = stack.layers
    transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
    assert (type(transport) is ExpressTransport) is express
    written: list[object] = []
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        for method, kind, query in steps:
            t = token()
            url = f"/script/{t}" if kind == "script" else f"http://127.0.0.1:{closed_port()}/x"
            try:
                response = await client.request(method, url, params=query)
            except Exception as exc:
                context = exc.__context__
                written.append(("raised", type(exc).__name__, type(context).__name__))
            else:
                found = resilience.outcome(response)
                verdict = found.classification
                ctx = response.extensions[CONTEXT_KEY]
                written.append(
                    (response.status_code, verdict, found.attempts, found.waited, ctx.attempts)
                )
            written.append(("sent", len(hits(t)) if kind == "script" else None))
    assert isinstance(retry, resilience.Retry)
    assert retry.budget is not None
    assert isinstance(gate, resilience.RetryAfterGate)
    assert isinstance(guard, resilience.LockoutGuard)
    assert isinstance(breaker, resilience.CircuitBreaker)
    written += [
        ("slept", clock.sleeps),
        ("breaker", breaker.statistics(url_origin(httpx.URL(server.url)))),
        ("gate", gate.statistics()),
        ("budget", retry.budget.statistics()),
        ("guard", guard.statistics()),
    ]
    return written


SCENARIOS: dict[str, list[Step]] = {
    "successes": [("GET", "script", {"s": "200"})] * 3,
    "retried 5xx": [("GET", "script", {"s": "503,200"}), ("GET", "script", {"s": "502,503,200"})],
    "given up": [("GET", "script", {"s": "500"}), ("GET", "script", {"s": "200"})],
    "client errors": [("GET", "script", {"s": "404"}), ("POST", "script", {"s": "400"})],
    "POST not resent": [("POST", "script", {"s": "503"}), ("POST", "script", {"s": "201"})],
    "Retry-After held": [
        ("GET", "script", {"s": "429,200", "ra": "7"}),
        ("GET", "script", {"s": "200"}),  # waits out the rest of the hold
        ("GET", "script", {"s": "503,200", "ra": "2"}),
    ],
    "breaker trips": [("GET", "script", {"s": "500"})] * 3 + [("GET", "script", {"s": "200"})],
    "refused": [("GET", "closed", {}), ("GET", "script", {"s": "200"})],
    "budget counting": [("GET", "script", {"s": "503,200"})] + [("GET", "script", {})] * 3,
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_express_and_layered_write_the_same_transcript(
    scripted: RunningServer, steps: list[Step]
) -> None:
    express = await transcript(scripted, steps, express=True)
    layered = await transcript(scripted, steps, express=False)
    assert express == layered


async def test_the_lane_sends_the_first_attempt_past_the_retry_frame(
    scripted: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    layered_entry = _retry._RetryTransport.handle_async_request

    def spy(self: Any, request: httpx.Request) -> Any:
        entered.append(request.url.path)
        return layered_entry(self, request)

    monkeypatch.setattr(_retry._RetryTransport, "handle_async_request", spy)
    stack = standard(VirtualClock(start=1_000.0))
    transport = stack.transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
        assert (await client.get(f"/script/{token()}")).status_code == 200
        assert entered == []  # the lane: no Retry frame
        retried = await client.get(f"/script/{token()}", params={"s": "503,200"})
        assert retried.status_code == 200
        assert entered == []  # the second attempt goes on in Retry.resume, below the entry
        # The budget is counting now (a retry was weighed): the next call takes the layers.
        await client.get(f"/script/{token()}")
        assert len(entered) == 1


async def test_a_cancelled_first_attempt_counts_nothing_either_way(
    scripted: RunningServer,
) -> None:
    for express in (True, False):
        stack = standard(resilience.AnyioClock())
        breaker = stack.layers[3]
        assert isinstance(breaker, resilience.CircuitBreaker)
        transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            with anyio.move_on_after(0.2) as scope:
                await client.get(f"/hang/{token()}")
        assert scope.cancelled_caught
        circuit = breaker.statistics(url_origin(httpx.URL(scripted.url))).circuit
        assert circuit is None or (circuit.calls, circuit.failures) == (0, 0), express


async def test_a_decision_below_the_stack_is_raised_alike_and_counts_nothing() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise resilience.RateLimitedError("held below", request=request, retry_after=5.0)

    for express in (True, False):
        clock = VirtualClock(start=1_000.0)
        stack = standard(clock)
        retry, breaker = stack.layers[0], stack.layers[3]
        assert isinstance(retry, resilience.Retry)
        assert retry.budget is not None
        assert isinstance(breaker, resilience.CircuitBreaker)
        transport = stack.transport(httpx.MockTransport(refuse), express=express)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(resilience.RateLimitedError, match="held below"):
                await client.get("http://api.test/")
        circuit = breaker.statistics(("http", "api.test", 80)).circuit
        assert circuit is None or circuit.calls == 0, express
        assert breaker.statistics().admitted == 1
        assert clock.sleeps == []
        assert retry.budget.statistics().retries == 0
