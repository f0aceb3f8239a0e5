"""outcome() and raise_for_error(): one exception class per kind, and no secrets."""

from __future__ import annotations

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


def test_raise_for_error_on_a_bare_response() -> None:
    with pytest.raises(resilience.NotFoundError, match="404 not_found"):
        raise_for_error(httpx.Response(404))
