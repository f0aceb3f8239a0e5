"""benchmarks/instructions.py counts what it says, and reads valgrind's output or says why not.

The counts themselves need valgrind and minutes; these tests keep the parts around them honest:
the loopback child makes its requests through real sockets with the collector off only while it
counts, the per-request figure is the difference of two runs over the calls, and a run that
prints no count is a clear error.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Iterator

import pytest

from benchmarks import instructions
from benchmarks._loopback import loopback_server

PEERS = {"tenacity": "tenacity", "stamina": "stamina", "httpx-retries": "httpx_retries"}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with loopback_server() as url:
        yield url


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(instructions.LOOPBACK))
async def test_the_loopback_child_counts_with_the_collector_off(
    name: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name in PEERS and importlib.util.find_spec(PEERS[name]) is None:
        pytest.skip(f"{PEERS[name]} is not installed (the bench extra)")
    monkeypatch.setattr(instructions, "LOOPBACK_WARM_UP", 2)
    states: list[bool] = []
    make = instructions.LOOPBACK[name]

    def watched(transport: object, url: str) -> object:
        client, call = make(transport, url)  # type: ignore[arg-type]

        async def counted() -> None:
            await call()
            states.append(gc.isenabled())

        return client, counted

    monkeypatch.setitem(instructions.LOOPBACK, name, watched)
    await instructions._loopback_child(name, 3, server + "/")
    assert states == [True, True, False, False, False]
    assert gc.isenabled()


def test_per_request_is_the_difference_over_the_calls_for_every_seed() -> None:
    cost = {name: 1000.0 * (index + 1) for index, name in enumerate(instructions.LOOPBACK)}
    runs: list[tuple[str, int, int]] = []

    def count(name: str, calls: int, seed: int) -> int:
        runs.append((name, calls, seed))
        start_up = 7_000_000 + 13 * seed + len(name)  # the same in both runs of one pair
        return start_up + int(cost[name]) * calls + (seed if calls else 0)

    found = instructions.loopback_per_request(count, 100, 2)
    assert {name: [round(v, 2) for v in values] for name, values in found.items()} == {
        name: [cost[name] + 0.01, cost[name] + 0.02] for name in instructions.LOOPBACK
    }
    first_seed = [run for run in runs if run[2] == 1]
    assert runs[: len(first_seed)] == first_seed  # every variant under one seed, then the next
    assert {calls for _, calls, _ in runs} == {0, 100}


def test_the_table_gives_the_mean_the_range_and_the_ratio() -> None:
    found = {name: [2_300_000.0, 2_302_000.0] for name in instructions.LOOPBACK}
    found["httpx-retries"] = [2_310_000.0, 2_312_000.0]
    table = instructions.loopback_table(found, 1500)
    lines = table.splitlines()
    assert "1500 calls, 2 hash seeds" in lines[0]
    assert len(lines) == 2 + len(instructions.LOOPBACK)
    peer = next(line for line in lines if line.startswith("| httpx-retries "))
    assert "| 2311.0k | 2310.0k to 2312.0k | +10.0k | 1.0043x |" in peer
    bare = next(line for line in lines if line.startswith("| bare httpx "))
    assert "| +0.0k | 1.0000x |" in bare


def test_a_run_without_a_count_is_a_clear_error() -> None:
    assert instructions.collected("==1== Collected : 123456\n", "bare httpx") == 123456
    with pytest.raises(RuntimeError, match="no instruction count from valgrind for 'bare httpx'"):
        instructions.collected("valgrind: command not found\n", "bare httpx")
