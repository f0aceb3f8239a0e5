"""The control endpoints under ``/_simulator``: script a running simulator over HTTP.

For a simulator started from the command line, where no Python object is at hand:

- ``GET /_simulator``: vendor, simulator time, counters, active faults (as text) and the number
  of requests recorded.
- ``POST /_simulator/faults`` with a fault's text form as the body (or ``{"spec": "..."}``):
  adds it (201), or 400 with the reason.
- ``DELETE /_simulator/faults``: removes every fault.
- ``POST /_simulator/reset``: clears the record and the counters.

These requests are neither recorded nor subject to faults.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._asgi import Request, Response, json_response
from ._faults import parse_fault

if TYPE_CHECKING:
    from ._base import Simulator

__all__ = ["CONTROL_PREFIX", "control_response", "snapshot"]

CONTROL_PREFIX = "/_simulator"


def snapshot(simulator: Simulator) -> dict[str, Any]:
    """The simulator's state as JSON-ready data."""
    counters = simulator.counters
    return {
        "vendor": simulator.vendor,
        "now": round(simulator.now(), 6),
        "requests": len(simulator.requests),
        "faults": [fault.spec() for fault in simulator.faults.active],
        "counters": {
            "calls_created": counters.calls_created,
            "calls_by_operation": dict(counters.calls_by_operation),
            "duplicated_calls": counters.duplicated_calls,
            "failed_logins": dict(counters.failed_logins),
            "logins": dict(counters.logins),
            "lockouts": counters.lockouts,
            "rate_limited": counters.rate_limited,
            "outage_requests": counters.outage_requests,
            "dropped": counters.dropped,
        },
    }


def control_response(simulator: Simulator, request: Request) -> Response:
    """Answer a request under ``/_simulator``."""
    path = request.path.rstrip("/")
    if path == CONTROL_PREFIX and request.method == "GET":
        return json_response(200, snapshot(simulator))
    if path == f"{CONTROL_PREFIX}/faults" and request.method == "POST":
        spec = request.body.decode("utf-8", "replace").strip()
        if spec.startswith("{"):
            try:
                spec = str(json.loads(spec)["spec"])
            except (ValueError, KeyError, TypeError):
                return json_response(400, {"error": 'expected {"spec": "..."}'})
        try:
            fault = simulator.faults.add(parse_fault(spec))
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(201, {"fault": fault.spec()})
    if path == f"{CONTROL_PREFIX}/faults" and request.method == "DELETE":
        simulator.faults.clear()
        return json_response(200, {"faults": []})
    if path == f"{CONTROL_PREFIX}/reset" and request.method == "POST":
        simulator.reset()
        return json_response(200, snapshot(simulator))
    return json_response(404, {"error": f"no control endpoint {request.method} {request.path}"})
