"""The statistics benchmarks/head_to_head.py reads its verdict from, and what its processes report.

The order-statistic ranks of a 95% interval for a median are the published ones (as in
Conover, *Practical Nonparametric Statistics*, table A3), and the sign test's p-values are the
binomial distribution's.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import compare, head_to_head
from benchmarks._loopback import loopback_server
from benchmarks.head_to_head import BARE, FLOOR, STACK, _verdict, median_interval, sign_test


@pytest.mark.parametrize(
    ("n", "low_rank", "high_rank"),
    [(6, 1, 6), (10, 2, 9), (20, 6, 15), (30, 10, 21), (60, 22, 39), (100, 40, 61)],
)
def test_the_interval_is_the_published_order_statistics(
    n: int, low_rank: int, high_rank: int
) -> None:
    values = [float(i) for i in range(1, n + 1)]  # x(i) == i
    assert median_interval(values[::-1]) == (low_rank, high_rank)


def test_too_few_values_for_95_percent_give_the_whole_range() -> None:
    assert median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0)


@given(st.lists(st.floats(0.5, 1.5), min_size=1, max_size=80))
def test_the_interval_holds_the_median(values: list[float]) -> None:
    low, high = median_interval(values)
    assert low <= statistics.median(values) <= high


def test_sign_test_p_values_are_the_binomials() -> None:
    assert sign_test(5, 10) == 1.0
    assert sign_test(0, 10) == pytest.approx(2 / 1024)
    assert sign_test(10, 10) == pytest.approx(2 / 1024)
    assert sign_test(2, 10) == pytest.approx(2 * 56 / 1024)  # P(X <= 2) = 56/1024


@pytest.mark.parametrize(
    ("interval", "reading"),
    [
        ((0.98, 0.999), "stack ahead"),
        ((1.001, 1.02), "peer ahead"),
        ((0.99, 1.01), "level (the interval holds 1)"),
    ],
)
def test_the_reading_follows_the_interval(interval: tuple[float, float], reading: str) -> None:
    row = {"processes": 60, "stack / peer, 95% interval of the median": interval}
    assert _verdict(row) == reading


def test_too_few_processes_give_no_reading() -> None:
    row = {"processes": 5, "stack / peer, 95% interval of the median": (0.9, 0.95)}
    assert _verdict(row).startswith("too few processes")


@pytest.mark.parametrize(
    ("mode", "figures"),
    [([], {"CPU time"}), (["--loopback"], {"wall time", "client CPU time"})],
)
def test_a_child_process_reports_every_variant_by_each_figure(
    mode: list[str], figures: set[str]
) -> None:
    pytest.importorskip("httpx_retries")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "head_to_head.py"
    plan = json.dumps({"1": [20, 1], "200": [200, 1]})
    child = subprocess.run(  # noqa: S603 - the benchmark script, by this interpreter
        [sys.executable, str(script), "--child", plan, *mode],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = json.loads(child.stdout)
    assert set(rows) == {"1", "200"}
    variants = {BARE, STACK, FLOOR, "httpx-retries"}
    for by_figure in rows.values():
        assert set(by_figure) == figures
        for row in by_figure.values():
            assert set(row) == variants
            assert all(value > 0 for value in row.values())


def test_the_paired_child_times_every_variant_request_by_request() -> None:
    pytest.importorskip("httpx_retries")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "head_to_head.py"
    child = subprocess.run(  # noqa: S603 - the benchmark script, by this interpreter
        [
            sys.executable,
            str(script),
            "--child",
            json.dumps({"1": [20, 1]}),
            "--loopback",
            "--paired",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = json.loads(child.stdout)
    assert set(rows) == {"1"}
    assert set(rows["1"]) == {"wall time", "client CPU time"}
    for row in rows["1"].values():
        assert set(row) == {BARE, STACK, FLOOR, "httpx-retries"}
        assert all(value > 0 for value in row.values())


@pytest.mark.anyio
async def test_paired_rounds_time_one_request_of_each_variant_per_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(head_to_head, "PAIRED_WARM_UP", 1)
    calls: list[str] = []

    def counting(name: str) -> compare.Maker:
        def make(
            transport: httpx.AsyncBaseTransport, url: str
        ) -> tuple[httpx.AsyncClient, compare.Call]:
            client, call = compare.make_bare(transport, url)

            async def counted() -> None:
                calls.append(name)
                await call()

            return client, counted

        return make

    variants = {name: counting(name) for name in ("a", "b", "c")}
    with loopback_server() as url:
        found = await head_to_head.paired_per_request(url + "/", 4, 7, variants)
    assert calls[:3] == ["a", "b", "c"]  # the warm-up, one each
    rounds = [calls[3 + 3 * i : 6 + 3 * i] for i in range(4)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # shuffled, not one fixed order
    assert set(found) == {"a", "b", "c"}
    assert all(wall > 0 and cpu > 0 for wall, cpu in found.values())
