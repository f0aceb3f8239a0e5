"""Instructions per request on the success path, counted by valgrind (callgrind).

    python benchmarks/instructions.py [--calls N] [--cache]
    python benchmarks/instructions.py --loopback [--calls N] [--seeds K]

Wall-clock ratios on a shared 2-core VM move by several percent from run to run (two identical
bare clients measure up to 3% apart); an instruction count does not. Each variant runs twice
under ``valgrind --tool=callgrind`` in its own process, once with ``N`` sequential
``client.get`` calls over ``httpx.MockTransport`` and once with none (both after the same
warm-up); the difference over ``N`` is the cost of one request, start-up excluded.
``PYTHONHASHSEED=0`` makes both runs lay out their dicts alike.

With ``--cache``, each variant also runs under ``valgrind --tool=cachegrind`` with its cache
and branch simulation, and the table gains simulated first-level data-cache misses and branch
mispredictions per request: what an instruction count leaves out of the time, on a model
machine (valgrind's default caches), again steady from run to run.

With ``--loopback``, the requests go through real sockets instead, to a loopback server in a
process of its own that valgrind does not run (``benchmarks/_loopback.py``), for compare.py's
variants and the forwarding transport. Three things differ, each because of what a loopback
request is under valgrind (about 2.3M instructions, 13 ms):

- the warm-up is longer (LOOPBACK_WARM_UP requests): a request's count still falls over the
  first few hundred (requests 50 to 550 cost about 40k instructions more than later ones);
- the garbage collector is off during the counted calls (one ``gc.collect()`` first): its
  generation-2 passes, about 3% of a request, fall on different requests for each variant and
  moved a layer's figure by up to 6k instructions;
- each variant runs under several ``PYTHONHASHSEED`` values (``--seeds``) and the table gives
  the mean and the range. One seed repeats its count to within a few hundred instructions in
  all, but a variant's memory layout moves it by a few thousand a request (the type attribute
  cache and dict probes hit differently): the forwarding transport counts anything from below
  bare httpx to above it. The range shows how far apart two variants must be to be told apart.

The counted runs go one at a time (two side by side changed a count by 8M at 2,000 requests:
the server's replies reach the client at other points of its loop).

Prints a Markdown table and writes ``benchmarks/results/instructions.json`` (with
``--loopback``, ``instructions_loopback.{json,md}``). Needs valgrind (``apt-get install
valgrind``) and the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resilience
from benchmarks._children import write_results
from benchmarks._loopback import loopback_server
from benchmarks.compare import URL, VARIANTS, Call, _plain, make_forward

RESULTS = Path(__file__).resolve().parent / "results" / "instructions.json"
WARM_UP = 50
LOOPBACK_WARM_UP = 500


def make_retry_gate(
    transport: httpx.AsyncBaseTransport, url: str
) -> tuple[httpx.AsyncClient, Call]:
    """``Stack(Retry(), RetryAfterGate())``: the pair issue 3 sets a goal for."""
    stack = resilience.Stack(resilience.Retry(), resilience.RetryAfterGate())
    client = httpx.AsyncClient(transport=stack.transport(transport))
    return client, _plain(client, url)


def make_dialstack(transport: httpx.AsyncBaseTransport, url: str) -> tuple[httpx.AsyncClient, Call]:
    """The DialStack adapter's standard stack: its classifier has a ``prepare`` hook."""
    from adapters import dialstack  # imported here: the other variants do not load it

    client = httpx.AsyncClient(transport=dialstack.stack().transport(transport))
    return client, _plain(client, url)


ALL = {
    **VARIANTS,
    "httpx-resilience (Retry + RetryAfterGate)": make_retry_gate,
    "httpx-resilience (DialStack's stack)": make_dialstack,
    "a transport that only forwards (what any layer costs)": make_forward,
}
FORWARD = "a transport that only forwards (what any layer costs)"
#: compare.py's loopback rows, and the forwarding transport as the measure of the layout spread.
LOOPBACK = {**VARIANTS, FORWARD: make_forward}


async def _child(name: str, calls: int) -> None:
    client, call = ALL[name](httpx.MockTransport(lambda r: httpx.Response(200, content=b"ok")), URL)
    for _ in range(WARM_UP + calls):
        await call()
    await client.aclose()


async def _loopback_child(name: str, calls: int, url: str) -> None:
    """``calls`` requests through real sockets to ``url``, after the loopback warm-up, with the
    garbage collector off while they run (see the module's docstring)."""
    client, call = LOOPBACK[name](httpx.AsyncHTTPTransport(), url)
    for _ in range(LOOPBACK_WARM_UP):
        await call()
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            await call()
    finally:
        gc.enable()
    await client.aclose()


def _valgrind(options: list[str], child: list[str], seed: int = 0) -> str:
    """Run this script's ``child`` arguments under valgrind, with ``PYTHONHASHSEED=seed``;
    return valgrind's stderr."""
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    command = ["valgrind", *options, sys.executable, __file__, *child]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)  # noqa: S603
    return done.stderr


def collected(stderr: str, name: str) -> int:
    """The instruction total in callgrind's ``stderr``."""
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind for {name!r}:\n{stderr}")
    return int(found.group(1))


CALLGRIND = ["--tool=callgrind", "--callgrind-out-file=/dev/null"]


def _count(name: str, calls: int) -> int:
    """Instructions the child executed with ``calls`` requests after the warm-up."""
    return collected(_valgrind(CALLGRIND, ["--child", name, str(calls)]), name)


def _loopback_count(name: str, calls: int, url: str, seed: int) -> int:
    """Instructions the loopback child executed with ``calls`` counted requests."""
    child = ["--loopback-child", name, str(calls), url]
    return collected(_valgrind(CALLGRIND, child, seed), name)


def per_request(name: str, calls: int) -> float:
    """Instructions per request: the difference of two runs over the number of requests."""
    return (_count(name, calls) - _count(name, 0)) / calls


#: cachegrind's event columns that the table reports, summed: (label, events).
SIMULATED = {
    "D1 misses": ("D1mr", "D1mw"),
    "branch mispredictions": ("Bcm", "Bim"),
}


def _simulate(name: str, calls: int) -> dict[str, int]:
    """cachegrind's event totals for the child with ``calls`` requests after the warm-up."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "cachegrind.out"
        options = ["--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes"]
        _valgrind([*options, f"--cachegrind-out-file={out}"], ["--child", name, str(calls)])
        lines = out.read_text().splitlines()
    events = next(line.split()[1:] for line in lines if line.startswith("events:"))
    totals = next(line.split()[1:] for line in lines if line.startswith("summary:"))
    return dict(zip(events, map(int, totals), strict=True))


def simulated_per_request(name: str, calls: int) -> dict[str, float]:
    """Simulated D1 misses and branch mispredictions per request (see SIMULATED)."""
    with_calls, without = _simulate(name, calls), _simulate(name, 0)
    return {
        label: sum(with_calls[e] - without[e] for e in events) / calls
        for label, events in SIMULATED.items()
    }


def loopback_per_request(
    count: Callable[[str, int, int], int], calls: int, seeds: int
) -> dict[str, list[float]]:
    """Instructions per request through real sockets, for every LOOPBACK variant under each
    hash seed: ``(count(name, calls, seed) - count(name, 0, seed)) / calls``. ``count`` runs one
    child at a time: every variant under one seed, then every variant under the next."""
    found: dict[str, list[float]] = {name: [] for name in LOOPBACK}
    for seed in range(1, seeds + 1):
        for name in LOOPBACK:
            found[name].append((count(name, calls, seed) - count(name, 0, seed)) / calls)
            print(f"seed {seed}/{seeds}: {name}", file=sys.stderr, flush=True)
    return found


def loopback_table(found: dict[str, list[float]], calls: int) -> str:
    """The Markdown table of :func:`loopback_per_request`: mean and range, and over bare httpx."""
    bare = statistics.fmean(found["bare httpx"])
    seeds = len(found["bare httpx"])
    lines = [
        f"| success path: loopback server, sequential ({calls} calls, {seeds} hash seeds) "
        "| instructions/request (mean) | range over seeds | over bare httpx (mean) "
        "| ratio to bare httpx |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, counts in found.items():
        mean = statistics.fmean(counts)
        lines.append(
            f"| {name} | {mean / 1000:.1f}k | {min(counts) / 1000:.1f}k to "
            f"{max(counts) / 1000:.1f}k | {(mean - bare) / 1000:+.1f}k | {mean / bare:.4f}x |"
        )
    return "\n".join(lines)


def main_loopback(calls: int, seeds: int) -> None:
    with loopback_server() as base:
        url = base + "/"

        def count(name: str, n: int, seed: int) -> int:
            return _loopback_count(name, n, url, seed)

        found = loopback_per_request(count, calls, seeds)
    table = loopback_table(found, calls)
    print(table)
    report = {
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "machine": platform.machine(),
        "calls": calls,
        "warm_up": LOOPBACK_WARM_UP,
        "hash_seeds": list(range(1, seeds + 1)),
        "instructions_per_request": found,
        "mean_over_bare": {
            name: statistics.fmean(n) - statistics.fmean(found["bare httpx"])
            for name, n in found.items()
        },
    }
    write_results("instructions_loopback", report, table)


def main(calls: int, cache: bool) -> None:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        counts = dict(zip(ALL, pool.map(lambda n: per_request(n, calls), ALL), strict=True))
        simulated = (
            dict(zip(ALL, pool.map(lambda n: simulated_per_request(n, calls), ALL), strict=True))
            if cache
            else {}
        )
    base = counts["bare httpx"]
    header = f"| success path: MockTransport, sequential ({calls} calls) | instructions/request "
    header += "| ratio to bare httpx |"
    rule = "|---|---:|---:|"
    for label in SIMULATED if cache else ():
        header += f" {label}/request | ratio |"
        rule += "---:|---:|"
    lines = [header, rule]
    for name, n in counts.items():
        line = f"| {name} | {n / 1000:.1f}k | {n / base:.3f}x |"
        for label in SIMULATED if cache else ():
            value, bare = simulated[name][label], simulated["bare httpx"][label]
            line += f" {value / 1000:.2f}k | {value / bare:.3f}x |"
        lines.append(line)
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    report = {
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "machine": platform.machine(),
        "calls": calls,
        "instructions_per_request": counts,
        "ratio_to_bare": {name: n / base for name, n in counts.items()},
    }
    if cache:
        report["simulated_per_request"] = simulated
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(_child(sys.argv[2], int(sys.argv[3])))
    elif len(sys.argv) == 5 and sys.argv[1] == "--loopback-child":
        asyncio.run(_loopback_child(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument(
            "--calls", type=int, help="requests per counted run (500; with --loopback, 1500)"
        )
        parser.add_argument(
            "--cache", action="store_true", help="add simulated cache misses and mispredictions"
        )
        parser.add_argument(
            "--loopback", action="store_true", help="through real sockets to a loopback server"
        )
        parser.add_argument(
            "--seeds", type=int, default=3, help="hash seeds per variant with --loopback (3)"
        )
        arguments = parser.parse_args()
        if shutil.which("valgrind") is None:
            sys.exit("valgrind is needed: apt-get install valgrind")
        if arguments.loopback:
            if arguments.cache:
                parser.error("--cache counts MockTransport requests only")
            main_loopback(arguments.calls or 1500, arguments.seeds)
        else:
            main(arguments.calls or 500, arguments.cache)
