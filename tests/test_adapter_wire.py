"""The documented behaviours again, this time triggered for real on each vendor's simulator and
classified by its adapter over loopback sockets (the pure half is test_adapter_conformance.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import httpx
import pytest

import resilience
from adapters import dialnexa, dialstack, get2dial
from adapters.simulators import (
    DialNexaSimulator,
    DialStackSimulator,
    Get2DialSimulator,
    RunningServer,
    Simulator,
    serve,
)
from adapters.simulators import dialnexa as nexa_sim
from adapters.simulators import dialstack as stack_sim
from adapters.simulators import get2dial as g2d_sim
from resilience import Classify, Kind, Stack, outcome, raise_for_error

pytestmark = pytest.mark.anyio


class Switchboard:
    """One server per vendor for the module; each test swaps in a fresh simulator."""

    def __init__(self) -> None:
        self.app: Simulator | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def board() -> Iterator[tuple[Switchboard, RunningServer]]:
    switchboard = Switchboard()
    with serve(switchboard) as server:
        yield switchboard, server


@attrs.frozen(kw_only=True)
class Case:
    """How to make the simulator produce a documented answer, and what it must classify as."""

    id: str
    method: str
    path: str
    kind: Kind
    error: type[resilience.APIError] | None
    json: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)
    auth: bool = True
    fault: str | None = None
    code: str | None = None
    messages: tuple[str, ...] | None = None
    retryable: bool = False
    executed: bool = True
    retry_after: float | None = None
    setup: Callable[[Any], None] | None = None


DS_AUTH = {"Authorization": f"Bearer {stack_sim.API_KEY}", "DialStack-Account": stack_sim.ACCOUNT}
PROVISION = {
    "vendor": "yealink",
    "model": "T46U",
    "mac": "00:15:65:00:00:01",
    "endpoint_id": "ep_1",
}

DIALSTACK_CASES = [
    Case(id="201", method="POST", path="/v1/calls", json={"to": "+15550100001"},
         kind=Kind.SUCCESS, error=None),
    Case(id="401", method="GET", path="/v1/calls", auth=False, kind=Kind.AUTH,
         error=resilience.AuthError),
    Case(id="403-account", method="GET", path="/v1/calls",
         headers={"DialStack-Account": "acct_nobody"}, kind=Kind.FORBIDDEN,
         error=resilience.ForbiddenError),
    Case(id="404", method="GET", path="/v1/calls/call_nope", kind=Kind.NOT_FOUND,
         error=resilience.NotFoundError),
    Case(id="422", method="POST", path="/v1/calls",
         json={"to": "+15550100001", "from": "+15550100001"}, kind=Kind.VALIDATION,
         error=resilience.ValidationError),
    Case(id="validation_error", method="POST", path="/v1/calls", json={"to": "12345"},
         kind=Kind.VALIDATION, code="validation_error", error=dialstack.ValidationFailedError),
    Case(id="invalid_pagination", method="GET", path="/v1/calls?cursor=garbage",
         kind=Kind.BAD_REQUEST, code="invalid_pagination", error=dialstack.InvalidPaginationError),
    Case(id="invalid_sandbox_phone_number", method="POST", path="/v1/calls",
         json={"to": "+14155550100"}, kind=Kind.VALIDATION, code="invalid_sandbox_phone_number",
         error=dialstack.InvalidSandboxPhoneNumberError),
    Case(id="sandbox_feature_unsupported", method="POST", path="/v1/calls",
         json={"to": "+15550100001", "record": True}, kind=Kind.BAD_REQUEST,
         code="sandbox_feature_unsupported", error=dialstack.SandboxFeatureUnsupportedError),
    Case(id="unsupported_vendor", method="POST", path="/v1/devices/provision",
         json={**PROVISION, "vendor": "nokia"}, kind=Kind.BAD_REQUEST, code="unsupported_vendor",
         error=dialstack.UnsupportedVendorError),
    Case(id="invalid_configuration", method="POST", path="/v1/devices/provision",
         json={"vendor": "yealink"}, kind=Kind.VALIDATION, code="invalid_configuration",
         error=dialstack.InvalidConfigurationError),
    Case(id="credentials_not_found", method="POST", path="/v1/devices/provision",
         json={**PROVISION, "endpoint_id": "ep_9"}, kind=Kind.NOT_FOUND,
         code="credentials_not_found", error=dialstack.CredentialsNotFoundError),
    Case(id="generation_failed", method="POST", path="/v1/devices/provision", json=PROVISION,
         kind=Kind.SERVER_ERROR, code="generation_failed", error=dialstack.GenerationFailedError,
         retryable=True, setup=lambda sim: setattr(sim, "generation_failures", 1)),
    Case(id="429", method="GET", path="/v1/calls", fault="rate_limit,count=1,retry_after=3",
         kind=Kind.RATE_LIMITED, retryable=True, executed=False, retry_after=3.0,
         error=resilience.TooManyRequestsError),
    Case(id="503", method="GET", path="/v1/calls", fault="status=503,count=1",
         kind=Kind.SERVER_ERROR, retryable=True, error=resilience.ServerError),
    Case(id="partner-nested-404", method="GET", path="/partner/v1/accounts/acct_nope",
         kind=Kind.NOT_FOUND, error=resilience.NotFoundError),
]  # fmt: skip

DN_AUTH = {"Authorization": f"Bearer {nexa_sim.API_KEY}"}
CALL = {"agent_id": "agent_demo", "to_phone_number": "+14155550100"}

DIALNEXA_CASES = [
    Case(id="201", method="POST", path="/v1/calls", json=CALL, kind=Kind.SUCCESS, error=None),
    Case(id="400-one", method="POST", path="/v1/calls",
         json={**CALL, "to_phone_number": "9876543210"}, kind=Kind.VALIDATION,
         error=resilience.ValidationError),
    Case(id="400-list", method="POST", path="/v1/calls",
         json={"agent_id": "", "to_phone_number": "9876543210"}, kind=Kind.VALIDATION,
         error=resilience.ValidationError,
         messages=("to_phone_number must be in E.164 format", "agent_id should not be empty")),
    Case(id="401", method="GET", path="/v1/call-logs", auth=False, kind=Kind.AUTH,
         error=resilience.AuthError),
    Case(id="403-read-only", method="POST", path="/v1/calls", json=CALL,
         headers={"Authorization": f"Bearer {nexa_sim.READ_ONLY_KEY}"}, kind=Kind.FORBIDDEN,
         error=resilience.ForbiddenError),
    Case(id="403-blocked", method="POST", path="/v1/calls",
         json={**CALL, "to_phone_number": "+882123456789"}, kind=Kind.FORBIDDEN,
         error=resilience.ForbiddenError),
    Case(id="404-other-org", method="POST", path="/v1/calls",
         json={**CALL, "agent_id": "agent_other"}, kind=Kind.NOT_FOUND,
         error=resilience.NotFoundError),
    Case(id="409-state", method="POST", path="/v1/campaigns/camp_cancelled/resume",
         kind=Kind.CONFLICT, error=resilience.ConflictError),
    Case(id="409-concurrency", method="POST", path="/v1/calls", json=CALL, kind=Kind.CONFLICT,
         error=resilience.ConflictError, retryable=True, executed=False,
         retry_after=dialnexa.CONCURRENCY_RETRY_AFTER,
         setup=lambda sim: setattr(sim, "concurrency_limit", 0)),
    Case(id="422", method="POST", path="/v1/calls", json={**CALL, "agent_id": "agent_orphan"},
         kind=Kind.VALIDATION, error=resilience.ValidationError),
    Case(id="429", method="GET", path="/v1/call-logs",
         setup=lambda sim: setattr(sim, "rate_limit", 0), kind=Kind.RATE_LIMITED,
         error=resilience.TooManyRequestsError, retryable=True, executed=False),
    Case(id="500", method="POST", path="/v1/calls", json=CALL, fault="status=500,count=1",
         kind=Kind.SERVER_ERROR, error=resilience.ServerError, retryable=True),
]  # fmt: skip

G2D_LOGIN = {"email": g2d_sim.ADMIN_EMAIL, "password": g2d_sim.PASSWORD,
             "tenant_domain": g2d_sim.TENANT}  # fmt: skip

GET2DIAL_CASES = [
    Case(id="200-login", method="POST", path=get2dial.LOGIN_PATH, json=G2D_LOGIN, auth=False,
         kind=Kind.SUCCESS, error=None),
    Case(id="400-unknown-field", method="POST", path=get2dial.LOGIN_PATH,
         json={**G2D_LOGIN, "tenant": "oops"}, auth=False, kind=Kind.BAD_REQUEST,
         error=resilience.BadRequestError),
    Case(id="401-missing-token", method="GET", path="/api/v1/auth/me", auth=False,
         kind=Kind.AUTH, error=resilience.AuthError),
    Case(id="401-wrong-password", method="POST", path=get2dial.LOGIN_PATH,
         json={**G2D_LOGIN, "password": "nope"}, auth=False, kind=Kind.AUTH,
         error=resilience.AuthError),
    Case(id="403-disabled", method="POST", path=get2dial.LOGIN_PATH,
         json={**G2D_LOGIN, "email": g2d_sim.DISABLED_EMAIL}, auth=False, kind=Kind.FORBIDDEN,
         error=resilience.ForbiddenError),
    # The account is locked for real first (ten wrong passwords; see the test below).
    Case(id="403-locked", method="POST", path=get2dial.LOGIN_PATH, json=G2D_LOGIN, auth=False,
         kind=Kind.LOCKED_OUT, error=resilience.AccountLockedError, retry_after=900.0),
    Case(id="404", method="GET", path="/api/v1/contacts/nope", kind=Kind.NOT_FOUND,
         error=resilience.NotFoundError),
    Case(id="500-get", method="GET", path="/api/v1/contacts", fault="status=500,count=1",
         kind=Kind.SERVER_ERROR, error=resilience.ServerError, retryable=True),
]  # fmt: skip


async def _exchange(
    board: tuple[Switchboard, RunningServer],
    simulator: Simulator,
    classifier: resilience.Classifier,
    case: Case,
    auth: dict[str, str],
) -> httpx.Response:
    switchboard, server = board
    switchboard.app = simulator
    if case.setup is not None:
        case.setup(simulator)
    if case.fault is not None:
        simulator.faults.add(case.fault)
    headers = {**(auth if case.auth else {}), **case.headers}
    transport = Stack(Classify(classifier)).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        response = await client.request(case.method, case.path, json=case.json, headers=headers)
        await response.aread()
    return response


def _check(response: httpx.Response, case: Case, vendor: str) -> None:
    verdict = outcome(response).classification
    assert (verdict.kind, verdict.vendor) == (case.kind, vendor), verdict
    assert verdict.retryable is case.retryable
    assert verdict.may_have_executed is case.executed
    if case.retry_after is not None:
        assert verdict.retry_after == case.retry_after
    if case.error is None:
        assert raise_for_error(response) is response
        return
    with pytest.raises(case.error) as caught:
        raise_for_error(response)
    assert type(caught.value) is case.error
    assert caught.value.code == case.code
    assert caught.value.message  # the vendor's text made it through the envelope
    if case.messages is not None:
        assert caught.value.messages == case.messages


async def _get2dial_token(board: tuple[Switchboard, RunningServer], sim: Simulator) -> str:
    switchboard, server = board
    switchboard.app = sim
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(get2dial.LOGIN_PATH, json=G2D_LOGIN)
    return str(response.json()["data"]["token"])


@pytest.mark.parametrize("case", DIALSTACK_CASES, ids=lambda c: c.id)
async def test_dialstack_over_the_wire(board: Any, case: Case) -> None:
    response = await _exchange(board, DialStackSimulator(), dialstack.classifier, case, DS_AUTH)
    _check(response, case, "dialstack")
    if response.status_code >= 400:
        error = outcome(response).classification.error
        assert error is not None
        assert error.request_id  # X-Request-Id is kept on every error


@pytest.mark.parametrize("case", DIALNEXA_CASES, ids=lambda c: c.id)
async def test_dialnexa_over_the_wire(board: Any, case: Case) -> None:
    response = await _exchange(board, DialNexaSimulator(), dialnexa.classifier, case, DN_AUTH)
    _check(response, case, "dialnexa")


async def test_dialnexa_304_on_a_matching_etag(board: Any) -> None:
    sim = DialNexaSimulator()
    first = await _exchange(board, sim, dialnexa.classifier,
                            Case(id="etag", method="GET", path="/v1/call-logs", kind=Kind.SUCCESS,
                                 error=None), DN_AUTH)  # fmt: skip
    again = Case(id="304", method="GET", path="/v1/call-logs", kind=Kind.NOT_MODIFIED, error=None,
                 headers={"If-None-Match": first.headers["etag"]})  # fmt: skip
    response = await _exchange(board, sim, dialnexa.classifier, again, DN_AUTH)
    assert response.status_code == 304
    _check(response, again, "dialnexa")


@pytest.mark.parametrize("case", GET2DIAL_CASES, ids=lambda c: c.id)
async def test_get2dial_over_the_wire(board: Any, case: Case) -> None:
    sim = Get2DialSimulator()
    token = await _get2dial_token(board, sim)
    if case.id == "403-locked":  # lock the account for real: 10 wrong passwords
        _, server = board
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(10):
                await client.post(get2dial.LOGIN_PATH, json={**G2D_LOGIN, "password": "wrong"})
        assert sim.is_locked(g2d_sim.ADMIN_EMAIL)
    response = await _exchange(board, sim, get2dial.classifier, case,
                               {"Authorization": f"Bearer {token}"})  # fmt: skip
    _check(response, case, "get2dial")
