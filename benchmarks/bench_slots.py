"""What a quiet key costs: the full stack's success path when every request opens a new slot.

    python benchmarks/bench_slots.py [--processes 10]

The breaker counts successes in bulk (``resilience._batch``): the first success of a key in a
time slot (one bucket of its window, 3 s by default) is written to the store at once, later
ones in the slot only add to a pending count. compare.py's rows send thousands of requests a
slot, so they show the busy case. A key that sees at most one request a slot (one request every
3 s or less often to an origin, common for a service calling a vendor now and then) pays the
write on every request. This times both, over ``httpx.MockTransport`` with the stack's layers on
one :class:`~resilience.testing.VirtualClock` each, moved on by nothing (the busy case) or by a
bucket's width (a new slot every request) before each request, beside bare httpx and the stack
on its default clock (which the lane reads inline: what compare.py times). Like compare.py's
sequential row: interleaved in a shuffled order each round, each variant's figure the best
round's CPU time, in fresh processes; the table gives medians across them.

Prints a Markdown table and writes benchmarks/results/slots.json and slots.md.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resilience
from benchmarks import compare
from benchmarks._children import command_line, per_process, write_results
from resilience._store import MemoryStore
from resilience.testing import VirtualClock

#: Seconds the default breaker counts one slot of successes in.
WIDTH = resilience.CircuitBreaker()._bucket_width  # noqa: SLF001
BARE = "bare httpx"
DEFAULT = "full stack, default clock (compare.py's row)"
BUSY = "full stack, virtual clock, one slot for every request"
QUIET = "full stack, virtual clock, a new slot for every request"


def virtual_stack(clock: VirtualClock, store: MemoryStore[Any] | None = None) -> resilience.Stack:
    """compare.py's full stack, every layer that reads a clock on ``clock`` (the breaker's
    circuits in ``store``, if given)."""
    return resilience.Stack(
        resilience.Retry(clock=clock),
        resilience.RetryAfterGate(clock=clock),
        resilience.LockoutGuard(clock=clock),
        resilience.CircuitBreaker(clock=clock, store=store),
        resilience.Classify(),
    )


def variants() -> dict[str, compare.Maker]:
    """Each variant, as compare.py's rows take them: ``(inner, url) -> (client, call)``."""
    return {
        BARE: compare.make_bare,
        DEFAULT: compare.make_stack,
        BUSY: _on_virtual_clock(0.0),
        QUIET: _on_virtual_clock(WIDTH),
    }


def _on_virtual_clock(step: float, store: MemoryStore[Any] | None = None) -> compare.Maker:
    """The full stack on a virtual clock of its own, moved on by ``step`` before each call
    (the breaker's circuits in ``store``, if given)."""

    def make(inner: httpx.AsyncBaseTransport, url: str) -> tuple[httpx.AsyncClient, compare.Call]:
        clock = VirtualClock(1000.0)
        client = httpx.AsyncClient(transport=virtual_stack(clock, store).transport(inner))
        get, advance = client.get, clock.advance

        async def call() -> None:
            advance(step)
            response = await get(url)
            assert response.status_code == 200

        return client, call

    return make


async def _child(seed: int) -> None:
    await compare.print_sequential_row(variants(), seed)


def main(processes: int) -> None:
    samples = per_process([__file__, "--child"], processes, progress=True)
    bare = samples[BARE]
    lines = [
        f"| MockTransport, sequential, CPU time ({processes} processes) | µs/request "
        "| added over bare httpx (median) | ratio to bare httpx |",
        "|---|---:|---:|---:|",
    ]
    rows = {}
    for name, values in samples.items():
        added = statistics.median(v - b for v, b in zip(values, bare, strict=True))
        ratio = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        rows[name] = {
            "µs per request, median": statistics.median(values),
            "added µs, median": added,
            "ratio to bare, median": ratio,
            "per process": values,
        }
        lines.append(f"| {name} | {statistics.median(values):.1f} | {added:+.2f} | {ratio:.3f}x |")
    text = "\n".join(lines)
    print(text)
    report = {
        "slot width (s)": WIDTH,
        "figure": "per process, the best of 30 rounds of 400 requests; across them, medians",
        "rows": rows,
    }
    write_results("slots", report, text)


if __name__ == "__main__":
    command_line(__doc__, 10, _child, main)
