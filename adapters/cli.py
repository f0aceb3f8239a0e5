"""The ``resilience`` command: the demo and the simulators.

It lives in ``adapters`` because the demo needs the vendor adapters and simulators, and the
``resilience`` package never imports ``adapters``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


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
        "--duration", type=float, default=30.0, help="seconds of workload (default 30)"
    )
    demo.add_argument("--json", action="store_true", help="print JSON instead of the table")
    demo.add_argument(
        "--trace",
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

        return simulate(argv[1:])
    args = _parser().parse_args(argv)
    from adapters.demo import VENDORS, print_report, run_demo
    from adapters.demo._tracing import setup_tracing

    if args.duration <= 0:
        print("resilience demo: --duration must be positive", file=sys.stderr)
        return 2
    shutdown = setup_tracing(args.trace) if args.trace else None
    vendors = VENDORS if args.vendor == "all" else (args.vendor,)
    try:
        results = run_demo(
            vendors=vendors, scenario=args.scenario, duration=args.duration, progress=True
        )
    finally:
        if shutdown is not None:
            shutdown()
    print_report(results, as_json=args.json, scenario=args.scenario, duration=args.duration)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
