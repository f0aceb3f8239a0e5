"""Instructions per request on the success path, counted by valgrind (callgrind).

    python benchmarks/instructions.py [--calls N]

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

Prints a Markdown table and writes ``benchmarks/results/instructions.json``. Needs valgrind
(``apt-get install valgrind``) and the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resilience
from benchmarks.compare import URL, VARIANTS, Call, _plain, make_forward

RESULTS = Path(__file__).resolve().parent / "results" / "instructions.json"
WARM_UP = 50


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


async def _child(name: str, calls: int) -> None:
    client, call = ALL[name](httpx.MockTransport(lambda r: httpx.Response(200, content=b"ok")), URL)
    for _ in range(WARM_UP + calls):
        await call()
    await client.aclose()


def _valgrind(options: list[str], name: str, calls: int) -> str:
    """Run the child (``calls`` requests after the warm-up) under valgrind; return its stderr."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = ["valgrind", *options, sys.executable, __file__, "--child", name, str(calls)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)  # noqa: S603
    return done.stderr


def _count(name: str, calls: int) -> int:
    """Instructions the child executed with ``calls`` requests after the warm-up."""
    stderr = _valgrind(["--tool=callgrind", "--callgrind-out-file=/dev/null"], name, calls)
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind for {name!r}:\n{stderr}")
    return int(found.group(1))


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
        _valgrind([*options, f"--cachegrind-out-file={out}"], name, calls)
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


def main(calls: int, cache: bool) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
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
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--calls", type=int, default=500, help="requests per counted run")
        parser.add_argument(
            "--cache", action="store_true", help="add simulated cache misses and mispredictions"
        )
        arguments = parser.parse_args()
        main(arguments.calls, arguments.cache)
