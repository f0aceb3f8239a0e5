"""The ``resilience`` command: the demo and the simulators.

It lives in ``adapters`` because the demo needs the vendor adapters and simulators, and the
``resilience`` package never imports ``adapters``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


#: The demo's shortest and longest runs: its scenario's windows need a second to take shape.
MIN_DURATION, MAX_DURATION = 1.0, 3600.0


def _duration(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not MIN_DURATION <= seconds <= MAX_DURATION:  # NaN fails this too
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_DURATION:g} to {MAX_DURATION:g} seconds, not {text}"
        )
    return seconds


def _trace(text: str) -> str:
    kind, _, _ = text.partition("=")
    if kind not in {"console", "otlp"} or (kind == "console" and "=" in text):
        raise argparse.ArgumentTypeError(f"console or otlp[=URL], not {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    from adapters.demo import SCENARIOS, VENDORS

    parser = argparse.ArgumentParser(
        prog="resilience", description="Resilience layers for httpx: the demo and the simulators."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="a plain client and the vendor stacks side by side, on local simulators",
        description="Start the vendor simulators on 127.0.0.1 and run the same workload through "
        "plain httpx with naive retries and through each vendor's standard stack.",
    )
    demo.add_argument("--vendor", choices=[*VENDORS, "all"], default="all")
    demo.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="standard",
        help="; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    demo.add_argument(
        "--duration",
        type=_duration,
        default=30.0,
        help=f"seconds of workload, {MIN_DURATION:g} to {MAX_DURATION:g} (default 30)",
    )
    demo.add_argument("--json", action="store_true", help="print JSON instead of the table")
    demo.add_argument(
        "--trace",
        type=_trace,
        metavar="console|otlp[=URL]",
        help="export the stack's OpenTelemetry spans to stderr, or to an OTLP/HTTP endpoint",
    )
    commands.add_parser(
        "simulate",
        help="serve one vendor simulator (python -m adapters.simulators)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from adapters.simulators.__main__ import main as simulate

        return simulate(argv[1:], prog="resilience simulate")
    args = _parser().parse_args(argv)
    from adapters.demo import VENDORS, print_report, run_demo
    from adapters.demo._tracing import setup_tracing

    shutdown = setup_tracing(args.trace) if args.trace else None
    vendors = VENDORS if args.vendor == "all" else (args.vendor,)
    try:
        results = run_demo(
            vendors=vendors, scenario=args.scenario, duration=args.duration, progress=True
        )
    # Ctrl+C: the simulators stop with the run; no traceback. (On Python 3.10, anyio's runner
    # turns the interrupt into the main task's cancellation, which surfaces here as such.)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nresilience demo: interrupted", file=sys.stderr)
        return 130
    finally:
        if shutdown is not None:
            shutdown()
    print_report(results, as_json=args.json, scenario=args.scenario, duration=args.duration)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
