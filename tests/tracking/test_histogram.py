"""FixedSketch: per-group quantiles in fixed memory, within 5 % of the exact ranks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.tracking.histogram import ALPHA, HIGH, LOW, FixedSketch
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker

IN_RANGE = st.floats(min_value=LOW * 1.001, max_value=HIGH * 0.999, allow_nan=False)
QS = (0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@settings(max_examples=200, deadline=None)
@given(st.lists(IN_RANGE, min_size=1, max_size=300))
def test_quantiles_are_within_alpha_of_the_exact_rank(values: list[float]) -> None:
    sketch = FixedSketch()
    for v in values:
        sketch.add(v)
    for q, got in zip(QS, sketch.quantiles(QS), strict=True):
        want = exact(values, q)
        assert got is not None
        assert abs(got - want) <= ALPHA * want * (1 + 1e-9)
    assert sketch.count == len(values)
    assert sketch.mean == pytest.approx(sum(values) / len(values))


@settings(max_examples=100, deadline=None)
@given(st.lists(IN_RANGE, max_size=100), st.lists(IN_RANGE, max_size=100))
def test_a_merge_is_one_sketch_that_saw_both(a: list[float], b: list[float]) -> None:
    left, right, both = FixedSketch(), FixedSketch(), FixedSketch()
    for v in a:
        left.add(v)
        both.add(v)
    for v in b:
        right.add(v)
        both.add(v)
    left.merge(right)
    assert left.quantiles(QS) == both.quantiles(QS)
    assert left.count == both.count


def test_memory_is_fixed_however_many_values_arrive() -> None:
    sketch = FixedSketch()
    size = len(sketch._counts)
    for i in range(20_000):
        sketch.add(LOW * 1.37 ** (i % 60))  # every band of the range, and beyond it
    assert len(sketch._counts) == size
    assert size * sketch._counts.itemsize < 1024  # a few hundred bytes per user or tag


def test_values_outside_the_range_share_the_end_buckets_and_the_extremes_stay_exact() -> None:
    sketch = FixedSketch()
    for v in (0.0, 1e-7, 5e-5, 2e4, 9e5):
        sketch.add(v)
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(1.0) == 9e5
    assert sketch.quantile(0.5) == pytest.approx(5e-5, rel=1.0)  # clamped into [min, max]
    assert sketch.quantile(0.75) is not None and sketch.quantile(0.75) <= 9e5  # type: ignore[operator]


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_values_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="cannot add"):
        FixedSketch().add(bad)


def test_an_empty_sketch_has_no_quantiles() -> None:
    assert FixedSketch().quantiles((0.5, 0.95)) == [None, None]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FixedSketch().quantile(1.5)


def test_a_users_latency_quantiles_come_from_its_fixed_sketch() -> None:
    now = [0.0]
    tracker = Tracker(lambda: now[0])
    for i in range(100):
        tracker.started("d")
        now[0] += 1.0
        latency = 0.2 + 0.01 * i  # 0.20 .. 1.19 s
        tracker.record(Outcome("d", "m", "openai", True, latency, 0.0, user="ada", tags=("t",)))
    user = tracker.snapshot().users["ada"]
    assert user.requests == 100
    assert user.latency_p50 == pytest.approx(0.69, rel=ALPHA)
    assert user.latency_p95 == pytest.approx(1.14, rel=ALPHA)
    assert user.latency_p99 == pytest.approx(1.18, rel=ALPHA)
