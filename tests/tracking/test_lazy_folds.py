"""Figures the tracker folds in batches or when read equal the estimators' own."""

from __future__ import annotations

import math
from collections import deque
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.tracking.congestion import CongestionFit
from multimodel.tracking.lengths import LengthFit
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.sketches import PeakEWMA, QuantileSketch
from multimodel.tracking.stats import RANK_TAU, RankedStats, Tracker
from multimodel.types import Usage

LATENCY = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def _state(sketch: QuantileSketch) -> tuple[object, ...]:
    return (
        sketch.count,
        sketch.sum,
        sketch.min,
        sketch.max,
        sketch.zero_count,
        len(sketch),
        sketch.quantiles(QS),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(LATENCY, max_size=300), st.integers(min_value=1, max_value=40))
def test_add_all_equals_adding_one_by_one(values: list[float], max_buckets: int) -> None:
    one, batch = QuantileSketch(max_buckets=max_buckets), QuantileSketch(max_buckets=max_buckets)
    for value in values:
        one.add(value)
    batch.add_all(values)
    assert _state(batch) == _state(one)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_add_all_raises_as_add_does_with_the_values_before_added(bad: float) -> None:
    one, batch = QuantileSketch(), QuantileSketch()
    with pytest.raises(ValueError) as eager:
        for value in (0.5, 2.0, bad, 3.0):
            one.add(value)
    with pytest.raises(ValueError) as lazy:
        batch.add_all([0.5, 2.0, bad, 3.0])
    assert str(lazy.value) == str(eager.value)
    assert _state(batch) == _state(one)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ok(name: str, latency: float) -> Outcome:
    return Outcome(deployment=name, model="m", provider="p", ok=True, latency=latency, started_at=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), LATENCY, st.booleans()), max_size=400))
def test_the_tracker_reads_every_latency_however_often_it_is_read(
    answers: list[tuple[str, float, bool]],
) -> None:
    clock = _Clock()
    tracker = Tracker(clock)
    reference = {"a": QuantileSketch(), "b": QuantileSketch()}
    for name, latency, read in answers:
        clock.now += 0.01
        tracker.record(_ok(name, latency))
        reference[name].add(latency)
        if read:  # a read between answers folds what is pending; the figures stay the same
            assert tracker.latency_quantile(name, 0.95) == reference[name].quantile(0.95)
    for name, sketch in reference.items():
        if sketch.count:
            assert tracker.latency_quantile(name, 0.5) == sketch.quantile(0.5)
            assert tracker.latency_quantile_lower(name, 0.9, 1.0) == sketch.quantile(
                max(0.0, 0.9 - math.sqrt(0.9 * 0.1 / sketch.count))
            )
            snap = tracker.snapshot().deployments[name]
            assert (snap.latency_p50, snap.latency_p95, snap.latency_p99) == tuple(
                sketch.quantiles((0.5, 0.95, 0.99))
            )


def test_a_bad_latency_raises_at_the_answer_as_before() -> None:
    tracker = Tracker(_Clock())
    tracker.record(_ok("a", 0.5))
    with pytest.raises(ValueError):
        tracker.record(_ok("a", -1.0))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.booleans(), LATENCY, st.floats(0.0, 30.0)),
        max_size=300,
    )
)
def test_the_peak_and_congestion_figures_equal_their_estimators(
    steps: list[tuple[str, bool, float, float]],
) -> None:
    # The tracker folds the peak EWMA and the congestion fit per answer: the same figures as
    # PeakEWMA.fold and CongestionFit.add fed the same answers.
    clock = _Clock()
    tracker = Tracker(clock)
    peaks = {"a": PeakEWMA(RANK_TAU), "b": PeakEWMA(RANK_TAU)}
    fits = {"a": CongestionFit(), "b": CongestionFit()}
    loads: dict[str, deque[int]] = {"a": deque(), "b": deque()}
    for name, start, latency, pause in steps:
        clock.now += pause
        if start or not loads[name]:
            loads[name].append(tracker.started(name))
            continue
        tracker.record(_ok(name, latency))
        value, stamp, rank = peaks[name].fold(latency, clock.now)
        fits[name].add(loads[name].popleft(), latency)
        cell = cast(RankedStats, tracker.get(name))  # the tracker's cells are ranked
        assert (cell.latency_peak, cell.latency_at, cell.latency_rank) == (value, stamp, rank)
        assert cell.latency_estimate(clock.now + 1.0) == peaks[name].value(clock.now + 1.0)
        assert (cell.congestion, cell.load_scale) == (fits[name].congestion, fits[name].scale)


def _fit_state(fit: LengthFit) -> dict[str, float]:
    return {name: getattr(fit, name) for name in LengthFit.__slots__}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2000),
            st.floats(0.001, 60.0),
            st.one_of(st.none(), st.integers(1, 4000)),
        ),
        max_size=200,
    )
)
def test_the_length_fit_equals_its_own_add(answers: list[tuple[int, float, int | None]]) -> None:
    # The tracker folds each answer into LengthFit: its whole state stays what add() makes it.
    clock = _Clock()
    tracker = Tracker(clock)
    reference = LengthFit()
    for output, latency, requested in answers:
        clock.now += 0.5
        cell = tracker.get("a")
        per_token = cell.length_per_token
        tracker.started("a")
        tracker.record(
            Outcome(
                deployment="a",
                model="m",
                provider="p",
                ok=True,
                latency=latency,
                started_at=0,
                usage=Usage(input_tokens=1, output_tokens=output),
                requested_tokens=requested,
            )
        )
        if reference.add(output, latency, requested) and not per_token:
            reference.start(cast(float, cell.ewma_latency))
        assert _fit_state(cast(Any, cell).length_fit) == _fit_state(reference)
        assert (cell.length_share, cell.length_per_token) == (
            (reference.share, reference.per_token) if reference.slope else (1.0, 0.0)
        )
