"""The express lane (``resilience._express``): when a stack takes it, and that it changes nothing.

Every scenario runs twice over real loopback sockets, through two stacks built alike from fresh
layers: one express, one layered (``transport(express=False)``). Each run is written down as a
transcript (statuses, what reached the server, sleeps, verdicts, errors and the layers'
statistics), and the two transcripts must be equal.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, ClassVar

import anyio
import httpx
import pytest

import resilience
from adapters import dialnexa, dialstack, get2dial
from adapters.simulators import RunningServer
from resilience import _clock, _gate, _retry
from resilience._context import CONTEXT_KEY, url_origin
from resilience._express import ExpressTransport, RetryGateTransport
from resilience._stack import StackTransport
from resilience.testing import VirtualClock

from .stores import SuspendingStore
from .test_clock import loop_questions
from .test_retry import closed_port
from .test_retry_scripted import hits, scripted, token
from .test_telemetry_support import Otel

pytestmark = pytest.mark.anyio

__all__ = ["scripted"]  # the module-scoped server fixture

STEADY = resilience.Backoff(initial=1.0, maximum=10.0, jitter="full")
MOCK = httpx.MockTransport(lambda request: httpx.Response(200))


def standard(
    clock: resilience.Clock, classifier: resilience.Classifier | None = None
) -> resilience.Stack:
    """The standard order with every layer, a seeded rng and a breaker that trips soon."""
    return resilience.Stack(
        resilience.Retry(backoff=STEADY, clock=clock, rng=random.Random(11)),
        resilience.RetryAfterGate(clock=clock, max_wait=30.0),
        resilience.LockoutGuard(clock=clock),
        resilience.CircuitBreaker(clock=clock, failure_ratio=0.5, minimum_calls=4, open_for=60.0),
        resilience.Classify() if classifier is None else resilience.Classify(classifier=classifier),
    )


class Keyed(resilience.HTTPClassifier):
    """A ``prepare`` hook as DialStack's: a POST gets a key once, and a keyed POST may be resent."""

    plain_successes: ClassVar[bool] = True  # as DialStack's: a success is judged by its status

    def prepare(self, request: httpx.Request) -> None:
        if request.method == "POST" and "idempotency-key" not in request.headers:
            request.headers["Idempotency-Key"] = "k-" + request.url.path.rsplit("/", 1)[-1]

    def is_idempotent(self, request: httpx.Request) -> bool:
        return super().is_idempotent(request) or "idempotency-key" in request.headers


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


def test_a_retry_gate_pair_has_a_lane_of_its_own() -> None:
    stack = resilience.Stack(resilience.Retry(), resilience.RetryAfterGate())
    assert type(stack.transport(MOCK)) is RetryGateTransport
    assert type(stack.transport(MOCK, express=False)) is StackTransport
    bare = resilience.Stack(
        resilience.Retry(budget=None), resilience.RetryAfterGate(), telemetry=None
    )
    assert type(bare.transport(MOCK)) is RetryGateTransport
    for layers in (
        [resilience.Retry(deadline=10.0), resilience.RetryAfterGate()],
        [resilience.Retry(attempt_timeout=1.0), resilience.RetryAfterGate()],
        [MyRetry(), resilience.RetryAfterGate()],
        [resilience.RetryAfterGate(), resilience.Retry()],
        [resilience.Retry(), resilience.Classify()],
        [resilience.Retry(), lambda inner: inner],
    ):
        assert type(resilience.Stack(*layers).transport(MOCK)) is StackTransport, layers


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


def retry_gate(clock: resilience.Clock) -> resilience.Stack:
    """``Retry > RetryAfterGate`` alone, as the standard stack sets them."""
    return resilience.Stack(
        resilience.Retry(backoff=STEADY, clock=clock, rng=random.Random(11)),
        resilience.RetryAfterGate(clock=clock, max_wait=30.0),
    )


async def transcript(
    server: RunningServer,
    steps: list[Step],
    *,
    express: bool,
    pair: bool = False,
    classifier: resilience.Classifier | None = None,
) -> list[object]:
    """Run ``steps`` through a fresh standard stack (or the retry-gate pair); write down
    everything observable."""
    clock = VirtualClock(start=1_000.0)
    stack = retry_gate(clock) if pair else standard(clock, classifier)
    retry, gate = stack.layers[:2]
    guard, breaker = (None, None) if pair else stack.layers[2:4]
    transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
    lane = RetryGateTransport if pair else ExpressTransport
    assert (type(transport) is lane) is express
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
                written.append((response.status_code, found))
            written.append(("sent", len(hits(t)) if kind == "script" else None))
    assert isinstance(retry, resilience.Retry)
    assert retry.budget is not None
    assert isinstance(gate, resilience.RetryAfterGate)
    written += [
        ("slept", clock.sleeps),
        ("gate", gate.statistics()),
        ("budget", retry.budget.statistics()),
    ]
    if not pair:
        assert isinstance(guard, resilience.LockoutGuard)
        assert isinstance(breaker, resilience.CircuitBreaker)
        written += [
            ("breaker", breaker.statistics(url_origin(httpx.URL(server.url)))),
            ("guard", guard.statistics()),
        ]
    return written


SCENARIOS: dict[str, list[Step]] = {
    "successes": [("GET", "script", {"s": "200"})] * 3,
    "other successes": [("GET", "script", {"s": s}) for s in ("201", "204", "301", "304")],
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
    "POST refused": [("POST", "closed", {}), ("POST", "script", {"s": "201"})],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_express_and_layered_write_the_same_transcript(
    scripted: RunningServer, steps: list[Step]
) -> None:
    express = await transcript(scripted, steps, express=True)
    layered = await transcript(scripted, steps, express=False)
    assert express == layered


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_a_classifier_with_a_prepare_hook_writes_the_same_transcript(
    scripted: RunningServer, steps: list[Step]
) -> None:
    express = await transcript(scripted, steps, express=True, classifier=Keyed())
    layered = await transcript(scripted, steps, express=False, classifier=Keyed())
    assert express == layered


async def test_a_prepare_hooks_plain_success_ends_in_the_lane(scripted: RunningServer) -> None:
    transport = standard(VirtualClock(start=1_000.0), Keyed()).transport(httpx.AsyncHTTPTransport())
    assert isinstance(transport, ExpressTransport)
    async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
        first = await client.post(f"/script/{token()}", params={"s": "201"})
        t = token()
        created = await client.post(f"/script/{t}", params={"s": "201"})
        resent = await client.post(f"/script/{token()}", params={"s": "503,201"})
    # A status's plain verdict is learnt from its first answer (Classify.judge), then read.
    assert CONTEXT_KEY in first.extensions
    assert created.status_code == 201
    assert CONTEXT_KEY not in created.extensions  # the lane's plain success: no call context
    assert created.request.headers["Idempotency-Key"] == f"k-{t}"  # prepared before sending
    assert resent.status_code == 201  # keyed, so resent after the 503
    assert resilience.outcome(resent).attempts == 2


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_the_retry_gate_lane_and_its_layers_write_the_same_transcript(
    scripted: RunningServer, steps: list[Step]
) -> None:
    express = await transcript(scripted, steps, express=True, pair=True)
    layered = await transcript(scripted, steps, express=False, pair=True)
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


# -- the lane's own reads: the success count, the origin key, nesting ----------------------


async def counted(
    server: RunningServer,
    clock: resilience.Clock,
    rounds: list[int],
    *,
    express: bool,
    **breaker: Any,
) -> list[object]:
    """Successes in ``rounds`` (calls per round, 4 s apart: a new breaker slot each time)."""
    layer = resilience.CircuitBreaker(clock=clock, **breaker)
    stack = resilience.Stack(
        resilience.Retry(clock=clock),
        resilience.RetryAfterGate(clock=clock),
        layer,
        resilience.Classify(),
    )
    transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
    assert (type(transport) is ExpressTransport) is express
    seen: list[object] = []
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        for calls in rounds:
            for _ in range(calls):
                assert (await client.get(f"/script/{token()}")).status_code == 200
            circuit = layer.statistics(url_origin(httpx.URL(server.url))).circuit
            assert circuit is not None
            seen.append((circuit.calls, circuit.failures, layer.statistics().admitted))
            if isinstance(clock, VirtualClock):
                await clock.sleep(4.0)  # the default buckets are 3 s wide
    return seen


async def test_successes_across_breaker_slots_count_alike(scripted: RunningServer) -> None:
    rounds = [3, 1, 5, 2, 11]  # 12 s of window: the first round has left it by the last
    express = await counted(scripted, VirtualClock(start=1_000.0), rounds, express=True)
    layered = await counted(scripted, VirtualClock(start=1_000.0), rounds, express=False)
    assert express == layered
    assert express[-1] == (3 + 1 + 5 + 2 + 11, 0, 22)


async def test_successes_past_the_breakers_key_bound_count_alike(scripted: RunningServer) -> None:
    # max_keys is also the batch's bound on pending keys: past it, each success is written.
    clock = VirtualClock(start=1_000.0)
    express = await counted(scripted, clock, [4, 4], express=True, max_keys=1)
    layered = await counted(
        scripted, VirtualClock(start=1_000.0), [4, 4], express=False, max_keys=1
    )
    assert express == layered == [(4, 0, 4), (8, 0, 8)]


async def test_the_event_loops_own_clock_counts_every_success(
    scripted: RunningServer, anyio_backend: str
) -> None:
    # AnyioClock: on the stock asyncio loop the clock remembers, the lane reads monotonic()
    # itself; on trio (or another loop) it asks the clock every time.
    express = await counted(scripted, resilience.AnyioClock(), [6], express=True)
    layered = await counted(scripted, resilience.AnyioClock(), [6], express=False)
    assert express == layered == [(6, 0, 6)]


async def test_the_lane_reads_the_stock_loop_anyio_clock_remembers(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once AnyioClock has found this asyncio loop running, neither it nor the lane asks
    # asyncio which loop runs; on trio every success asks.
    stack = resilience.Stack(
        resilience.Retry(),
        resilience.RetryAfterGate(),
        resilience.CircuitBreaker(),
        resilience.Classify(),
    )
    transport = stack.transport(MOCK)
    assert isinstance(transport, ExpressTransport)
    asked = loop_questions(monkeypatch)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://api.test/")  # the success slot's first: the clock is asked
        asked.clear()
        for _ in range(5):
            await client.get("http://api.test/")
    if anyio_backend == "asyncio":
        assert _clock.stock_loop is asyncio.get_running_loop()
        assert asked == []
    else:
        assert len(asked) == 5
    assert stack.layers[2].statistics().admitted == 6


@pytest.mark.parametrize(
    "url",
    [
        "http://api.test/",
        "HTTP://API.Test:80/x",
        "https://api.test:443/",
        "https://api.test:8443/a?b=c",
        "http://user:secret@api.test:8080/",
        "http://[::1]:9000/",
        "https://b\u00fccher.example/",
    ],
)
async def test_the_lanes_origin_key_is_url_origin(url: str) -> None:
    breaker = resilience.CircuitBreaker()
    stack = resilience.Stack(
        resilience.Retry(), resilience.RetryAfterGate(), breaker, resilience.Classify()
    )
    async with httpx.AsyncClient(transport=stack.transport(MOCK)) as client:
        await client.get(url)
    origin = url_origin(httpx.URL(url))
    circuit = breaker.statistics(origin).circuit
    assert circuit is not None
    assert circuit.calls == 1
    # The very tuple: the lane keeps url_origin's one tuple per origin too.
    memory = breaker._memory()
    assert memory is not None
    assert next(key for key in memory._entries if key == origin) is origin


async def test_a_breaker_keyed_its_own_way_counts_alike(scripted: RunningServer) -> None:
    def by_method(request: httpx.Request) -> str:
        return request.method

    for express in (True, False):
        breaker = resilience.CircuitBreaker(key=by_method, minimum_calls=10)
        stack = resilience.Stack(
            resilience.Retry(attempts=1),
            resilience.RetryAfterGate(),
            breaker,
            resilience.Classify(),
        )
        transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
        assert (type(transport) is ExpressTransport) is express
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            await client.get(f"/script/{token()}")
            await client.get(f"/script/{token()}", params={"s": "500"})
            await client.post(f"/script/{token()}")
        get, post = breaker.statistics("GET").circuit, breaker.statistics("POST").circuit
        assert get is not None
        assert post is not None
        assert (get.calls, get.failures, post.calls, post.failures) == (2, 1, 1, 0), express


@pytest.mark.parametrize(
    "build",
    [
        lambda: resilience.Stack(
            resilience.Retry(backoff=STEADY, clock=VirtualClock(start=0.0)),
            resilience.RetryAfterGate(),
            resilience.CircuitBreaker(),
            resilience.Classify(),
        ),
        lambda: retry_gate(VirtualClock(start=0.0)),
    ],
    ids=["express", "retry-gate"],
)
async def test_a_stack_inside_a_stack_keeps_each_its_own_context(
    scripted: RunningServer, build: Callable[[], resilience.Stack]
) -> None:
    # The inner stack's lane works under the outer stack's context, and leaves it in place.
    seen = []
    for express in (True, False):
        inner = build()
        outer = resilience.Stack(resilience.Classify())
        transport = outer.transport(
            inner.transport(httpx.AsyncHTTPTransport(), express=express), express=express
        )
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            plain = await client.get(f"/script/{token()}")
            retried = await client.get(f"/script/{token()}", params={"s": "503,200"})
        for response in (plain, retried):
            assert response.extensions[CONTEXT_KEY].attempts == 0  # the outer call: no Retry
            assert response.request.extensions.get(CONTEXT_KEY) is None
        seen.append((plain.status_code, retried.status_code, resilience.outcome(retried)))
    assert seen[0] == seen[1]


async def test_an_outer_stack_that_records_sees_the_inner_lanes_attempts(
    scripted: RunningServer,
) -> None:
    # The inner stack records nothing itself (no SDK behind the globals); the outer one does,
    # and the inner attempt transport reports each attempt to it, with or without the lane.
    counts = []
    for express in (True, False):
        otel = Otel()
        inner = resilience.Stack(
            resilience.Retry(backoff=STEADY, clock=VirtualClock(start=0.0)),
            resilience.RetryAfterGate(),
            resilience.CircuitBreaker(),
            resilience.Classify(),
        )
        outer = resilience.Stack(resilience.Classify(), telemetry=otel.telemetry())
        inner_transport = inner.transport(httpx.AsyncHTTPTransport(), express=express)
        assert (type(inner_transport) is ExpressTransport) is express
        transport = outer.transport(inner_transport)
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            await client.get(f"/script/{token()}")
            await client.get(f"/script/{token()}", params={"s": "503,200"})
        kinds = sorted(str(span.kind) for span in otel.spans())
        otel.shutdown()
        counts.append(kinds)
    assert counts[0] == counts[1]
    # A CLIENT span per attempt: the outer stack's two (one per call), the inner one's 1 + 2.
    assert counts[0].count("SpanKind.CLIENT") == 5


async def test_a_plain_success_in_the_lane_reads_as_one_attempt(scripted: RunningServer) -> None:
    stack = standard(VirtualClock(start=1_000.0))
    transport = stack.transport(httpx.AsyncHTTPTransport())
    assert isinstance(transport, ExpressTransport)
    async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
        response = await client.get(f"/script/{token()}")
    # No call context is made for it: its verdict is on the response, and outcome() reads
    # what the context would have said.
    assert CONTEXT_KEY not in response.extensions
    assert CONTEXT_KEY not in response.request.extensions
    assert resilience.outcome(response) == resilience.Outcome(
        classification=response.extensions["resilience.classification"], attempts=1, waited=0.0
    )
    assert resilience.outcome(response).classification.is_success
    assert resilience.raise_for_error(response) is response


class FlakyPrepare(resilience.HTTPClassifier):
    """A classifier whose ``prepare`` hook raises on its first call, then lets calls through."""

    def prepare(self, request: httpx.Request) -> None:
        PREPARED.append(request.url.path)
        if len(PREPARED) == 1:
            raise httpx.ConnectError("prepare failed", request=request)


PREPARED: list[str] = []  # FlakyPrepare's calls (the classifier itself is frozen)


async def test_a_prepare_hook_that_raises_is_handled_alike(scripted: RunningServer) -> None:
    seen = []
    for express in (True, False):
        clock = VirtualClock(start=1_000.0)
        classifier = FlakyPrepare()
        PREPARED.clear()
        breaker = resilience.CircuitBreaker(clock=clock)
        stack = resilience.Stack(
            resilience.Retry(backoff=STEADY, clock=clock, rng=random.Random(11)),
            resilience.RetryAfterGate(clock=clock),
            breaker,
            resilience.Classify(classifier=classifier),
        )
        transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
        assert (type(transport) is ExpressTransport) is express
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            t = token()
            response = await client.get(f"/script/{t}")
        circuit = breaker.statistics(url_origin(httpx.URL(scripted.url))).circuit
        assert circuit is not None
        seen.append(
            (
                response.status_code,
                resilience.outcome(response),
                len(hits(t)),
                len(PREPARED),
                (circuit.calls, circuit.failures),
                clock.sleeps,
            )
        )
    assert seen[0] == seen[1]
    assert seen[0][0] == 200
    assert seen[0][2:4] == (1, 2)  # sent once: the first attempt failed before sending


async def test_a_circuit_opened_elsewhere_stops_the_lane_that_read_it_closed() -> None:
    # The lane reads a key's stored circuit again only when the breaker's memory has changed:
    # a circuit opened through another transport of the same layers is seen on the next call.
    breaker = resilience.CircuitBreaker(consecutive_failures=2, open_for=60.0)
    stack = resilience.Stack(
        resilience.Retry(attempts=1), resilience.RetryAfterGate(), breaker, resilience.Classify()
    )
    failing = httpx.MockTransport(lambda request: httpx.Response(503))
    lane = stack.transport(MOCK)
    assert isinstance(lane, ExpressTransport)
    async with (
        httpx.AsyncClient(transport=lane) as client,
        httpx.AsyncClient(transport=stack.transport(failing, express=False)) as other,
    ):
        for _ in range(3):
            assert (await client.get("http://api.test/")).status_code == 200
        assert lane._closed[1] == ("http", "api.test", 80)
        await other.get("http://api.test/")
        await other.get("http://api.test/")
        with pytest.raises(resilience.CircuitOpenError):
            await client.get("http://api.test/")
        await breaker.reset()
        assert (await client.get("http://api.test/")).status_code == 200
        await breaker.force_open(("http", "api.test", 80))
        with pytest.raises(resilience.CircuitOpenError):
            await client.get("http://api.test/")
    assert breaker.statistics().rejected == 2


# -- the retry-gate pair's lane ------------------------------------------------------------


async def test_the_retry_gate_lane_sends_the_first_attempt_past_both_frames(
    scripted: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    for layer_transport in (_retry._RetryTransport, _gate._GateTransport):
        layered_entry = layer_transport.handle_async_request

        def spy(self: Any, request: httpx.Request, entry: Any = layered_entry) -> Any:
            entered.append(type(self).__name__)
            return entry(self, request)

        monkeypatch.setattr(layer_transport, "handle_async_request", spy)
    transport = retry_gate(VirtualClock(start=1_000.0)).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
        plain = await client.get(f"/script/{token()}")
        assert entered == []  # the lane: neither layer's frame
        # A plain success makes no call context; outcome() reads what it would have said.
        assert CONTEXT_KEY not in plain.extensions
        assert CONTEXT_KEY not in plain.request.extensions
        verdict = resilience.HTTPClassifier().classify_response(plain.request, plain, b"")
        assert resilience.outcome(plain) == resilience.Outcome(
            classification=verdict, attempts=1, waited=0.0
        )
        assert resilience.outcome(plain).classification.is_success
        retried = await client.get(f"/script/{token()}", params={"s": "503,200"})
        assert retried.status_code == 200
        assert resilience.outcome(retried).attempts == 2
        # Retry.resume goes on below the retry's entry, through the gate's own frame.
        assert entered == ["_GateTransport"]
        await client.get(f"/script/{token()}")  # the budget is counting: the layered path
        assert entered == ["_GateTransport", "_RetryTransport", "_GateTransport"]


async def test_the_retry_gate_lane_leaves_telemetry_that_records_to_the_layers(
    scripted: RunningServer,
) -> None:
    traced = []
    for express in (True, False):
        otel = Otel()
        stack = resilience.Stack(
            resilience.Retry(backoff=STEADY, clock=VirtualClock(start=0.0)),
            resilience.RetryAfterGate(),
            telemetry=otel.telemetry(),
        )
        transport = stack.transport(httpx.AsyncHTTPTransport(), express=express)
        assert (type(transport) is RetryGateTransport) is express
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            await client.get(f"/script/{token()}")
            await client.get(f"/script/{token()}", params={"s": "503,200"})
        traced.append(sorted(str(span.kind) for span in otel.spans()))
        otel.shutdown()
    assert traced[0] == traced[1]
    # An INTERNAL span per call, a CLIENT span per attempt (1 + 2).
    assert traced[0].count("SpanKind.INTERNAL") == 2
    assert traced[0].count("SpanKind.CLIENT") == 3


async def test_a_decision_below_the_retry_gate_lane_is_raised_alike() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise resilience.RateLimitedError("held below", request=request, retry_after=5.0)

    for express in (True, False):
        clock = VirtualClock(start=1_000.0)
        stack = retry_gate(clock)
        retry = stack.layers[0]
        assert isinstance(retry, resilience.Retry)
        assert retry.budget is not None
        transport = stack.transport(httpx.MockTransport(refuse), express=express)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(resilience.RateLimitedError, match="held below"):
                await client.get("http://api.test/")
        assert clock.sleeps == []
        assert retry.budget.statistics().retries == 0


async def test_a_verdict_from_below_takes_the_retry_gate_lane_to_the_layers(
    scripted: RunningServer,
) -> None:
    # A stack under the pair puts its Classify verdict on every response: the pair's layers
    # read it (verdict_on), with or without the lane.
    seen = []
    for express in (True, False):
        clock = VirtualClock(start=1_000.0)
        below = resilience.Stack(resilience.Classify()).transport(httpx.AsyncHTTPTransport())
        transport = retry_gate(clock).transport(below, express=express)
        assert (type(transport) is RetryGateTransport) is express
        async with httpx.AsyncClient(base_url=scripted.url, transport=transport) as client:
            plain_token, retried_token = token(), token()
            plain = await client.get(f"/script/{plain_token}")
            retried = await client.get(f"/script/{retried_token}", params={"s": "503,200"})
        assert CONTEXT_KEY in plain.extensions  # the verdict from below: the layers' path
        seen.append(
            (
                resilience.outcome(plain),
                resilience.outcome(retried),
                len(hits(plain_token)),
                len(hits(retried_token)),
                clock.sleeps,
            )
        )
    assert seen[0] == seen[1]
    assert seen[0][1].attempts == 2
