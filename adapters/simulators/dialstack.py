"""The DialStack simulator: flat and Partner envelopes, stable codes, idempotency, cursors.

What it does, by the vendor's documentation (``vendor-docs/dialstack-errors.md``):

- ``Authorization: Bearer <key>`` on every endpoint (401 without a known key); account-scoped
  endpoints (``/v1/...``) also need ``DialStack-Account: acct_...`` naming an account the key may
  use (403 otherwise). Resources of another account answer 404.
- Errors are ``{"error", "code", "details"}``; ``code`` only where the docs list a stable one. The
  Partner API (``/partner/...``) nests them: ``{"error": {"code", "message"}}``.
- ``POST``/``PATCH`` honour ``Idempotency-Key``: the same key with the same request replays the
  stored answer (``Idempotent-Replayed: true``) without a second side effect; 5xx are not stored.
- ``GET /v1/calls`` is cursor-paginated with ``next_page_url``; a malformed, foreign or expired
  cursor is ``400 invalid_pagination``.
- Every response carries ``X-Request-Id``. 429s (from a ``rate_limit`` fault) carry
  ``Retry-After``.

Endpoints and how to reach each documented error:

======================================  ===================================================
``POST /v1/calls`` ``{"to", "from"?,    400 no code (broken JSON), ``validation_error``
"record"?}`` → 201                      (``to`` missing or not E.164),
                                        ``invalid_sandbox_phone_number`` (``to`` outside
                                        +1555…), ``sandbox_feature_unsupported``
                                        (``record: true``), 422 no code (``to == from``)
``GET /v1/calls?limit=&cursor=``        ``validation_error`` (bad limit), ``invalid_pagination``
``GET /v1/calls/{id}``                  404 no code
``POST /v1/users`` ``{"handle"}``       409 ``duplicate_handle`` (a legacy, unlisted code)
``PATCH /v1/users/{id}`` ``{"handle"}`` 404, 409 ``duplicate_handle``
``POST /v1/devices/provision``          ``unsupported_vendor``, ``invalid_configuration``,
``{"vendor","model","mac",              404 ``credentials_not_found`` (endpoint without SIP
"endpoint_id"}``                        credentials), 500 ``generation_failed`` (while
                                        ``generation_failures`` > 0)
``GET/POST /partner/v1/accounts``,      nested envelope; 400 ``validation_error``, 409
``GET /partner/v1/accounts/{id}``       ``account_exists``, 404 ``not_found``
======================================  ===================================================
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ._asgi import Request, Response, json_response
from ._base import Simulator

__all__ = ["ACCOUNT", "API_KEY", "LIMITED_KEY", "OTHER_ACCOUNT", "DialStackSimulator"]

API_KEY = "sk_test_dialstack"
"""A platform key that may use both demo accounts."""
LIMITED_KEY = "sk_test_limited"
"""A key that may use ``ACCOUNT`` only (403 on ``OTHER_ACCOUNT``)."""
ACCOUNT = "acct_demo"
OTHER_ACCOUNT = "acct_other"

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
SANDBOX_PREFIX = "+1555"
SUPPORTED_VENDORS = frozenset({"yealink", "polycom", "grandstream"})
#: Endpoints that have SIP credentials; provisioning any other is ``credentials_not_found``.
ENDPOINTS_WITH_CREDENTIALS = frozenset({"ep_1", "ep_2"})
_MESSAGES = {
    400: "Malformed request.",
    401: "Missing or invalid API key.",
    403: "This key has no access to this account.",
    404: "Resource not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "Request body too large.",
    422: "Unprocessable request.",
    429: "Rate limit exceeded.",
}


class DialStackSimulator(Simulator):
    """DialStack's REST API, as an ASGI app.

    Args:
        keys: API key → accounts it may use.
        sandbox: Whether accounts are sandboxes (sandbox numbers and features only).
        cursor_ttl: Seconds a pagination cursor stays valid.
        clock: Monotonic seconds (see :class:`Simulator`).
        sleep: Sleep for ``slow`` faults.

    Attributes:
        generation_failures: While above zero, each provisioning request fails with
            ``500 generation_failed`` and decrements it.
        calls: Created calls per account, in order.
    """

    vendor = "dialstack"

    def __init__(
        self,
        *,
        keys: Mapping[str, Iterable[str]] | None = None,
        sandbox: bool = True,
        cursor_ttl: float = 300.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(**({"clock": clock} if clock else {}), sleep=sleep)
        if keys is None:
            keys = {API_KEY: (ACCOUNT, OTHER_ACCOUNT), LIMITED_KEY: (ACCOUNT,)}
        self.keys = {key: frozenset(accounts) for key, accounts in keys.items()}
        self.sandbox = sandbox
        self.cursor_ttl = cursor_ttl
        self.generation_failures = 0
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.partner_accounts: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[tuple[str, str, str], tuple[bytes, Response]] = {}
        self._ids = 0
        self._request_ids = 0
        r = self.router
        r.add("GET", "/v1/calls", self._list_calls)
        r.add("POST", "/v1/calls", self._create_call)
        r.add("GET", "/v1/calls/{id}", self._get_call)
        r.add("POST", "/v1/users", self._create_user)
        r.add("PATCH", "/v1/users/{id}", self._update_user)
        r.add("POST", "/v1/devices/provision", self._provision)
        r.add("GET", "/partner/v1/accounts", self._list_partner_accounts)
        r.add("POST", "/partner/v1/accounts", self._create_partner_account)
        r.add("GET", "/partner/v1/accounts/{id}", self._get_partner_account)

    # -- envelopes -----------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str | None = None, request: Request | None = None
    ) -> Response:
        """A flat ``{"error", "code"?, "details"?}`` error, nested under ``/partner``."""
        if request is not None and request.path.startswith("/partner"):
            return self._partner_error(status, "error", message)
        return self._error(status, message)

    def _error(
        self,
        status: int,
        message: str | None = None,
        code: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> Response:
        text = (
            message
            or _MESSAGES.get(status)
            or ("Internal server error." if status >= 500 else "Error.")
        )
        payload: dict[str, Any] = {"error": text}
        if code is not None:
            payload["code"] = code
        if details:
            payload["details"] = dict(details)
        return json_response(status, payload)

    def _partner_error(self, status: int, code: str, message: str | None = None) -> Response:
        text = message or _MESSAGES.get(status) or "Internal server error."
        return json_response(status, {"error": {"code": code, "message": text}})

    def rate_limited_response(self, request: Request, retry_after: str | None) -> Response:
        """429 with ``Retry-After`` (1 s unless the fault says otherwise)."""
        seconds = retry_after or "1"
        if request.path.startswith("/partner"):
            response = self._partner_error(429, "rate_limited")
        else:
            response = self._error(429, f"Rate limit exceeded. Retry after {seconds} seconds.")
        return response.with_headers(("retry-after", seconds))

    def finish(self, request: Request, response: Response) -> Response:
        """Every response carries ``X-Request-Id``."""
        self._request_ids += 1
        return response.with_headers(("x-request-id", f"req_{self._request_ids:010d}"))

    # -- auth, scoping and idempotency ---------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Authenticate, scope to an account, replay idempotent answers, then route."""
        partner = request.path.startswith("/partner")
        key = request.bearer()
        if key is None or key not in self.keys:
            if partner:
                return self._partner_error(401, "unauthorized")
            return self._error(401)
        if not partner:
            account = request.headers.get("dialstack-account", "")
            if account not in self.keys[key]:
                return self._error(
                    403, "DialStack-Account is missing or not accessible with this key."
                )
        idem = request.headers.get("idempotency-key")
        if idem is None or request.method not in {"POST", "PATCH"}:
            return self.route(request)
        slot = (key, request.headers.get("dialstack-account", ""), idem)
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path}\n".encode() + request.body
        ).digest()
        if slot in self._idempotent:
            stored_fingerprint, stored = self._idempotent[slot]
            if stored_fingerprint != fingerprint:
                return self._error(
                    422,
                    "Idempotency-Key was already used with a different request.",
                    code="idempotency_key_reused",
                )
            return stored.with_headers(("idempotent-replayed", "true"))
        response = self.route(request)
        if response.status < 500:
            self._idempotent[slot] = (fingerprint, response)
        return response

    def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "Request body is not valid JSON.")
        if not isinstance(body, dict):
            return self._error(
                400, "Request body must be a JSON object.", "validation_error", {"body": "object"}
            )
        return body

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids:06d}"

    # -- calls -----------------------------------------------------------------------------------

    def _create_call(self, request: Request) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        to, from_ = body.get("to"), body.get("from")
        if not isinstance(to, str) or not to:
            return self._error(400, "Validation failed.", "validation_error", {"to": "is required"})
        if not E164.match(to) or (
            from_ is not None and not (isinstance(from_, str) and E164.match(from_))
        ):
            field = "to" if not E164.match(to) else "from"
            return self._error(
                400, "Validation failed.", "validation_error", {field: "must be E.164"}
            )
        if self.sandbox and not to.startswith(SANDBOX_PREFIX):
            return self._error(
                400,
                f"{to} is not a sandbox number; sandbox numbers start with {SANDBOX_PREFIX}.",
                "invalid_sandbox_phone_number",
            )
        if self.sandbox and body.get("record"):
            return self._error(
                400,
                "Call recording is not available in sandbox mode.",
                "sandbox_feature_unsupported",
            )
        if to == from_:
            return self._error(422, "A call cannot be placed to its own caller ID.")
        account = request.headers["dialstack-account"]
        call = {
            "id": self._next_id("call"),
            "account": account,
            "to": to,
            "from": from_,
            "status": "queued",
            "created_at": round(self.now(), 3),
        }
        self.calls.setdefault(account, []).append(call)
        self.call_created(request)
        return json_response(201, call)

    def _get_call(self, request: Request) -> Response:
        account = request.headers["dialstack-account"]
        for call in self.calls.get(account, []):
            if call["id"] == request.params["id"]:
                return json_response(200, call)
        return self._error(404, "Call not found.")

    def _list_calls(self, request: Request) -> Response:
        account = request.headers["dialstack-account"]
        raw_limit = request.query.get("limit", "10")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return self._error(
                400, "Validation failed.", "validation_error", {"limit": "must be 1 to 100"}
            )
        limit = int(raw_limit)
        offset = 0
        if "cursor" in request.query:
            decoded = self._read_cursor(request.query["cursor"], account)
            if decoded is None:
                return self._error(
                    400, "The pagination cursor is invalid or expired.", "invalid_pagination"
                )
            offset = decoded
        calls = self.calls.get(account, [])
        page = calls[offset : offset + limit]
        next_url = None
        if offset + limit < len(calls):
            cursor = self._make_cursor(offset + limit, account)
            host = request.headers.get("host")
            prefix = f"http://{host}" if host else ""
            next_url = f"{prefix}/v1/calls?limit={limit}&cursor={cursor}"
        return json_response(200, {"data": page, "next_page_url": next_url})

    def _make_cursor(self, offset: int, account: str) -> str:
        raw = json.dumps({"o": offset, "a": account, "t": self.now()}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _read_cursor(self, cursor: str, account: str) -> int | None:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
            offset, owner, issued = int(data["o"]), data["a"], float(data["t"])
        except (ValueError, TypeError, KeyError):
            return None
        if owner != account or offset < 0 or self.now() - issued >= self.cursor_ttl:
            return None
        return offset

    # -- users (409 with a legacy code) --------------------------------------------------------

    def _handle_field(self, request: Request) -> str | Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        handle = body.get("handle")
        if not isinstance(handle, str) or not handle:
            return self._error(
                400, "Validation failed.", "validation_error", {"handle": "is required"}
            )
        account = request.headers["dialstack-account"]
        if any(u["handle"] == handle and u["account"] == account for u in self.users.values()):
            return self._error(409, f"Handle {handle!r} is already taken.", "duplicate_handle")
        return handle

    def _create_user(self, request: Request) -> Response:
        handle = self._handle_field(request)
        if isinstance(handle, Response):
            return handle
        user = {
            "id": self._next_id("user"),
            "account": request.headers["dialstack-account"],
            "handle": handle,
        }
        self.users[user["id"]] = user
        return json_response(201, user)

    def _update_user(self, request: Request) -> Response:
        user = self.users.get(request.params["id"])
        if user is None or user["account"] != request.headers["dialstack-account"]:
            return self._error(404, "User not found.")
        handle = self._handle_field(request)
        if isinstance(handle, Response):
            return handle
        user["handle"] = handle
        return json_response(200, user)

    # -- device provisioning -------------------------------------------------------------------

    def _provision(self, request: Request) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        vendor = str(body.get("vendor", "")).lower()
        if vendor not in SUPPORTED_VENDORS:
            return self._error(
                400, f"Phone vendor {vendor!r} is not supported.", "unsupported_vendor"
            )
        missing = [f for f in ("model", "mac", "endpoint_id") if not body.get(f)]
        if missing:
            return self._error(
                400,
                "Device configuration is incomplete.",
                "invalid_configuration",
                dict.fromkeys(missing, "is required"),
            )
        if body["endpoint_id"] not in ENDPOINTS_WITH_CREDENTIALS:
            return self._error(
                404, "No SIP credentials exist for this endpoint.", "credentials_not_found"
            )
        if self.generation_failures > 0:
            self.generation_failures -= 1
            return self._error(
                500, "The provisioning file could not be generated.", "generation_failed"
            )
        device = {"id": self._next_id("prov"), "vendor": vendor, "mac": body["mac"]}
        device["config_url"] = f"/v1/devices/{device['id']}/config"
        return json_response(201, device)

    # -- Partner API (nested envelope) ---------------------------------------------------------

    def _list_partner_accounts(self, request: Request) -> Response:
        del request
        return json_response(200, {"data": list(self.partner_accounts.values())})

    def _create_partner_account(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._partner_error(400, "invalid_json", "Request body is not valid JSON.")
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return self._partner_error(400, "validation_error", "name is required.")
        if any(a["name"] == name for a in self.partner_accounts.values()):
            return self._partner_error(409, "account_exists", f"Account {name!r} exists.")
        account = {"id": self._next_id("acct"), "name": name}
        self.partner_accounts[account["id"]] = account
        return json_response(201, account)

    def _get_partner_account(self, request: Request) -> Response:
        account = self.partner_accounts.get(request.params["id"])
        if account is None:
            return self._partner_error(404, "not_found", "Account not found.")
        return json_response(200, account)
