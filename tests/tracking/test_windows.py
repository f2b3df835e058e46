"""SlidingWindow and MultiWindow: exact expiry, gaps, rates and constant memory."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.tracking.windows import DEFAULT_SPANS, MultiWindow, SlidingWindow


def test_counts_expire_exactly_at_the_window_boundary() -> None:
    window = SlidingWindow(60.0, 60)
    window.add(0.0)
    window.add(0.999)  # same 1 s slot
    window.add(1.0)  # next slot
    assert window.total(59.999) == 3
    assert window.total(60.0) == 1  # the slot [0, 1) has left the window
    assert window.total(60.999) == 1
    assert window.total(61.0) == 0


def test_five_minute_window_expires_at_slot_granularity() -> None:
    window = SlidingWindow(300.0, 60)  # 5 s slots
    window.add(1000.0, count=2, value=3.0)
    window.add(1004.9, count=1, value=1.0)
    assert (window.total(1299.9), window.sum(1299.9)) == (3, 4.0)
    assert (window.total(1300.0), window.sum(1300.0)) == (0, 0.0)


def test_gap_longer_than_window_resets() -> None:
    window = SlidingWindow(60.0, 60)
    for second in range(60):
        window.add(float(second), value=1.0)
    assert window.total(59.5) == 60
    window.add(500.0, value=2.5)  # far later: every old slot is stale
    assert window.total(500.0) == 1
    assert window.sum(500.0) == 2.5
    assert window.total(559.9) == 1
    assert window.total(10_000.0) == 0
    assert window.sum(10_000.0) == 0.0


def test_partial_gap_clears_only_passed_slots() -> None:
    window = SlidingWindow(10.0, 10)
    for second in range(10):
        window.add(second + 0.5)
    window.add(14.5)  # slots 10..14 reuse the ring positions of 0..4
    assert window.total(14.5) == 6  # seconds 5..9 plus the new one
    assert window.total(19.0) == 1


def test_rate_is_total_over_window() -> None:
    window = SlidingWindow(60.0, 60)
    for i in range(120):
        window.add(100.0 + i * 0.5)  # 2 per second for 60 s
    assert window.total(159.9) == 120
    assert window.rate(159.9) == pytest.approx(2.0)
    assert window.mean(159.9) == 0.0
    assert SlidingWindow().rate(5.0) == 0.0
    assert SlidingWindow().mean(5.0) is None


def test_old_events_are_ignored_and_late_ones_within_window_count() -> None:
    window = SlidingWindow(60.0, 60)
    window.add(100.0)
    window.add(40.5)  # slot 40 <= 100 - 60: outside the window
    assert window.total(100.0) == 1
    window.add(41.0)  # slot 41: still inside, counted
    assert window.total(100.0) == 2
    assert window.total(100.9) == 2
    assert window.total(101.0) == 1  # slot 41 expires one slot later
    assert window.total(50.0) == 1  # a read in the past reports the window as of now


def test_memory_is_constant() -> None:
    window = SlidingWindow(60.0, 60)
    rng = random.Random(0)
    now = 0.0
    for _ in range(100_000):
        now += rng.expovariate(500.0)
        window.add(now, value=rng.random())
    assert len(window._counts) == len(window._sums) == 60
    assert window.total(now) <= 100_000


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=25.0, allow_nan=False),
            st.integers(min_value=1, max_value=5),
            st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_matches_brute_force(steps: list[tuple[float, int, float]]) -> None:
    width, buckets = 0.5, 20  # a 10 s window
    window = SlidingWindow(width * buckets, buckets)
    events: list[tuple[float, int, float]] = []
    now = 0.0
    for gap, count, value in steps:
        now += gap
        window.add(now, count, value)
        events.append((now, count, value))
        live = [e for e in events if now // width - e[0] // width < buckets]
        assert window.total(now) == sum(e[1] for e in live)
        assert window.sum(now) == pytest.approx(math.fsum(e[2] for e in live), abs=1e-9)


def test_sum_does_not_drift() -> None:
    window = SlidingWindow(1.0, 10)
    times = [i * 0.01 for i in range(200_000)]
    for now in times:
        window.add(now, value=0.1)
    now = times[-1]
    live = [t for t in times[-200:] if now // 0.1 - t // 0.1 < 10]
    assert window.sum(now) == pytest.approx(0.1 * len(live), abs=1e-12)
    assert window.sum(5000.0) == 0.0


def test_clear_and_validation() -> None:
    window = SlidingWindow(60.0, 60)
    window.add(5.0, value=1.0)
    window.clear()
    assert (window.total(5.0), window.sum(5.0)) == (0, 0.0)
    window.add(1.0)  # time may start over after clear
    assert window.total(1.0) == 1
    for args in ((0.0, 60), (math.inf, 60), (60.0, 0)):
        with pytest.raises(ValueError):
            SlidingWindow(*args)


def test_multiwindow_defaults() -> None:
    multi = MultiWindow()
    assert list(multi.windows) == ["1m", "5m", "1h"]
    spans = {label: (w.window, w.buckets) for label, w in multi.windows.items()}
    assert spans == dict(DEFAULT_SPANS)
    multi.add(0.0, value=2.0)
    multi.add(30.0, count=2, value=1.0)
    assert multi.total(59.0) == {"1m": 3, "5m": 3, "1h": 3}
    assert multi.total(60.0) == {"1m": 2, "5m": 3, "1h": 3}
    assert multi.sum(120.0) == {"1m": 0.0, "5m": 3.0, "1h": 3.0}  # value is per add, not per event
    assert multi.rate(120.0) == {"1m": 0.0, "5m": 3 / 300, "1h": 3 / 3600}
    assert multi.mean(120.0) == {"1m": None, "5m": 1.0, "1h": 1.0}
    assert multi.total(300.0) == {"1m": 0, "5m": 2, "1h": 3}  # the 5 s slot [0, 5) left
    assert multi.total(330.0) == {"1m": 0, "5m": 0, "1h": 3}
    assert multi.total(3600.0) == {"1m": 0, "5m": 0, "1h": 0}
    multi.add(4000.0)
    multi.clear()
    assert multi.total(4000.0) == {"1m": 0, "5m": 0, "1h": 0}


def test_multiwindow_agrees_with_separate_windows() -> None:
    spans = {"a": (10.0, 10), "b": (30.0, 6)}
    multi = MultiWindow(spans)
    separate = {label: SlidingWindow(*span) for label, span in spans.items()}
    rng = random.Random(9)
    now = 0.0
    for _ in range(5_000):
        now += rng.choice((0.0, 0.01, 0.3, 2.0, 45.0))
        late = now - rng.choice((0.0, 0.0, 5.0, 40.0))  # some late, some too old
        value = rng.random()
        multi.add(late, 1, value)
        for window in separate.values():
            window.add(late, 1, value)
        assert multi.total(now) == {k: w.total(now) for k, w in separate.items()}
    assert multi.sum(now) == {k: w.sum(now) for k, w in separate.items()}
    with pytest.raises(ValueError):
        MultiWindow({})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from((0.0, 0.0, 0.001, 0.4, 1.0, 3.0, 70.0)),
            st.sampled_from((0.0, 0.0, 0.5, 4.0, 400.0)),
            st.integers(1, 3),
            st.floats(0, 10),
            st.booleans(),
        ),
        min_size=1,
        max_size=300,
    ),
    st.sampled_from(
        [DEFAULT_SPANS, {"a": (10.0, 10), "b": (30.0, 6)}, {"a": (10.0, 4), "b": (7.0, 7)}]
    ),
)
def test_multiwindow_pending_events_read_like_separate_windows(
    steps: list[tuple[float, float, int, float, bool]], spans: dict[str, tuple[float, int]]
) -> None:
    # Events in the same narrowest slot are summed before they reach the windows; reads at any
    # moment (pending events included) must equal windows fed one event at a time.
    multi = MultiWindow(spans)
    separate = {label: SlidingWindow(*span) for label, span in spans.items()}
    now = 0.0
    for advance, lateness, count, value, read in steps:
        now += advance
        at = max(0.0, now - lateness)
        multi.add(at, count, value)
        for window in separate.values():
            window.add(at, count, value)
        if read:
            assert multi.total(now) == {k: w.total(now) for k, w in separate.items()}
    assert multi.total(now) == {k: w.total(now) for k, w in separate.items()}
    assert multi.sum(now) == pytest.approx({k: w.sum(now) for k, w in separate.items()})
    assert {k: w.total(now) for k, w in multi.windows.items()} == multi.total(now)


def test_a_count_only_window_keeps_no_object_per_slot() -> None:
    # A user's or tag's window counts events without values: its slots must keep sharing the
    # one 0.0, or each slot written holds a float of its own and a process with many users
    # grows for as long as its longest window takes to turn (an hour; the memory soak).
    window = SlidingWindow(60.0, 60)
    multi = MultiWindow()
    for t in range(7_200):
        window.add(float(t))
        multi.add(float(t))
    assert window.total(7_199.0) == 60
    assert len({id(x) for x in window._sums}) == 1
    for w in multi.windows.values():
        assert len({id(x) for x in w._sums}) == 1
