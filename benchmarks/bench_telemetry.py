"""What telemetry costs per logical call, on ``httpx.MockTransport`` (no network, no sleeps).

Variants, each a ``Stack(Retry(...), Classify())`` whose calls succeed at once:

- ``off``: ``telemetry=None`` (no telemetry code on the path at all), the baseline;
- ``global, no SDK``: the default ``Telemetry()`` while no OpenTelemetry SDK is configured (the
  API's proxy providers), which is what every user without an SDK runs;
- ``explicit no-op``: ``Telemetry(tracer_provider=NoOpTracerProvider(), meter_provider=
  NoOpMeterProvider())``;
- ``SDK, recording``: the SDK with an in-memory span exporter and metric reader, for scale.

Run: ``python benchmarks/bench_telemetry.py``. Prints a Markdown table, writes
``benchmarks/results/telemetry.json``.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import anyio
import httpx
import opentelemetry.version
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

from resilience import Classify, Retry, Stack, Telemetry

CALLS = 5_000
ROUNDS = 31
GOAL_US = 2.0
RESULTS = Path(__file__).parent / "results" / "telemetry.json"


def _sdk() -> Telemetry:
    tracer_provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


VARIANTS: dict[str, Telemetry | None] = {
    "off": None,
    "global, no SDK": Telemetry(),
    "explicit no-op": Telemetry(
        tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
    ),
    "SDK, recording": _sdk(),
}


async def _per_call_us(transport: httpx.AsyncBaseTransport, calls: int) -> float:
    """Microseconds per call through the stack's transport, called directly, GC paused."""
    request = httpx.Request("GET", "https://api.example.com/v1/calls")
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(calls):
            await transport.handle_async_request(request)
        return (time.perf_counter() - started) / calls * 1e6
    finally:
        gc.enable()


async def _measure() -> dict[str, list[float]]:
    ok = httpx.Response(200)
    transports = {
        name: Stack(Retry(attempts=3), Classify(), telemetry=telemetry).transport(
            httpx.MockTransport(lambda request: ok)
        )
        for name, telemetry in VARIANTS.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for transport in transports.values():  # warm every path up once
        await _per_call_us(transport, 500)
    for _ in range(ROUNDS):  # interleave the variants, so drift hits them alike
        for name, transport in transports.items():
            calls = CALLS // 20 if name == "SDK, recording" else CALLS
            samples[name].append(await _per_call_us(transport, calls))
    return samples


def main() -> None:
    samples = anyio.run(_measure)
    base = min(samples["off"])
    rows = []
    for name, values in samples.items():
        # Paired: each round's figure minus the baseline's in the same round, so load that
        # comes and goes (other processes) cancels out; the median of those differences.
        paired = statistics.median(v - o for v, o in zip(values, samples["off"], strict=True))
        rows.append(
            {
                "variant": name,
                "us_per_call_min": round(min(values), 3),
                "us_per_call_median": round(statistics.median(values), 3),
                "overhead_us_min": round(min(values) - base, 3),
                "overhead_us_paired_median": round(paired, 3),
            }
        )
    print(
        f"Telemetry overhead per call, MockTransport, Retry + Classify, {CALLS} calls x "
        f"{ROUNDS} interleaved rounds\n"
    )
    print("| variant | µs per call, best (median) | overhead, best | overhead, paired median |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['us_per_call_min']:.2f} ({row['us_per_call_median']:.2f})"
            f" | {row['overhead_us_min']:+.2f} µs | {row['overhead_us_paired_median']:+.2f} µs |"
        )
    noop = max(
        row["overhead_us_paired_median"]
        for row in rows
        if row["variant"] in {"global, no SDK", "explicit no-op"}
    )
    verdict = "met" if noop <= GOAL_US else "NOT met"
    print(
        f"\nGoal ≤ {GOAL_US} µs per call with the API's no-op provider: {verdict} "
        f"(worst paired median {noop:+.2f} µs)."
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "telemetry",
                "calls_per_round": CALLS,
                "rounds": ROUNDS,
                "goal_us": GOAL_US,
                "goal_met": noop <= GOAL_US,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "opentelemetry_api": opentelemetry.version.__version__,
                "httpx": httpx.__version__,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
