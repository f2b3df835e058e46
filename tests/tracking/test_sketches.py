"""QuantileSketch accuracy and memory bounds; EWMA and PeakEWMA behaviour."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.tracking.sketches import EWMA, PeakEWMA, QuantileSketch

SPEC_ACCURACY = 0.02  # the requirement; the default sketch guarantees 1%
QS = (0.5, 0.95, 0.99)
SWEEP = tuple(i / 100 for i in range(101))


def exact_quantile(ordered: list[float], q: float) -> float:
    """The rank convention shared with the sketch: rank floor(q * (n - 1)), zero-based."""
    return ordered[math.floor(q * (len(ordered) - 1))]


def relative_error(estimate: float | None, truth: float) -> float:
    assert estimate is not None
    if truth == 0.0:
        return abs(estimate)
    return abs(estimate - truth) / truth


def worst_error(sketch: QuantileSketch, values: list[float], qs: tuple[float, ...]) -> float:
    ordered = sorted(values)
    estimates = sketch.quantiles(qs)
    return max(
        relative_error(e, exact_quantile(ordered, q)) for e, q in zip(estimates, qs, strict=True)
    )


DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "uniform": lambda rng: rng.uniform(0.01, 10.0),
    "lognormal": lambda rng: rng.lognormvariate(math.log(0.8), 1.0),
    "exponential": lambda rng: rng.expovariate(2.0),
    "pareto": lambda rng: rng.paretovariate(1.2),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("seed", [1, 2])
def test_accuracy_against_exact_quantiles(name: str, seed: int) -> None:
    rng = random.Random(seed)
    draw = DISTRIBUTIONS[name]
    values = [draw(rng) for _ in range(50_000)]
    sketch = QuantileSketch()
    for value in values:
        sketch.add(value)
    assert worst_error(sketch, values, QS) <= 0.01 + 1e-9
    assert worst_error(sketch, values, SWEEP) <= 0.01 + 1e-9
    assert worst_error(sketch, values, SWEEP) <= SPEC_ACCURACY
    assert sketch.quantile(0.0) == min(values)
    assert sketch.quantile(1.0) == max(values)


def test_looser_alpha_meets_its_own_bound() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(0.0, 2.0) for _ in range(20_000)]
    sketch = QuantileSketch(alpha=0.02)
    for value in values:
        sketch.add(value)
    assert worst_error(sketch, values, SWEEP) <= 0.02 + 1e-9


def test_memory_bounded_over_twelve_orders_of_magnitude() -> None:
    rng = random.Random(3)
    sketch = QuantileSketch(max_buckets=512)
    add = sketch.add
    for _ in range(1_000_000):
        add(10.0 ** rng.uniform(-6.0, 6.0))
    assert len(sketch) <= 512
    assert sketch.count == 1_000_000
    # The lowest buckets were collapsed: the high quantiles keep their guarantee.
    values_p99 = sketch.quantile(0.99)
    assert values_p99 is not None
    assert 10.0**5.88 * 0.97 <= values_p99 <= 10.0**5.88 * 1.03


def test_default_bucket_limit_is_not_reached_by_twelve_decades() -> None:
    sketch = QuantileSketch()
    for exponent in range(-6 * 200, 6 * 200 + 1):
        sketch.add(10.0 ** (exponent / 200))
    assert len(sketch) <= sketch.max_buckets
    assert len(sketch) > 1000  # about 12 * ln(10) / ln(gamma)


def test_latency_stream_bucket_count_stops_growing() -> None:
    rng = random.Random(4)
    sketch = QuantileSketch()
    add = sketch.add

    def latency() -> float:  # lognormal around 0.8 s, cut off by a 30 s timeout
        return min(rng.lognormvariate(math.log(0.8), 0.6), 30.0)

    for _ in range(10_000):
        add(latency())
    after_10k = len(sketch)
    for _ in range(990_000):
        add(latency())
    assert sketch.count == 1_000_000
    # Only the extreme tails can add buckets: the sample extremes move out by about one sigma
    # (0.6 in log space) at each end, i.e. ~2 * 0.6 / ln(gamma) = 60 buckets (75 observed).
    assert len(sketch) <= after_10k + 100
    assert len(sketch) <= sketch.max_buckets


def test_collapse_keeps_high_quantiles_and_absorbs_later_low_values() -> None:
    sketch = QuantileSketch(max_buckets=50)
    values = [1.0 * 1.03**i for i in range(400)]
    for value in values:
        sketch.add(value)
    assert len(sketch) == 50
    sketch.add(1e-6)  # below the collapsed bucket: counted there, no new bucket
    values.append(1e-6)
    assert len(sketch) == 50
    assert worst_error(sketch, values, (0.9, 0.95, 0.99, 1.0)) <= 0.01 + 1e-9


def test_merge_equals_adding_both_streams() -> None:
    rng = random.Random(5)
    first = [rng.expovariate(1.0) for _ in range(5_000)] + [0.0] * 10
    second = [rng.lognormvariate(2.0, 1.5) for _ in range(7_000)]
    a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    for value in first:
        a.add(value)
        both.add(value)
    for value in second:
        b.add(value)
        both.add(value)
    a.merge(b)
    assert a._bins == both._bins
    assert a.count == both.count
    assert a.zero_count == both.zero_count == 10
    assert a.sum == pytest.approx(both.sum)
    assert (a.min, a.max) == (both.min, both.max)
    assert a.quantiles(SWEEP) == both.quantiles(SWEEP)
    assert b.count == 7_000  # unchanged


def test_merge_respects_bounds_and_rejects_mismatches() -> None:
    a, b = QuantileSketch(max_buckets=20), QuantileSketch(max_buckets=20)
    for i in range(100):
        a.add(1.05**i)
        b.add(1.05 ** (i + 50))
    a.merge(b)
    assert len(a) <= 20
    assert a.count == 200
    with pytest.raises(ValueError, match="same alpha"):
        a.merge(QuantileSketch(alpha=0.02))
    with pytest.raises(TypeError):
        a.merge([1.0])  # type: ignore[arg-type]
    a.merge(QuantileSketch())  # empty: a no-op
    assert a.count == 200


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    ),
    alpha=st.sampled_from([0.005, 0.01, 0.02, 0.05]),
)
def test_every_quantile_within_relative_accuracy(values: list[float], alpha: float) -> None:
    sketch = QuantileSketch(alpha=alpha)
    for value in values:
        sketch.add(value)
    ordered = sorted(values)
    qs = (*SWEEP, 0.999)
    for q, estimate in zip(qs, sketch.quantiles(qs), strict=True):
        assert relative_error(estimate, exact_quantile(ordered, q)) <= alpha * (1 + 1e-9)
    assert sketch.count == len(values)
    assert sketch.min == ordered[0]
    assert sketch.max == ordered[-1]


def test_empty_sketch() -> None:
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None
    assert sketch.quantiles((0.1, 0.9)) == [None, None]
    assert (sketch.count, sketch.sum, len(sketch)) == (0, 0.0, 0)
    assert (sketch.min, sketch.max, sketch.mean) == (None, None, None)


def test_single_value_is_exact() -> None:
    sketch = QuantileSketch()
    sketch.add(0.123)
    assert sketch.quantiles((0.0, 0.5, 1.0)) == [0.123, 0.123, 0.123]
    assert sketch.mean == 0.123


def test_zeros_and_tiny_values_use_the_zero_bucket() -> None:
    sketch = QuantileSketch(min_indexable=1e-9)
    for value in (0.0, 0.0, 1e-12, 5.0):
        sketch.add(value)
    assert sketch.zero_count == 3
    assert len(sketch) == 1
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(0.5) == 0.0  # rank 1: a zero-bucket value, reported as 0
    assert sketch.quantile(1.0) == 5.0
    assert sketch.sum == pytest.approx(5.0)


def test_weighted_add_counts_as_repeats() -> None:
    weighted, repeated = QuantileSketch(), QuantileSketch()
    weighted.add(2.0, count=3)
    weighted.add(7.0, count=2)
    for value in (2.0, 2.0, 2.0, 7.0, 7.0):
        repeated.add(value)
    assert weighted._bins == repeated._bins
    assert weighted.quantiles(SWEEP) == repeated.quantiles(SWEEP)
    assert weighted.sum == repeated.sum == 20.0


@pytest.mark.parametrize("bad", [-1.0, -1e-300, math.nan, math.inf, -math.inf])
def test_invalid_values_are_rejected(bad: float) -> None:
    sketch = QuantileSketch()
    with pytest.raises(ValueError):
        sketch.add(bad)
    assert sketch.count == 0


def test_invalid_arguments_are_rejected() -> None:
    sketch = QuantileSketch()
    with pytest.raises(ValueError, match="count"):
        sketch.add(1.0, count=0)
    for q in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="quantile"):
            sketch.quantile(q)
    for kwargs in ({"alpha": 0.0}, {"alpha": 1.0}, {"max_buckets": 0}, {"min_indexable": 0.0}):
        with pytest.raises(ValueError):
            QuantileSketch(**kwargs)


def test_huge_values_do_not_overflow() -> None:
    sketch = QuantileSketch()
    sketch.add(1.7e308)
    sketch.add(1e308)
    assert sketch.quantile(1.0) == 1.7e308
    assert relative_error(sketch.quantile(0.0), 1e308) <= 0.01


def test_clear_forgets_everything() -> None:
    sketch = QuantileSketch(max_buckets=5)
    for i in range(20):
        sketch.add(2.0**i)
    sketch.clear()
    assert (sketch.count, len(sketch), sketch.quantile(0.5)) == (0, 0, None)
    sketch.add(1e-3)  # the old collapsed floor is gone too
    assert sketch.quantile(0.5) == 1e-3


# -- EWMA ----------------------------------------------------------------------------------


def test_ewma() -> None:
    ewma = EWMA(alpha=0.5)
    assert ewma.value is None
    assert ewma.update(10.0) == 10.0
    assert ewma.update(20.0) == 15.0
    assert ewma.update(20.0) == 17.5
    ewma.reset()
    assert ewma.value is None
    with pytest.raises(ValueError):
        ewma.update(math.nan)
    with pytest.raises(ValueError):
        EWMA(alpha=0.0)


# -- PeakEWMA ------------------------------------------------------------------------------


def test_peak_ewma_spike_raises_immediately() -> None:
    peak = PeakEWMA(tau=10.0)
    assert peak.value() is None
    peak.update(1.0, now=0.0)
    assert peak.update(9.0, now=0.001) == 9.0
    assert peak.value() == 9.0


def test_peak_ewma_half_life_is_tau_ln2() -> None:
    tau = 10.0
    half_life = tau * math.log(2)
    peak = PeakEWMA(tau=tau)
    peak.update(1.0, now=0.0)
    peak.update(11.0, now=1.0)  # excess 10 over the 1.0 floor
    assert peak.update(1.0, now=1.0 + half_life) == pytest.approx(1.0 + 5.0)
    assert peak.update(1.0, now=1.0 + 2 * half_life) == pytest.approx(1.0 + 2.5)


def test_peak_ewma_decays_but_never_below_the_samples() -> None:
    peak = PeakEWMA(tau=2.0)
    peak.update(50.0, now=0.0)
    previous = 50.0
    for step in range(1, 200):
        value = peak.update(3.0, now=step * 0.5)
        assert 3.0 <= value <= previous
        previous = value
    assert previous == pytest.approx(3.0)


def test_peak_ewma_same_instant_and_backwards_time_do_not_decay() -> None:
    peak = PeakEWMA(tau=1.0)
    peak.update(8.0, now=5.0)
    assert peak.update(1.0, now=5.0) == 8.0
    assert peak.update(1.0, now=4.0) == 8.0


def test_peak_ewma_idle_decay_is_read_only() -> None:
    peak = PeakEWMA(tau=10.0)
    peak.update(4.0, now=0.0)
    assert peak.value(now=10.0 * math.log(2)) == pytest.approx(2.0)
    assert peak.value(now=-1.0) == 4.0
    assert peak.value() == 4.0  # reading did not change it


def test_peak_ewma_rejects_bad_input() -> None:
    peak = PeakEWMA()
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            peak.update(bad, now=0.0)
    with pytest.raises(ValueError):
        PeakEWMA(tau=0.0)
    peak.update(2.0, now=0.0)
    peak.reset()
    assert peak.value() is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
            st.floats(min_value=-5.0, max_value=50.0, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    ),
    st.floats(min_value=0.01, max_value=100.0),
)
def test_peak_ewma_fold_is_the_documented_update_with_stamp_and_rank(
    samples: list[tuple[float, float]], tau: float
) -> None:
    # fold() carries the update the tracker pays on every answer: it must return exactly the
    # documented estimate, the update's stamp and the rank of that state (log v + stamp / tau).
    peak, reader = PeakEWMA(tau), PeakEWMA(tau)
    value: float | None = None
    stamp = 0.0
    now = 0.0
    for x, step in samples:
        now += step
        if value is None or x >= value:
            expected = x
        else:
            elapsed = now - stamp
            expected = x + (value - x) * (math.exp(-elapsed / tau) if elapsed > 0.0 else 1.0)
        if now > stamp or value is None:
            stamp = now
        value = expected
        rank = math.log(value) + stamp / tau if value > 0.0 else -math.inf
        assert peak.fold(x, now) == (value, stamp, rank)
        assert reader.update(x, now) == value  # update() is fold()'s estimate
        assert (peak.stamp, peak.rank(), peak.value()) == (stamp, rank, value)
        assert (reader.stamp, reader.rank()) == (stamp, rank)


def test_peak_ewma_fold_rejects_bad_input() -> None:
    peak = PeakEWMA(1.0)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and not negative"):
            peak.fold(bad, 0.0)
    assert peak.value() is None  # nothing was folded in
