"""Backoff: pure, bounded, deterministic under an injected rng."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import Backoff

JITTERS = ("full", "equal", "decorrelated", "none")

backoffs = st.builds(
    lambda initial, extra, multiplier, jitter: Backoff(
        initial=initial, maximum=initial + extra, multiplier=multiplier, jitter=jitter
    ),
    st.floats(0, 100),
    st.floats(0, 1000),
    st.floats(1, 10),
    st.sampled_from(JITTERS),
)


@given(backoffs, st.integers(-5, 10_000), st.integers(0, 2**32), st.floats(0, 1e6) | st.none())
def test_every_delay_is_within_its_bounds(
    backoff: Backoff, retry: int, seed: int, previous: float | None
) -> None:
    low, high = backoff.bounds(retry, previous)
    delay = backoff.delay(retry, random.Random(seed), previous)
    assert 0.0 <= low <= delay <= high <= backoff.maximum


@given(backoffs, st.integers(1, 2000))
def test_the_ceiling_never_shrinks_and_never_passes_the_maximum(
    backoff: Backoff, retry: int
) -> None:
    assert backoff.ceiling(retry) <= backoff.ceiling(retry + 1) <= backoff.maximum


@given(backoffs, st.integers(0, 2**32))
def test_decorrelated_sequences_stay_between_initial_and_maximum(
    backoff: Backoff, seed: int
) -> None:
    backoff = attrs.evolve(backoff, jitter="decorrelated")
    rng = random.Random(seed)
    previous = None
    for retry in range(1, 30):
        previous = backoff.delay(retry, rng, previous)
        assert backoff.initial <= previous <= backoff.maximum


def test_decorrelated_caps_the_draw_not_its_range() -> None:
    """AWS's min(maximum, uniform(initial, 3 * previous)): with 3 * 30 past a maximum of 30,
    two draws in three land on the maximum itself, and the mean is about 25, not 15."""
    backoff = Backoff(initial=0.5, maximum=30.0, jitter="decorrelated")
    rng = random.Random(20240601)
    delays = [backoff.delay(5, rng, previous=30.0) for _ in range(20_000)]
    at_maximum = sum(d == 30.0 for d in delays) / len(delays)
    assert 0.64 < at_maximum < 0.70  # (90 - 30) / 89.5 = 0.670
    assert 24.5 < sum(delays) / len(delays) < 25.7  # 25.1 by the formula
    assert min(delays) >= 0.5


def test_none_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter="none")
    rng = random.Random(0)
    assert [backoff.delay(n, rng) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_formulas_of_each_jitter() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, multiplier=3.0)
    assert backoff.ceiling(3) == 9.0
    assert backoff.bounds(3) == (0.0, 9.0)
    assert attrs.evolve(backoff, jitter="equal").bounds(3) == (4.5, 9.0)
    assert attrs.evolve(backoff, jitter="none").bounds(3) == (9.0, 9.0)
    assert attrs.evolve(backoff, jitter="decorrelated").bounds(3, previous=5.0) == (1.0, 15.0)
    assert attrs.evolve(backoff, jitter="decorrelated").bounds(1) == (1.0, 3.0)


def test_same_seed_same_delays() -> None:
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(42)) for n in range(1, 6)]
    again = [backoff.delay(n, random.Random(42)) for n in range(1, 6)]
    assert first == again
    assert len(set(first)) > 1


def test_huge_retry_numbers_do_not_overflow() -> None:
    backoff = Backoff(initial=1e-300, maximum=1e300, multiplier=1e10)
    assert backoff.ceiling(10**9) == 1e300
    assert Backoff(initial=0.0, maximum=5.0).ceiling(10**9) == 0.0
    assert Backoff(initial=2.0, maximum=5.0, multiplier=1.0).ceiling(10**9) == 2.0


def test_defaults() -> None:
    backoff = Backoff()
    assert (backoff.initial, backoff.maximum, backoff.multiplier, backoff.jitter) == (
        0.5,
        30.0,
        2.0,
        "full",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": -1.0}, "initial"),
        ({"initial": 5.0, "maximum": 1.0}, "maximum"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": "random"}, "jitter"),
        ({"maximum": float("inf")}, "finite"),
        ({"initial": float("nan")}, "initial"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Backoff().initial = 3.0  # type: ignore[misc]
