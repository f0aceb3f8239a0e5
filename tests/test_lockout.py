"""LockoutGuard through real loopback sockets, on asyncio and trio, in virtual time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import anyio
import anyio.to_thread
import httpx
import pytest

import resilience
from adapters.simulators import RunningServer, serve
from resilience import Classify, LockedOutError, LockoutGuard, Stack
from resilience import _events as ev
from resilience._layer import LayerLike
from resilience._redact import key_fingerprint
from resilience.testing import VirtualClock
from tests.stores import SuspendingStore
from tests.test_breaker_support import Events, LoginApp, LoginClassifier, recording

pytestmark = pytest.mark.anyio

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"


@pytest.fixture
def login_server() -> Iterator[tuple[LoginApp, RunningServer]]:
    app = LoginApp()
    with serve(app) as server:
        try:
            yield app, server
        finally:
            app.release.set()


def _client(
    guard: LockoutGuard, url: str, events: Events | None = None, *, twice: bool = False
) -> httpx.AsyncClient:
    layers: list[LayerLike] = [recording(events)] if events is not None else []
    if twice:
        layers.append(_SendTwice)
    stack = Stack(*layers, guard, Classify(LoginClassifier()))
    return httpx.AsyncClient(base_url=url, transport=stack.transport(), timeout=5.0)


class _SendTwice(httpx.AsyncBaseTransport):
    """A careless retry: sends every call a second time, whatever the first answer was."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        first = await self.inner.handle_async_request(request)
        await first.aclose()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _login(client: httpx.AsyncClient, email: str, password: str = "wrong") -> int:  # noqa: S107
    response = await client.post("/login", json={"email": email, "password": password})
    return response.status_code


async def _outcome(client: httpx.AsyncClient, email: str, results: list[object]) -> None:
    try:
        results.append(await _login(client, email))
    except LockedOutError as exc:
        results.append(exc)


async def test_twenty_concurrent_wrong_passwords_spend_only_the_local_budget(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    guard = LockoutGuard(clock=clock)
    events: Events = []
    results: list[object] = []
    async with _client(guard, server.url, events) as client, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(_outcome, client, ALICE, results)
    assert results.count(401) == 5  # half of Get2Dial's 10
    refused = [r for r in results if isinstance(r, LockedOutError)]
    assert len(refused) == 15
    assert all(r.retry_after == 900.0 for r in refused)
    assert app.attempts[ALICE] == 5
    assert app.failures[ALICE] == 5  # the vendor never got near its limit
    assert app.max_inflight[ALICE] == 1  # one login at a time
    stats = guard.statistics()
    assert (stats.logins, stats.failed_logins, stats.rejected, stats.engaged) == (5, 5, 15, 1)
    assert (stats.identities, stats.waiting) == (1, 0)
    engaged = [a for name, a in events if name == ev.LOCKOUT_ENGAGED]
    identity = key_fingerprint(resilience.fingerprint(ALICE))
    assert engaged == [{ev.KEY: identity, ev.REASON: "local budget spent", ev.RETRY_AFTER: 900.0}]
    assert sum(name == ev.LOCKOUT_REJECTED for name, _ in events) == 15
    assert ALICE not in repr(events)


async def test_one_account_has_one_budget_under_every_spelling_of_the_host(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    """Two base URLs that reach the same vendor (an IP and a name here; a trailing dot, or http
    and https, in the field) share the account's budget: five failures in all, not five each."""
    app, server = login_server
    guard = LockoutGuard(clock=clock)
    by_name = f"http://localhost:{server.port}"
    async with _client(guard, server.url) as by_ip, _client(guard, by_name) as named:
        statuses = [await _login(by_ip if i % 2 else named, ALICE) for i in range(5)]
        assert statuses == [401] * 5
        for client in (by_ip, named):
            with pytest.raises(LockedOutError):
                await _login(client, ALICE)
    assert app.failures[ALICE] == 5


async def test_a_full_guard_refuses_a_new_identity_rather_than_forget_anothers_failures(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    guard = LockoutGuard(clock=clock, max_keys=2)
    async with _client(guard, server.url) as client:
        assert [await _login(client, ALICE), await _login(client, BOB)] == [401, 401]
        with pytest.raises(LockedOutError, match="would have to forget one"):
            await _login(client, CAROL)
        assert CAROL not in app.attempts  # nothing sent
        assert await _login(client, ALICE, "right") == 200  # a success forgets ALICE: room
        assert await _login(client, CAROL) == 401
    stats = guard.statistics()
    assert (stats.identities, stats.rejected) == (2, 1)


async def test_the_budget_comes_back_as_failures_leave_the_window(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    guard = LockoutGuard(clock=clock, share=0.3)  # 3 of 10
    async with _client(guard, server.url) as client:
        for i in range(3):
            assert await _login(client, ALICE) == 401
            clock.advance(100.0 * (i + 1))  # failures at t=0, 100, 300
        with pytest.raises(LockedOutError) as caught:
            await _login(client, ALICE)
        assert caught.value.retry_after == 300.0  # now t=600; t=0 leaves at 900
        clock.advance(300.0)
        assert await _login(client, ALICE) == 401
        with pytest.raises(LockedOutError):
            await _login(client, ALICE)
    assert app.attempts[ALICE] == 4


async def test_the_vendor_lockout_locks_the_identity_for_its_duration(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    app.failures[ALICE] = 10  # someone else (a person) already triggered it
    app.failures[BOB] = 10
    app.retry_after = None
    guard = LockoutGuard(clock=clock)
    events: Events = []
    async with _client(guard, server.url, events) as client:
        response = await client.post("/login", json={"email": ALICE, "password": "right"})
        assert response.status_code == 403  # returned unchanged
        assert resilience.outcome(response).classification.kind is resilience.Kind.LOCKED_OUT
        with pytest.raises(LockedOutError) as caught:
            await _login(client, ALICE, "right")
        assert caught.value.retry_after == 900.0  # the classifier's Login.lockout
        clock.advance(899.0)
        with pytest.raises(LockedOutError) as caught:
            await _login(client, ALICE, "right")
        assert caught.value.retry_after == 1.0
        clock.advance(1.0)
        app.failures.pop(ALICE)
        assert await _login(client, ALICE, "right") == 200
        # A vendor Retry-After, when given, is the duration.
        app.retry_after = 120
        assert await _login(client, BOB, "right") == 403
        with pytest.raises(LockedOutError) as caught:
            await _login(client, BOB, "right")
        assert caught.value.retry_after == 120.0
    assert app.attempts == {ALICE: 2, BOB: 1}
    engaged = [a[ev.REASON] for name, a in events if name == ev.LOCKOUT_ENGAGED]
    assert engaged == ["vendor lockout", "vendor lockout"]
    assert guard.statistics().lockouts_seen == 2


async def test_a_successful_login_clears_the_count(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    guard = LockoutGuard(clock=clock)
    async with _client(guard, server.url) as client:
        for _ in range(4):
            assert await _login(client, ALICE) == 401
        assert await _login(client, ALICE, "right") == 200
        for _ in range(5):
            assert await _login(client, ALICE) == 401
        with pytest.raises(LockedOutError):
            await _login(client, ALICE)
    assert app.attempts[ALICE] == 10


async def test_other_identities_and_other_requests_are_untouched(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    guard = LockoutGuard(clock=clock)
    async with _client(guard, server.url) as client:
        for _ in range(5):
            await _login(client, ALICE)
        with pytest.raises(LockedOutError):
            await _login(client, ALICE)
        assert await _login(client, BOB, "right") == 200
        assert await _login(client, "Bob@Example.com") == 401
        assert (await client.get("/me")).status_code == 200
        # Not recognised as a login (no JSON email): passes, even while Alice is refused.
        assert (await client.post("/login", content=b"not json")).status_code == 400
    assert app.other == 1
    assert (app.attempts[BOB], app.attempts["Bob@Example.com"]) == (1, 1)


async def test_a_failed_login_is_never_sent_twice_in_one_call(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    guard = LockoutGuard(clock=clock)
    events: Events = []
    async with _client(guard, server.url, events, twice=True) as client:
        with pytest.raises(LockedOutError, match="never retried") as caught:
            await _login(client, ALICE)
        assert caught.value.retry_after is None  # the budget itself is not spent
        assert events[-1] == (
            ev.LOCKOUT_REJECTED,
            {
                ev.KEY: key_fingerprint(resilience.fingerprint(ALICE)),
                ev.REASON: "a login that failed or may have failed is never retried",
            },
        )
        assert app.attempts[ALICE] == 1
        # A 503 may come after the vendor ran the login: not sent again either.
        app.outage = 503
        with pytest.raises(LockedOutError, match="never retried"):
            await _login(client, BOB)
        assert app.attempts[BOB] == 1
        # A 429 says the vendor did not run it: that one may be sent again.
        app.outage = 429
        assert await _login(client, CAROL) == 429
        assert app.attempts[CAROL] == 2
        app.outage = None
        assert await _login(client, BOB, "right") == 200
    stats = guard.statistics()
    assert (stats.failed_logins, stats.unknown_logins, stats.rejected) == (1, 1, 2)


async def test_logins_answered_with_a_5xx_after_the_vendor_ran_them_spend_the_budget(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    """The vendor counted each wrong password, the client only saw 500s: the budget still holds."""
    app, server = login_server
    app.outage, app.outage_after_login = 500, True
    guard = LockoutGuard(clock=clock)
    results: list[object] = []
    async with _client(guard, server.url) as client, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(_outcome, client, ALICE, results)
    assert results.count(500) == 5
    assert sum(isinstance(r, LockedOutError) for r in results) == 15
    assert app.failures[ALICE] == 5  # what the vendor counted: the budget, not 20
    stats = guard.statistics()
    assert (stats.logins, stats.failed_logins, stats.unknown_logins) == (5, 0, 5)
    assert (stats.rejected, stats.engaged) == (15, 1)


async def test_a_success_after_unanswered_logins_forgets_them(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    app.outage, app.outage_after_login = 502, True
    guard = LockoutGuard(clock=clock)
    async with _client(guard, server.url) as client:
        for _ in range(4):
            assert await _login(client, ALICE, "right") == 502
        app.outage = None
        assert await _login(client, ALICE, "right") == 200
        for _ in range(5):
            assert await _login(client, ALICE) == 401
        with pytest.raises(LockedOutError):
            await _login(client, ALICE)
    stats = guard.statistics()
    assert (stats.unknown_logins, stats.failed_logins, stats.identities) == (4, 5, 1)


async def test_the_real_retry_layer_does_not_resend_a_failed_login(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    stack = Stack(
        resilience.Retry(attempts=5, clock=clock),
        LockoutGuard(clock=clock),
        resilience.CircuitBreaker(clock=clock),
        Classify(LoginClassifier()),
    )
    async with httpx.AsyncClient(base_url=server.url, transport=stack.transport()) as client:
        response = await client.post("/login", json={"email": ALICE, "password": "wrong"})
        assert response.status_code == 401
        assert resilience.outcome(response).attempts == 1
    assert app.attempts[ALICE] == 1


async def test_a_cancelled_login_counts_as_possibly_failed_and_frees_the_identity(
    login_server: tuple[LoginApp, RunningServer], clock: VirtualClock
) -> None:
    app, server = login_server
    app.hang = True
    guard = LockoutGuard(clock=clock, share=0.2)  # 2 of 10
    results: list[object] = []
    async with _client(guard, server.url) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_login, client, ALICE)
            await anyio.to_thread.run_sync(app.received.wait)
            for _ in range(3):  # these queue behind the hanging login
                tg.start_soon(_outcome, client, ALICE, results)
            await anyio.wait_all_tasks_blocked()
            assert guard.statistics().waiting == 3
            tg.cancel_scope.cancel()
        assert guard.statistics().waiting == 0
        # The vendor had the login: it may count it. The queued ones were never sent.
        stats = guard.statistics()
        assert (stats.unknown_logins, stats.identities, stats.rejected) == (1, 1, 0)
        app.hang = False
        assert await _login(client, ALICE) == 401
        with pytest.raises(LockedOutError, match="budget is spent"):
            await _login(client, ALICE)
    assert results == []
    assert app.attempts[ALICE] == 2


async def test_a_failed_login_is_written_to_an_awaited_store_even_if_the_call_is_cancelled(
    clock: VirtualClock,
) -> None:
    """Each 401 lands as its caller gives up: every one still counts against the budget."""
    scopes: list[anyio.CancelScope] = []
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        scopes[-1].cancel()  # the caller's own timeout fires right after the answer
        return httpx.Response(401)

    guard = LockoutGuard(clock=clock, store=SuspendingStore())
    transport = Stack(guard, Classify(LoginClassifier())).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        for _ in range(12):
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                with contextlib.suppress(LockedOutError):
                    await c.post("/login", json={"email": ALICE, "password": "x"})
    assert len(sent) == 5  # half of the vendor's 10, whatever the callers did meanwhile
    assert guard.statistics().failed_logins == 5


async def test_a_transport_error_before_sending_is_not_a_failed_login(
    clock: VirtualClock,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    guard = LockoutGuard(clock=clock)
    transport = Stack(guard, Classify(LoginClassifier())).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        for _ in range(8):
            with pytest.raises(httpx.ConnectError):
                await c.post("/login", json={"email": ALICE, "password": "x"})
    stats = guard.statistics()
    assert (stats.logins, stats.failed_logins, stats.unknown_logins) == (8, 0, 0)


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError],
)
async def test_a_failure_after_sending_counts_against_the_budget(
    clock: VirtualClock, error: type[httpx.RequestError]
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise error("cut", request=request)

    guard = LockoutGuard(clock=clock)
    transport = Stack(guard, Classify(LoginClassifier())).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        for _ in range(5):
            with pytest.raises(error):
                await c.post("/login", json={"email": ALICE, "password": "x"})
        with pytest.raises(LockedOutError, match="budget is spent"):
            await c.post("/login", json={"email": ALICE, "password": "x"})
    assert len(sent) == 5
    assert guard.statistics().unknown_logins == 5


async def test_a_refusal_below_is_not_a_login(clock: VirtualClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise resilience.CircuitOpenError("open", request=request, retry_after=1.0)

    guard = LockoutGuard(clock=clock)
    transport = Stack(guard, Classify(LoginClassifier())).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        for _ in range(8):
            with pytest.raises(resilience.CircuitOpenError):
                await c.post("/login", json={"email": ALICE, "password": "x"})
    stats = guard.statistics()
    assert (stats.failed_logins, stats.unknown_logins, stats.rejected) == (0, 0, 0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        LockoutGuard(share=0.0)
    with pytest.raises(ValueError, match="share"):
        LockoutGuard(share=1.5)
    with pytest.raises(ValueError, match="max_keys"):
        LockoutGuard(max_keys=0)
    (described,) = Stack(LockoutGuard(share=0.25)).describe()
    assert described == {"layer": "LockoutGuard", "share": 0.25, "max_keys": 10_000}
