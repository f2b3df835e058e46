"""``adaptive``'s kept state gives the answers of reading everything afresh.

A large fleet's ranking keeps each deployment's floor key between rankings and re-reads only
the records the tracker re-ranked since (its ring) or whose load changed; a small fleet's scan
reads the records kept per candidate list. Both are checked against the generic path (a stats
view that is not the tracker, read in full at every choice) over random histories.
"""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import example, given, settings
from hypothesis import strategies as st

from multimodel._core.clock import ManualClock
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext
from multimodel.strategies._large_fleet import _floor_keys, _floors
from multimodel.strategies.adaptive import LEVEL_TIE_CAP, TIE_SECONDS, Adaptive
from multimodel.tracking.congestion import BATCH, LEVEL_MIN
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import RERANK_RING, Tracker
from multimodel.types import Usage

CTX = RouteContext()


def ep(name: str) -> Endpoint:
    return Endpoint(name=name, model="m", wire_model="m", provider="openai", base_url="https://x")


class View:
    """The tracker behind another type: strategies read every record afresh through it."""

    def __init__(self, tracker: Tracker) -> None:
        self.get, self.now, self._tracker = tracker.get, tracker.now, tracker

    @property
    def ranked(self) -> int:  # so both rank again at the same first measurements
        return self._tracker.ranked


def answer(
    tracker: Tracker, name: str, latency: float, ok: bool = True, hold: bool = False
) -> None:
    """An answer (or a failure, with a Retry-After hold when ``hold``) of ``name``."""
    fields = {"ok": ok, "latency": latency, "retry_after": 0.5 if hold else None}
    tracker.record(Outcome(name, "m", "openai", started_at=0.0, **fields))  # type: ignore[arg-type]


# (deployment, seconds later, latency, ok, requests left in flight, choices then)
steps_st = st.lists(
    st.tuples(
        st.integers(0, 40),
        st.floats(0, 2),
        st.floats(0.001, 3.0),
        st.booleans(),
        st.integers(0, 2),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=150,
)


@settings(max_examples=120, deadline=None)
@given(
    st.integers(2, 30),
    steps_st,
    st.sampled_from([None, 0.03]),
    st.integers(0, 2**16),
    st.integers(4, 20),
)
def test_adaptive_choices_match_reading_every_record_afresh(
    n: int,
    steps: list[tuple[int, float, float, bool, int, int]],
    load_factor: float | None,
    seed: int,
    max_tokens: int,
) -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    kept = Adaptive(seed=seed, load_factor=load_factor)
    afresh = Adaptive(seed=seed, load_factor=load_factor)
    view = View(tracker)
    candidates = tuple(ep(f"d{i}") for i in range(n))
    ctx = RouteContext(output_tokens=max_tokens)
    for index, later, latency, ok, left, choices in steps:
        clock.advance(later)
        name = f"d{index % n}"
        for _ in range(left + 1):
            tracker.started(name)
        answer(tracker, name, latency, ok, index % 3 == 0)
        for _ in range(choices):
            a, scores_a = kept.choose_scored(candidates, tracker, ctx)
            b, scores_b = afresh.choose_scored(candidates, view, ctx)
            assert a.name == b.name
            assert dict(scores_a) == dict(scores_b)


# (deployment, seconds later, latency, output tokens or None, streamed, ttft share)
answers_st = st.lists(
    st.tuples(
        st.integers(0, 1),  # d2 and d3 stay unmeasured
        st.floats(0, 30),
        st.floats(0.001, 3.0),
        st.one_of(st.none(), st.integers(1, 800)),
        st.booleans(),
        st.floats(0.05, 0.9),
    ),
    min_size=0,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    answers_st,
    st.booleans(),
    st.integers(1, 1000),
    st.sampled_from([(0.0, 60.0), (0.25, 375.0), (0.0, 0.0)]),
    st.floats(0, 100),
    st.lists(st.integers(0, 3), max_size=3),
)
def test_large_fleet_single_estimate_is_the_scan_estimate(
    answers: list[tuple[int, float, float, int | None, bool, float]],
    stream: bool,
    max_tokens: int,
    large: tuple[float, float],
    later: float,
    chosen_before: list[int],
) -> None:
    """``_estimate`` (the challenger, and the member just chosen) gives what ``_latencies``
    gives for that one candidate, and leaves the same record of last choices."""
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    one, other = Adaptive(seed=1), Adaptive(seed=1)
    # d1 first answers at lengths that vary with its latency: a slope, a factor per length.
    learned = [(1, 0.5, 0.05, 50 * (k % 8 + 1), False, 0.5) for k in range(16)]
    for index, wait, latency, tokens, streamed, share in learned + answers:
        clock.advance(wait)
        name = f"d{index}"
        tracker.started(name)
        usage = None if tokens is None else Usage(input_tokens=10, output_tokens=tokens)
        latency = latency / 10 + 0.002 * (tokens or 0)  # a slope to learn from the lengths
        tracker.record(
            Outcome(
                name,
                "m",
                "openai",
                ok=True,
                latency=latency,
                started_at=0.0,
                usage=usage,
                stream=streamed,
                ttft=latency * share if streamed else None,
                requested_tokens=tokens,
            )
        )
    for index in chosen_before:  # some chosen before (their floor's decay starts then)
        one._sent[f"d{index}"] = other._sent[f"d{index}"] = clock.monotonic()
    clock.advance(later)
    now = clock.monotonic()
    ctx = RouteContext(stream=stream, output_tokens=max_tokens)
    for index in range(4):
        candidate = ep(f"d{index}")
        cell = tracker.get(candidate.name)
        single = one._estimate(candidate, cell, tracker, ctx, now, large, False)
        listed = other._latencies([candidate], [cell], tracker, ctx, now, large)[0]
        assert single == listed
        assert one._sent == other._sent
        # Chosen now: its estimate again, with its last choice now.
        one._sent[candidate.name] = other._sent[candidate.name] = now
        single = one._estimate(candidate, cell, tracker, ctx, now, large, True)
        listed = other._latencies([candidate], [cell], tracker, ctx, now, large)[0]
        assert single == listed


@settings(max_examples=80, deadline=None)
@given(st.integers(9, 40), steps_st, st.sampled_from([None, 0.05]))
def test_large_fleet_floor_keys_are_kept_up_to_date(
    n: int, steps: list[tuple[int, float, float, bool, int, int]], load_factor: float | None
) -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    strategy = Adaptive(seed=1, load_factor=load_factor)
    candidates = tuple(ep(f"d{i}") for i in range(n))
    fleet = strategy._fleets.get(candidates, tracker)
    for index, later, latency, ok, left, choices in steps:
        clock.advance(later)
        name = f"d{index % n}"
        for _ in range(left):
            tracker.started(name)
        if choices:  # answers some of the requests in flight, which changes loads only
            tracker.started(name)
            answer(tracker, name, latency, ok, index % 3 == 0)
        if choices != 1:
            cells, floors = _floors(fleet, tracker, load_factor)
            loads = [cell.in_flight for cell in cells]
            assert floors == _floor_keys(cells, loads, load_factor)


def test_large_fleet_reads_the_fleet_again_once_the_ring_moved_on() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = tuple(ep(f"d{i}") for i in range(12))
    strategy = Adaptive(seed=3)
    fleet = strategy._fleets.get(candidates, tracker)
    _floors(fleet, tracker, None)
    for k in range(RERANK_RING + 5):  # more re-rankings than the ring names
        clock.advance(0.01)
        name = f"d{k % 12}"
        tracker.started(name)
        answer(tracker, name, 0.1 + k / 100)
    cells, floors = _floors(fleet, tracker, None)
    assert floors == _floor_keys(cells, [0] * 12, None)
    assert fleet.extra["adaptive/floors"][0] == tracker.reranked


def test_scan_ties_go_to_the_fewest_in_flight_then_at_random() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = tuple(ep(name) for name in "abcd")
    for name in "abcd":
        tracker.started(name)
        answer(tracker, name, 0.2)
    strategy = Adaptive(seed=5)
    counts = Counter(strategy.choose(candidates, tracker, CTX).name for _ in range(400))
    assert set(counts) == set("abcd")  # all tied, all idle: shared at random
    assert min(counts.values()) > 60
    tracker.started("a")
    tracker.started("b")
    counts = Counter(strategy.choose(candidates, tracker, CTX).name for _ in range(200))
    assert set(counts) == {"c", "d"}  # the tied with the fewest in flight
    tracker.started("c")
    assert {strategy.choose(candidates, tracker, CTX).name for _ in range(20)} == {"d"}


def reference_pick(
    strategy: Adaptive, costs: list[float], loads: list[int], levels: list[tuple[float, float]]
) -> int:
    """``_pick`` as first written: every tie listed (within the band, or within the cap with
    a level not told apart: ``levels`` holds each one's level and error), then the fewest in
    flight, then chance."""
    best = min(costs)
    floor = max(best * strategy.tie, best + TIE_SECONDS)
    cap = best * LEVEL_TIE_CAP
    level, error = levels[costs.index(best)]

    def same_level(i: int) -> bool:
        other, other_error = levels[i]
        if math.inf in (error, other_error):
            return False
        return abs(other - level) <= strategy.level_z * math.hypot(error, other_error)

    ties = [i for i, v in enumerate(costs) if v <= floor or (v <= cap and same_level(i))]
    if len(ties) == 1:
        return ties[0]
    tied_loads = [loads[i] for i in ties]
    low = min(tied_loads)
    ties = [i for i, x in zip(ties, tied_loads, strict=True) if x == low]
    return ties[0] if len(ties) == 1 else ties[strategy._rng.index(len(ties))]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.001, 0.0105, 0.0112, 0.1, 0.105, 0.113, 0.125, 0.5, 3.0]),
            st.integers(0, 2),
            st.sampled_from([None, 0.2, 0.3]),
        ),
        min_size=1,
        max_size=9,
    ),
    st.integers(0, 2**16),
)
# Within the cap and past the band: the idle one ties only at the same level.
@example(rows=[(0.1, 1, 0.2), (0.125, 0, 0.3)], seed=1)
@example(rows=[(0.1, 1, 0.2), (0.125, 0, 0.2)], seed=1)
@example(rows=[(0.1, 1, 0.2), (0.125, 0, None)], seed=1)
def test_pick_is_the_lowest_then_fewest_in_flight_then_chance(
    rows: list[tuple[float, int, float | None]], seed: int
) -> None:
    """The shortcuts of ``_pick`` (one winner, a full tie, all at one load, the levels only
    when the cap reaches past the band) choose what listing every tie does, with the same
    draws. A level is set by constant answers (error 0: equal levels tie, others do not) or
    unknown (``None``: no answers, ties nothing beyond the band)."""
    tracker = Tracker(ManualClock().monotonic)
    cells = []
    for i, (_, load, level) in enumerate(rows):
        name = f"d{i}"
        if level is not None:
            for _ in range(int(LEVEL_MIN) + 2 * BATCH):
                tracker.started(name)  # the load an answer was sent at feeds the level
                answer(tracker, name, level)
        for _ in range(load):
            tracker.started(name)
        cells.append(tracker.get(name))
    costs = [cost for cost, _, _ in rows]
    levels = [(cell.latency_level, cell.latency_level_error) for cell in cells]
    fast, slow = Adaptive(seed=seed), Adaptive(seed=seed)
    for _ in range(3):
        assert fast._pick(costs, cells) == reference_pick(
            slow, costs, [n for _, n, _ in rows], levels
        )
    assert fast._rng.draw() == slow._rng.draw()
