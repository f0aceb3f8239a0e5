"""Each vendor's documented rows as data, shared by the pure and the over-the-wire conformance
tests. A row: what the server answers, and what the adapter must make of it."""

from __future__ import annotations

from typing import Any

import attrs

import resilience
from adapters import dialnexa, dialstack
from resilience import Kind


@attrs.frozen(kw_only=True)
class Row:
    """One documented behaviour."""

    id: str
    status: int
    body: Any = None  # JSON-able, or bytes for a raw body
    headers: dict[str, str] = attrs.field(factory=dict)
    method: str = "GET"
    path: str = "/v1/things"
    kind: Kind
    retryable: bool = False
    executed: bool = True
    failure: bool = False
    error: type[resilience.APIError] | None = None  # None: success, raise_for_error returns
    code: str | None = None
    message: str | None = None
    messages: tuple[str, ...] | None = None
    retry_after: float | None = None
    resend: bool = False  # may a retry layer send it again (contract section 4)?


def ds(
    code: str | None, status: int, message: str = "something went wrong", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if code is not None:
        body["code"] = code
    body.update(extra)
    return body


DIALSTACK: list[Row] = [
    Row(id="200", status=200, body={"id": "u_1"}, kind=Kind.SUCCESS),
    Row(id="400-no-code", status=400, body=ds(None, 400, "Malformed request"),
        kind=Kind.BAD_REQUEST, error=resilience.BadRequestError, message="Malformed request"),
    Row(id="401", status=401, body=ds(None, 401, "Missing API key"), kind=Kind.AUTH,
        error=resilience.AuthError),
    Row(id="403", status=403, body=ds(None, 403, "No access to this account"), kind=Kind.FORBIDDEN,
        error=resilience.ForbiddenError),
    Row(id="404", status=404, body=ds(None, 404, "Not found"), kind=Kind.NOT_FOUND,
        error=resilience.NotFoundError),
    Row(id="409", status=409, body=ds(None, 409, "Handle already taken"), kind=Kind.CONFLICT,
        error=resilience.ConflictError),
    Row(id="422", status=422, body=ds(None, 422, "Invalid payload"), kind=Kind.VALIDATION,
        error=resilience.ValidationError),
    Row(id="429", status=429, body=ds(None, 429, "Slow down"), headers={"Retry-After": "7"},
        kind=Kind.RATE_LIMITED, retryable=True, executed=False, retry_after=7.0,
        error=resilience.TooManyRequestsError, resend=True),
    Row(id="500-get", status=500, body=ds(None, 500, "Oops"), kind=Kind.SERVER_ERROR,
        retryable=True, failure=True, error=resilience.ServerError, resend=True),
    Row(id="503-post-keyed", status=503, body=ds(None, 503, "Unavailable"), method="POST",
        kind=Kind.SERVER_ERROR, retryable=True, failure=True, error=resilience.ServerError,
        resend=True),  # DialStack mutations carry an Idempotency-Key: safe to resend
    Row(id="validation_error", status=400,
        body=ds("validation_error", 400, "Invalid body", details={"name": "required"}),
        kind=Kind.VALIDATION, code="validation_error", error=dialstack.ValidationFailedError),
    Row(id="invalid_pagination", status=400, body=ds("invalid_pagination", 400),
        kind=Kind.BAD_REQUEST, code="invalid_pagination", error=dialstack.InvalidPaginationError),
    Row(id="invalid_sandbox_phone_number", status=400,
        body=ds("invalid_sandbox_phone_number", 400), kind=Kind.VALIDATION,
        code="invalid_sandbox_phone_number", error=dialstack.InvalidSandboxPhoneNumberError),
    Row(id="sandbox_feature_unsupported", status=400, body=ds("sandbox_feature_unsupported", 400),
        kind=Kind.BAD_REQUEST, code="sandbox_feature_unsupported",
        error=dialstack.SandboxFeatureUnsupportedError),
    Row(id="unsupported_vendor", status=400, body=ds("unsupported_vendor", 400),
        kind=Kind.BAD_REQUEST, code="unsupported_vendor", error=dialstack.UnsupportedVendorError),
    Row(id="invalid_configuration", status=400, body=ds("invalid_configuration", 400),
        kind=Kind.VALIDATION, code="invalid_configuration",
        error=dialstack.InvalidConfigurationError),
    Row(id="credentials_not_found", status=404, body=ds("credentials_not_found", 404),
        kind=Kind.NOT_FOUND, code="credentials_not_found",
        error=dialstack.CredentialsNotFoundError),
    Row(id="generation_failed", status=500, body=ds("generation_failed", 500), method="POST",
        kind=Kind.SERVER_ERROR, retryable=True, failure=True, code="generation_failed",
        error=dialstack.GenerationFailedError, resend=True),
    Row(id="unstable-code", status=400, body=ds("legacy_thing_broke", 400), kind=Kind.BAD_REQUEST,
        code=None, error=resilience.BadRequestError),
    Row(id="partner-nested", status=400,
        body={"error": {"code": "invalid_pagination", "message": "Cursor expired"}},
        kind=Kind.BAD_REQUEST, code="invalid_pagination", message="Cursor expired",
        error=dialstack.InvalidPaginationError),
]  # fmt: skip


def dn(status: int, message: str | list[str], error: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message, "error": error}


RATE_LIMIT_BODY = dn(429, "Too many requests. Please slow down and retry after a moment.",
                     "Too Many Requests")  # fmt: skip

DIALNEXA: list[Row] = [
    Row(id="200", status=200, body={"data": []}, kind=Kind.SUCCESS),
    Row(id="201-call", status=201, body={"id": "call_1"}, method="POST", path="/v1/calls",
        kind=Kind.SUCCESS),
    Row(id="304", status=304, path="/v1/call-logs", headers={"ETag": '"v1"'},
        kind=Kind.NOT_MODIFIED),
    Row(id="400-string", status=400, method="POST", path="/v1/calls",
        body=dn(400, "Validation failed: to_phone_number must be in E.164 format", "Bad Request"),
        kind=Kind.VALIDATION, error=resilience.ValidationError,
        message="Validation failed: to_phone_number must be in E.164 format"),
    Row(id="400-list", status=400, method="POST", path="/v1/calls",
        body=dn(400, ["to_phone_number must be in E.164 format", "agent_id should not be empty"],
                "Bad Request"),
        kind=Kind.VALIDATION, error=resilience.ValidationError,
        message="to_phone_number must be in E.164 format, agent_id should not be empty",
        messages=("to_phone_number must be in E.164 format", "agent_id should not be empty")),
    Row(id="401", status=401, body=dn(401, "Unauthorized", "Unauthorized"), kind=Kind.AUTH,
        error=resilience.AuthError),
    Row(id="403-permission", status=403, body=dn(403, "Forbidden resource", "Forbidden"),
        kind=Kind.FORBIDDEN, error=resilience.ForbiddenError),
    Row(id="403-blocked-destination", status=403, method="POST", path="/v1/calls",
        body=dn(403, "Destination +99 is blocked by workspace Telephony Config", "Forbidden"),
        kind=Kind.FORBIDDEN, error=resilience.ForbiddenError),
    Row(id="404", status=404, body=dn(404, "Agent not found", "Not Found"), kind=Kind.NOT_FOUND,
        error=resilience.NotFoundError),
    Row(id="409-concurrency", status=409, method="POST", path="/v1/calls",
        body=dn(409, "Workspace concurrency limit reached", "Conflict"), kind=Kind.CONFLICT,
        retryable=True, executed=False, retry_after=dialnexa.CONCURRENCY_RETRY_AFTER,
        error=resilience.ConflictError, resend=True),
    Row(id="409-concurrency-retry-after", status=409, method="POST", path="/v1/calls",
        headers={"Retry-After": "4"},
        body=dn(409, "Concurrency limit reached", "Conflict"), kind=Kind.CONFLICT,
        retryable=True, executed=False, retry_after=4.0, error=resilience.ConflictError,
        resend=True),
    Row(id="409-state", status=409, method="POST", path="/v1/campaigns/c1/resume",
        body=dn(409, "Cannot resume a cancelled campaign", "Conflict"), kind=Kind.CONFLICT,
        error=resilience.ConflictError),
    Row(id="422", status=422, body=dn(422, "Agent assigned to a deleted phone number",
                                      "Unprocessable Entity"),
        kind=Kind.VALIDATION, error=resilience.ValidationError),
    Row(id="429", status=429, body=RATE_LIMIT_BODY, headers={"Retry-After": "3"},
        kind=Kind.RATE_LIMITED, retryable=True, executed=False, retry_after=3.0,
        error=resilience.TooManyRequestsError, resend=True),
    Row(id="429-reset-seconds", status=429, body=RATE_LIMIT_BODY,
        headers={"X-RateLimit-Reset": "60", "X-RateLimit-Remaining": "0"},
        kind=Kind.RATE_LIMITED, retryable=True, executed=False, retry_after=60.0,
        error=resilience.TooManyRequestsError, resend=True),
    Row(id="500-get", status=500, body=dn(500, "Internal server error", "Internal Server Error"),
        kind=Kind.SERVER_ERROR, retryable=True, failure=True, error=resilience.ServerError,
        resend=True),
    Row(id="500-post-calls", status=500, method="POST", path="/v1/calls",
        body=dn(500, "Internal server error", "Internal Server Error"),
        kind=Kind.SERVER_ERROR, retryable=True, failure=True, error=resilience.ServerError,
        resend=False),  # a billable call must never be resent once it may have run
]  # fmt: skip


def g2(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message}


GET2DIAL: list[Row] = [
    Row(id="200", status=200, body={"status": "success", "data": {}}, kind=Kind.SUCCESS),
    Row(id="400-unknown-field", status=400, method="POST", path="/api/v1/auth/login",
        body=g2("invalid request body"), kind=Kind.BAD_REQUEST, error=resilience.BadRequestError,
        message="invalid request body"),
    Row(id="401-missing-token", status=401, path="/api/v1/auth/me",
        body=g2("missing or invalid authorization header"), kind=Kind.AUTH,
        error=resilience.AuthError),
    Row(id="401-wrong-credentials", status=401, method="POST", path="/api/v1/auth/login",
        body=g2("invalid credentials"), kind=Kind.AUTH, error=resilience.AuthError),
    Row(id="403-role", status=403, body=g2("insufficient role"), kind=Kind.FORBIDDEN,
        error=resilience.ForbiddenError),
    Row(id="403-locked", status=403, method="POST", path="/api/v1/auth/login",
        body=g2("account temporarily locked"), kind=Kind.LOCKED_OUT, retry_after=900.0,
        error=resilience.AccountLockedError),
    Row(id="404", status=404, body=g2("not found"), kind=Kind.NOT_FOUND,
        error=resilience.NotFoundError),
    Row(id="409", status=409, method="PUT", body=g2("version mismatch"), kind=Kind.CONFLICT,
        error=resilience.ConflictError),
    Row(id="500-get", status=500, body=g2("internal error"), kind=Kind.SERVER_ERROR,
        retryable=True, failure=True, error=resilience.ServerError, resend=True),
    Row(id="500-put", status=500, method="PUT", body=g2("internal error"),
        kind=Kind.SERVER_ERROR, retryable=True, failure=True, error=resilience.ServerError,
        resend=False),  # only idempotent *reads* are retried on Get2Dial
    Row(id="500-post", status=500, method="POST", body=g2("internal error"),
        kind=Kind.SERVER_ERROR, retryable=True, failure=True, error=resilience.ServerError,
        resend=False),
]  # fmt: skip
