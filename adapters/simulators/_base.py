"""What every vendor simulator shares: recording, counters, the fault schedule and the ASGI loop.

A vendor module subclasses :class:`Simulator` and supplies ``handle`` (the vendor's documented
behaviour) and its envelopes for faults (``error_response``, ``rate_limited_response``). The
base class reads each request, applies the fault schedule, records what was asked and answered,
and sends the answer, slowly or cut short when a fault says so.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import anyio
import attrs

from resilience._redact import SENSITIVE_HEADERS

from ._asgi import Receive, Request, Response, Router, Scope, Send
from ._control import CONTROL_PREFIX, control_response
from ._faults import Fault, FaultKind, FaultSchedule

__all__ = ["ConnectionDroppedError", "Counters", "RecordedRequest", "Simulator"]

REDACTED = "REDACTED"
#: The correlation header a demo or test sends once per logical operation.
OPERATION_HEADER = "x-demo-operation"
_SECRET_HEADERS = SENSITIVE_HEADERS - {"dialstack-account"}
_SECRET_FIELDS = frozenset({"password", "secret", "token", "api_key", "access_token"})
_OUTAGE_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
    "</h1></center><hr><center>nginx</center></body></html>"
)
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class ConnectionDroppedError(Exception):
    """Raised inside the ASGI app to make the server close a connection mid-response."""


class _HideDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for connections the simulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info
        return not (exc and isinstance(exc[1], ConnectionDroppedError))


_HIDE_DROPS = _HideDrops()


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request a simulator received, with credentials redacted, and what it answered.

    Attributes:
        method: The HTTP method.
        path: The path, without the query.
        query: The query parameters (last value wins).
        headers: The request headers, lower-cased; credentials read ``REDACTED``.
        body: The parsed JSON body (passwords and secrets ``REDACTED``), or None.
        status: The status answered (for a dropped connection: the status that was cut).
        time: Simulator time when the request arrived (seconds since the simulator started).
        operation: The ``X-Demo-Operation`` header, if any.
        fault: The kind of fault applied (``"status"``, ``"slow"``, ...), or None.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    status: int
    time: float
    operation: str | None
    fault: str | None


@attrs.define(kw_only=True)
class Counters:
    """What a demo or a test counts; every field starts at zero.

    Attributes:
        calls_created: Calls (billable side effects) created.
        calls_by_operation: Calls created per ``X-Demo-Operation`` id.
        failed_logins: Failed login attempts per account (wrong credentials only).
        logins: Successful logins per account.
        lockouts: Times an account became locked.
        rate_limited: 429 responses sent.
        outage_requests: Requests received while an outage fault was active.
        dropped: Connections dropped mid-response.
    """

    calls_created: int = 0
    calls_by_operation: collections.Counter[str] = attrs.field(factory=collections.Counter)
    failed_logins: collections.Counter[str] = attrs.field(factory=collections.Counter)
    logins: collections.Counter[str] = attrs.field(factory=collections.Counter)
    lockouts: int = 0
    rate_limited: int = 0
    outage_requests: int = 0
    dropped: int = 0

    @property
    def duplicated_calls(self) -> int:
        """Calls beyond the first created for the same logical operation."""
        return sum(n - 1 for n in self.calls_by_operation.values() if n > 1)


def _redact_body(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in _SECRET_FIELDS else _redact_body(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_body(v) for v in value]
    return value


class Simulator:
    """Base of the vendor simulators: an ASGI 3 app with recording, counters and faults.

    Args:
        clock: Seconds, monotonic; drives fault windows and the vendor's own timers.
        sleep: Awaitable sleep used by ``slow`` faults (``anyio.sleep`` by default).

    Attributes:
        faults: The fault schedule; change it at any time.
        requests: Every request received, in order of arrival.
        counters: The counters of :class:`Counters`.
    """

    vendor: ClassVar[str] = ""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.clock = clock
        self._sleep = sleep or anyio.sleep
        self._epoch = clock()
        self.faults = FaultSchedule()
        self.requests: list[RecordedRequest] = []
        self.counters = Counters()
        self.router = Router()
        self._lock = threading.RLock()
        logging.getLogger("uvicorn.error").addFilter(_HIDE_DROPS)

    # -- what a test or demo uses ------------------------------------------------------------

    def now(self) -> float:
        """Simulator time: seconds since this simulator was made, on its clock."""
        return self.clock() - self._epoch

    def reset(self) -> None:
        """Forget recorded requests and zero the counters (faults and vendor state stay)."""
        with self._lock:
            self.requests.clear()
            self.counters = Counters()

    def count(
        self, *, method: str | None = None, path: str | None = None, status: int | None = None
    ) -> int:
        """How many recorded requests match ``method``, ``path`` (a prefix) and ``status``."""
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method.upper())
            and (path is None or r.path.startswith(path))
            and (status is None or r.status == status)
        )

    def add_fault(self, fault: Fault | str) -> Fault:
        """Shorthand for ``self.faults.add(fault)``."""
        return self.faults.add(fault)

    # -- what a vendor module supplies -------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer ``request`` as the vendor would (subclasses override; default: route it)."""
        return self.route(request)

    def error_response(
        self, status: int, message: str | None = None, request: Request | None = None
    ) -> Response:
        """An error in the vendor's envelope (``request`` picks the envelope where it varies)."""
        raise NotImplementedError

    def rate_limited_response(self, request: Request, retry_after: str | None) -> Response:
        """A 429 in the vendor's own shape, with ``retry_after`` when the fault sets one."""
        response = self.error_response(429, "Too many requests", request)
        return response.with_headers(("retry-after", retry_after)) if retry_after else response

    def finish(self, request: Request, response: Response) -> Response:
        """Add the headers the vendor puts on every response (none by default)."""
        del request
        return response

    # -- helpers for vendor modules ----------------------------------------------------------

    def route(self, request: Request) -> Response:
        """Dispatch through ``self.router``; 404 or 405 in the vendor's envelope otherwise."""
        handler, path_exists = self.router.match(request)
        if handler is not None:
            return handler(request)
        if path_exists:
            return self.error_response(405, "Method not allowed", request)
        return self.error_response(404, "Not found", request)

    def call_created(self, request: Request) -> None:
        """Count one created call, under the request's operation id if it has one."""
        with self._lock:
            self.counters.calls_created += 1
            operation = request.headers.get(OPERATION_HEADER)
            if operation:
                self.counters.calls_by_operation[operation] += 1

    # -- the ASGI app ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await Request.read(scope, receive)
        if request.path.startswith(CONTROL_PREFIX):
            await _send(send, control_response(self, request))
            return
        faults = self.faults.take(request.method, request.path, self.now())
        answering = next((f for f in faults if f.kind is not FaultKind.SLOW), None)
        delay = sum(f.delay for f in faults if f.kind is FaultKind.SLOW)
        with self._lock:
            if answering is not None and not answering.executed:
                response = self._fault_response(answering, request)
            else:
                response = self._handle(request)
                if answering is not None and answering.kind is not FaultKind.DROP:
                    response = self._fault_response(answering, request)
            response = self.finish(request, response)
            self._record(request, response, answering or (faults[0] if faults else None))
        if delay and await self._wait(delay, receive):
            return  # the client went away while we were slow
        if answering is not None and answering.kind is FaultKind.DROP:
            await _send_cut(send, response)
            raise ConnectionDroppedError(f"{request.method} {request.path}")
        await _send(send, response)

    def _handle(self, request: Request) -> Response:
        if request.too_large:
            return self.error_response(413, "Request body too large", request)
        return self.handle(request)

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        retry_after = fault.retry_after_header()
        if fault.kind is FaultKind.RATE_LIMIT:
            return self.rate_limited_response(request, retry_after)
        if fault.kind is FaultKind.OUTAGE:
            self.counters.outage_requests += 1
            page = _OUTAGE_PAGE.format(status=fault.status, reason=_REASONS.get(fault.status, ""))
            response = Response(
                status=fault.status, headers=(("content-type", "text/html"),), body=page.encode()
            )
        else:
            response = self.error_response(fault.status, None, request)
        return response.with_headers(("retry-after", retry_after)) if retry_after else response

    def _record(self, request: Request, response: Response, fault: Fault | None) -> None:
        if response.status == 429:
            self.counters.rate_limited += 1
        if fault is not None and fault.kind is FaultKind.DROP:
            self.counters.dropped += 1
        headers = {k: REDACTED if k in _SECRET_HEADERS else v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=headers,
                body=_redact_body(request.json_or_none()),
                status=response.status,
                time=self.now(),
                operation=request.headers.get(OPERATION_HEADER),
                fault=fault.kind.value if fault is not None else None,
            )
        )

    async def _wait(self, delay: float, receive: Receive) -> bool:
        """Sleep ``delay`` seconds; True when the client disconnected meanwhile."""
        disconnected = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal disconnected
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected = True
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            await self._sleep(delay)
            tg.cancel_scope.cancel()
        return disconnected


def _wire_headers(response: Response, length: int | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers
        if k.lower() != "content-length"
    ]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return headers


async def _send(send: Send, response: Response) -> None:
    bodiless = response.status in {204, 304} or response.status < 200
    length = None if bodiless else len(response.body)
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": _wire_headers(response, length),
        }
    )
    await send({"type": "http.response.body", "body": b"" if bodiless else response.body})


async def _send_cut(send: Send, response: Response) -> None:
    """Promise more body than is sent: the server then closes the socket mid-body."""
    body = response.body or b"{}"
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": _wire_headers(response, len(body) + 64),
        }
    )
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
