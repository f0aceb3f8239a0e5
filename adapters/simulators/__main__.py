"""``python -m adapters.simulators VENDOR``: serve one vendor simulator until interrupted.

Prints the base URL on its first line (``VENDOR simulator on http://HOST:PORT``), then the
demo credentials, and serves until Ctrl+C or SIGTERM. ``--fault`` takes the text form of a
:class:`~adapters.simulators.Fault` (see ``adapters/simulators/_faults.py``); time windows count
seconds from the start.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from . import SIMULATORS, dialnexa, dialstack, get2dial, parse_fault, serve

_CREDENTIALS = {
    "dialstack": [
        f"Authorization: Bearer {dialstack.API_KEY}",
        f"DialStack-Account: {dialstack.ACCOUNT}",
    ],
    "get2dial": [
        f"POST /api/v1/auth/login {{'email': '{get2dial.ADMIN_EMAIL}', "
        f"'password': '{get2dial.PASSWORD}'}}",
    ],
    "dialnexa": [
        f"Authorization: Bearer {dialnexa.API_KEY}",
        "POST /v1/calls {'agent_id': 'agent_demo', 'to_phone_number': '+15550100'}",
    ],
}


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {port}")
    return port


def _parser(prog: str = "python -m adapters.simulators") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a vendor simulator on this machine, to test an integration offline.",
        epilog="Fault SPEC: KIND[=VALUE][,KEY=VALUE...], KIND one of status, rate_limit, outage, "
        "slow, drop; keys method, path, count, start, end, status, retry_after, delay, executed. "
        "Example: --fault 'status=503,count=2,retry_after=1'",
    )
    parser.add_argument("vendor", choices=sorted(SIMULATORS))
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (0 picks a free one)")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help="add a fault (repeatable)"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stop: threading.Event | None = None,
    out: TextIO | None = None,
    prog: str = "python -m adapters.simulators",
) -> int:
    """Run the command line until SIGTERM, Ctrl+C or ``stop``; returns the exit status.

    Args:
        argv: The arguments (``sys.argv[1:]`` by default).
        stop: Set it to stop the server; when given, no signal handler is installed (so
            ``main`` can run outside the main thread).
        out: Where to print (standard output by default).
        prog: The command's name in its usage and error messages.
    """
    stream = out or sys.stdout

    def _say(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        faults = [parse_fault(spec) for spec in args.fault]
    except ValueError as exc:
        parser.error(str(exc))
    simulator = SIMULATORS[args.vendor]()
    for fault in faults:
        simulator.faults.add(fault)
    if stop is None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with contextlib.ExitStack() as running:
        try:
            server = running.enter_context(serve(simulator, host=args.host, port=args.port))
        except OSError as exc:  # the port in use, an address not of this machine, ...
            parser.error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        _say(f"{args.vendor} simulator on {server.url}")
        for line in _CREDENTIALS[args.vendor]:
            _say(f"  {line}")
        for fault in faults:
            _say(f"  fault: {fault.spec()}")
        _say(f"Control: GET {server.url}/_simulator, POST {server.url}/_simulator/faults SPEC")
        _say("Press Ctrl+C to stop.")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    _say(f"{len(simulator.requests)} requests served.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
