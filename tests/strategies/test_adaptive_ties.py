"""``adaptive``'s ties between deployments whose latency levels do not differ.

A recent estimate of a σ = 0.3 lognormal latency is noisy by ~13 %, so two equal deployments'
costs are more than 10 % apart most of the time; their long-run levels (the tracker's
``latency_level``, ~2 % standard error) are not. Within ``LEVEL_TIE_CAP`` of the lowest cost,
equal levels make a tie (the fewest in flight wins it); a real difference in levels does not.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from multimodel._core.clock import ManualClock
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext
from multimodel.strategies.adaptive import LEVEL_TIE_CAP, LEVEL_TIE_Z, SCAN_TIE, Adaptive
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker

CTX = RouteContext()


def eps(*names: str) -> list[Endpoint]:
    return [
        Endpoint(name=n, model="m", wire_model="m", provider="openai", base_url="http://x")
        for n in names
    ]


def answer(tracker: Tracker, clock: ManualClock, name: str, latency: float) -> None:
    clock.advance(0.05)
    tracker.started(name)
    tracker.record(
        Outcome(
            deployment=name, model="m", provider="openai", ok=True, latency=latency, started_at=0.0
        )
    )


def history(medians: dict[str, float], answers: int, seed: int) -> tuple[Tracker, ManualClock]:
    """A tracker fed ``answers`` lognormal (σ = 0.3) answers per deployment, interleaved."""
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    rng = random.Random(seed)
    for _ in range(answers):
        for name, median in medians.items():
            answer(tracker, clock, name, median * rng.lognormvariate(0.0, 0.3))
    return tracker, clock


def costs(strategy: Adaptive, names: str, tracker: Tracker) -> dict[str, float]:
    _, scores = strategy.choose_scored(eps(*names), tracker, CTX)
    return dict(scores)


def picks(strategy: Adaptive, names: str, tracker: Tracker, n: int = 60) -> Counter[str]:
    return Counter(strategy.choose(eps(*names), tracker, CTX).name for _ in range(n))


def test_equal_deployments_that_only_look_different_share_by_load() -> None:
    tracker, clock = history({"a": 0.5, "b": 0.5, "c": 0.5}, answers=120, seed=3)
    for _ in range(5):  # a's last answers happen to be fast: its estimate drops
        answer(tracker, clock, "a", 0.33)
    tracker.started("a")
    tracker.started("a")  # and it already has two requests in flight
    cost = costs(Adaptive(seed=1), "abc", tracker)
    gap = min(cost["b"], cost["c"]) / cost["a"]
    assert SCAN_TIE < gap < LEVEL_TIE_CAP  # a clear winner by the fixed band alone
    levels = {n: tracker.get(n).latency_level for n in "abc"}
    assert max(levels.values()) / min(levels.values()) < 1.05  # the same long-run latency
    # The old rule sends every request to the busiest one; equal levels make a tie, and an
    # idle one gets them.
    assert picks(Adaptive(seed=1, level_z=0), "abc", tracker) == {"a": 60}
    got = picks(Adaptive(seed=1), "abc", tracker)
    assert "a" not in got
    assert set(got) <= {"b", "c"}


def test_a_real_difference_in_levels_is_no_tie() -> None:
    # b is 20 % slower than a, measured over hundreds of answers: within the cap, but its
    # level is many standard errors above a's, so a keeps the traffic despite its load.
    tracker, _ = history({"a": 0.5, "b": 0.6}, answers=300, seed=2)
    tracker.started("a")
    tracker.started("a")
    cost = costs(Adaptive(seed=1), "ab", tracker)
    assert SCAN_TIE < cost["b"] / cost["a"] < LEVEL_TIE_CAP
    a, b = tracker.get("a"), tracker.get("b")
    error = math.hypot(a.latency_level_error, b.latency_level_error)
    assert b.latency_level - a.latency_level > LEVEL_TIE_Z * error
    assert picks(Adaptive(seed=1), "ab", tracker) == {"a": 60}


def test_a_level_not_yet_measured_ties_nothing() -> None:
    # c has answered a few times only: its level is unknown (error inf), so it does not
    # share a's traffic on the strength of those, however idle it is.
    tracker, clock = history({"a": 0.5}, answers=120, seed=3)
    for latency in (0.8, 0.8, 0.8):
        answer(tracker, clock, "c", latency)
    tracker.started("a")
    cost = costs(Adaptive(seed=1), "ac", tracker)
    assert SCAN_TIE < cost["c"] / cost["a"] < LEVEL_TIE_CAP
    assert tracker.get("c").latency_level_error == float("inf")
    assert picks(Adaptive(seed=1), "ac", tracker) == {"a": 60}
