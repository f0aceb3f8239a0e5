"""Where the express lane's time goes inside a request: the lane with one part cut at a time.

    python benchmarks/ablation.py [--processes 14]

Each variant is the full stack's :class:`~resilience._express.ExpressTransport` with its
``handle_async_request`` rewritten from the lane's own source with one part left out (the
telemetry check, the entry checks, the breaker's closed check, its admitted count, the
``prepare`` check, the outer-stack check, the clock read, the clock read with the bulk success
count, the verdict on the response). A cut variant is deliberately wrong (it skips a layer's
work) and is only ever timed. Two floors go beside them: the same object whose handler only
forwards to the transport below, and that with the verdict stored on the response.

Timed as compare.py times its sequential MockTransport row (interleaved in a shuffled order,
best of 30 rounds of 400, CPU time), beside bare httpx, the stack and httpx-retries, in fresh
processes. Per variant: the median over processes of the time added over bare httpx, and the
median of the paired difference to the stack (what cutting that part saves). A part whose
saving is within the spread of the others' is not where the lane's time goes.

Writes benchmarks/results/ablation.json and ablation.md.
"""

from __future__ import annotations

import inspect
import statistics
import sys
import textwrap
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import compare
from benchmarks._children import command_line, per_process, write_results
from resilience import _express

BARE, STACK, PEER = "bare httpx", "httpx-resilience (full stack)", "httpx-retries"
#: A cut: (the line it starts at, the line it ends at or None for one line, what replaces it).
#: Lines are found by what they contain in the lane's source, first match from the start.
CUTS: dict[str, tuple[str, str | None, str | None]] = {
    "telemetry check": ("decided = self._decided", "# it traces each layer", None),
    "entry checks (budget, holds, login)": (
        "counters = self._budget",
        "return await super().handle_async_request(request)",
        None,
    ),
    "breaker's closed check": (
        "memory, closed = self._memory, self._closed",
        'object.__setattr__(self, "_closed"',
        "key = self._closed[1]",
    ),
    "breaker's admitted count": ("self._breaker_counts.admitted += 1", None, None),
    "prepare check": (
        "if self._prepare is not None:",
        "return await self._general(request, key, unprepared)",
        None,
    ),
    "outer stack check (CALL_KEY)": (
        "below = self._below if CALL_KEY",
        None,
        "below = self._untraced",
    ),
    "clock read": ("if self._anyio_clock and", "now = self._breaker_clock.now()", "now = 0.0"),
    "clock read and success count": ("if self._anyio_clock and", "self._count_success(", None),
    "verdict on the response": ("response.extensions[CLASSIFICATION_KEY] = verdict", None, None),
}
FLOORS = {
    "floor: the lane's object, forwarding only": (
        "async def handle_async_request(self, request):\n"
        "    return await self._untraced.handle_async_request(request)\n"
    ),
    "floor, and the verdict on the response": (
        "async def handle_async_request(self, request):\n"
        "    response = await self._untraced.handle_async_request(request)\n"
        "    response.extensions[CLASSIFICATION_KEY] = self._clean.get(200)\n"
        "    return response\n"
    ),
}


def _cut_source(start: str, end: str | None, replacement: str | None) -> str:
    """The lane's handler with the lines from ``start`` to ``end`` replaced."""
    lines = textwrap.dedent(inspect.getsource(_express.ExpressTransport.handle_async_request))
    source = lines.splitlines()

    def find(text: str, begin: int) -> int:
        for index in range(begin, len(source)):
            if text in source[index]:
                return index
        raise LookupError(f"the lane's source has no line with {text!r}: update CUTS")

    first = find(start, 0)
    last = first if end is None else find(end, first)
    indent = source[first][: len(source[first]) - len(source[first].lstrip())]
    kept = [] if replacement is None else [indent + replacement]
    return "\n".join([*source[:first], *kept, *source[last + 1 :]]) + "\n"


def _variant(name: str, source: str) -> compare.Maker:
    namespace = dict(vars(_express))  # the lane's globals, as its own code sees them
    exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 - the lane's own source
    cut = type(
        "Cut",
        (_express.ExpressTransport,),
        {"handle_async_request": namespace["handle_async_request"]},
    )

    def make(
        transport: httpx.AsyncBaseTransport, url: str
    ) -> tuple[httpx.AsyncClient, compare.Call]:
        lane = compare.full_stack().transport(transport)
        if not isinstance(lane, _express.ExpressTransport):
            raise TypeError("the full stack has no express lane here")
        lane.__class__ = cut
        client = httpx.AsyncClient(transport=lane)
        return client, compare._plain(client, url)  # noqa: SLF001 - compare's own call

    return make


def variants() -> dict[str, compare.Maker]:
    chosen = {name: compare.VARIANTS[name] for name in (BARE, STACK, PEER)}
    chosen["a transport that only forwards"] = compare.make_forward
    for name, (start, end, replacement) in CUTS.items():
        chosen[f"without the {name}"] = _variant(name, _cut_source(start, end, replacement))
    for name, source in FLOORS.items():
        chosen[name] = _variant(name, source)
    return chosen


async def _child(seed: int) -> None:
    await compare.print_sequential_row(variants(), seed)


def main(processes: int) -> None:
    samples = per_process([__file__, "--child"], processes, progress=True)
    bare, stack = samples[BARE], samples[STACK]
    lines = [
        f"| MockTransport, sequential, CPU time ({processes} processes) | µs/request "
        "| added over bare httpx (median) | saved against the full stack (paired median) |",
        "|---|---:|---:|---:|",
    ]
    rows = {}
    for name, values in samples.items():
        added = statistics.median(v - b for v, b in zip(values, bare, strict=True))
        saved = statistics.median(s - v for s, v in zip(stack, values, strict=True))
        rows[name] = {
            "µs per request, median": statistics.median(values),
            "added µs, median": added,
            "saved against the stack, µs, median": saved,
            "per process": values,
        }
        lines.append(f"| {name} | {statistics.median(values):.1f} | {added:+.2f} | {saved:+.2f} |")
    table = "\n".join(lines)
    print(table)
    report = {"processes": processes, "rows": rows}
    write_results("ablation", report, table)


if __name__ == "__main__":
    command_line(__doc__, 14, _child, main)
