"""``adaptive``'s cost of a deployment that fails: the expected time to an answer there, its
latency plus the odds of failure times the time a failure takes (at least a tenth of its cost),
and beyond odds of 1 (more failures than answers) a penalty that avoids it however fast its
failures are; on a hand-fed tracker.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel._core.clock import ManualClock
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext
from multimodel.strategies.adaptive import BROKEN_PENALTY, FAILURE_FLOOR, Adaptive
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker

CTX = RouteContext()


def eps(*names: str) -> list[Endpoint]:
    return [
        Endpoint(name=n, model="m", wire_model="m", provider="openai", base_url="http://x")
        for n in names
    ]


def record(
    tracker: Tracker, name: str, *, ok: bool = True, latency: float = 0.1, **kw: Any
) -> None:
    tracker.started(name)
    tracker.record(
        Outcome(
            deployment=name,
            model="m",
            provider="openai",
            ok=ok,
            latency=latency,
            started_at=0.0,
            error=None if ok else "ServerError",
            **kw,
        )
    )


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(ManualClock().monotonic)


def test_the_tracker_keeps_the_time_failures_take(tracker: Tracker) -> None:
    assert tracker.get("a").ewma_failure_latency is None
    record(tracker, "a", ok=False, latency=0.2)
    assert tracker.get("a").ewma_failure_latency == pytest.approx(0.2)
    record(tracker, "a", latency=5.0)  # a success does not move it
    assert tracker.get("a").ewma_failure_latency == pytest.approx(0.2)
    record(tracker, "a", ok=False, latency=1.2)
    assert tracker.get("a").ewma_failure_latency == pytest.approx(0.2 + 0.3 * 1.0)
    # A 429's Retry-After is part of what it costs: the deployment asked for that long.
    record(tracker, "b", ok=False, latency=0.01, retry_after=2.0)
    assert tracker.get("b").ewma_failure_latency == pytest.approx(2.01)


def test_a_fast_deployment_that_fails_fast_and_seldom_keeps_its_traffic(
    tracker: Tracker,
) -> None:
    # "flaky" answers in 0.4 s where "a" takes 0.5 s, and failed once in 0.12 s: the expected
    # time to an answer there (0.4 + 0.27 x 0.12) still beats 0.5. The former factor
    # (x (1 + 30 x odds), x9 here) sent every request to the slower one.
    for _ in range(8):
        record(tracker, "a", latency=0.5)
        record(tracker, "flaky", latency=0.4)
    record(tracker, "flaky", ok=False, latency=0.12)
    record(tracker, "flaky", latency=0.4)
    s = Adaptive(seed=1)
    cands = eps("a", "flaky")
    assert s.choose(cands, tracker, CTX).name == "flaky"
    assert Adaptive(seed=1, error_penalty=30.0).choose(cands, tracker, CTX).name == "a"


def test_a_deployment_that_fails_more_than_it_answers_is_avoided_however_fast(
    tracker: Tracker,
) -> None:
    # "broken" answers ten times faster than "a" and fails in a millisecond, but fails more
    # often than it answers: its retries would outnumber its answers, so "a" takes the traffic.
    for _ in range(6):
        record(tracker, "a", latency=0.5)
        record(tracker, "broken", latency=0.05)
    for _ in range(3):
        record(tracker, "broken", ok=False, latency=0.001)
    assert tracker.get("broken").ewma_error_rate > 0.5
    s = Adaptive(seed=1)
    cands = eps("a", "broken")
    assert all(s.choose(cands, tracker, CTX).name == "a" for _ in range(20))
    # One failure in a row (odds below 1) is weighed by its time: the fast one keeps its turn.
    t2 = Tracker(ManualClock().monotonic)
    for _ in range(6):
        record(t2, "a", latency=0.5)
        record(t2, "broken", latency=0.05)
    record(t2, "broken", ok=False, latency=0.001)
    assert s.choose(cands, t2, CTX).name == "broken"


@settings(max_examples=60, deadline=None)
@given(
    latency=st.floats(0.01, 5.0),
    failed=st.floats(0.001, 30.0),
    failures=st.integers(1, 12),
    successes=st.integers(0, 6),
)
def test_the_cost_of_failures_is_their_expected_time(
    latency: float, failed: float, failures: int, successes: int
) -> None:
    """A deployment costs its healthy twin's cost (the same answers, no failures) plus the odds
    of failure times the time a failure takes, never less than a tenth of that cost, and beyond
    odds of 1 that times ``1 + BROKEN_PENALTY x (odds - 1)``: so it is never cheaper than the
    twin, and odds above 1 alone take it out of the 10 % tie band."""
    tracker = Tracker(ManualClock().monotonic)
    for _ in range(4):
        record(tracker, "twin", latency=latency)
        record(tracker, "flaky", latency=latency)
    for _ in range(failures):
        record(tracker, "flaky", ok=False, latency=failed)
    for _ in range(successes):
        record(tracker, "flaky", latency=latency)
        record(tracker, "twin", latency=latency)
    s = Adaptive(seed=0)
    twin, flaky = (s.cost(c, tracker, CTX, 0.0, latency) for c in eps("twin", "flaky"))
    err = tracker.get("flaky").ewma_error_rate
    odds = err / (1.0 - err)
    lost = max(tracker.get("flaky").ewma_failure_latency or 0.0, FAILURE_FLOOR * twin)
    broken = 1.0 + BROKEN_PENALTY * max(0.0, odds - 1.0)
    assert flaky == pytest.approx((twin + odds * lost) * broken, rel=1e-9)
    assert flaky >= twin * (1.0 + FAILURE_FLOOR * odds) * (1 - 1e-12)
