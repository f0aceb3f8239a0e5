"""Every documented row of every vendor, through the adapter's classifier (no network).

The same rows are replayed over real sockets against each vendor's simulator in
test_adapter_wire.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import resilience
from adapters import dialnexa, dialstack, get2dial
from resilience import Classify, Stack, outcome, raise_for_error

from .vendor_tables import DIALNEXA, DIALSTACK, GET2DIAL, Row

pytestmark = pytest.mark.anyio

VENDORS = {"dialstack": (dialstack, DIALSTACK), "get2dial": (get2dial, GET2DIAL),
           "dialnexa": (dialnexa, DIALNEXA)}  # fmt: skip
CASES = [
    pytest.param(module, row, id=f"{name}-{row.id}")
    for name, (module, rows) in VENDORS.items()
    for row in rows
]


def may_resend(
    classifier: resilience.Classifier,
    request: httpx.Request,
    row_verdict: resilience.Classification,
) -> bool:
    """Contract section 4: resend only retryable verdicts, and maybe-executed ones only when the
    request is idempotent."""
    if not row_verdict.retryable:
        return False
    return not row_verdict.may_have_executed or classifier.is_idempotent(request)


def _respond(row: Row) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(row.body, bytes):
            return httpx.Response(row.status, headers=row.headers, content=row.body)
        if row.body is None:
            return httpx.Response(row.status, headers=row.headers)
        return httpx.Response(row.status, headers=row.headers, json=row.body)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("module", "row"), CASES)
async def test_documented_row(module: object, row: Row) -> None:
    classifier = module.classifier  # type: ignore[attr-defined]
    transport = Stack(Classify(classifier)).transport(_respond(row))
    async with httpx.AsyncClient(base_url="https://api.vendor.test", transport=transport) as client:
        kwargs = (
            {"json": {"agent_id": "a1", "to_phone_number": "+14155550100"}}
            if row.method in {"POST", "PUT", "PATCH"}
            else {}
        )
        response = await client.request(row.method, row.path, **kwargs)
    verdict = outcome(response).classification
    assert verdict.kind is row.kind
    assert verdict.vendor == classifier.name
    assert verdict.retryable is row.retryable
    assert verdict.may_have_executed is row.executed
    assert verdict.counts_as_failure is row.failure
    assert verdict.retry_after == row.retry_after
    assert may_resend(classifier, response.request, verdict) is row.resend
    if row.error is None:
        assert raise_for_error(response) is response
        return
    with pytest.raises(row.error) as caught:
        raise_for_error(response)
    assert type(caught.value) is row.error
    assert caught.value.code == row.code
    assert caught.value.vendor == classifier.name
    if row.message is not None:
        assert caught.value.message == row.message
    if row.messages is not None:
        assert caught.value.messages == row.messages


WRONG_ENVELOPES = [
    b"<html>502 Bad Gateway</html>",
    b"{not json",
    b'["a list"]',
    b'"a string"',
    b"\xff\xfe\x00",
    b'{"error": 42, "code": ["x"], "details": "nope"}',
    b'{"status": "error", "message": {"nested": true}}',
    b'{"statusCode": "400", "message": [1, 2, null], "error": false}',
    json.dumps({"status": "error", "message": "invalid credentials"}).encode(),  # Get2Dial's
    json.dumps(
        {"statusCode": 400, "message": ["x"], "error": "Bad Request"}
    ).encode(),  # DialNexa's
    json.dumps({"error": "Human text", "code": "validation_error"}).encode(),  # DialStack's
]


@pytest.mark.parametrize("module", [dialstack, get2dial, dialnexa], ids=lambda m: m.__name__)
@pytest.mark.parametrize("status", [400, 403, 500, 599])
@pytest.mark.parametrize("body", WRONG_ENVELOPES)
def test_malformed_or_foreign_envelopes_fall_back_to_the_status(
    module: object, status: int, body: bytes
) -> None:
    classifier = module.classifier  # type: ignore[attr-defined]
    request = httpx.Request("GET", "https://api.vendor.test/v1/things")
    response = httpx.Response(status, content=body, request=request)
    verdict = classifier.classify_response(request, response, body)
    plain = resilience.HTTPClassifier().classify_response(request, response, b"")
    assert verdict.error is not None
    assert verdict.error.status == status
    assert isinstance(verdict.error.message, str)
    assert verdict.error.message
    if status >= 500:
        assert verdict.kind is plain.kind
        assert verdict.retryable is plain.retryable
    else:
        assert not verdict.retryable


_SUCCESS_BODIES = [
    b"",
    b"garbage{",
    json.dumps({"error": {"code": "rate_limited", "message": "Too many requests"}}).encode(),
    json.dumps({"code": "validation_failed", "error": "bad"}).encode(),
    json.dumps({"status": "error", "message": "Account temporarily locked"}).encode(),
    json.dumps({"statusCode": 409, "message": "Concurrency limit reached", "error": "x"}).encode(),
]
_SUCCESS_HEADERS = [
    {},
    {"Retry-After": "5"},
    {"X-RateLimit-Reset": "1700000000", "X-RateLimit-Remaining": "0"},
    {"RateLimit": "limit=10, remaining=0, reset=3", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"},
]


@pytest.mark.parametrize(
    "classifier",
    [resilience.HTTPClassifier(), dialstack.classifier, get2dial.classifier, dialnexa.classifier],
    ids=["http", "dialstack", "get2dial", "dialnexa"],
)
@given(
    status=st.integers(100, 399),
    headers=st.sampled_from(_SUCCESS_HEADERS),
    body=st.sampled_from(_SUCCESS_BODIES),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(["/v1/calls", "/api/v1/auth/login", "/calls", "/"]),
)
def test_a_success_is_judged_by_its_status_alone(
    classifier: resilience.HTTPClassifier,
    status: int,
    headers: dict[str, str],
    body: bytes,
    method: str,
    path: str,
) -> None:
    """What ``plain_successes`` promises, which lets Classify skip the hooks below 400."""
    assert classifier.plain_successes
    request = httpx.Request(method, f"https://api.vendor.test{path}")
    response = httpx.Response(status, headers=headers, content=body, request=request)
    verdict = classifier.classify_response(request, response, body)
    plain = classifier.plain_verdicts()
    assert plain is not None
    assert plain[status] is verdict  # the one shared verdict: nothing but the status counted
    bare = httpx.Response(status, request=request)
    assert classifier.classify_response(request, bare, b"") is verdict
