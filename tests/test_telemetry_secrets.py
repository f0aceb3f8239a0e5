"""Nothing secret is ever recorded: every span, event, metric point and log line is scanned."""

from __future__ import annotations

import logging
import random

import httpx
import pytest
from opentelemetry.trace import SpanKind

from adapters import get2dial
from adapters.simulators import RunningServer
from resilience import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    Classify,
    LockedOutError,
    LockoutGuard,
    Retry,
    RetryAfterGate,
    Stack,
)
from resilience import _events as ev
from resilience.testing import VirtualClock
from tests.test_telemetry_support import (  # noqa: F401 - fixtures
    Otel,
    otel_fixture,
    scripted_server_fixture,
    token,
)

pytestmark = pytest.mark.anyio

PASSWORD = "hunter2-Pa55word!"
BEARER = "sk_live_51Hbearerkey0042"
ACCOUNT = "acct_secret_account_9"
COOKIE = "sess_cookie_value_xyz"
API_KEY = "apikey_value_123456"
URL_PASSWORD = "urlpass_secret"
QUERY_SECRET = "query_secret_value"
EMAIL = "agent.smith@example.com"
SECRETS = (PASSWORD, BEARER, ACCOUNT, COOKIE, API_KEY, URL_PASSWORD, QUERY_SECRET, EMAIL)


def recorded_text(otel: Otel, caplog: pytest.LogCaptureFixture) -> str:
    """Everything telemetry recorded, as one text to search."""
    parts: list[str] = []
    for span in otel.spans():
        parts += [span.name, repr(dict(span.attributes or {})), str(span.status.description)]
        for event in span.events:
            parts += [event.name, repr(dict(event.attributes or {}))]
        for link in span.links:
            parts.append(repr(dict(link.attributes or {})))
    for name, points in otel.metrics().items():
        parts.append(name)
        parts += [repr(dict(point.attributes or {})) for point in points]
    for record in caplog.records:
        # httpx and httpcore log the URL as given (userinfo and query included) at INFO/DEBUG:
        # the HTTP client's own logging, configured by the application, not this package's.
        if record.name.split(".")[0] in {"httpx", "httpcore"}:
            continue
        parts += [record.getMessage(), repr(record.args), repr(record.__dict__)]
    return "\n".join(parts)


async def test_a_login_with_a_password_and_a_bearer_key_leaves_no_secret(
    otel: Otel,
    scripted_server: RunningServer,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    retry = Retry(attempts=3, backoff=Backoff(initial=0.2, jitter="none"), clock=clock,
                  rng=random.Random(3))  # fmt: skip
    stack = Stack(
        retry,
        RetryAfterGate(clock=clock),
        LockoutGuard(clock=clock),
        CircuitBreaker(consecutive_failures=2, clock=clock),
        Classify(get2dial.classifier),
        telemetry=otel.telemetry(clock),
    )
    host = scripted_server.url.removeprefix("http://")
    base = f"http://agent:{URL_PASSWORD}@{host}"
    headers = {
        "Authorization": f"Bearer {BEARER}",
        "DialStack-Account": ACCOUNT,
        "Cookie": f"session={COOKIE}",
        "X-API-Key": API_KEY,
    }
    async with httpx.AsyncClient(transport=stack.transport(), headers=headers) as client:
        login = await client.post(
            f"{base}/api/v1/auth/login?api_key={QUERY_SECRET}",
            json={"email": EMAIL, "password": PASSWORD},
        )
        flaky = await client.get(f"{base}/flaky/{token()}?email={EMAIL}")
        await client.get(f"{base}/status/429?token={QUERY_SECRET}")
        for _ in range(4):  # the guard's budget of failed logins is spent, then it refuses
            await client.post(
                f"{base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
            )
        with pytest.raises(LockedOutError):
            await client.post(
                f"{base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
            )
        with pytest.raises(CircuitOpenError):  # two 503s in a row open the circuit: retry stops
            await client.get(f"{base}/status/503?key={API_KEY}")
    assert login.status_code == 401
    assert PASSWORD in login.text  # the server saw it all: the scan below is not vacuous
    assert flaky.status_code == 200

    text = recorded_text(otel, caplog)
    assert "/api/v1/auth/login" in text
    assert len(otel.spans(SpanKind.CLIENT)) == 1 + 3 + 3 + 4 + 2  # logins, flaky, 429s, 503s
    assert any(span.events for span in otel.spans(SpanKind.INTERNAL))
    assert set(otel.event_counts()) >= {ev.RETRY_SCHEDULED, ev.LOCKOUT_ENGAGED,
                                        ev.LOCKOUT_REJECTED, ev.BREAKER_STATE_CHANGED,
                                        ev.BREAKER_REJECTED}  # fmt: skip
    for secret in SECRETS:
        assert secret not in text, secret
