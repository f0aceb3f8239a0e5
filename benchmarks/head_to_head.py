"""The full stack against one peer, over enough processes to tell them apart.

    python benchmarks/head_to_head.py [--peer httpx-retries] [--processes 60] [--quick]
    python benchmarks/head_to_head.py --loopback [--processes 60]
    python benchmarks/head_to_head.py --loopback --paired [--processes 60]

compare.py's MockTransport rows, narrowed to bare httpx, the full stack, one peer and a
transport that only forwards each request to the next (the least any transport layer costs).
Each process measures them as compare.py does: interleaved in a shuffled order each round, its
figure the best round's CPU time per request. What one process gives moves by a few percent
with its memory layout (see compare.py's docstring), which is more than the full stack and
httpx-retries differ by. So this runs many processes, each a fresh layout, and reports for each
row the median across processes of the per-process ratio of the stack's time to the peer's,
with a distribution-free 95% confidence interval for that median (from the order statistics;
no assumption about the shape of the spread) and the sign test's count of processes in which
the stack was the cheaper one.

With ``--loopback``, compare.py's loopback rows instead: each process starts its own loopback
server (a subprocess, benchmarks/_loopback.py) and measures the same four variants through real
sockets, its figure the median round, as compare.py's loopback rows; the rows are read both by
wall time and by the client's CPU time (this process's, not the server's).

With ``--loopback --paired``, the sequential loopback row timed request by request: each
process makes PAIRED_PLAN's number of rounds, each round one request of every variant in a
shuffled order, each request timed on its own (wall and client CPU), and its figure for a
variant is the median of that variant's requests. A loopback round of 400 requests moves by
about ±5% with what the kernel and the server are doing meanwhile; a drift that slow falls
alike on the requests of one round of four, so pairing at the request cancels it, where whole
rounds of one variant at a time cannot.

Writes benchmarks/results/head_to_head.json and head_to_head.md, or with ``--loopback``
head_to_head_loopback.json and head_to_head_loopback.md (``--paired``:
head_to_head_paired.json and head_to_head_paired.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import compare
from benchmarks._children import each_process, write_results
from benchmarks._loopback import loopback_server

BARE, STACK = "bare httpx", "httpx-resilience (full stack)"
FLOOR = "a transport that only forwards"
#: Rows: concurrent tasks -> (requests per round, rounds), as compare.py's, in fewer rounds.
PLAN = {1: (400, 30), 200: (1000, 20)}
QUICK_PLAN = {1: (400, 4), 200: (1000, 3)}
#: Loopback rows: a request costs ten times more there (sequentially), so fewer of them; with
#: 200 tasks every variant pays httpcore's per-connection pool work (see compare.py), so one
#: request per task a round.
LOOPBACK_PLAN = {1: (400, 7), 200: (200, 3)}
QUICK_LOOPBACK_PLAN = {1: (200, 3), 200: (200, 2)}
#: Paired loopback row: sequential only, (rounds of one request per variant, unused).
PAIRED_PLAN = {1: (5000, 1)}
QUICK_PAIRED_PLAN = {1: (500, 1)}
#: Requests of each variant before the timed rounds: connections, caches, the interpreter.
PAIRED_WARM_UP = 300


async def paired_per_request(
    url: str, rounds: int, seed: int, variants: dict[str, compare.Maker]
) -> dict[str, tuple[float, float]]:
    """µs per request through real sockets, request by request: ``rounds`` rounds of one
    request of each variant in a shuffled order (seeded), each timed alone; for each variant
    the median request's wall time and the median request's CPU time of this process."""
    setups = {name: make(httpx.AsyncHTTPTransport(), url) for name, make in variants.items()}
    for _, call in setups.values():
        for _ in range(PAIRED_WARM_UP):
            await call()
    walls: dict[str, list[int]] = {name: [] for name in setups}
    cpus: dict[str, list[int]] = {name: [] for name in setups}
    order, shuffle = list(setups), random.Random(seed).shuffle
    wall_clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            call = setups[name][1]
            wall, cpu = wall_clock(), cpu_clock()
            await call()
            cpus[name].append(cpu_clock() - cpu)
            walls[name].append(wall_clock() - wall)
    for client, _ in setups.values():
        await client.aclose()
    return {
        name: (statistics.median(walls[name]) / 1e3, statistics.median(cpus[name]) / 1e3)
        for name in setups
    }


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: the order statistics ``x(k)`` and
    ``x(n+1-k)``, with the largest ``k`` for which Binomial(n, 1/2) puts at most
    ``(1 - confidence) / 2`` below ``k``. Covers at least ``confidence``."""
    ordered, n = sorted(values), len(values)
    tail, below, k = (1 - confidence) / 2, 0.0, 0
    while k < n // 2:
        below += math.comb(n, k) / 2**n  # P(fewer than k + 1 of the n below the median)
        if below > tail:
            break
        k += 1
    if k == 0:  # too few processes for this confidence: the whole range
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def sign_test(below: int, n: int) -> float:
    """Two-sided p-value of ``below`` of ``n`` on one side, if each side were equally likely."""
    low = min(below, n - below)
    p = 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, p)


async def _child(
    peer: str, plan: dict[int, tuple[int, int]], seed: int, loopback: bool, paired: bool = False
) -> None:
    """Print ``{tasks: {figure: {variant: µs per request}}}`` as one JSON line."""
    variants = {name: compare.VARIANTS[name] for name in (BARE, STACK, peer)}
    variants[FLOOR] = compare.make_forward
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for tasks, (n, r) in plan.items():
        if paired and tasks != 1:
            raise ValueError("the paired row is sequential: a plan of {1: (rounds, _)}")
        if loopback or paired:
            with loopback_server() as url:
                found = await (
                    paired_per_request(url + "/", n, seed, variants)
                    if paired
                    else compare.success_path("loopback", url + "/", tasks, n, r, seed, variants)
                )
            rows[str(tasks)] = {
                "wall time": {name: wall for name, (wall, _) in found.items()},
                "client CPU time": {name: cpu for name, (_, cpu) in found.items()},
            }
        else:
            found = await compare.success_path("mock", compare.URL, tasks, n, r, seed, variants)
            rows[str(tasks)] = {"CPU time": {name: cpu for name, (_, cpu) in found.items()}}
    print(json.dumps(rows))


def _summary(per_process: dict[str, list[float]], peer: str) -> dict[str, Any]:
    stack, other, bare = per_process[STACK], per_process[peer], per_process[BARE]
    floor = per_process[FLOOR]
    ratios = [s / o for s, o in zip(stack, other, strict=True)]
    low, high = median_interval(ratios)
    cheaper = sum(ratio < 1 for ratio in ratios)
    return {
        "processes": len(ratios),
        "stack / peer, median": statistics.median(ratios),
        "stack / peer, 95% interval of the median": [low, high],
        "processes where the stack was cheaper": cheaper,
        "sign test p-value": sign_test(cheaper, len(ratios)),
        "stack / bare, median": statistics.median(s / b for s, b in zip(stack, bare, strict=True)),
        "peer / bare, median": statistics.median(o / b for o, b in zip(other, bare, strict=True)),
        "forwarding transport / bare, median": statistics.median(
            f / b for f, b in zip(floor, bare, strict=True)
        ),
        "stack / forwarding transport, median": statistics.median(
            s / f for s, f in zip(stack, floor, strict=True)
        ),
        "µs per request, medians": {n: statistics.median(v) for n, v in per_process.items()},
        "per process": per_process,
    }


#: The fewest processes whose extreme values make a 95% interval for a median (1 - 2/2**6).
FEWEST = 6


def _verdict(row: dict[str, Any]) -> str:
    if row["processes"] < FEWEST:
        return f"too few processes for a 95% interval (at least {FEWEST})"
    low, high = row["stack / peer, 95% interval of the median"]
    if high < 1:
        return "stack ahead"
    if low > 1:
        return "peer ahead"
    return "level (the interval holds 1)"


def table(
    rows: dict[str, dict[str, Any]], peer: str, title: str = "MockTransport, CPU time"
) -> str:
    lines = [
        f"| {title} | processes | full stack / {peer} (median) "
        "| 95% interval | stack cheaper in | sign test p | stack / bare | peer / bare "
        "| forwarding transport / bare | reading |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, row in rows.items():
        low, high = row["stack / peer, 95% interval of the median"]
        n = row["processes"]
        lines.append(
            f"| {label} | {n} | {row['stack / peer, median']:.4f} | {low:.4f} to {high:.4f} "
            f"| {row['processes where the stack was cheaper']} of {n} "
            f"| {row['sign test p-value']:.2g} | {row['stack / bare, median']:.3f}x "
            f"| {row['peer / bare, median']:.3f}x "
            f"| {row['forwarding transport / bare, median']:.3f}x | {_verdict(row)} |"
        )
    return "\n".join(lines)


def main(
    peer: str, processes: int, quick: bool, loopback: bool = False, paired: bool = False
) -> None:
    if peer not in compare.VARIANTS or peer in (BARE, STACK):
        peers = [name for name in compare.VARIANTS if name not in (BARE, STACK)]
        raise SystemExit(f"--peer: one of {peers}")
    if paired:
        plan = QUICK_PAIRED_PLAN if quick else PAIRED_PLAN
        place, name = "loopback server, paired per request", "head_to_head_paired"
        title = "loopback server, request by request"
        mode: list[str] = ["--loopback", "--paired"]
        method = (
            "per process, the median request's time (wall, and the client's CPU), the "
            "variants' requests interleaved one by one; across them, medians"
        )
    elif loopback:
        plan = QUICK_LOOPBACK_PLAN if quick else LOOPBACK_PLAN
        place, name, title = "loopback server", "head_to_head_loopback", "loopback server"
        mode = ["--loopback"]
        method = (
            "per process, the median round's time per request (wall, and the client's CPU); "
            "across them, medians"
        )
    else:
        plan = QUICK_PLAN if quick else PLAN
        place, name, title = "MockTransport", "head_to_head", "MockTransport, CPU time"
        mode = []
        method = "per process, the best round's CPU time per request; across them, medians"
    argument = json.dumps({str(tasks): list(sizes) for tasks, sizes in plan.items()})
    command = [__file__, "--child", argument, "--peer", peer, *mode]
    found: dict[tuple[str, str], dict[str, list[float]]] = {}
    for index, found_in_one in enumerate(each_process(command, processes)):
        for tasks, figures in found_in_one.items():
            for figure, row in figures.items():
                for variant, value in row.items():
                    found.setdefault((tasks, figure), {}).setdefault(variant, []).append(value)
        first = next(iter(found.values()))
        ratio = first[STACK][-1] / first[peer][-1]
        print(f"process {index + 1}/{processes}: sequential stack/peer {ratio:.4f}", flush=True)
    label = compare._label  # noqa: SLF001
    rows = {
        (label(place, int(tasks)) + (f", {figure}" if loopback or paired else "")): _summary(
            v, peer
        )
        for (tasks, figure), v in found.items()
    }
    text = table(rows, peer, title)
    print("\n" + text)
    report = {
        "peer": peer,
        "plan": {
            f"{tasks} task(s)": {"requests_per_round": n, "rounds": r}
            for tasks, (n, r) in plan.items()
        },
        "figure": method,
        "rows": rows,
    }
    write_results(name, report, text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", default="httpx-retries", help="the peer to set against the stack")
    parser.add_argument("--processes", type=int, default=60, help="fresh processes (default 60)")
    parser.add_argument("--quick", action="store_true", help="few rounds per process")
    parser.add_argument("--loopback", action="store_true", help="loopback rows, not MockTransport")
    parser.add_argument(
        "--paired", action="store_true", help="with --loopback: sequential, request by request"
    )
    parser.add_argument("--child", metavar="PLAN", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        plan = {int(tasks): tuple(sizes) for tasks, sizes in json.loads(arguments.child).items()}
        child = _child(arguments.peer, plan, arguments.seed, arguments.loopback, arguments.paired)  # type: ignore[arg-type]
        asyncio.run(child)
    else:
        if arguments.paired and not arguments.loopback:
            parser.error("--paired times the loopback row: add --loopback")
        main(
            arguments.peer,
            arguments.processes,
            arguments.quick,
            arguments.loopback,
            arguments.paired,
        )
