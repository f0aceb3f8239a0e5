"""What the circuit breaker costs: rejecting while open, passing while closed, memory per key.

- **Rejection**: µs per call refused by an open breaker (``CircuitOpenError`` raised and caught),
  calling the layer's transport directly over ``httpx.MockTransport``; the network is never
  touched. Variants: a tripped circuit, a circuit forced open, and a tripped circuit with a
  decision-event listener on the call (what telemetry adds: a hashed key per event).
  Timed as CPU time of the process (``time.process_time``): the work is all in this process,
  and time another tenant of a shared machine takes from it is left out.
- **Closed overhead**: µs per successful call of ``CircuitBreaker + Classify`` minus
  ``Classify`` alone, over ``httpx.MockTransport``.
- **Memory per key**: bytes per circuit held (``tracemalloc``), for keys that each saw one call,
  with origins as keys (``("https", "hNNN.example.com", 443)``).
- **Bound**: a million distinct keys through the breaker's store and core (the calls the layer
  makes, without building a million requests) with the default ``max_keys`` (10 000): memory
  held after 100 000, 500 000 and 1 000 000 keys.

Run: ``python benchmarks/bench_breaker.py``. Prints a Markdown table, writes
``benchmarks/results/breaker.json``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio
import httpx

from resilience import CircuitBreaker, CircuitOpenError, Classify
from resilience import _breaker_core as core
from resilience._context import call_context
from resilience._store import MemoryStore
from resilience.testing import VirtualClock

# Many short rounds, the best counting (as timeit reports): on a shared VM, 7 rounds of 20,000
# rejections put the best round anywhere from 10 to 13 µs within minutes, 40 rounds of 2,000
# between 8.0 and 8.3 µs.
CALLS = 2_000
ROUNDS = 40
GOAL_US = 10.0
MEMORY_KEYS = 100_000
BOUND_KEYS = 1_000_000
RESULTS = Path(__file__).parent / "results" / "breaker.json"
URL = "https://api.example.com/v1/calls"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


def _failing(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def _listen(name: str, attributes: Mapping[str, object]) -> None:
    del name, attributes


async def open_transport(variant: str) -> httpx.AsyncBaseTransport:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock=clock, consecutive_failures=1, open_for=1e9, max_open_for=1e9)
    transport = breaker.wrap(Classify().wrap(httpx.MockTransport(_failing)))
    if variant == "forced open":
        await breaker.force_open(breaker.key_of(URL))
    else:
        await transport.handle_async_request(httpx.Request("GET", URL))  # trips it
    return transport


@contextlib.contextmanager
def _gc_off() -> Iterator[None]:
    """The cyclic GC off inside the block, after a collection, as ``timeit`` times.

    A collection that lands in a round walks every request built for it, which made single
    rounds up to twice as slow as their neighbours here.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def reject_us(transport: httpx.AsyncBaseTransport, calls: int, listener: bool) -> float:
    requests = [httpx.Request("GET", URL) for _ in range(calls)]
    if listener:
        for request in requests:
            call_context(request).listen(_listen)
    with _gc_off():
        started = time.process_time()
        for request in requests:
            try:  # noqa: SIM105 - a context manager would add its own cost to the figure
                await transport.handle_async_request(request)
            except CircuitOpenError:  # noqa: PERF203 - the rejection is what is measured
                pass
        return (time.process_time() - started) / calls * 1e6


async def _pass_us(transport: httpx.AsyncBaseTransport, calls: int) -> float:
    requests = [httpx.Request("GET", URL) for _ in range(calls)]
    with _gc_off():
        started = time.process_time()
        for request in requests:
            await transport.handle_async_request(request)
        return (time.process_time() - started) / calls * 1e6


REJECT_VARIANTS = {
    "open (tripped)": ("tripped", False),
    "open (forced)": ("forced open", False),
    "open (tripped), event listener": ("tripped", True),
}


async def _timings() -> dict[str, list[float]]:
    transports = {name: await open_transport(v) for name, (v, _) in REJECT_VARIANTS.items()}
    clock = VirtualClock()
    closed = CircuitBreaker(clock=clock).wrap(Classify().wrap(httpx.MockTransport(_ok)))
    bare = Classify().wrap(httpx.MockTransport(_ok))
    samples: dict[str, list[float]] = {name: [] for name in REJECT_VARIANTS}
    samples["closed: Classify"] = []
    samples["closed: CircuitBreaker + Classify"] = []
    for name, (_, listener) in REJECT_VARIANTS.items():  # warm up
        await reject_us(transports[name], 1_000, listener)
    await _pass_us(closed, 1_000)
    await _pass_us(bare, 1_000)
    for _ in range(ROUNDS):  # interleave, so drift hits every variant alike
        for name, (_, listener) in REJECT_VARIANTS.items():
            samples[name].append(await reject_us(transports[name], CALLS, listener))
        samples["closed: Classify"].append(await _pass_us(bare, CALLS))
        samples["closed: CircuitBreaker + Classify"].append(await _pass_us(closed, CALLS))
    return samples


async def memory_per_key(keys: int = MEMORY_KEYS) -> float:
    """Bytes per circuit in the breaker's store, each of ``keys`` keys having seen one success."""
    clock = VirtualClock()
    breaker = CircuitBreaker(clock=clock, max_keys=keys)
    transport = breaker.wrap(httpx.MockTransport(_ok))
    requests = [httpx.Request("GET", f"https://h{i}.example.com/") for i in range(keys)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for request in requests:
        await transport.handle_async_request(request)
    del requests, request  # the requests are the caller's, not the breaker's
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert breaker.statistics().keys == keys
    return (after - before) / keys


def _bound() -> list[dict[str, float]]:
    """A million distinct keys through the store and core, as the layer drives them."""
    policy = core.BreakerPolicy()
    store: MemoryStore[core.Circuit] = MemoryStore()  # the layer's default bound
    ticket = core.Ticket(None, 0, probe=False)
    points = []
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(1, BOUND_KEYS + 1):
        key = ("https", f"h{i}.example.com", 443)  # what origin_key gives for that origin
        store.update_now(
            key,
            lambda c: core.record(policy, c, ticket, failed=False, now=0.0),
            now=0.0,
            ttl=policy.window,
        )
        if i in (100_000, 500_000, BOUND_KEYS):
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - base
            points.append({"keys_seen": i, "keys_held": len(store), "mib_held": held / 2**20})
    tracemalloc.stop()
    return points


def main() -> None:
    samples = anyio.run(_timings)
    rows = []
    for name, values in samples.items():
        rows.append(
            {
                "variant": name,
                "us_per_call_min": round(min(values), 3),
                "us_per_call_median": round(statistics.median(values), 3),
            }
        )
    closed_overhead = min(samples["closed: CircuitBreaker + Classify"]) - min(
        samples["closed: Classify"]
    )
    per_key = anyio.run(memory_per_key)
    bound = _bound()
    worst_reject = max(min(samples[name]) for name in REJECT_VARIANTS)
    met = worst_reject <= GOAL_US

    print(f"Circuit breaker, MockTransport, {CALLS} calls x {ROUNDS} rounds "
          "(best round; median in brackets)\n")  # fmt: skip
    print("| what | µs per call |")
    print("|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['us_per_call_min']:.2f} "
              f"({row['us_per_call_median']:.2f}) |")  # fmt: skip
    print(f"\nClosed-state overhead of the breaker: {closed_overhead:+.2f} µs per call.")
    print(f"Goal ≤ {GOAL_US:.0f} µs per rejected call: {'met' if met else 'NOT met'} "
          f"(worst variant {worst_reject:.2f} µs).")  # fmt: skip
    print(f"\nMemory per key (one call each, {MEMORY_KEYS} origins): {per_key:.0f} bytes.\n")
    print("| distinct keys seen | keys held | MiB held |")
    print("|---|---|---|")
    for point in bound:
        print(f"| {point['keys_seen']:,} | {point['keys_held']:,} | {point['mib_held']:.1f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "breaker",
                "calls_per_round": CALLS,
                "rounds": ROUNDS,
                "goal_us": GOAL_US,
                "goal_met": met,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "httpx": httpx.__version__,
                "timings": rows,
                "closed_overhead_us": round(closed_overhead, 3),
                "bytes_per_key": round(per_key),
                "bound": [{**point, "mib_held": round(point["mib_held"], 2)} for point in bound],
            },
            indent=2,
        )
        + "\n"
    )
    shown = RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS
    print(f"\nWrote {shown}")


if __name__ == "__main__":
    main()
