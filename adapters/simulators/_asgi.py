"""The little ASGI plumbing the simulators share: requests in, JSON responses out, routing.

No web framework: a simulator is a plain ASGI 3 callable, so any ASGI server can host it and the
tests see exactly the bytes a vendor would send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

__all__ = [
    "MAX_BODY",
    "Receive",
    "Request",
    "Response",
    "Route",
    "Router",
    "Scope",
    "Send",
    "json_response",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Request bodies above this size are refused (413) without being parsed.
MAX_BODY = 1024 * 1024

_NO_JSON = object()


@attrs.define(kw_only=True)
class Request:
    """One request as a simulator sees it: headers are lower-cased, the body read in full."""

    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    too_large: bool = False
    params: dict[str, str] = attrs.field(factory=dict)
    _json: Any = attrs.field(default=_NO_JSON, alias="_json")

    @classmethod
    async def read(cls, scope: Scope, receive: Receive) -> Request:
        """Read a whole request from ASGI ``scope`` and ``receive`` (up to ``MAX_BODY`` bytes)."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY:
                chunks.append(chunk)
            more = bool(message.get("more_body", False))
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raw_query = scope.get("query_string", b"").decode("latin-1")
        return cls(
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            raw_query=raw_query,
            headers=headers,
            body=b"".join(chunks),
            too_large=size > MAX_BODY,
        )

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` when it is empty or not JSON."""
        if self._json is _NO_JSON:
            try:
                self._json = json.loads(self.body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"invalid JSON body: {exc}") from None
        return self._json

    def json_or_none(self) -> Any:
        """The parsed body, or None when there is none or it is not JSON."""
        try:
            return self.json()
        except ValueError:
            return None

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header, or None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None


@attrs.frozen(kw_only=True)
class Response:
    """What a simulator answers: status, headers (name, value) and body bytes."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def with_headers(self, *extra: tuple[str, str]) -> Response:
        """A copy with ``extra`` headers appended."""
        return attrs.evolve(self, headers=(*self.headers, *extra))


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with ``payload`` serialised compactly."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(
        status=status,
        headers=(("content-type", "application/json"), *(headers or {}).items()),
        body=body,
    )


Handler = Callable[[Request], Response]


@attrs.frozen
class Route:
    """A method and a path pattern (``{name}`` matches one path segment) with its handler."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler


@attrs.define
class Router:
    """Routes in the order they were added; the first match wins."""

    routes: list[Route] = attrs.field(factory=list)

    def add(self, method: str, template: str, handler: Handler) -> None:
        """Route ``method template`` (e.g. ``GET /v1/calls/{id}``) to ``handler``."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append(Route(method.upper(), re.compile(f"^{regex}/?$"), handler))

    def match(self, request: Request) -> tuple[Handler | None, bool]:
        """The handler for ``request`` (its path parameters set) and whether the path exists."""
        path_exists = False
        for route in self.routes:
            found = route.pattern.match(request.path)
            if found is None:
                continue
            path_exists = True
            if route.method == request.method:
                request.params.update(found.groupdict())
                return route.handler, True
        return None, path_exists
