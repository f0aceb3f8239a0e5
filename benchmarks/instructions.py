"""Instructions per request on the success path, counted by valgrind (callgrind).

    python benchmarks/instructions.py [--calls N]

Wall-clock ratios on a shared 2-core VM move by several percent from run to run (two identical
bare clients measure up to 3% apart); an instruction count does not. Each variant runs twice
under ``valgrind --tool=callgrind`` in its own process, once with ``N`` sequential
``client.get`` calls over ``httpx.MockTransport`` and once with none (both after the same
warm-up); the difference over ``N`` is the cost of one request, start-up excluded.
``PYTHONHASHSEED=0`` makes both runs lay out their dicts alike.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resilience
from benchmarks.compare import VARIANTS, Call, _plain

RESULTS = Path(__file__).resolve().parent / "results" / "instructions.json"
URL = "http://api.test/v1/calls"
WARM_UP = 50


def make_retry_gate(
    transport: httpx.AsyncBaseTransport, url: str
) -> tuple[httpx.AsyncClient, Call]:
    """``Stack(Retry(), RetryAfterGate())``: the pair issue 3 sets a goal for."""
    stack = resilience.Stack(resilience.Retry(), resilience.RetryAfterGate())
    client = httpx.AsyncClient(transport=stack.transport(transport))
    return client, _plain(client, url)


ALL = {**VARIANTS, "httpx-resilience (Retry + RetryAfterGate)": make_retry_gate}


async def _child(name: str, calls: int) -> None:
    client, call = ALL[name](httpx.MockTransport(lambda r: httpx.Response(200, content=b"ok")), URL)
    for _ in range(WARM_UP + calls):
        await call()
    await client.aclose()


def _count(name: str, calls: int) -> int:
    """Instructions the child executed with ``calls`` requests after the warm-up."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        name,
        str(calls),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)  # noqa: S603
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind for {name!r}:\n{done.stderr}")
    return int(found.group(1))


def per_request(name: str, calls: int) -> float:
    """Instructions per request: the difference of two runs over the number of requests."""
    return (_count(name, calls) - _count(name, 0)) / calls


def main(calls: int) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        counts = dict(zip(ALL, pool.map(lambda n: per_request(n, calls), ALL), strict=True))
    base = counts["bare httpx"]
    lines = [
        f"| success path: MockTransport, sequential ({calls} calls) | instructions/request "
        "| ratio to bare httpx |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {n / 1000:.1f}k | {n / base:.3f}x |" for name, n in counts.items()]
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
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(_child(sys.argv[2], int(sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--calls", type=int, default=500, help="requests per counted run")
        main(parser.parse_args().calls)
