"""The Get2Dial simulator: a JWT login with a real failed-login lockout, and tenant resources.

What it does, by the vendor's documentation (``vendor-docs/get2dial-errors.md``):

- Every answer is an envelope: ``{"status": "ok", "data": ...}`` or
  ``{"status": "error", "message": "..."}``; the status code carries the meaning, no error codes.
- ``POST /api/v1/auth/login`` ``{"email", "password", "tenant_domain"?}`` answers
  ``{"token", "expires_at", "user"}`` (in ``data``). Broken JSON, a missing field or an unknown
  field is ``400 invalid request body``; wrong credentials ``401 invalid credentials`` (the same
  for an unknown email or tenant).
- Lockout, counted for real per account (the email): ``max_failures`` (10) failed logins within
  ``failure_window`` (15 min) lock the account for ``lockout`` (15 min). The failure that reaches
  the limit still answers 401; from then on login answers ``403 account temporarily locked``, even
  with the right password, until the lockout ends. A successful login clears the failures.
- Every other endpoint needs ``Authorization: Bearer <token>``: ``401 missing or invalid
  authorization header`` without one, ``401 invalid or expired token`` for a bad one.
- No 429, no Retry-After, no idempotency key (a ``rate_limit`` fault still answers 429, for tests
  of what the docs do not promise).

Endpoints: ``GET /api/v1/auth/me``; ``GET/POST /api/v1/contacts`` (409 on a duplicate phone);
``GET/PUT/DELETE /api/v1/contacts/{id}`` (404 across tenants, 409 on a stale ``version``, 403
for a non-admin delete); ``POST /api/v1/calls`` ``{"to"}`` (201, counted);
``GET /api/v1/tenants/{domain}`` (403 for another tenant). A disabled user's login is 403.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs

from ._asgi import Request, Response, json_response
from ._base import Simulator

__all__ = [
    "ADMIN_EMAIL",
    "AGENT_EMAIL",
    "DISABLED_EMAIL",
    "OTHER_TENANT_EMAIL",
    "PASSWORD",
    "TENANT",
    "Get2DialSimulator",
    "User",
]

PASSWORD = "correct-horse-battery"  # noqa: S105 - the demo user's, public on purpose
TENANT = "acme"
ADMIN_EMAIL = "admin@acme.test"
AGENT_EMAIL = "agent@acme.test"
DISABLED_EMAIL = "former@acme.test"
OTHER_TENANT_EMAIL = "admin@globex.test"

LOCKED_MESSAGE = "account temporarily locked, try again later"
_MESSAGES = {
    400: "invalid request body",
    401: "missing or invalid authorization header",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "request body too large",
    429: "too many requests",
}


@attrs.frozen(kw_only=True)
class User:
    """A Get2Dial user: ``role`` is ``"admin"`` or ``"agent"``."""

    email: str
    password: str
    tenant: str
    role: str = "admin"
    disabled: bool = False

    def public(self) -> dict[str, Any]:
        """The user as the API shows it (no password)."""
        return {"email": self.email, "tenant_domain": self.tenant, "role": self.role}


DEFAULT_USERS = (
    User(email=ADMIN_EMAIL, password=PASSWORD, tenant=TENANT),
    User(email=AGENT_EMAIL, password=PASSWORD, tenant=TENANT, role="agent"),
    User(email=DISABLED_EMAIL, password=PASSWORD, tenant=TENANT, disabled=True),
    User(email=OTHER_TENANT_EMAIL, password=PASSWORD, tenant="globex"),
)


class Get2DialSimulator(Simulator):
    """Get2Dial's REST API, as an ASGI app.

    Args:
        users: The users who can log in (four demo users by default).
        max_failures: Failed logins within ``failure_window`` that lock an account.
        failure_window: Seconds over which failures are counted.
        lockout: Seconds an account stays locked.
        token_ttl: Seconds a token stays valid.
        clock: Monotonic seconds (see :class:`Simulator`); drives the lockout and tokens.
        sleep: Sleep for ``slow`` faults.
    """

    vendor = "get2dial"

    def __init__(
        self,
        *,
        users: Iterable[User] = DEFAULT_USERS,
        max_failures: int = 10,
        failure_window: float = 900.0,
        lockout: float = 900.0,
        token_ttl: float = 3600.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(**({"clock": clock} if clock else {}), sleep=sleep)
        self.users = {u.email.lower(): u for u in users}
        self.max_failures = max_failures
        self.failure_window = failure_window
        self.lockout = lockout
        self.token_ttl = token_ttl
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._tokens: dict[str, tuple[User, float]] = {}
        self._ids = 0
        self.contacts: dict[str, dict[str, Any]] = {
            "ct_acme_1": {"id": "ct_acme_1", "tenant": TENANT, "name": "Ada", "phone": "+15550001"},
            "ct_globex_1": {
                "id": "ct_globex_1",
                "tenant": "globex",
                "name": "Bo",
                "phone": "+15550002",
            },
        }
        for contact in self.contacts.values():
            contact["version"] = 1
        self.calls: list[dict[str, Any]] = []
        r = self.router
        r.add("POST", "/api/v1/auth/login", self._login)
        r.add("GET", "/api/v1/auth/me", self._me)
        r.add("GET", "/api/v1/contacts", self._list_contacts)
        r.add("POST", "/api/v1/contacts", self._create_contact)
        r.add("GET", "/api/v1/contacts/{id}", self._get_contact)
        r.add("PUT", "/api/v1/contacts/{id}", self._update_contact)
        r.add("DELETE", "/api/v1/contacts/{id}", self._delete_contact)
        r.add("POST", "/api/v1/calls", self._create_call)
        r.add("GET", "/api/v1/tenants/{domain}", self._tenant)

    # -- state a test or demo reads --------------------------------------------------------------

    def is_locked(self, email: str) -> bool:
        """Whether ``email``'s account is locked now."""
        return self._locked_until.get(email.lower(), float("-inf")) > self.clock()

    def failures(self, email: str) -> int:
        """Failed logins of ``email`` counted towards a lockout now."""
        now = self.clock()
        return sum(
            1 for t in self._failures.get(email.lower(), []) if now - t < self.failure_window
        )

    # -- envelopes -------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str | None = None, request: Request | None = None
    ) -> Response:
        """``{"status": "error", "message": ...}``."""
        del request
        text = message or _MESSAGES.get(status) or "internal server error"
        return json_response(status, {"status": "error", "message": text.lower()})

    @staticmethod
    def _ok(data: Any, status: int = 200) -> Response:
        return json_response(status, {"status": "ok", "data": data})

    def _strict_body(
        self, request: Request, required: Iterable[str], optional: Iterable[str] = ()
    ) -> dict[str, Any] | Response:
        """The JSON object body, refusing unknown fields and missing or empty required ones."""
        required = set(required)
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400)
        if not isinstance(body, dict) or set(body) - required - set(optional):
            return self.error_response(400)
        if any(not isinstance(body.get(f), str) or not body[f] for f in required):
            return self.error_response(400)
        if any(not isinstance(body[f], str) for f in optional if f in body):
            return self.error_response(400)
        return body

    # -- auth ------------------------------------------------------------------------------------

    def _login(self, request: Request) -> Response:
        body = self._strict_body(request, ("email", "password"), ("tenant_domain",))
        if isinstance(body, Response):
            return body
        account = body["email"].lower()
        now = self.clock()
        until = self._locked_until.get(account)
        if until is not None:
            if now < until:
                return self.error_response(403, LOCKED_MESSAGE)
            del self._locked_until[account]
            self._failures.pop(account, None)
        user = self.users.get(account)
        tenant = body.get("tenant_domain")
        if (
            user is None
            or user.password != body["password"]
            or (tenant is not None and tenant != user.tenant)
        ):
            return self._failed_login(account, now)
        if user.disabled:
            return self.error_response(403, "account disabled")
        self._failures.pop(account, None)
        self.counters.logins[account] += 1
        return self._ok(self._issue_token(user, now))

    def _failed_login(self, account: str, now: float) -> Response:
        recent = [t for t in self._failures.get(account, []) if now - t < self.failure_window]
        recent.append(now)
        self._failures[account] = recent
        self.counters.failed_logins[account] += 1
        if len(recent) >= self.max_failures:
            self._locked_until[account] = now + self.lockout
            self._failures[account] = []
            self.counters.lockouts += 1
        return self.error_response(401, "invalid credentials")

    def _issue_token(self, user: User, now: float) -> dict[str, Any]:
        self._ids += 1
        expires = datetime.datetime.fromtimestamp(
            time.time() + self.token_ttl, tz=datetime.timezone.utc
        )
        claims = {"sub": user.email, "tenant": user.tenant, "role": user.role, "jti": self._ids}
        parts = [
            _b64({"alg": "HS256", "typ": "JWT"}),
            _b64({**claims, "exp": int(expires.timestamp())}),
        ]
        signature = hashlib.sha256(".".join(parts).encode()).digest()
        token = ".".join([*parts, base64.urlsafe_b64encode(signature).decode().rstrip("=")])
        self._tokens[token] = (user, now + self.token_ttl)
        return {
            "token": token,
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
            "user": user.public(),
        }

    def handle(self, request: Request) -> Response:
        """Require a valid Bearer token everywhere except on login, then route."""
        if request.path.rstrip("/") == "/api/v1/auth/login":
            return self.route(request)
        token = request.bearer()
        if token is None:
            return self.error_response(401)
        issued = self._tokens.get(token)
        if issued is None or self.clock() >= issued[1]:
            return self.error_response(401, "invalid or expired token")
        return self.route(request)

    # -- resources -------------------------------------------------------------------------------

    def _me(self, request: Request) -> Response:
        return self._ok(self._caller(request).public())

    def _caller(self, request: Request) -> User:
        token = request.bearer() or ""
        return self._tokens[token][0]

    def _list_contacts(self, request: Request) -> Response:
        tenant = self._caller(request).tenant
        return self._ok([c for c in self.contacts.values() if c["tenant"] == tenant])

    def _find_contact(self, request: Request) -> dict[str, Any] | Response:
        contact = self.contacts.get(request.params["id"])
        if contact is None or contact["tenant"] != self._caller(request).tenant:
            return self.error_response(404, "contact not found")
        return contact

    def _create_contact(self, request: Request) -> Response:
        body = self._strict_body(request, ("name", "phone"))
        if isinstance(body, Response):
            return body
        tenant = self._caller(request).tenant
        if any(
            c["tenant"] == tenant and c["phone"] == body["phone"] for c in self.contacts.values()
        ):
            return self.error_response(409, "contact already exists")
        self._ids += 1
        contact = {"id": f"ct_{self._ids}", "tenant": tenant, **body, "version": 1}
        self.contacts[contact["id"]] = contact
        return self._ok(contact, 201)

    def _get_contact(self, request: Request) -> Response:
        contact = self._find_contact(request)
        return contact if isinstance(contact, Response) else self._ok(contact)

    def _update_contact(self, request: Request) -> Response:
        contact = self._find_contact(request)
        if isinstance(contact, Response):
            return contact
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400)
        if (
            not isinstance(body, dict)
            or set(body) - {"name", "phone", "version"}
            or not isinstance(body.get("version"), int)
        ):
            return self.error_response(400)
        if body["version"] != contact["version"]:
            return self.error_response(409, "version conflict")
        contact.update(body, version=contact["version"] + 1)
        return self._ok(contact)

    def _delete_contact(self, request: Request) -> Response:
        contact = self._find_contact(request)
        if isinstance(contact, Response):
            return contact
        if self._caller(request).role != "admin":
            return self.error_response(403, "insufficient permissions")
        del self.contacts[contact["id"]]
        return self._ok(None)

    def _create_call(self, request: Request) -> Response:
        body = self._strict_body(request, ("to",), ("contact_id",))
        if isinstance(body, Response):
            return body
        self._ids += 1
        call = {"id": f"call_{self._ids}", "tenant": self._caller(request).tenant, **body}
        call["status"] = "dialing"
        self.calls.append(call)
        self.call_created(request)
        return self._ok(call, 201)

    def _tenant(self, request: Request) -> Response:
        tenant = self._caller(request).tenant
        if request.params["domain"] != tenant:
            return self.error_response(403)
        return self._ok({"domain": tenant})


def _b64(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
