"""Vendor simulators: ASGI apps that behave as each vendor's documentation says.

Each simulator is an ASGI 3 app with a fault schedule (``faults``), a record of every request
(``requests``) and counters (``counters``). Serve one on 127.0.0.1 with :func:`serve`, or from a
shell with ``python -m adapters.simulators VENDOR``.
"""

from __future__ import annotations

from ._base import ConnectionDroppedError, Counters, RecordedRequest, Simulator
from ._faults import Fault, FaultKind, FaultSchedule, parse_fault
from .dialnexa import DialNexaSimulator
from .dialstack import DialStackSimulator
from .get2dial import Get2DialSimulator
from .server import RunningServer, serve

__all__ = [
    "SIMULATORS",
    "ConnectionDroppedError",
    "Counters",
    "DialNexaSimulator",
    "DialStackSimulator",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "Get2DialSimulator",
    "RecordedRequest",
    "RunningServer",
    "Simulator",
    "parse_fault",
    "serve",
]

#: Simulator classes by vendor name.
SIMULATORS: dict[str, type[Simulator]] = {
    "dialstack": DialStackSimulator,
    "get2dial": Get2DialSimulator,
    "dialnexa": DialNexaSimulator,
}
