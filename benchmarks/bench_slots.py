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

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resilience
from benchmarks import compare
from benchmarks._children import per_process
from resilience._store import MemoryStore
from resilience.testing import VirtualClock

RESULTS = Path(__file__).resolve().parent / "results"
#: Seconds the default breaker counts one slot of successes in.
WIDTH = resilience.CircuitBreaker()._bucket_width  # noqa: SLF001
BARE = "bare httpx"
DEFAULT = "full stack, default clock (compare.py's row)"
BUSY = "full stack, virtual clock, one slot for every request"
QUIET = "full stack, virtual clock, a new slot for every request"

Request = Callable[[], Awaitable[None]]


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


def variants(inner: httpx.AsyncBaseTransport) -> dict[str, tuple[httpx.AsyncClient, Request]]:
    """Each variant's client and one request through it (the virtual clocks moved first)."""
    made: dict[str, tuple[httpx.AsyncClient, Request]] = {
        BARE: compare.make_bare(inner, compare.URL),
        DEFAULT: compare.make_stack(inner, compare.URL),
    }
    for name, step in ((BUSY, 0.0), (QUIET, WIDTH)):
        clock = VirtualClock(1000.0)
        client = httpx.AsyncClient(transport=virtual_stack(clock).transport(inner))
        made[name] = client, _moving(client, clock, step)
    return made


def _moving(client: httpx.AsyncClient, clock: VirtualClock, step: float) -> Request:
    """One request through ``client``, ``clock`` moved on by ``step`` seconds first."""
    get, advance = client.get, clock.advance

    async def request() -> None:
        advance(step)
        response = await get(compare.URL)
        assert response.status_code == 200

    return request


async def _round(request: Request, requests: int) -> float:
    cpu = time.process_time()
    for _ in range(requests):
        await request()
    return (time.process_time() - cpu) / requests * 1e6


async def _child(seed: int, requests: int = 400, rounds: int = 30) -> None:
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))
    made = variants(inner)
    for _, request in made.values():  # warm-up
        await _round(request, requests)
    best = dict.fromkeys(made, float("inf"))
    order = list(made)
    shuffle = random.Random(seed).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            best[name] = min(best[name], await _round(made[name][1], requests))
    for client, _ in made.values():
        await client.aclose()
    print(json.dumps(best))


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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "slots.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "slots.md").write_text(text + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=10, help="fresh processes (default 10)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        asyncio.run(_child(arguments.seed))
    else:
        main(arguments.processes)
