"""The plain RFC 9110 classifier, unit by unit (no I/O)."""

from __future__ import annotations

import httpx
import pytest

import resilience
from resilience import HTTPClassifier, Kind, json_object

CLASSIFIER = HTTPClassifier(wall=lambda: 0.0)
GET = httpx.Request("GET", "https://api.example.com/things")
POST = httpx.Request("POST", "https://api.example.com/things")


def verdict(
    status: int, headers: dict[str, str] | None = None, request: httpx.Request = GET
) -> resilience.Classification:
    response = httpx.Response(status, headers=headers, request=request)
    return CLASSIFIER.classify_response(request, response, b"")


@pytest.mark.parametrize(
    ("status", "kind", "retryable", "failure", "executed"),
    [
        (200, Kind.SUCCESS, False, False, True),
        (201, Kind.SUCCESS, False, False, True),
        (204, Kind.SUCCESS, False, False, True),
        (302, Kind.SUCCESS, False, False, True),
        (304, Kind.NOT_MODIFIED, False, False, True),
        (400, Kind.BAD_REQUEST, False, False, True),
        (401, Kind.AUTH, False, False, True),
        (403, Kind.FORBIDDEN, False, False, True),
        (404, Kind.NOT_FOUND, False, False, True),
        (408, Kind.TIMEOUT, True, False, False),
        (409, Kind.CONFLICT, False, False, True),
        (410, Kind.NOT_FOUND, False, False, True),
        (418, Kind.CLIENT_ERROR, False, False, True),
        (422, Kind.VALIDATION, False, False, True),
        (429, Kind.RATE_LIMITED, True, False, False),
        (499, Kind.CLIENT_ERROR, False, False, True),
        (500, Kind.SERVER_ERROR, True, True, True),
        (501, Kind.SERVER_ERROR, False, False, True),
        (502, Kind.SERVER_ERROR, True, True, True),
        (503, Kind.SERVER_ERROR, True, True, True),
        (504, Kind.SERVER_ERROR, True, True, True),
        (505, Kind.SERVER_ERROR, False, False, True),
        (599, Kind.SERVER_ERROR, True, True, True),
        (600, Kind.SERVER_ERROR, False, True, True),
        (999, Kind.SERVER_ERROR, False, True, True),
    ],
)
def test_status_table(
    status: int, kind: Kind, retryable: bool, failure: bool, executed: bool
) -> None:
    result = verdict(status)
    assert (result.kind, result.retryable, result.counts_as_failure) == (kind, retryable, failure)
    assert result.may_have_executed is executed
    assert result.vendor == "http"


def test_error_statuses_carry_a_vendor_error_with_the_reason_phrase() -> None:
    result = verdict(404)
    assert result.error is not None
    assert (result.error.status, result.error.code, result.error.message) == (
        404,
        None,
        "Not Found",
    )
    assert verdict(200).error is None


def test_retry_after_is_read_on_errors_only() -> None:
    assert verdict(429, {"Retry-After": "7"}).retry_after == 7.0
    assert verdict(503, {"Retry-After": "garbage"}).retry_after is None
    assert verdict(200, {"Retry-After": "7"}).retry_after is None


def test_error_bodies_are_wanted_success_bodies_are_not() -> None:
    assert CLASSIFIER.wants_body(GET, httpx.Response(500))
    assert CLASSIFIER.wants_body(GET, httpx.Response(404))
    assert not CLASSIFIER.wants_body(GET, httpx.Response(200))
    assert not CLASSIFIER.wants_body(GET, httpx.Response(304))


@pytest.mark.parametrize(
    ("exc", "kind", "sent", "retryable"),
    [
        (httpx.ConnectError("refused"), Kind.NETWORK, False, True),
        (httpx.ConnectTimeout("slow"), Kind.TIMEOUT, False, True),
        (httpx.PoolTimeout("pool"), Kind.TIMEOUT, False, True),
        (httpx.ReadTimeout("slow"), Kind.TIMEOUT, True, True),
        (httpx.WriteTimeout("slow"), Kind.TIMEOUT, True, True),
        (httpx.ReadError("reset"), Kind.NETWORK, True, True),
        (httpx.WriteError("reset"), Kind.NETWORK, True, True),
        (httpx.RemoteProtocolError("eof"), Kind.NETWORK, True, True),
        (httpx.UnsupportedProtocol("ftp"), Kind.NETWORK, False, False),
        (ConnectionResetError(), Kind.NETWORK, True, True),
        (ValueError("bug"), Kind.CLIENT_ERROR, True, False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_exceptions(exc: Exception, kind: Kind, sent: bool, retryable: bool) -> None:
    result = CLASSIFIER.classify_exception(GET, exc)
    assert result.kind is kind
    assert result.may_have_executed is sent
    assert result.retryable is retryable
    assert result.counts_as_failure is retryable
    assert ("not sent" in result.reason) is (not sent and kind is not Kind.CLIENT_ERROR)


def test_a_local_protocol_error_is_ours_neither_retried_nor_the_servers_failure() -> None:
    """Our side broke HTTP (an illegal header): it fails again at once, whatever the backoff."""
    result = CLASSIFIER.classify_exception(GET, httpx.LocalProtocolError("illegal header"))
    assert (result.kind, result.retryable, result.counts_as_failure) == (
        Kind.CLIENT_ERROR, False, False)  # fmt: skip
    assert result.may_have_executed


def test_idempotent_methods() -> None:
    for method in ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"):
        assert CLASSIFIER.is_idempotent(httpx.Request(method, "https://x.test/"))
    for method in ("POST", "PATCH"):
        assert not CLASSIFIER.is_idempotent(httpx.Request(method, "https://x.test/"))


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1]", b'"s"', b"1", b"\xff\xfe", b"[" * 100_000, b"null"]
)
def test_json_object_rejects_everything_but_an_object(body: bytes) -> None:
    assert json_object(body) is None


def test_json_object_parses_objects() -> None:
    assert json_object(b'{"a": 1}') == {"a": 1}


def test_plain_http_knows_no_logins_and_no_vendor_errors() -> None:
    assert CLASSIFIER.login(POST) is None
    assert CLASSIFIER.error_class(verdict(500)) is None
    CLASSIFIER.prepare(POST)
    assert "idempotency-key" not in POST.headers


def test_login_policy_is_validated() -> None:
    login = resilience.Login(identity="abc", max_failures=10, window=900.0, lockout=900.0)
    assert login.max_failures == 10
    with pytest.raises(ValueError, match="max_failures"):
        resilience.Login(identity="abc", max_failures=0, window=1.0, lockout=1.0)


class _ReadsErrorsIn200s(HTTPClassifier):
    """A vendor that answers 200 with ``{"ok": false}``: its successes need their body."""

    def wants_body(self, request: httpx.Request, response: httpx.Response) -> bool:
        return True

    def classify_response(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> resilience.Classification:
        if json_object(body) == {"ok": False}:
            return resilience.Classification(kind=Kind.SERVER_ERROR, retryable=True)
        return super().classify_response(request, response, body)


class _ExplicitlyPlain(HTTPClassifier):
    plain_successes = True  # its rule is about a 404 only

    def classify_status(
        self, request: httpx.Request, response: httpx.Response, error: resilience.VendorError | None
    ) -> resilience.Classification:
        plain = super().classify_status(request, response, error)
        return plain if response.status_code != 404 else resilience.Classification(kind=Kind.AUTH)


class _OnlyIdempotence(HTTPClassifier):
    def is_idempotent(self, request: httpx.Request) -> bool:
        return True


def test_successes_are_judged_by_status_unless_a_subclass_overrides_a_response_hook() -> None:
    assert HTTPClassifier.plain_successes
    assert not _ReadsErrorsIn200s.plain_successes  # it overrides wants_body
    assert _ExplicitlyPlain.plain_successes  # it says so itself
    assert _OnlyIdempotence.plain_successes  # is_idempotent does not judge a response
    assert _ReadsErrorsIn200s().plain_verdicts() is None
    assert _OnlyIdempotence().plain_verdicts() == {}


@pytest.mark.anyio
async def test_classify_asks_a_classifier_that_reads_its_successes_every_time() -> None:
    bodies = iter([b'{"ok": true}', b'{"ok": false}', b'{"ok": true}', b'{"ok": false}'])
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=next(bodies)))
    stack = resilience.Stack(resilience.Classify(_ReadsErrorsIn200s()))
    async with httpx.AsyncClient(transport=stack.transport(transport)) as client:
        kinds = [
            resilience.outcome(await client.get("http://api.test/")).classification.kind
            for _ in range(4)
        ]
    assert kinds == [Kind.SUCCESS, Kind.SERVER_ERROR] * 2
