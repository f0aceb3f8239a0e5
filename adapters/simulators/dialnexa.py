"""The DialNexa simulator: NestJS-style errors, a per-key rate limit, concurrency and ETags.

What it does, by the vendor's documentation (``vendor-docs/dialnexa-errors.md``):

- ``Authorization: Bearer <key_id:secret>``; errors are ``{"statusCode", "message", "error"}``
  where ``message`` is a list when several fields fail validation.
- A fixed-window rate limit per API key (``rate_limit`` requests per ``rate_window`` seconds).
  Authenticated responses carry ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset`` (a Unix timestamp, or seconds from now with ``reset_style="seconds"``);
  a 429 has ``Retry-After`` in seconds and the documented body, word for word.
- ``POST /v1/calls`` ``{"agent_id", "to_phone_number"}``: 400 on validation (E.164, empty agent,
  unknown fields), 404 for an agent of another organization, 422 for an agent whose phone number
  was deleted, 403 for a destination under a blocked prefix, 409 with "concurrency limit reached"
  (and no call) while the workspace has ``concurrency_limit`` calls in progress, else 201. A call
  is in progress for ``call_duration`` seconds of the simulator clock, or until
  ``POST /v1/calls/{id}/end``.
- ``GET /v1/call-logs`` has an ``ETag``; ``If-None-Match`` with it answers 304.
- Campaigns: ``POST /v1/campaigns/{id}/(pause|resume|cancel)``; resuming or cancelling a
  cancelled campaign is a 409 state conflict. ``DELETE /v1/agents/{id}`` of an agent in an active
  campaign is 409; ``PATCH /v1/agents/{id}`` ``{"name"}`` answers 200. A read-only key gets 403
  ``Forbidden resource`` on any write.
"""

from __future__ import annotations

import hashlib
import http
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from ._asgi import Request, Response, json_response
from ._base import Simulator

__all__ = [
    "API_KEY",
    "OTHER_ORG_KEY",
    "RATE_LIMIT_MESSAGE",
    "READ_ONLY_KEY",
    "ApiKey",
    "DialNexaSimulator",
]

API_KEY = "dk_demo:sk_demo_secret"
OTHER_ORG_KEY = "dk_other:sk_other_secret"
READ_ONLY_KEY = "dk_readonly:sk_readonly_secret"
RATE_LIMIT_MESSAGE = "Too many requests. Please slow down and retry after a moment."
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


@attrs.frozen(kw_only=True)
class ApiKey:
    """An API key's organization and whether it may write."""

    org: str
    writable: bool = True


DEFAULT_KEYS = {
    API_KEY: ApiKey(org="org_demo"),
    OTHER_ORG_KEY: ApiKey(org="org_other"),
    READ_ONLY_KEY: ApiKey(org="org_demo", writable=False),
}


class DialNexaSimulator(Simulator):
    """DialNexa's REST API, as an ASGI app.

    Args:
        keys: ``"key_id:secret"`` → its :class:`ApiKey`.
        rate_limit: Requests per key per window.
        rate_window: The window in seconds.
        reset_style: ``X-RateLimit-Reset`` as a Unix ``"timestamp"`` or ``"seconds"`` from now.
        concurrency_limit: Calls in progress per organization.
        call_duration: Seconds a call stays in progress.
        concurrency_retry_after: A ``Retry-After`` to send on the concurrency 409 (the docs
            promise none; None sends none).
        blocked_prefixes: Destinations not enabled in the workspace's Telephony Config.
        clock: Monotonic seconds (see :class:`Simulator`).
        sleep: Sleep for ``slow`` faults.
    """

    vendor = "dialnexa"

    def __init__(
        self,
        *,
        keys: Mapping[str, ApiKey] = DEFAULT_KEYS,
        rate_limit: int = 60,
        rate_window: float = 60.0,
        reset_style: Literal["timestamp", "seconds"] = "timestamp",
        concurrency_limit: int = 2,
        call_duration: float = 30.0,
        concurrency_retry_after: float | None = None,
        blocked_prefixes: Iterable[str] = ("+882", "+883"),
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(**({"clock": clock} if clock else {}), sleep=sleep)
        self.keys = dict(keys)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.reset_style = reset_style
        self.concurrency_limit = concurrency_limit
        self.call_duration = call_duration
        self.concurrency_retry_after = concurrency_retry_after
        self.blocked_prefixes = tuple(blocked_prefixes)
        self._windows: dict[str, tuple[float, int]] = {}
        self._ids = 0
        self.calls: dict[str, dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {
            "agent_demo": {"id": "agent_demo", "org": "org_demo", "phone_deleted": False},
            "agent_orphan": {"id": "agent_orphan", "org": "org_demo", "phone_deleted": True},
            "agent_other": {"id": "agent_other", "org": "org_other", "phone_deleted": False},
        }
        self.campaigns: dict[str, dict[str, Any]] = {
            "camp_active": {"id": "camp_active", "org": "org_demo", "status": "running"},
            "camp_cancelled": {"id": "camp_cancelled", "org": "org_demo", "status": "cancelled"},
        }
        self.campaign_agents = {"camp_active": {"agent_demo"}}
        r = self.router
        r.add("POST", "/v1/calls", self._create_call)
        r.add("GET", "/v1/calls/{id}", self._get_call)
        r.add("POST", "/v1/calls/{id}/end", self._end_call)
        r.add("GET", "/v1/call-logs", self._call_logs)
        r.add("POST", "/v1/campaigns/{id}/{action}", self._campaign_action)
        r.add("PATCH", "/v1/agents/{id}", self._update_agent)
        r.add("DELETE", "/v1/agents/{id}", self._delete_agent)

    # -- state a test or demo reads or drives ----------------------------------------------------

    def active_calls(self, org: str = "org_demo") -> int:
        """Calls in progress for ``org`` now."""
        now = self.clock()
        return sum(
            1
            for c in self.calls.values()
            if c["org"] == org and not c["ended"] and now < c["_until"]
        )

    def end_all_calls(self) -> None:
        """End every call in progress (frees the concurrency limit at once)."""
        for call in self.calls.values():
            call["ended"] = True

    # -- envelopes -------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str | list[str] | None = None, request: Request | None = None
    ) -> Response:
        """``{"statusCode", "message", "error"}`` with the status' reason phrase as ``error``."""
        del request
        phrase = _phrase(status)
        return json_response(
            status, {"statusCode": status, "message": message or phrase, "error": phrase}
        )

    def rate_limited_response(self, request: Request, retry_after: str | None) -> Response:
        """The documented 429 body with ``Retry-After`` in seconds."""
        del request
        response = self.error_response(429, RATE_LIMIT_MESSAGE)
        return response.with_headers(("retry-after", retry_after or "1"))

    def finish(self, request: Request, response: Response) -> Response:
        """Authenticated responses carry the key's ``X-RateLimit-*`` headers."""
        key = request.bearer()
        if key not in self.keys:
            return response
        start, used = self._windows.get(key, (self.clock(), 0))
        reset_in = max(0.0, start + self.rate_window - self.clock())
        remaining = 0 if response.status == 429 else max(0, self.rate_limit - used)
        reset = (
            math.ceil(reset_in)
            if self.reset_style == "seconds"
            else math.ceil(time.time() + reset_in)
        )
        return response.with_headers(
            ("x-ratelimit-limit", str(self.rate_limit)),
            ("x-ratelimit-remaining", str(remaining)),
            ("x-ratelimit-reset", str(reset)),
        )

    # -- auth and the rate limit -----------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Authenticate, count against the key's rate limit, check write access, route."""
        key = request.bearer()
        if key is None or key.count(":") != 1 or key not in self.keys:
            return self.error_response(401, "Unauthorized")
        now = self.clock()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.rate_window:
            start, used = now, 0
        self._windows[key] = (start, used + 1)
        if used + 1 > self.rate_limit:
            retry_after = max(1, math.ceil(start + self.rate_window - now))
            return self.rate_limited_response(request, str(retry_after))
        if request.method not in {"GET", "HEAD"} and not self.keys[key].writable:
            return self.error_response(403, "Forbidden resource")
        request.params["_org"] = self.keys[key].org
        return self.route(request)

    @staticmethod
    def _org(request: Request) -> str:
        return request.params.get("_org") or ""

    # -- calls -----------------------------------------------------------------------------------

    def _create_call(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400, "Invalid JSON in request body")
        if not isinstance(body, dict):
            body = {}
        messages = [f"property {k} should not exist" for k in body if k not in _CALL_FIELDS]
        agent_id, to = body.get("agent_id"), body.get("to_phone_number")
        if not isinstance(to, str) or not E164.match(to):
            messages.append("to_phone_number must be in E.164 format")
        if agent_id is None or agent_id == "":
            messages.append("agent_id should not be empty")
        elif not isinstance(agent_id, str):
            messages.append("agent_id must be a string")
        if len(messages) == 1:
            return self.error_response(400, f"Validation failed: {messages[0]}")
        if messages:
            return self.error_response(400, messages)
        org = self._org(request)
        agent = self.agents.get(str(agent_id))
        if agent is None or agent["org"] != org:
            return self.error_response(404, f"Agent {agent_id} not found")
        if agent["phone_deleted"]:
            return self.error_response(422, "Agent is assigned to a deleted phone number")
        if str(to).startswith(self.blocked_prefixes):
            return self.error_response(
                403, "The requested destination is blocked by workspace Telephony Config"
            )
        active = self.active_calls(org)
        if active >= self.concurrency_limit:
            busy = self.error_response(
                409,
                f"Workspace concurrency limit reached ({active} of {self.concurrency_limit} "
                "calls in progress); retry when a call ends",
            )
            if self.concurrency_retry_after is None:
                return busy
            return busy.with_headers(("retry-after", f"{self.concurrency_retry_after:g}"))
        self._ids += 1
        now = self.clock()
        call: dict[str, Any] = {
            "id": f"call_{self._ids:06d}",
            "org": org,
            "agent_id": agent_id,
            "to_phone_number": to,
            "status": "queued",
            "ended": False,
            "_until": now + self.call_duration,
        }
        self.calls[call["id"]] = call
        self.call_created(request)
        return json_response(201, _public(call))

    def _find_call(self, request: Request) -> dict[str, Any] | None:
        call = self.calls.get(request.params["id"])
        return call if call is not None and call["org"] == self._org(request) else None

    def _get_call(self, request: Request) -> Response:
        call = self._find_call(request)
        if call is None:
            return self.error_response(404, f"Call {request.params['id']} not found")
        return json_response(200, _public(call))

    def _end_call(self, request: Request) -> Response:
        call = self._find_call(request)
        if call is None:
            return self.error_response(404, f"Call {request.params['id']} not found")
        if call["ended"]:
            return self.error_response(409, "Call has already ended")
        call["ended"] = True
        return json_response(201, _public(call))

    def _call_logs(self, request: Request) -> Response:
        org = self._org(request)
        logs = [_public(c) for c in self.calls.values() if c["org"] == org]
        payload = json.dumps({"data": logs}, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status=304, headers=(("etag", etag),))
        return Response(
            status=200,
            headers=(("content-type", "application/json"), ("etag", etag)),
            body=payload,
        )

    # -- campaigns and agents (state conflicts) --------------------------------------------------

    def _campaign_action(self, request: Request) -> Response:
        campaign = self.campaigns.get(request.params["id"])
        if campaign is None or campaign["org"] != self._org(request):
            return self.error_response(404, f"Campaign {request.params['id']} not found")
        action = request.params["action"]
        if action not in _CAMPAIGN_ACTIONS:
            return self.error_response(404, f"Cannot POST {request.path}")
        if campaign["status"] == "cancelled":
            return self.error_response(409, f"Cannot {action} a cancelled campaign")
        campaign["status"] = _CAMPAIGN_ACTIONS[action]
        return json_response(201, {k: v for k, v in campaign.items() if k != "org"})

    def _update_agent(self, request: Request) -> Response:
        agent = self.agents.get(request.params["id"])
        if agent is None or agent["org"] != self._org(request):
            return self.error_response(404, f"Agent {request.params['id']} not found")
        body = request.json_or_none()
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return self.error_response(400, ["name should not be empty"])
        agent["name"] = name
        return json_response(200, _public(agent))

    def _delete_agent(self, request: Request) -> Response:
        agent = self.agents.get(request.params["id"])
        if agent is None or agent["org"] != self._org(request):
            return self.error_response(404, f"Agent {request.params['id']} not found")
        for campaign_id, agents in self.campaign_agents.items():
            if agent["id"] in agents and self.campaigns[campaign_id]["status"] == "running":
                return self.error_response(409, "Agent is still assigned to an active campaign")
        del self.agents[agent["id"]]
        return json_response(200, {"id": agent["id"], "deleted": True})


_CALL_FIELDS = frozenset({"agent_id", "to_phone_number"})
_CAMPAIGN_ACTIONS = {"pause": "paused", "resume": "running", "cancel": "cancelled"}


#: The names the vendor's status table gives, where Python's ``http.HTTPStatus`` has since
#: renamed them (RFC 9110; Python 3.13 says "Unprocessable Content").
_VENDOR_PHRASES = {422: "Unprocessable Entity"}


def _phrase(status: int) -> str:
    if status in _VENDOR_PHRASES:
        return _VENDOR_PHRASES[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _public(call: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in call.items() if not k.startswith("_") and k != "org"}


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip() for c in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)
