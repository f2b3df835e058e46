"""The fleet-size fast paths of the strategies give the same answers as scoring one by one.

``least_connections``, ``response_time`` and ``intelligent`` scan the tracker's records with
C-level list operations (rank keys instead of decayed estimates), ``weighted`` precomputes its
smooth cycle. Each is checked here against the plain definition: the generic path (taken for
any stats view that is not the tracker) or the textbook formula.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multimodel as mm
from multimodel._core.clock import ManualClock
from multimodel._core.trace import LazyScores, RoutingTrace, ScoreTable, new_trace
from multimodel.catalog.models import ModelSpec, Pricing
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext
from multimodel.strategies._util import (
    SCORE_TIE,
    FleetCache,
    LockedRandom,
    pick_max_index,
    pick_min_index,
)
from multimodel.strategies.intelligent import Intelligent
from multimodel.strategies.least_connections import LeastConnections
from multimodel.strategies.response_time import LONG_GENERATION, ResponseTime
from multimodel.strategies.weighted import SCHEDULE_CAP, Weighted, _integer_weights
from multimodel.testing.fixtures import MockServerFactory
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.sketches import PeakEWMA
from multimodel.tracking.stats import DeploymentStats, StatsView, Tracker

CTX = RouteContext()


def ep(name: str, spec: ModelSpec | None = None, weight: float = 1.0) -> Endpoint:
    return Endpoint(
        name=name,
        model="m",
        wire_model="m",
        provider="openai",
        base_url="https://x.test/v1",
        spec=spec,
        weight=weight,
    )


class View:
    """A stats view that is not the tracker: strategies score it one candidate at a time."""

    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    def get(self, deployment: str) -> DeploymentStats:
        return self._tracker.get(deployment)

    def now(self) -> float:
        return self._tracker.now()


def feed(
    tracker: Tracker,
    clock: ManualClock,
    events: list[tuple[int, float, float, bool]],
    n: int,
    stream: bool = False,
) -> None:
    for index, advance, latency, ok in events:
        clock.advance(advance)
        name = f"d{index % n}"
        tracker.started(name)
        tracker.record(
            Outcome(
                deployment=name,
                model="m",
                provider="openai",
                ok=ok,
                latency=latency,
                started_at=0.0,
                stream=stream,
                ttft=latency / 3 if stream else None,
            )
        )


events_st = st.lists(
    st.tuples(st.integers(0, 40), st.floats(0, 30), st.floats(0.001, 5.0), st.booleans()),
    min_size=1,
    max_size=120,
)


# -- rank keys -------------------------------------------------------------------------------


@given(
    st.lists(st.tuples(st.floats(0, 20), st.floats(0.001, 10)), min_size=1, max_size=30),
    st.floats(0, 100),
)
def test_peak_rank_orders_like_the_decayed_estimate(
    samples: list[tuple[float, float]], later: float
) -> None:
    clock = 0.0
    a, b = PeakEWMA(10.0), PeakEWMA(10.0)
    for i, (advance, value) in enumerate(samples):
        clock += advance
        (a if i % 2 else b).update(value, clock)
    if a.rank() is None or b.rank() is None:
        return
    now = clock + later
    va, vb = a.value(now), b.value(now)
    assert va is not None and vb is not None
    assert math.exp(a.rank() - now / 10.0) == pytest.approx(va, rel=1e-9)  # type: ignore[operator]
    if not math.isclose(va, vb, rel_tol=1e-9):
        assert (va < vb) == (a.rank() < b.rank())  # type: ignore[operator]


def test_rank_of_a_zero_estimate_sorts_first() -> None:
    peak = PeakEWMA(10.0)
    assert peak.rank() is None
    peak.update(0.0, 5.0)
    assert peak.rank() == -math.inf


# -- response_time ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 12), events_st, st.booleans(), st.floats(0, 60))
def test_response_time_scan_matches_scoring_one_by_one(
    n: int, events: list[tuple[int, float, float, bool]], stream: bool, idle: float
) -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    feed(tracker, clock, events, n, stream=stream)
    for i in range(n):  # every deployment measured: the scan applies
        tracker.started(f"d{i}")
        tracker.record(
            Outcome(
                deployment=f"d{i}",
                model="m",
                provider="openai",
                ok=True,
                latency=0.05 * (i + 1),
                started_at=0.0,
            )
        )
    clock.advance(idle)
    cands = tuple(ep(f"d{i}") for i in range(n))
    ctx = RouteContext(stream=stream)
    fast, fast_scores = ResponseTime(seed=1).choose_scored(cands, tracker, ctx)
    slow, slow_scores = ResponseTime(seed=1).choose_scored(cands, View(tracker), ctx)
    assert isinstance(fast_scores, LazyScores)
    assert dict(fast_scores) == pytest.approx(dict(slow_scores), rel=1e-9)
    best = min(slow_scores.values())
    assert slow_scores[fast.name] == pytest.approx(best, rel=1e-9)
    assert slow_scores[slow.name] == pytest.approx(best, rel=1e-9)


def test_response_time_probes_before_scanning(clock: ManualClock) -> None:
    tracker = Tracker(clock.monotonic)
    cands = tuple(ep(f"d{i}") for i in range(5))
    for i in range(4):
        tracker.started(f"d{i}")
        tracker.record(
            Outcome(
                deployment=f"d{i}",
                model="m",
                provider="openai",
                ok=True,
                latency=0.01,
                started_at=0.0,
            )
        )
    # d4 was never measured: it is probed, though every other one is faster than any guess.
    assert ResponseTime().choose(cands, tracker, CTX).name == "d4"


def test_response_time_long_generations_add_time_per_token(clock: ManualClock) -> None:
    tracker = Tracker(clock.monotonic)
    cands = (ep("quick-start"), ep("fast-writer"))
    usage = mm.Usage(input_tokens=10, output_tokens=400)
    tracker.started("quick-start")
    tracker.record(
        Outcome(
            deployment="quick-start",
            model="m",
            provider="openai",
            ok=True,
            latency=8.0,
            started_at=0.0,
            usage=usage,
        )
    )
    tracker.started("fast-writer")
    tracker.record(
        Outcome(
            deployment="fast-writer",
            model="m",
            provider="openai",
            ok=True,
            latency=9.0,
            started_at=0.0,
            usage=mm.Usage(input_tokens=10, output_tokens=4000),
        )
    )
    short = RouteContext(output_tokens=100)
    long = RouteContext(output_tokens=LONG_GENERATION * 4)
    strategy = ResponseTime(seed=1)
    assert strategy.choose(cands, tracker, short).name == "quick-start"
    assert strategy.choose(cands, tracker, long).name == "fast-writer"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# -- least_connections -----------------------------------------------------------------------


def test_least_connections_ties_are_uniform(clock: ManualClock) -> None:
    tracker = Tracker(clock.monotonic)
    cands = tuple(ep(f"d{i}") for i in range(8))
    for i in range(4):
        tracker.started(f"d{i}")  # d0..d3 busy; d4..d7 tie at 0
    strategy = LeastConnections(seed=3)
    got = Counter(strategy.choose(cands, tracker, CTX).name for _ in range(8000))
    assert set(got) == {"d4", "d5", "d6", "d7"}
    assert all(1700 < v < 2300 for v in got.values()), got


def test_least_connections_follows_live_counters(clock: ManualClock) -> None:
    tracker = Tracker(clock.monotonic)
    cands = tuple(ep(f"d{i}") for i in range(30))
    strategy = LeastConnections(seed=1)
    for _ in range(90):  # each choice is sent: the load spreads exactly evenly
        tracker.started(strategy.choose(cands, tracker, CTX).name)
    assert {tracker.get(f"d{i}").in_flight for i in range(30)} == {3}
    _, scores = strategy.choose_scored(cands, tracker, CTX)
    assert dict(scores) == {f"d{i}": 3.0 for i in range(30)}


@given(st.lists(st.integers(0, 3), min_size=1, max_size=60), st.integers(0, 2**32))
def test_pick_index_helpers_pick_an_extreme(values: list[int], seed: int) -> None:
    rng = LockedRandom(seed)
    floats = [float(v) for v in values]
    assert floats[pick_min_index(floats, rng)] == min(floats)
    assert floats[pick_max_index(floats, rng)] == max(floats)
    assert floats[pick_max_index(floats, rng, 0.5)] == max(floats)


# -- intelligent -----------------------------------------------------------------------------


def priced(name: str, price_in: str, price_out: str, quality: int) -> Endpoint:
    return ep(
        name,
        ModelSpec(
            id=name,
            provider="openai",
            context_window=128_000,
            max_output_tokens=4096,
            quality=quality,
            pricing=Pricing(input=Decimal(price_in), output=Decimal(price_out)),
        ),
    )


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 24),
    events_st,
    st.booleans(),
    st.sampled_from(
        [
            {"cost": 0.3, "performance": 0.4, "quality": 0.3},
            {"performance": 1.0},
            {"cost": 1.0, "availability": 0.5},
            {"cost": 0.2, "performance": 0.2, "quality": 0.2, "availability": 0.4},
        ]
    ),
    st.integers(1, 5000),
    st.integers(1, 500),
    st.integers(0, 24),
    st.integers(1, 24),
)
def test_intelligent_scan_matches_its_formula(
    n: int,
    events: list[tuple[int, float, float, bool]],
    stream: bool,
    factors: dict[str, float],
    tin: int,
    tout: int,
    measured: int,
    models: int,
) -> None:
    # ``models`` distinct price / quality entries: one (uniform), a few (scored per group) or
    # one per deployment (scored one by one in a list).
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    feed(tracker, clock, events, n, stream=stream)
    for i in range(min(n, measured)):  # the others may be unmeasured (scored like the fastest)
        tracker.started(f"d{i}")
        tracker.record(
            Outcome(
                deployment=f"d{i}",
                model="m",
                provider="openai",
                ok=True,
                latency=0.05 * (i + 1),
                started_at=0.0,
            )
        )
    cands = tuple(
        priced(
            f"d{i}",
            str(0.1 * (i % models % 3 + 1)),
            str(0.4 * (i % models % 4 + 1)),
            40 + 2 * (i % models),
        )
        for i in range(n)
    )
    ctx = RouteContext(stream=stream, input_tokens=tin, output_tokens=tout)
    strategy = Intelligent(factors=factors, seed=1)
    chosen, scores = strategy.choose_scored(cands, tracker, ctx)
    plain = strategy.scores(cands, tracker, ctx)  # the formula, one candidate at a time
    assert [scores[c.name] for c in cands] == pytest.approx(plain, rel=1e-9, abs=1e-12)
    assert scores[chosen.name] == pytest.approx(max(plain), rel=1e-9)
    if not factors.get("performance"):
        return
    # Ties are broken at random among every candidate that reaches the best score.
    best = max(plain)
    tied = {c.name for c, v in zip(cands, plain, strict=True) if v >= best - 1e-9}
    picks = [strategy.choose_scored(cands, tracker, ctx) for _ in range(40 * len(tied))]
    # (a deployment whose last attempt failed is probed every few requests: not a score pick)
    seen = {c.name for c, s in picks if list(s.items()) != [(c.name, -1.0)]}
    assert seen <= tied
    if len(tied) <= 3:
        # The strategy's tie band is SCORE_TIE (1e-12), on its own sums (the grouped scores may
        # round differently from the formula's): a candidate within 1e-9 of the best but not
        # within SCORE_TIE is a fair loser. Those within half the band are picked.
        sure = {c.name for c, v in zip(cands, plain, strict=True) if v >= best - SCORE_TIE / 2}
        assert sure <= seen


# -- weighted --------------------------------------------------------------------------------


@given(st.lists(st.integers(1, 50), min_size=1, max_size=12))
def test_smooth_cycle_is_exact_for_integer_weights(weights: list[int]) -> None:
    cands = [ep(f"d{i}", weight=w) for i, w in enumerate(weights)]
    strategy = Weighted()
    total = sum(weights)
    if total > SCHEDULE_CAP:
        return
    got = Counter(
        strategy.choose(cands, None, CTX).name  # type: ignore[arg-type]
        for _ in range(total * 3)
    )
    assert got == {f"d{i}": 3 * w for i, w in enumerate(weights)}


@given(st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=60))
def test_integer_weights_keep_proportions(weights: list[float]) -> None:
    ints = _integer_weights(weights)
    assert all(k >= 1 for k in ints)
    assert sum(ints) <= SCHEDULE_CAP + len(weights)
    total, int_total = sum(weights), sum(ints)
    ones = ints.count(1)  # weights too small for a turn per cycle still get one
    for w, k in zip(weights, ints, strict=True):
        # Rounded to ~1/SCHEDULE_CAP of the total, shifted by the forced single turns.
        assert abs(k / int_total - w / total) <= (1 + ones) / SCHEDULE_CAP


def test_weighted_exact_under_threads() -> None:
    cands = tuple(ep(n, weight=w) for n, w in (("a", 5), ("b", 3), ("c", 2)))
    strategy = Weighted()
    got: Counter[str] = Counter()
    lock = threading.Lock()

    def work() -> None:
        local = Counter(
            strategy.choose(cands, None, CTX).name  # type: ignore[arg-type]
            for _ in range(1000)
        )
        with lock:
            got.update(local)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {"a": 4000, "b": 2400, "c": 1600}


# -- caches and the trace --------------------------------------------------------------------


def test_fleet_cache_is_bounded_and_keyed_by_names() -> None:
    built: list[tuple[str, ...]] = []

    def build(cands: Sequence[Endpoint], stats: StatsView) -> int:
        built.append(tuple(c.name for c in cands))
        return len(built)

    cache: FleetCache[int] = FleetCache(build, size=4)
    stats = Tracker(ManualClock().monotonic)
    group = tuple(ep(f"d{i}") for i in range(6))
    assert cache.get(group, stats) == cache.get(group, stats) == 1
    assert cache.get(list(group), stats) == 1  # same names, another list: no rebuild
    for k in range(1, 6):
        cache.get(list(group[:k]), stats)
    assert len(cache._by_names) == 4
    assert cache.get(group, stats) == 1  # identity still known
    assert cache.get(group, Tracker(ManualClock().monotonic)) == len(built)  # new stats


def test_score_table_merges_lazily_and_dumps_plain() -> None:
    table = ScoreTable()
    calls: list[float] = []

    def double(v: float) -> float:
        calls.append(v)
        return v * 2

    table.add(LazyScores(("a", "b"), [1.0, 2.0], double))
    table.add({"b": 9.0})
    assert calls == []  # nothing built before a read
    assert dict(table) == {"a": 2.0, "b": 9.0}
    assert table == {"a": 2.0, "b": 9.0}
    assert repr(table) == "{'a': 2.0, 'b': 9.0}"
    trace = RoutingTrace(model="m", strategy="s", candidates=["a", "b"], scores=table)
    assert trace.to_dict()["scores"] == {"a": 2.0, "b": 9.0}


def test_response_dump_includes_scores(mock_server_factory: MockServerFactory) -> None:
    from multimodel.testing import MockDeployment

    server = mock_server_factory({n: MockDeployment(format="openai") for n in ("one", "two")})
    deps = [
        mm.Deployment(
            model="m", provider="openai", name=n, api_key="sk-test", base_url=server.base_url(n)
        )
        for n in ("one", "two")
    ]
    with mm.Client(deployments=deps, strategy="least_connections") as client:
        response = client.query("hi")
    dumped = response.model_dump()
    assert dumped["trace"]["scores"] == {"one": 0.0, "two": 0.0}
    assert '"scores":{"one":0.0,"two":0.0}' in response.model_dump_json()


def test_tracker_counts_deployments_with_recent_errors(clock: ManualClock) -> None:
    tracker = Tracker(clock.monotonic)

    def one(name: str, ok: bool) -> None:
        tracker.started(name)
        tracker.record(
            Outcome(
                deployment=name, model="m", provider="openai", ok=ok, latency=0.1, started_at=0.0
            )
        )

    one("a", True)
    assert tracker.erring == 0
    one("a", False)
    one("a", False)
    one("b", False)
    assert tracker.erring == 2
    for _ in range(60):  # the rate decays by 0.7 per success and snaps to 0 below 1e-6
        one("a", True)
    assert tracker.get("a").ewma_error_rate == 0.0
    assert tracker.erring == 1
    one("a", False)
    assert tracker.erring == 2


def test_new_trace_is_an_empty_trace() -> None:
    fast = new_trace("m")
    assert fast == RoutingTrace(model="m", strategy="", candidates=[])
    fast.scores.add({"a": 1.0})
    assert dict(new_trace("m").scores) == {}  # nothing shared between traces
    assert fast.to_dict()["scores"] == {"a": 1.0}


@pytest.mark.parametrize("strategy", ["adaptive", "round_robin", "intelligent"])
def test_a_plan_from_its_groups_template_equals_the_general_path(strategy: str) -> None:
    # The first plan of a group enters it the general way and leaves a template; later plans
    # (and a fallback entered through the chain) are built from it and must be the same plan.
    deps = [
        mm.Deployment(
            model=model,
            provider="openai",
            api_key="sk-test",
            name=name,
            base_url=f"http://127.0.0.1:9/{name}/v1",
        )
        for model, name in (("gpt-4o-mini", "a"), ("gpt-4o-mini", "b"), ("gpt-4o", "c"))
    ]
    client = mm.Client(
        deployments=deps, strategy={"name": strategy}, fallbacks={"gpt-4o-mini": ["gpt-4o"]}
    )
    router = client._router
    request = client._build_request("hi", "gpt-4o-mini", {})
    first = router.plan(request, timeout=5.0)
    first._advance()  # the fallback group, entered the general way
    # intelligent has per-request exclusions: no template, every plan takes the general path
    assert ("gpt-4o-mini" in router.templates) is (strategy != "intelligent")
    again = router.plan(request, timeout=5.0)
    assert again.trace == new_trace("gpt-4o-mini", first.trace.strategy, ["a", "b"])
    assert again.strategy is router.strategy("gpt-4o-mini")
    assert list(again.candidates) == router.groups["gpt-4o-mini"]
    assert again._choose_scored == getattr(again.strategy, "choose_scored", None)
    again._advance()  # the fallback group from its template
    assert again.trace == first.trace
    assert again.trace.models == ["gpt-4o-mini", "gpt-4o"]
    assert again.trace.candidates == ["a", "b", "c"]
    client.close()


def test_new_trace_of_an_entered_group() -> None:
    trace = new_trace("m", "Adaptive", ["a", "b"])
    assert trace == RoutingTrace(
        model="m", strategy="Adaptive", candidates=["a", "b"], models=["m"]
    )
