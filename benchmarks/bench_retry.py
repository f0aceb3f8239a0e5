"""Retry amplification under a total outage, and the success-path cost of Retry + RetryAfterGate.

Run: ``python benchmarks/bench_retry.py`` (needs the ``demo`` extra for the loopback server).
Prints two Markdown tables and writes ``benchmarks/results/retry.json``.

1. Amplification: a server on 127.0.0.1 that always answers 503; 200 concurrent callers each
   make ``calls`` sequential GETs; attempts that reached the server per logical request.
   Backoff is shrunk (1-5 ms) so the run is quick; everything else is the layer's default.
2. Overhead: a bare ``httpx.AsyncClient`` over ``httpx.MockTransport`` against the same client
   with ``Stack(Retry(), RetryAfterGate())`` in between, every request a 200. CPU time
   (``process_time``) of interleaved batches, best batch of each; also the transport alone
   (``handle_async_request`` called directly), which shows the layers' own cost most plainly.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resilience
from adapters.simulators import serve

RESULTS = Path(__file__).resolve().parent / "results" / "retry.json"
CALLERS = 200
SHRUNK = resilience.Backoff(initial=0.001, maximum=0.005)


async def down(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Always 503, no Retry-After: a server that is down."""
    down.hits += 1  # type: ignore[attr-defined]
    await send({"type": "http.response.start", "status": 503, "headers": []})
    await send({"type": "http.response.body", "body": b"down"})


down.hits = 0  # type: ignore[attr-defined]


async def amplification(url: str, retry: resilience.Retry, calls: int) -> tuple[float, float]:
    """Attempts per logical request: as started by the client, and as seen by the server."""
    stack = resilience.Stack(retry, resilience.RetryAfterGate(), resilience.Classify())
    before = down.hits  # type: ignore[attr-defined]
    limits = httpx.Limits(max_connections=CALLERS)
    async with httpx.AsyncClient(
        base_url=url, transport=stack.transport(httpx.AsyncHTTPTransport(limits=limits))
    ) as client:
        started = 0

        async def caller() -> None:
            nonlocal started
            for _ in range(calls):
                try:
                    response = await client.get("/calls")
                except httpx.TransportError:
                    # The in-process server (sharing this process's GIL) dropped a pooled
                    # connection; the budget was spent, so the error came back as itself.
                    # Counted as one attempt; the server-side count below is exact.
                    started += 1
                    continue
                assert response.status_code == 503
                started += resilience.outcome(response).attempts

        async with anyio.create_task_group() as tg:
            for _ in range(CALLERS):
                tg.start_soon(caller)
    served = down.hits - before  # type: ignore[attr-defined]
    return started / (CALLERS * calls), served / (CALLERS * calls)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b'{"ok": true}')


async def batch(client: httpx.AsyncClient, size: int) -> float:
    start = time.process_time()
    for _ in range(size):
        await client.get("/v1/calls")
    return (time.process_time() - start) / size * 1e6


async def direct(transport: httpx.AsyncBaseTransport, size: int) -> float:
    request = httpx.Request("GET", "http://api.test/v1/calls", headers={"authorization": "k"})
    start = time.process_time()
    for _ in range(size):
        await transport.handle_async_request(request)
    return (time.process_time() - start) / size * 1e6


async def overhead(rounds: int = 40, size: int = 500) -> dict[str, float]:
    """CPU time per request (``process_time``, so other processes' load does not count).

    The minimum over interleaved batches is the least disturbed figure; medians are kept too.
    """
    stack = resilience.Stack(resilience.Retry(), resilience.RetryAfterGate())
    transports = {
        "bare": httpx.MockTransport(ok),
        "stack": resilience.Stack().transport(httpx.MockTransport(ok)),
        "layered": stack.transport(httpx.MockTransport(ok)),
    }
    clients = {
        name: httpx.AsyncClient(base_url="http://api.test", transport=transport)
        for name, transport in transports.items()
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    raw: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        await batch(client, size)  # warm up
    for _ in range(rounds):
        for name, client in clients.items():
            times[name].append(await batch(client, size))
            raw[name].append(await direct(transports[name], size))
    for client in clients.values():
        await client.aclose()
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    best_raw = {name: min(values) for name, values in raw.items()}
    return {
        "bare_us": best["bare"],
        "empty_stack_us": best["stack"],
        "retry_gate_us": best["layered"],
        "ratio": best["layered"] / best["bare"],
        "ratio_median": median["layered"] / median["bare"],
        "ratio_over_empty_stack": best["layered"] / best["stack"],
        "transport_bare_us": best_raw["bare"],
        "transport_stack_us": best_raw["stack"],
        "transport_retry_gate_us": best_raw["layered"],
        # The transport-level cost is far steadier than whole-client timings on a busy machine:
        # the layers' added µs (StackTransport included) over the bare client's µs.
        "added_us": best_raw["layered"] - best_raw["bare"],
        "ratio_from_added": (best["bare"] + best_raw["layered"] - best_raw["bare"]) / best["bare"],
    }


async def main() -> dict[str, Any]:
    scenarios: list[tuple[str, dict[str, Any]]] = [
        ("naive: attempts=5, no budget", {"attempts": 5, "budget": None}),
        ("Retry() defaults: attempts=3, default budget", {}),
        ("attempts=5, default budget", {"attempts": 5}),
    ]
    rows = []
    with serve(down) as server:
        for name, settings in scenarios:
            for calls in (1, 5):
                retry = resilience.Retry(backoff=SHRUNK, **settings)
                ratio, served = await amplification(server.url, retry, calls)
                rows.append(
                    {
                        "scenario": name,
                        "calls_per_caller": calls,
                        "amplification": ratio,
                        "served_per_request": served,
                    }
                )
    cost = await overhead()
    return {
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "callers": CALLERS,
        "amplification": rows,
        "overhead": cost,
    }


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Amplification: {CALLERS} concurrent callers, server always 503, backoff 1-5 ms",
        "",
        "| scenario | calls per caller | attempts per logical request | reached the server |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['scenario']} | {r['calls_per_caller']} | {r['amplification']:.3f} | "
        f"{r['served_per_request']:.3f} |"
        for r in results["amplification"]
    ]
    cost = results["overhead"]
    lines += [
        "",
        "Success path over httpx.MockTransport (CPU µs per request, best of interleaved batches)",
        "",
        "| client | µs per request via AsyncClient | ratio to bare | µs per transport call |",
        "|---|---|---|---|",
        f"| bare httpx.AsyncClient | {cost['bare_us']:.1f} | 1.000 | "
        f"{cost['transport_bare_us']:.1f} |",
        f"| Stack() with no layers | {cost['empty_stack_us']:.1f} | "
        f"{cost['empty_stack_us'] / cost['bare_us']:.3f} | {cost['transport_stack_us']:.1f} |",
        f"| Stack(Retry(), RetryAfterGate()) | {cost['retry_gate_us']:.1f} | "
        f"{cost['ratio']:.3f} (median {cost['ratio_median']:.3f}) | "
        f"{cost['transport_retry_gate_us']:.1f} |",
        "",
        f"Added by Stack + Retry + RetryAfterGate per request: {cost['added_us']:.1f} µs, "
        f"i.e. {cost['ratio_from_added']:.3f}x the bare client (goal: 1.03x).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    results = anyio.run(main)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
