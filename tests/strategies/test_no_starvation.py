"""No starvation: a deployment that stops failing is chosen again within a bounded number of
requests, whatever the fleet and its recorded state (``adaptive``, ``response_time``,
``intelligent``)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel._core.clock import ManualClock
from multimodel.catalog.models import ModelSpec, Pricing
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext, make_strategy
from multimodel.strategies._util import PROBE_EVERY
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker

# Probes of a deployment that failed n times in a row wait PROBE_EVERY << min(n - 1, 6)
# requests, after up to PROBE_EVERY requests to notice the failure.
BOUND = PROBE_EVERY * (2 + 64) + 1
HOLD = 5.0  # the longest Retry-After drawn: a hold is respected, then the bound applies
STEP = 0.1  # virtual seconds between requests


def endpoint(name: str, price: float, quality: int) -> Endpoint:
    spec = ModelSpec(
        id=name,
        provider="openai",
        context_window=128_000,
        max_output_tokens=4096,
        pricing=Pricing(input=price, output=4 * price),
        capabilities=frozenset({"chat"}),
        quality=quality,
    )
    return Endpoint(
        name=name,
        model="m",
        wire_model=name,
        provider="openai",
        base_url="http://x",
        spec=spec,
    )


def outcome(name: str, ok: bool, latency: float, retry_after: float | None = None) -> Outcome:
    return Outcome(
        deployment=name,
        model="m",
        provider="openai",
        ok=ok,
        latency=latency,
        started_at=0.0,
        status=200 if ok else (429 if retry_after else 500),
        error=None if ok else ("RateLimited" if retry_after else "ServerError"),
        retry_after=retry_after,
    )


@pytest.mark.parametrize("strategy", ["adaptive", "response_time", "intelligent"])
@settings(max_examples=60, deadline=None)
@given(
    fleet=st.lists(
        st.tuples(
            st.floats(0.01, 2.0),  # true latency
            st.floats(0.0, 1.0),  # failure rate of the others
            st.floats(0.1, 10.0),  # price
            st.integers(40, 90),  # quality
        ),
        min_size=2,
        max_size=12,
    ),
    history=st.integers(0, 80),
    failures=st.integers(1, 30),
    retry_after=st.one_of(st.none(), st.floats(0.1, HOLD)),
    latency=st.floats(0.01, 5.0),
    seed=st.integers(0, 2**16),
)
def test_a_deployment_that_stops_failing_is_chosen_again(
    strategy: str,
    fleet: list[tuple[float, float, float, int]],
    history: int,
    failures: int,
    retry_after: float | None,
    latency: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    cands = tuple(endpoint(f"d{i}", p, q) for i, (_, _, p, q) in enumerate(fleet))
    target = "d0"  # however slow or expensive it is
    ctx = RouteContext(input_tokens=100, output_tokens=100)
    # Some history for every deployment, then a run of failures on the target.
    for _ in range(history):
        i = rng.randrange(len(fleet))
        true, fail, _, _ = fleet[i]
        tracker.started(f"d{i}")
        tracker.record(outcome(f"d{i}", rng.random() >= fail, true))
        clock.advance(rng.random() * STEP)
    if rng.random() < 0.5:  # measured once, or never answered
        tracker.started(target)
        tracker.record(outcome(target, True, latency))
    for k in range(failures):
        tracker.started(target)
        hold = retry_after if k == failures - 1 else None
        tracker.record(outcome(target, False, 0.001, hold))
    chooser = make_strategy({"name": strategy, "seed": seed})
    # From now on the target answers; the others go on as before (sequential traffic).
    limit = int(HOLD / STEP) + BOUND
    for _ in range(limit):
        chosen = chooser.choose(cands, tracker, ctx).name
        if chosen == target:
            return
        i = int(chosen[1:])
        true, fail, _, _ = fleet[i]
        tracker.started(chosen)
        tracker.record(outcome(chosen, rng.random() >= fail, true))
        clock.advance(STEP)
    pytest.fail(f"{target} was not chosen again in {limit} requests")
