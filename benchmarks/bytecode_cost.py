"""What one bytecode costs inside a request: a forwarding transport padded with trivial ones.

    python benchmarks/bytecode_cost.py [--processes 16] [--checks 36]

opcodes.py finds that on this release's VM the time a thin layer adds follows the bytecodes it
adds rather than its machine instructions. This tests that directly. A transport that only
forwards is padded with ``--checks`` copies of ``if self._a is None: pass`` (three bytecodes
each: a local load, an attribute load, a branch; among the cheapest there are), and timed as
compare.py times its sequential MockTransport row (interleaved, best of 30 rounds of 400, CPU
time) beside bare httpx, the plain forwarding transport and the full stack, in fresh processes.
A third variant makes each check read an object of its own (``self._o<i>.x``, 64 KiB of
other allocations between each two): one more bytecode per check, and a long-lived object that
a request's other work may have pushed out of the nearer caches, as the objects a real layer
reads (its settings, its breaker's memory, the origin cache) may be. Each variant's added
bytecodes are counted as opcodes.py counts them, so the table gives the time added per added
bytecode: if a trivial bytecode cost about what one of the stack's does, their number would be
what a thin layer pays for; if not, it is what they touch and call.

Writes benchmarks/results/bytecode_cost.json and bytecode_cost.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import compare
from benchmarks._children import per_process, write_results
from benchmarks.opcodes import count_made

BARE, FORWARD, PADDED, SPREAD, STACK = (
    "bare httpx",
    "a transport that only forwards",
    "the same, padded with trivial bytecodes",
    "the same, each check on its own object, 64 KiB apart",
    "httpx-resilience (full stack)",
)


def padded_transport(checks: int) -> type[compare.Forward]:
    """A :class:`compare.Forward` whose handler first runs ``checks`` trivial checks."""
    source = "async def handle_async_request(self, request):\n"
    source += "    if self._a is None:\n        pass\n" * checks
    source += "    return await self._inner.handle_async_request(request)\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<padded transport>", "exec"), namespace)  # noqa: S102 - our own source
    return type("Padded", (compare.Forward,), {"_a": 1, **namespace})


class _Flag:
    __slots__ = ("x",)

    def __init__(self) -> None:
        self.x = 1


def spread_transport(checks: int) -> type[compare.Forward]:
    """Like :func:`padded_transport`, but check ``i`` reads ``self._o<i>.x``: ``checks``
    objects of their own, with 64 KiB allocated between each two (the class holds them)."""
    flags, spacers = [], []
    for _ in range(checks):
        flags.append(_Flag())
        spacers.append([bytearray(4096) for _ in range(16)])
    source = "async def handle_async_request(self, request):\n"
    source += "".join(f"    if self._o{i}.x is None:\n        pass\n" for i in range(checks))
    source += "    return await self._inner.handle_async_request(request)\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<spread transport>", "exec"), namespace)  # noqa: S102 - our own source
    attributes = {f"_o{i}": flag for i, flag in enumerate(flags)}
    return type("Spread", (compare.Forward,), {"_spacers": spacers, **attributes, **namespace})


def variants(checks: int) -> dict[str, compare.Maker]:
    padded = padded_transport(checks)
    spread = spread_transport(checks)

    def make_padded(
        transport: httpx.AsyncBaseTransport, url: str
    ) -> tuple[httpx.AsyncClient, compare.Call]:
        return compare.make_bare(padded(transport), url)

    def make_spread(
        transport: httpx.AsyncBaseTransport, url: str
    ) -> tuple[httpx.AsyncClient, compare.Call]:
        return compare.make_bare(spread(transport), url)

    return {
        BARE: compare.make_bare,
        FORWARD: compare.make_forward,
        PADDED: make_padded,
        SPREAD: make_spread,
        STACK: compare.VARIANTS[STACK],
    }


async def _child(checks: int, seed: int) -> None:
    await compare.print_sequential_row(variants(checks), seed)


async def _bytecodes(checks: int) -> dict[str, float]:
    calls = 100
    return {
        name: sum((await count_made(make, calls)).values()) / calls
        for name, make in variants(checks).items()
    }


def main(processes: int, checks: int) -> None:
    bytecodes = asyncio.run(_bytecodes(checks))
    samples = per_process([__file__, "--child", str(checks)], processes)
    bare = samples[BARE]
    lines = [
        f"| MockTransport, sequential, CPU time ({processes} processes) | µs/request "
        "| added µs (median) | ratio to bare httpx | added bytecodes | ns per added bytecode |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = {}
    for name, values in samples.items():
        added = statistics.median(v - b for v, b in zip(values, bare, strict=True))
        ratio = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        extra = bytecodes[name] - bytecodes[BARE]
        per = added * 1000 / extra if extra else None
        rows[name] = {
            "µs per request, median": statistics.median(values),
            "added µs, median": added,
            "ratio to bare, median": ratio,
            "added bytecodes": extra,
            "ns per added bytecode": per,
            "per process": values,
        }
        shown = "" if per is None else f"{per:.1f}"
        lines.append(
            f"| {name} | {statistics.median(values):.1f} | {added:+.2f} | {ratio:.3f}x "
            f"| {extra:+.0f} | {shown} |"
        )
    table = "\n".join(lines)
    print(table)
    report = {"checks": checks, "processes": processes, "rows": rows}
    write_results("bytecode_cost", report, table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16, help="fresh processes (default 16)")
    parser.add_argument("--checks", type=int, default=36, help="trivial checks in the padding")
    parser.add_argument("--child", type=int, metavar="CHECKS", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child is not None:
        asyncio.run(_child(arguments.child, arguments.seed))
    else:
        main(arguments.processes, arguments.checks)
