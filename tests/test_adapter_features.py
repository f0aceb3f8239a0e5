"""Adapter facts beyond the status tables: idempotency keys, logins, rate-limit headers,
pagination, registry and overrides."""

from __future__ import annotations

import json

import httpx
import pytest

import adapters
import resilience
from adapters import dialnexa, dialstack, get2dial
from resilience import Classify, Stack, outcome

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0


# -- DialStack -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_dialstack_gives_mutations_one_idempotency_key(method: str) -> None:
    request = httpx.Request(method, "https://api.dialstack.ai/v1/calls", json={"to": "+1"})
    dialstack.classifier.prepare(request)
    key = request.headers["Idempotency-Key"]
    dialstack.classifier.prepare(request)  # a second attempt of the same call
    assert request.headers["Idempotency-Key"] == key
    assert len(key) == 36
    assert dialstack.classifier.is_idempotent(request)


def test_dialstack_keeps_the_callers_key_and_leaves_reads_alone() -> None:
    mine = httpx.Request("POST", "https://x.test/v1/calls", headers={"Idempotency-Key": "op-42"})
    dialstack.classifier.prepare(mine)
    assert mine.headers["Idempotency-Key"] == "op-42"
    read = httpx.Request("GET", "https://x.test/v1/users")
    dialstack.classifier.prepare(read)
    assert "Idempotency-Key" not in read.headers
    delete = httpx.Request("DELETE", "https://x.test/v1/users/1")
    dialstack.classifier.prepare(delete)
    assert "Idempotency-Key" not in delete.headers


def test_each_logical_call_gets_its_own_key() -> None:
    keys = set()
    for _ in range(50):
        request = httpx.Request("POST", "https://x.test/v1/calls")
        dialstack.classifier.prepare(request)
        keys.add(request.headers["Idempotency-Key"])
    assert len(keys) == 50


def test_dialstack_keeps_the_request_id_and_hints_at_the_account_header() -> None:
    request = httpx.Request("GET", "https://x.test/v1/users")
    body = b'{"error": "No access to this account"}'
    response = httpx.Response(403, headers={"X-Request-Id": "req_9"}, content=body, request=request)
    verdict = dialstack.classifier.classify_response(request, response, body)
    assert verdict.error is not None
    assert verdict.error.request_id == "req_9"
    assert "DialStack-Account" in verdict.reason


def test_dialstack_unstable_codes_are_dropped_and_said_so() -> None:
    request = httpx.Request("GET", "https://x.test/v1/users")
    body = b'{"error": "x", "code": "internal_legacy_42"}'
    response = httpx.Response(400, content=body, request=request)
    verdict = dialstack.classifier.classify_response(request, response, body)
    assert verdict.error is not None
    assert verdict.error.code is None
    assert "internal_legacy_42" in verdict.reason


async def test_paginate_restarts_from_page_one_on_invalid_pagination() -> None:
    served: list[str] = []
    expired = {"done": False}

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        served.append(cursor or "first")
        if cursor == "p2" and not expired["done"]:
            expired["done"] = True
            return httpx.Response(
                400, json={"error": "Cursor expired", "code": "invalid_pagination"}
            )
        if cursor is None:
            return httpx.Response(
                200, json={"data": [1, 2], "next_page_url": "/v1/items?cursor=p2"}
            )
        return httpx.Response(200, json={"data": [3], "next_page_url": None})

    transport = Stack(Classify(dialstack.classifier)).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(
        base_url="https://api.dialstack.ai", transport=transport
    ) as client:
        items = [item async for item in dialstack.paginate(client, "/v1/items")]
    assert items == [1, 2, 1, 2, 3]
    assert served == ["first", "p2", "first", "p2"]


async def test_paginate_gives_up_after_its_restarts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor"):
            return httpx.Response(400, json={"error": "expired", "code": "invalid_pagination"})
        return httpx.Response(200, json={"data": [1], "next_page_url": "/v1/items?cursor=x"})

    transport = Stack(Classify(dialstack.classifier)).transport(httpx.MockTransport(handler))
    async with httpx.AsyncClient(
        base_url="https://api.dialstack.ai", transport=transport
    ) as client:
        with pytest.raises(dialstack.InvalidPaginationError):
            _ = [item async for item in dialstack.paginate(client, "/v1/items", restarts=2)]


def _pages(pages: dict[str | None, httpx.Response]) -> httpx.AsyncClient:
    """A DialStack client whose list pages are ``pages``, by their ``cursor``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return pages[request.url.params.get("cursor")]

    transport = Stack(Classify(dialstack.classifier)).transport(httpx.MockTransport(handler))
    return httpx.AsyncClient(base_url="https://api.dialstack.ai", transport=transport)


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (httpx.Response(200, content=b"<html>maintenance</html>"), "not a JSON object"),
        (httpx.Response(200, json=[1, 2]), "not a JSON object"),
        (httpx.Response(200, json={"data": 3}), "int under 'data'"),
        (httpx.Response(200, json={"data": "abc"}), "str under 'data'"),
        (httpx.Response(200, json={"data": {"k": 1}}), "dict under 'data'"),
        (httpx.Response(200, json={"items": [1]}), "nothing under 'data'"),
    ],
)
async def test_paginate_refuses_a_page_that_is_not_a_list_page(
    page: httpx.Response, message: str
) -> None:
    async with _pages({None: page}) as client:
        with pytest.raises(dialstack.PageError, match=message):
            _ = [item async for item in dialstack.paginate(client, "/v1/items")]


@pytest.mark.parametrize("link", ["/v1/items", "https://api.dialstack.ai/v1/items?cursor=a"])
async def test_paginate_stops_a_next_page_url_that_loops(link: str) -> None:
    """A next_page_url back to a page already read would loop forever: it raises instead."""
    pages = {
        None: httpx.Response(200, json={"data": [1], "next_page_url": "/v1/items?cursor=a"}),
        "a": httpx.Response(200, json={"data": [2], "next_page_url": link}),
    }
    yielded: list[object] = []

    async def read_all(client: httpx.AsyncClient) -> None:
        async for item in dialstack.paginate(client, "/v1/items"):
            yielded.append(item)  # noqa: PERF401 - what came before the error counts too

    async with _pages(pages) as client:
        with pytest.raises(dialstack.PageError, match="leads back to a page already read"):
            await read_all(client)
    assert yielded == [1, 2]


# -- Get2Dial ------------------------------------------------------------------------------


def _login(body: object) -> httpx.Request:
    return httpx.Request("POST", "https://api.get2dial.com/api/v1/auth/login", json=body)


@pytest.mark.parametrize(
    ("method", "path", "is_login"),
    [
        ("POST", "/api/v1/auth/login", True),
        ("POST", "/api/v1/auth/login/", True),
        ("POST", "/API/v1/Auth/Login", True),
        ("POST", "/prefix/api/v1/auth/login", True),
        ("GET", "/api/v1/auth/login", False),
        ("POST", "/api/v1/auth/login/extra", False),
        ("POST", "/api/v1/auth/logout", False),
    ],
)
def test_get2dial_login_is_recognised_however_its_path_is_spelled(
    method: str, path: str, is_login: bool
) -> None:
    request = httpx.Request(method, f"https://api.get2dial.com{path}", json={"email": "a@b.c"})
    assert (get2dial.classifier.login(request) is not None) is is_login


def test_get2dial_login_identity_is_a_fingerprint_of_the_email() -> None:
    login = get2dial.classifier.login(_login({"email": "Ann@Acme.com", "password": "pw"}))
    assert login is not None
    assert (login.max_failures, login.window, login.lockout) == (10, 900.0, 900.0)
    assert "ann" not in login.identity.lower()
    same = get2dial.classifier.login(_login({"email": " ann@acme.com", "password": "other"}))
    assert same is not None
    assert same.identity == login.identity
    other_tenant = get2dial.classifier.login(
        _login({"email": "ann@acme.com", "password": "pw", "tenant_domain": "beta"})
    )
    assert other_tenant is not None
    # The vendor counts failures per account whatever tenant_domain says: one budget for all.
    assert other_tenant.identity == login.identity


def test_get2dial_only_the_login_endpoint_is_a_login() -> None:
    assert (
        get2dial.classifier.login(httpx.Request("GET", "https://x.test/api/v1/auth/login")) is None
    )
    assert (
        get2dial.classifier.login(httpx.Request("POST", "https://x.test/api/v1/contacts")) is None
    )
    garbage = httpx.Request("POST", "https://x.test/api/v1/auth/login", content=b"\xff{")
    assert get2dial.classifier.login(garbage) is not None  # unreadable logins are still guarded


def test_get2dial_never_adds_to_a_body() -> None:
    body = {"email": "a@b.com", "password": "x"}
    request = _login(body)
    before = request.content
    get2dial.classifier.prepare(request)
    assert request.content == before
    assert json.loads(request.content) == body
    assert "Idempotency-Key" not in request.headers


def test_get2dial_reads_only_are_idempotent() -> None:
    for method, expected in [("GET", True), ("HEAD", True), ("PUT", False), ("DELETE", False)]:
        assert (
            get2dial.classifier.is_idempotent(httpx.Request(method, "https://x.test/")) is expected
        )


# -- DialNexa ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("60", 60.0),
        ("0", 0.0),
        (str(int(NOW + 30)), 30.0),
        (str(int((NOW + 12) * 1000)), 12.0),
        (str(int(NOW - 100)), 0.0),
        ("86400", 86400.0),  # a day: waited in full (or refused by max_retry_after), not cut
        ("99999999", None),  # over a year from now, under any Unix time: absurd
        ("1_0", None),  # float() would take these; a header value is digits
        ("1e3", None),
        ("soon", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        (None, None),
    ],
)
def test_dialnexa_ratelimit_reset_forms(value: str | None, expected: float | None) -> None:
    assert dialnexa.reset_delay(value, now=NOW) == expected


@pytest.mark.parametrize("skew", [-300.0, 0.0, 300.0])
def test_dialnexa_reset_is_measured_against_the_servers_date(skew: float) -> None:
    """A local clock five minutes off neither cuts the wait to nothing nor stretches it."""
    server_now = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    classifier = dialnexa.DialNexaClassifier(wall=lambda: server_now + skew)
    request = httpx.Request("GET", "https://x.test/v1/call-logs")
    headers = {
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(server_now + 30)),
    }
    verdict = classifier.classify_response(request, httpx.Response(429, headers=headers), b"")
    assert verdict.retry_after == 30.0
    del headers["Date"]  # without it, the local clock is all there is
    verdict = classifier.classify_response(request, httpx.Response(429, headers=headers), b"")
    assert verdict.retry_after == max(30.0 - skew, 0.0)


def test_dialnexa_prefers_retry_after_to_the_reset_header() -> None:
    classifier = dialnexa.DialNexaClassifier(wall=lambda: NOW)
    request = httpx.Request("GET", "https://x.test/v1/agents")
    headers = {"Retry-After": "5", "X-RateLimit-Reset": str(int(NOW + 50))}
    verdict = classifier.classify_response(request, httpx.Response(429, headers=headers), b"")
    assert verdict.retry_after == 5.0
    headers = {"X-RateLimit-Reset": str(int(NOW + 50))}
    verdict = classifier.classify_response(request, httpx.Response(429, headers=headers), b"")
    assert verdict.retry_after == 50.0


def test_dialnexa_post_calls_is_never_idempotent_even_with_a_key() -> None:
    request = httpx.Request("POST", "https://x.test/v1/calls", headers={"Idempotency-Key": "k"})
    assert not dialnexa.classifier.is_idempotent(request)


def test_dialnexa_concurrency_409_elsewhere_is_a_plain_conflict() -> None:
    request = httpx.Request("POST", "https://x.test/v1/campaigns")
    body = b'{"statusCode": 409, "message": "concurrency limit reached", "error": "Conflict"}'
    verdict = dialnexa.classifier.classify_response(
        request, httpx.Response(409, content=body), body
    )
    assert not verdict.retryable
    assert verdict.may_have_executed


# -- Registry and overrides ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["dialstack", "get2dial", "dialnexa"])
def test_registry_returns_the_modules_adapter(name: str) -> None:
    module = {"dialstack": dialstack, "get2dial": get2dial, "dialnexa": dialnexa}[name]
    adapter = adapters.get(name)
    assert adapter is module.adapter
    assert adapter.classifier is module.classifier
    assert adapter.name == name == module.classifier.name


@pytest.mark.parametrize("module", [dialstack, get2dial, dialnexa], ids=lambda m: m.__name__)
def test_unknown_overrides_are_a_type_error(module: object) -> None:
    with pytest.raises(TypeError, match="unknown override"):
        module.stack(atempts=3)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unknown override"):
        module.transport(retries=3)  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", [dialstack, get2dial, dialnexa], ids=lambda m: m.__name__)
def test_a_shared_breaker_and_guard_are_used_by_every_vendors_stack(module: object) -> None:
    """Every known override takes effect: a guard given to a vendor without logins is in its
    stack too (it was once dropped without a word), and one breaker serves every stack."""
    breaker, guard = resilience.CircuitBreaker(), resilience.LockoutGuard(share=0.1)
    stack = module.stack(breaker=breaker, guard=guard)  # type: ignore[attr-defined]
    assert breaker in stack.layers
    assert guard in stack.layers
    names = [d["layer"] for d in stack.describe()]
    assert names == ["Retry", "RetryAfterGate", "LockoutGuard", "CircuitBreaker", "Classify"]


async def test_classification_goes_through_a_plain_stack_too() -> None:
    locked = {"status": "error", "message": "Account temporarily locked"}
    transport = Stack(Classify(get2dial.classifier)).transport(
        httpx.MockTransport(lambda r: httpx.Response(403, json=locked))
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("https://x.test/api/v1/auth/login", json={"email": "a"})
    assert outcome(response).classification.kind is resilience.Kind.LOCKED_OUT
    with pytest.raises(resilience.AccountLockedError) as caught:
        resilience.raise_for_error(response)
    assert caught.value.retry_after == 900.0
