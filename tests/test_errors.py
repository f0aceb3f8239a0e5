"""outcome() and raise_for_error(): one exception class per kind, and no secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest

import resilience
from resilience import Classify, Kind, Stack, outcome, raise_for_error

pytestmark = pytest.mark.anyio

SECRET = "sk_live_0123456789abcdef"


def _client(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=Stack(Classify()).transport(handler))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, resilience.BadRequestError),
        (401, resilience.AuthError),
        (403, resilience.ForbiddenError),
        (404, resilience.NotFoundError),
        (408, resilience.RequestTimeoutError),
        (409, resilience.ConflictError),
        (410, resilience.NotFoundError),
        (418, resilience.ClientError),
        (422, resilience.ValidationError),
        (429, resilience.TooManyRequestsError),
        (500, resilience.ServerError),
        (599, resilience.ServerError),
    ],
)
async def test_raise_for_error_picks_the_class_of_the_kind(
    status: int, error: type[resilience.APIError]
) -> None:
    headers = {"Retry-After": "3"} if status == 429 else {}
    async with _client(httpx.MockTransport(lambda r: httpx.Response(status, headers=headers))) as c:
        response = await c.get("https://api.example.com/things")
    with pytest.raises(error) as caught:
        raise_for_error(response)
    exc = caught.value
    assert type(exc) is error
    assert isinstance(exc, httpx.HTTPStatusError)
    assert exc.status == status
    assert exc.response is response
    assert exc.classification is outcome(response).classification
    assert exc.vendor == "http"
    assert exc.retry_after == (3.0 if status == 429 else None)


@pytest.mark.parametrize("status", [200, 201, 204, 302, 304])
async def test_raise_for_error_returns_successes(status: int) -> None:
    async with _client(httpx.MockTransport(lambda r: httpx.Response(status))) as c:
        response = await c.get("https://api.example.com/things")
    assert raise_for_error(response) is response


class Echoing(resilience.HTTPClassifier):
    """A vendor whose error message echoes whatever credential it was given."""

    def parse_error(self, response, body):  # type: ignore[no-untyped-def]
        text = str(resilience.json_object(body)["error"])  # type: ignore[index]
        return resilience.VendorError(status=response.status_code, message=text, messages=(text,))


@pytest.mark.parametrize(
    ("url", "headers", "secrets"),
    [
        ("https://api.example.com/x?api_key=qwerty123&page=2",
         {"Authorization": f"Bearer {SECRET}"}, [SECRET, "qwerty123"]),
        ("https://user:hunter22@api.example.com/x", {}, ["hunter22"]),
        ("https://api.example.com/x", {"X-Api-Key": SECRET, "Cookie": "sid=cookie-secret"},
         [SECRET, "cookie-secret"]),
    ],
    ids=["bearer-and-query", "userinfo", "api-key-and-cookie"],
)  # fmt: skip
async def test_error_messages_carry_no_secrets(
    url: str, headers: dict[str, str], secrets: list[str]
) -> None:
    def echo_secret(request: httpx.Request) -> httpx.Response:
        # The worst vendor: echoes every credential it received in its error message.
        echoed = " ".join(secrets)
        return httpx.Response(401, json={"error": f"bad credentials {echoed}"})

    transport = Stack(Classify(Echoing())).transport(httpx.MockTransport(echo_secret))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(url, headers=headers)
    with pytest.raises(resilience.AuthError) as caught:
        raise_for_error(response)
    text = repr(caught.value) + str(caught.value) + caught.value.message
    text += " ".join(caught.value.messages)
    for secret in secrets:
        assert secret not in text
    assert "bad credentials REDACTED" in caught.value.message


class EchoingDetails(resilience.HTTPClassifier):
    """A vendor that echoes what it was sent in its message, its details and its reason."""

    def parse_error(self, response, body):  # type: ignore[no-untyped-def]
        text = str(resilience.json_object(body)["error"])  # type: ignore[index]
        return resilience.VendorError(
            status=response.status_code,
            message=text,
            messages=(text, "again: " + text),
            details={"sent": text, "nested": [{"value": text}], "count": 1},
        )

    def classify_status(self, request, response, error):  # type: ignore[no-untyped-def]
        verdict = super().classify_status(request, response, error)
        return attrs.evolve(verdict, reason=f"{verdict.reason}: {error.message if error else ''}")


@pytest.mark.parametrize(
    ("request_kwargs", "echoed"),
    [
        ({"method": "POST", "url": "https://api.example.com/api/v1/auth/login",
          "json": {"email": "alice@corp.example", "password": "hunter2pass"}},
         ["hunter2pass", "alice@corp.example"]),
        ({"method": "POST", "url": "https://api.example.com/login",
          "data": {"user": "bob", "password": "formpass99"}}, ["formpass99"]),
        ({"method": "GET", "url": "https://api.example.com/x",
          "auth": ("sk_live_ABCDEF123456", "")}, ["sk_live_ABCDEF123456"]),
        ({"method": "GET", "url": "https://sk_user_ONLY_777@api.example.com/x"},
         ["sk_user_ONLY_777"]),
        ({"method": "GET", "url": "https://api.example.com/x",
          "params": {"api_key": "sk/live+S=="}}, ["sk%2Flive%2BS%3D%3D", "sk/live+S=="]),
        ({"method": "GET", "url": "https://api.example.com/x",
          "headers": {"X-Auth-Token": "tok_9f8e7d6c", "X-Custom-Secret": "custom_s3cret"}},
         ["tok_9f8e7d6c", "custom_s3cret"]),
    ],
    ids=["json-login-body", "form-body", "basic-username-key", "url-username",
         "percent-encoded-query", "other-credential-headers"],
)  # fmt: skip
async def test_what_a_vendor_echoes_of_the_request_is_redacted_everywhere(
    request_kwargs: dict[str, Any], echoed: list[str]
) -> None:
    """Message, messages, details and reason, in the outcome, its repr and the APIError."""

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "bad: " + " ".join(echoed)})

    transport = Stack(Classify(EchoingDetails())).transport(httpx.MockTransport(echo))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.request(**request_kwargs)
    verdict = outcome(response).classification
    with pytest.raises(resilience.AuthError) as caught:
        raise_for_error(response)
    error = caught.value
    text = " ".join(
        [repr(outcome(response)), verdict.reason, repr(error), str(error), error.message,
         *error.messages, repr(dict(error.details))]
    )  # fmt: skip
    for secret in echoed:
        assert secret not in text
    assert "bad: REDACTED" in error.message
    assert response.json() == {"error": "bad: " + " ".join(echoed)}  # the body itself is the user's


async def test_outcome_of_a_response_that_never_passed_a_stack() -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(503, headers={"Retry-After": "9"}))
    ) as client:
        response = await client.get("https://api.example.com/")
    result = outcome(response)
    assert (result.classification.kind, result.attempts, result.waited) == (
        Kind.SERVER_ERROR, 1, 0.0)  # fmt: skip
    assert result.classification.retry_after == 9.0
    with pytest.raises(resilience.ServerError):
        raise_for_error(response)


class _Chunks(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"err'
        yield b'or": 1}'


@pytest.mark.parametrize("through", ["plain client", "stack without Classify"])
async def test_outcome_of_a_response_streamed_away(through: str) -> None:
    """Iterated without read(), a body is consumed but was never held: status and headers only."""
    inner = httpx.MockTransport(lambda r: httpx.Response(503, stream=_Chunks()))
    transport = (
        inner if through == "plain client" else Stack(resilience.Retry(attempts=1)).transport(inner)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", "https://api.example.com/") as response:
            chunks = [chunk async for chunk in response.aiter_bytes()]
        assert b"".join(chunks) == b'{"error": 1}'
    assert outcome(response).classification.kind is Kind.SERVER_ERROR
    with pytest.raises(resilience.ServerError):
        raise_for_error(response)


def test_raise_for_error_on_a_bare_response() -> None:
    with pytest.raises(resilience.NotFoundError, match="404 not_found"):
        raise_for_error(httpx.Response(404))
