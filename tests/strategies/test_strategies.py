"""The balancing strategies, sans I/O: endpoints, a tracker on a manual clock, and choices."""

from __future__ import annotations

import itertools
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from multimodel._core.clock import ManualClock
from multimodel.catalog.models import ModelSpec, Pricing
from multimodel.errors import ConfigError
from multimodel.providers.base import Endpoint
from multimodel.strategies import (
    RouteContext,
    Strategy,
    get_strategy,
    known_strategies,
    make_strategy,
    register_strategy,
)
from multimodel.strategies.adaptive import Adaptive
from multimodel.strategies.intelligent import Intelligent, estimated_cost
from multimodel.strategies.least_connections import LeastConnections
from multimodel.strategies.response_time import ResponseTime
from multimodel.strategies.round_robin import RoundRobin
from multimodel.strategies.weighted import Weighted
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker
from multimodel.types import Usage

CTX = RouteContext()
SIX = {"adaptive", "intelligent", "least_connections", "response_time", "round_robin", "weighted"}


def ep(
    name: str,
    *,
    model: str = "m",
    provider: str = "openai",
    weight: float = 1.0,
    spec: object = None,
) -> Endpoint:
    return Endpoint(
        name=name,
        model=model,
        wire_model=model,
        provider=provider,
        base_url="https://x.test/v1",
        weight=weight,
        spec=spec,
    )


def eps(*names: str) -> list[Endpoint]:
    return [ep(n) for n in names]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tracker(clock: ManualClock) -> Tracker:
    return Tracker(clock.monotonic)


def outcome(name: str, *, ok: bool = True, latency: float = 0.1, **kw: Any) -> Outcome:
    return Outcome(
        deployment=name, model="m", provider="openai", ok=ok, latency=latency, started_at=0.0, **kw
    )


def record(tracker: Tracker, name: str, **kw: Any) -> None:
    """One finished attempt on ``name`` (started, then recorded)."""
    tracker.started(name)
    tracker.record(outcome(name, **kw))


def picks(
    strategy: Strategy,
    candidates: Sequence[Endpoint],
    stats: Tracker,
    n: int,
    ctx: RouteContext = CTX,
) -> Counter[str]:
    return Counter(strategy.choose(candidates, stats, ctx).name for _ in range(n))


# -- registry ----------------------------------------------------------------------------------


def test_known_strategies_has_all_six() -> None:
    assert set(known_strategies()) >= SIX
    for name in SIX:
        assert isinstance(make_strategy(name), Strategy)


def test_unknown_strategy_lists_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_strategy("fastest-please")
    message = str(info.value)
    assert "fastest-please" in message
    for name in SIX:
        assert name in message


def test_register_custom_strategy_and_params() -> None:
    @register_strategy("test-pick-index")
    class PickIndex:
        def __init__(self, index: int = 0) -> None:
            self.index = index

        def choose(
            self, candidates: Sequence[Endpoint], stats: object, ctx: RouteContext
        ) -> Endpoint:
            return candidates[self.index]

    assert "test-pick-index" in known_strategies()
    assert get_strategy("test-pick-index") is PickIndex
    default = make_strategy("test-pick-index")
    assert isinstance(default, PickIndex)
    assert default.index == 0
    built = make_strategy({"name": "test-pick-index", "index": 2})
    assert isinstance(built, PickIndex)
    assert built.index == 2
    tracker = Tracker(ManualClock().monotonic)
    assert built.choose(eps("a", "b", "c"), tracker, CTX).name == "c"
    # "algorithm" is accepted as an alias of "name"; an instance passes through.
    assert isinstance(make_strategy({"algorithm": "test-pick-index"}), PickIndex)
    assert make_strategy(built) is built


def test_bad_params_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="bad parameters for strategy 'round_robin'"):
        make_strategy({"name": "round_robin", "nope": 1})
    with pytest.raises(ConfigError, match="needs 'name'"):
        make_strategy({"weights": {"a": 1}})
    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy({"name": "does-not-exist"})
    with pytest.raises(ConfigError):
        make_strategy(42)
    with pytest.raises(ConfigError, match="weight for 'a'"):
        make_strategy({"name": "weighted", "weights": {"a": -1}})
    with pytest.raises(ConfigError):
        make_strategy({"name": "weighted", "weights": {"a": float("nan")}})
    with pytest.raises(ConfigError):
        make_strategy({"name": "intelligent", "factors": {"speed": 1}})


def test_default_strategy_is_adaptive() -> None:
    assert isinstance(make_strategy(None), Adaptive)


# -- round robin -------------------------------------------------------------------------------


def test_round_robin_order() -> None:
    rr = RoundRobin()
    tracker = Tracker(ManualClock().monotonic)
    cands = eps("a", "b", "c")
    assert [rr.choose(cands, tracker, CTX).name for _ in range(7)] == list("abcabca")


def test_round_robin_exact_under_threads(tracker: Tracker) -> None:
    rr = RoundRobin()
    cands = eps("a", "b", "c")
    threads, per_thread = 16, 1_002  # 16 x 1,002 = 16,032 = 3 x 5,344
    counts: list[Counter[str]] = []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        local = Counter(rr.choose(cands, tracker, CTX).name for _ in range(per_thread))
        with lock:
            counts.append(local)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=30)
    finally:
        sys.setswitchinterval(old)
    total = sum(counts, Counter())
    assert total == {"a": 5_344, "b": 5_344, "c": 5_344}


# -- weighted ----------------------------------------------------------------------------------


def shares(counter: Counter[str]) -> dict[str, float]:
    n = sum(counter.values())
    return {k: v / n for k, v in counter.items()}


def test_weighted_by_deployment_name(tracker: Tracker) -> None:
    w = Weighted({"a": 0.4, "b": 0.3, "c": 0.3})
    cands = eps("a", "b", "c")
    assert picks(w, cands, tracker, 10) == {"a": 4, "b": 3, "c": 3}
    got = shares(picks(w, cands, tracker, 10_000))
    assert got == pytest.approx({"a": 0.4, "b": 0.3, "c": 0.3}, abs=0.01)


def test_weighted_by_model_name(tracker: Tracker) -> None:
    w = Weighted({"gpt-4": 0.4, "claude-3.5": 0.3, "gemini-pro": 0.3})
    cands = [ep("d1", model="gpt-4"), ep("d2", model="claude-3.5"), ep("d3", model="gemini-pro")]
    got = shares(picks(w, cands, tracker, 10_000))
    assert got == pytest.approx({"d1": 0.4, "d2": 0.3, "d3": 0.3}, abs=0.01)


def test_weighted_by_provider(tracker: Tracker) -> None:
    w = Weighted({"openai": 0.4, "anthropic": 0.3, "gemini": 0.3})
    cands = [
        ep("d1", provider="openai"),
        ep("d2", provider="anthropic"),
        ep("d3", provider="gemini"),
    ]
    got = shares(picks(w, cands, tracker, 10_000))
    assert got == pytest.approx({"d1": 0.4, "d2": 0.3, "d3": 0.3}, abs=0.01)


def test_weighted_most_specific_key_wins(tracker: Tracker) -> None:
    # The deployment name beats the provider; unmatched deployments use Deployment(weight=...).
    w = Weighted({"openai": 1.0, "d1": 3.0})
    cands = [
        ep("d1", provider="openai"),
        ep("d2", provider="openai"),
        ep("d3", provider="other", weight=4.0),
    ]
    assert w.weight(cands[0]) == 3.0
    assert w.weight(cands[1]) == 1.0
    assert w.weight(cands[2]) == 4.0
    assert picks(w, cands, tracker, 800) == {"d1": 300, "d2": 100, "d3": 400}


def test_weighted_smooth_sequence_5_1_1(tracker: Tracker) -> None:
    w = Weighted({"a": 5, "b": 1, "c": 1})
    cands = eps("a", "b", "c")
    seq = "".join(w.choose(cands, tracker, CTX).name for _ in range(21))
    assert seq == "aabacaa" * 3  # nginx smooth weighted round robin
    assert "aaa" not in seq[:7]  # within a cycle, never more than two a's in a row
    assert "aaaaa" not in seq  # never five in a row, even across cycles


def test_weighted_seeded_random_is_reproducible(tracker: Tracker) -> None:
    cands = eps("a", "b", "c")
    weights = {"a": 0.4, "b": 0.3, "c": 0.3}

    def run(seed: int) -> list[str]:
        w = Weighted(weights, seed=seed)
        return [w.choose(cands, tracker, CTX).name for _ in range(10_000)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    got = shares(Counter(first))
    # Random in proportion (not exact like the smooth mode): 10,000 draws, within 2 %.
    assert got == pytest.approx(weights, abs=0.02)
    assert "aaaa" in "".join(first)  # really random, not the smooth order


def test_weighted_excluded_candidate_share_goes_to_others(tracker: Tracker) -> None:
    w = Weighted({"a": 0.4, "b": 0.3, "c": 0.3})
    a, b, c = eps("a", "b", "c")
    picks(w, [a, b, c], tracker, 5)  # some history with all three
    got = shares(picks(w, [a, b], tracker, 7_000))
    assert got == pytest.approx({"a": 4 / 7, "b": 3 / 7}, abs=0.01)
    assert "c" not in got
    # c comes back and gets its share again.
    got = shares(picks(w, [a, b, c], tracker, 10_000))
    assert got == pytest.approx({"a": 0.4, "b": 0.3, "c": 0.3}, abs=0.01)


def test_weighted_seeded_excluded_candidate(tracker: Tracker) -> None:
    w = Weighted({"a": 0.4, "b": 0.3, "c": 0.3}, seed=3)
    a, b, _ = eps("a", "b", "c")
    got = shares(picks(w, [a, b], tracker, 10_000))
    assert got == pytest.approx({"a": 4 / 7, "b": 3 / 7}, abs=0.02)


def test_weighted_zero_weights(tracker: Tracker) -> None:
    cands = eps("a", "b", "c")
    # One zero weight: never chosen (smooth and random modes).
    for w in (Weighted({"a": 1, "b": 0, "c": 1}), Weighted({"a": 1, "b": 0, "c": 1}, seed=1)):
        got = picks(w, cands, tracker, 1_000)
        assert "b" not in got
        assert got["a"] == pytest.approx(500, abs=60)
    # A zero weight last in the list is never chosen either.
    w = Weighted({"a": 1, "b": 1, "c": 0}, seed=2)
    assert "c" not in picks(w, cands, tracker, 2_000)
    # All zero: an even split instead of nothing.
    w = Weighted({"a": 0, "b": 0, "c": 0})
    assert picks(w, cands, tracker, 3_000) == {"a": 1_000, "b": 1_000, "c": 1_000}


def test_weighted_random_never_picks_zero_weight_on_float_residue(tracker: Tracker) -> None:
    class AlmostOne:
        def random(self) -> float:
            return 1.0 - 2.0**-53

    w = Weighted({"a": 0.1, "b": 0.1, "c": 0.6, "d": 0.0}, seed=0)
    w._rng = AlmostOne()  # type: ignore[assignment]
    # In floats the highest draw survives every subtraction (0.8 - 0.1 - 0.1 - 0.6 == 0.0):
    # the zero-weight candidate at the end must still not be chosen.
    assert w.choose(eps("a", "b", "c", "d"), tracker, CTX).name == "c"


def test_weighted_under_threads_is_exact(tracker: Tracker) -> None:
    w = Weighted({"a": 2, "b": 1, "c": 1})
    cands = eps("a", "b", "c")
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        local = [w.choose(cands, tracker, CTX).name for _ in range(1_000)]
        with lock:
            results.extend(local)

    pool = [threading.Thread(target=work) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert Counter(results) == {"a": 4_000, "b": 2_000, "c": 2_000}


# -- least connections -------------------------------------------------------------------------


def test_least_connections_picks_min_in_flight(tracker: Tracker) -> None:
    lc = LeastConnections(seed=1)
    cands = eps("a", "b", "c")
    for _ in range(3):
        tracker.started("a")
    tracker.started("c")
    assert picks(lc, cands, tracker, 50) == {"b": 50}
    tracker.started("b")
    tracker.started("b")
    assert picks(lc, cands, tracker, 50) == {"c": 50}
    tracker.record(outcome("a"))  # a: 2 in flight, b: 2, c: 1
    assert lc.choose(cands, tracker, CTX).name == "c"


def test_least_connections_ties_spread(tracker: Tracker) -> None:
    lc = LeastConnections()
    cands = eps("a", "b", "c")
    tracker.started("c")
    got = picks(lc, cands, tracker, 1_000)
    assert set(got) == {"a", "b"}
    assert got["a"] > 300
    assert got["b"] > 300


# -- response time -----------------------------------------------------------------------------


def test_response_time_picks_lowest_latency(tracker: Tracker) -> None:
    rt = ResponseTime(seed=1)
    cands = eps("a", "b", "c")
    for name, latency in (("a", 0.5), ("b", 0.2), ("c", 1.0)):
        record(tracker, name, latency=latency)
    assert picks(rt, cands, tracker, 20) == {"b": 20}


def test_response_time_spike_then_decay(tracker: Tracker, clock: ManualClock) -> None:
    rt = ResponseTime(seed=1)
    cands = eps("a", "b")
    record(tracker, "a", latency=0.5)
    record(tracker, "b", latency=0.2)
    assert rt.choose(cands, tracker, CTX).name == "b"
    record(tracker, "b", latency=5.0)  # one slow answer: counts at once
    assert tracker.get("b").latency_estimate(clock.monotonic()) == 5.0
    assert rt.choose(cands, tracker, CTX).name == "a"
    # Fast answers keep arriving on both; b's estimate decays back below a's.
    estimates: list[float] = []
    for _ in range(60):
        clock.advance(1.0)
        record(tracker, "a", latency=0.5)
        record(tracker, "b", latency=0.2)
        estimate = tracker.get("b").latency_estimate(clock.monotonic())
        assert estimate is not None
        estimates.append(estimate)
    assert all(x > y for x, y in itertools.pairwise(estimates))  # monotone decay
    assert estimates[-1] == pytest.approx(0.2, abs=0.02)
    assert rt.choose(cands, tracker, CTX).name == "b"


def test_response_time_idle_decay_gives_slow_deployment_another_chance(
    tracker: Tracker, clock: ManualClock
) -> None:
    rt = ResponseTime(seed=1)
    cands = eps("fast", "slow")
    record(tracker, "slow", latency=5.0)
    for _ in range(20):  # fast keeps serving; slow is left alone
        clock.advance(1.0)
        record(tracker, "fast", latency=0.5)
        assert rt.choose(cands, tracker, CTX).name == "fast"
    # 5 s x exp(-t / 10 s) falls below 0.5 s after ~23 s idle: slow is tried again.
    chosen = []
    for _ in range(10):
        clock.advance(1.0)
        record(tracker, "fast", latency=0.5)
        chosen.append(rt.choose(cands, tracker, CTX).name)
    assert chosen[:2] == ["fast", "fast"]
    assert chosen[-1] == "slow"


def test_response_time_probes_unknown_one_at_a_time(tracker: Tracker) -> None:
    rt = ResponseTime(seed=1)
    cands = eps("a", "b", "new")
    record(tracker, "a", latency=0.5)
    record(tracker, "b", latency=0.2)
    assert rt.choose(cands, tracker, CTX).name == "new"
    tracker.started("new")  # the probe is in flight
    assert picks(rt, cands, tracker, 20) == {"b": 20}
    tracker.record(outcome("new", latency=0.1))  # the probe answered, fast
    assert rt.choose(cands, tracker, CTX).name == "new"


def test_response_time_streams_use_ttft(tracker: Tracker) -> None:
    rt = ResponseTime(seed=1)
    cands = eps("a", "b")
    # a starts fast but finishes late; b starts slower and finishes sooner.
    record(tracker, "a", latency=3.0, ttft=0.1, stream=True)
    record(tracker, "b", latency=1.0, ttft=0.5, stream=True)
    record(tracker, "a", latency=3.0)
    record(tracker, "b", latency=1.0)
    assert rt.choose(cands, tracker, RouteContext(stream=True)).name == "a"
    assert rt.choose(cands, tracker, RouteContext(stream=False)).name == "b"


def test_response_time_long_generations_prefer_low_tpot(tracker: Tracker) -> None:
    rt = ResponseTime(seed=1)
    cands = eps("quick-start", "fast-tokens")
    # quick-start: 1 s for 100 tokens (10 ms/token); fast-tokens: 2 s for 1,000 (2 ms/token).
    record(tracker, "quick-start", latency=1.0, usage=Usage(input_tokens=10, output_tokens=100))
    record(tracker, "fast-tokens", latency=2.0, usage=Usage(input_tokens=10, output_tokens=1000))
    short = RouteContext(output_tokens=256)
    long = RouteContext(output_tokens=1024)
    assert rt.choose(cands, tracker, short).name == "quick-start"
    assert rt.choose(cands, tracker, long).name == "fast-tokens"
    assert rt.choose(cands, tracker, RouteContext(output_tokens=512)).name == "fast-tokens"


# -- intelligent -------------------------------------------------------------------------------


def spec(
    id_: str,
    *,
    price_in: str,
    price_out: str,
    quality: int,
    context: int = 128_000,
    caps: frozenset[str] = frozenset({"chat"}),
) -> ModelSpec:
    return ModelSpec(
        id=id_,
        provider="openai",
        context_window=context,
        max_output_tokens=4096,
        pricing=Pricing(input=Decimal(price_in), output=Decimal(price_out)),
        capabilities=caps,
        quality=quality,
    )


@pytest.fixture
def trio_endpoints(tracker: Tracker) -> list[Endpoint]:
    cheap = ep(
        "cheap",
        model="cheap",
        spec=spec("cheap", price_in="0.1", price_out="0.4", quality=40, context=16_000),
    )
    fast = ep(
        "fast",
        model="fast",
        spec=spec(
            "fast", price_in="1", price_out="4", quality=60, caps=frozenset({"chat", "tools"})
        ),
    )
    smart = ep(
        "smart",
        model="smart",
        spec=spec(
            "smart",
            price_in="10",
            price_out="40",
            quality=95,
            caps=frozenset({"chat", "tools", "vision"}),
        ),
    )
    record(tracker, "cheap", latency=1.0)
    record(tracker, "fast", latency=0.2)
    record(tracker, "smart", latency=2.0)
    return [cheap, fast, smart]


CTX_1K = RouteContext(input_tokens=1000, output_tokens=500)


@pytest.mark.parametrize(
    ("factors", "expected"),
    [
        ({"cost": 1}, "cheap"),
        ({"performance": 1}, "fast"),
        ({"quality": 1}, "smart"),
        ({"cost": 0.8, "quality": 0.2}, "cheap"),
        ({"cost": 0.1, "quality": 0.9}, "smart"),
        ({"cost": 0.3, "performance": 0.4, "quality": 0.3}, "fast"),
    ],
)
def test_intelligent_factors_change_the_choice(
    tracker: Tracker, trio_endpoints: list[Endpoint], factors: dict[str, float], expected: str
) -> None:
    s = Intelligent(factors=factors, seed=1)
    assert s.choose(trio_endpoints, tracker, CTX_1K).name == expected
    scores = dict(
        zip(
            [e.name for e in trio_endpoints], s.scores(trio_endpoints, tracker, CTX_1K), strict=True
        )
    )
    assert max(scores, key=scores.__getitem__) == expected


def test_intelligent_estimated_cost(trio_endpoints: list[Endpoint]) -> None:
    # (1000 x 0.1 + 500 x 0.4) / 1e6
    assert estimated_cost(trio_endpoints[0], CTX_1K) == pytest.approx(0.0003)
    assert estimated_cost(ep("nospec"), CTX_1K) is None


def test_intelligent_availability_lowers_the_score(
    tracker: Tracker, trio_endpoints: list[Endpoint]
) -> None:
    s = Intelligent(factors={"performance": 1}, seed=1)
    assert s.choose(trio_endpoints, tracker, CTX_1K).name == "fast"
    for _ in range(5):
        record(tracker, "fast", ok=False, error="ServerError", latency=0.01)
    assert s.choose(trio_endpoints, tracker, CTX_1K).name != "fast"


def test_intelligent_unmeasured_scored_like_fastest(tracker: Tracker) -> None:
    a = ep("a", spec=spec("a", price_in="1", price_out="1", quality=50))
    b = ep("b", spec=spec("b", price_in="1", price_out="1", quality=50))
    record(tracker, "a", latency=1.0)
    s = Intelligent(factors={"performance": 1}, seed=1)
    got = picks(s, [a, b], tracker, 200)
    assert got["b"] > 50  # tied with the fastest: tried, not starved


def test_intelligent_hard_constraints(trio_endpoints: list[Endpoint]) -> None:
    assert Intelligent(require=["tools"]).exclude(trio_endpoints, CTX_1K) == {
        "cheap": "capability: lacks tools"
    }
    reasons = Intelligent(require=["tools", "vision"]).exclude(trio_endpoints, CTX_1K)
    assert set(reasons) == {"cheap", "fast"}
    assert reasons["fast"] == "capability: lacks vision"
    assert "tools" in reasons["cheap"] and "vision" in reasons["cheap"]

    reasons = Intelligent(min_context=100_000).exclude(trio_endpoints, CTX_1K)
    assert reasons == {"cheap": "context window 16000 < 100000"}

    # The request itself must fit (prompt + output), even without min_context.
    big = RouteContext(input_tokens=15_000, output_tokens=2_000)
    assert set(Intelligent().exclude(trio_endpoints, big)) == {"cheap"}
    assert "tokens needed" in Intelligent().exclude(trio_endpoints, big)["cheap"]

    reasons = Intelligent(max_cost_per_request=0.005).exclude(trio_endpoints, CTX_1K)
    assert list(reasons) == ["smart"]  # 0.01 + 0.02 = $0.03 > $0.005
    assert reasons["smart"].startswith("estimated cost $0.03000")

    reasons = Intelligent(min_quality=70).exclude(trio_endpoints, CTX_1K)
    assert reasons == {"cheap": "quality 40 < 70", "fast": "quality 60 < 70"}

    # An endpoint the catalog does not know cannot prove it meets a constraint.
    unknown = ep("unknown")
    reasons = Intelligent(require=["tools"]).exclude([*trio_endpoints, unknown], CTX_1K)
    assert reasons["unknown"] == "not in the model catalog (capabilities unknown)"
    # ... but without constraints it is kept.
    assert Intelligent().exclude([unknown], CTX_1K) == {}
    assert Intelligent().exclude(trio_endpoints, CTX_1K) == {}


def test_intelligent_constraints_through_make_strategy(trio_endpoints: list[Endpoint]) -> None:
    s = make_strategy(
        {"name": "intelligent", "require": ["tools"], "min_quality": 70, "factors": {"cost": 1}}
    )
    assert isinstance(s, Intelligent)
    assert set(s.exclude(trio_endpoints, CTX_1K)) == {"cheap", "fast"}


@pytest.mark.parametrize(
    "factors",
    [{"speed": 1}, {"cost": -1, "quality": 1}, {"cost": 0, "quality": 0}, {}],
)
def test_intelligent_bad_factors(factors: dict[str, float]) -> None:
    if not factors:  # an empty dict means "the defaults"
        assert Intelligent(factors=factors).factors["performance"] == 0.4
        return
    with pytest.raises(ConfigError):
        Intelligent(factors=factors)
    with pytest.raises(ConfigError):
        make_strategy({"name": "intelligent", "factors": factors})


def test_intelligent_factor_of_wrong_type_is_config_error() -> None:
    with pytest.raises(ConfigError):
        make_strategy({"name": "intelligent", "factors": {"cost": "high"}})


# -- adaptive ----------------------------------------------------------------------------------


def simulate(
    strategy: Strategy,
    cands: Sequence[Endpoint],
    tracker: Tracker,
    clock: ManualClock,
    *,
    latency: Callable[[str], float],
    fails: Callable[[str], bool] = lambda name: False,
    ticks: int = 2_000,
    tick: float = 0.01,
    per_tick: int = 1,
) -> Iterator[str]:
    """A closed-loop load: ``per_tick`` new requests every ``tick`` seconds; each finishes after
    ``latency(deployment)`` (so in-flight counts are realistic). Yields each choice."""
    pending: list[tuple[float, str]] = []
    for _ in range(ticks):
        clock.advance(tick)
        now = clock.monotonic()
        still = []
        for done_at, name in pending:
            if done_at <= now:
                failed = fails(name)
                tracker.record(
                    outcome(
                        name,
                        ok=not failed,
                        latency=latency(name),
                        error="ServerError" if failed else None,
                    )
                )
            else:
                still.append((done_at, name))
        pending = still
        for _ in range(per_tick):
            name = strategy.choose(cands, tracker, CTX).name
            tracker.started(name)
            pending.append((now + latency(name), name))
            yield name


def test_adaptive_does_not_herd(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=1)
    cands = eps("a", "b")
    seen_in_flight = []
    got: Counter[str] = Counter()
    for name in simulate(s, cands, tracker, clock, latency=lambda n: 0.1, per_tick=2):
        got[name] += 1
        seen_in_flight.append(tracker.get("a").in_flight + tracker.get("b").in_flight)
    assert max(seen_in_flight) >= 15  # really concurrent
    total = sum(got.values())
    assert got["a"] / total >= 0.35
    assert got["b"] / total >= 0.35


def test_adaptive_does_not_herd_with_three(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=2)
    cands = eps("a", "b", "c")
    got = Counter(simulate(s, cands, tracker, clock, latency=lambda n: 0.1, per_tick=3))
    total = sum(got.values())
    for name in "abc":
        assert got[name] / total >= 0.25


def test_adaptive_fail_fast_deployment_is_avoided(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=3)
    cands = eps("good", "bad")
    # Both served well for a while ...
    for _ in range(20):
        clock.advance(0.05)
        record(tracker, "good", latency=0.2)
        record(tracker, "bad", latency=0.2)
    # ... then "bad" starts answering 500 in 2 ms.
    lat = {"good": 0.2, "bad": 0.002}
    choices = list(
        simulate(
            s,
            cands,
            tracker,
            clock,
            latency=lat.__getitem__,
            fails=lambda n: n == "bad",
            ticks=3_000,
        )
    )
    failures_seen = tracker.get("bad").failures
    assert failures_seen >= 3
    after_warmup = Counter(choices[200:])
    assert after_warmup["bad"] / sum(after_warmup.values()) < 0.10


def test_adaptive_fail_fast_never_measured(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=4)
    cands = eps("good", "bad")
    lat = {"good": 0.2, "bad": 0.002}
    choices = list(
        simulate(
            s,
            cands,
            tracker,
            clock,
            latency=lat.__getitem__,
            fails=lambda n: n == "bad",
            ticks=3_000,
        )
    )
    after_warmup = Counter(choices[200:])
    assert after_warmup["bad"] / sum(after_warmup.values()) < 0.10


def test_adaptive_failed_deployment_is_tried_again_later(
    tracker: Tracker, clock: ManualClock
) -> None:
    s = Adaptive(seed=10)
    cands = eps("good", "bad")
    record(tracker, "good", latency=0.2)
    for _ in range(10):  # bad failed ten times in a row (never answered)
        record(tracker, "bad", ok=False, error="ServerError", latency=0.002)
    tracker.started("good")
    tracker.started("good")  # good is busy (two in flight), as under real traffic
    assert picks(s, cands, tracker, 50) == {"good": 50}
    # Good keeps serving; bad gets no traffic, so no sample can lower its error rate. Its
    # failures are forgiven over time, and it is probed again instead of starved forever.
    probed_at = None
    for second in range(1, 121):
        clock.advance(1.0)
        tracker.started("good")
        tracker.record(outcome("good", latency=0.2))
        if s.choose(cands, tracker, CTX).name == "bad":
            probed_at = second
            break
    assert probed_at is not None
    assert probed_at > 10


def test_adaptive_retry_after_penalty(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=5)
    cands = eps("slow", "limited")
    record(tracker, "slow", latency=0.5)
    record(tracker, "limited", latency=0.01)
    assert s.choose(cands, tracker, CTX).name == "limited"
    record(tracker, "limited", ok=False, error="RateLimited", retry_after=5.0, latency=0.01)
    assert tracker.get("limited").penalty_until == 5.0
    for _ in range(49):
        clock.advance(0.1)
        assert picks(s, cands, tracker, 10) == {"slow": 10}
    clock.advance(0.11)  # past the Retry-After
    assert picks(s, cands, tracker, 10)["limited"] == 10


def test_adaptive_penalized_everywhere_still_chooses(tracker: Tracker) -> None:
    s = Adaptive(seed=6)
    cands = eps("a", "b")
    for name in "ab":
        record(tracker, name, ok=False, error="RateLimited", retry_after=5.0)
    assert s.choose(cands, tracker, CTX).name in {"a", "b"}


def test_adaptive_slow_deployment_gets_few_picks(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=7)
    cands = eps("fast", "slow")
    lat = {"fast": 0.05, "slow": 0.5}
    got = Counter(simulate(s, cands, tracker, clock, latency=lat.__getitem__))
    assert got["slow"] >= 1  # probed now and then (idle decay), not starved forever
    assert got["slow"] / sum(got.values()) < 0.10


def test_adaptive_probes_unknown(tracker: Tracker) -> None:
    s = Adaptive(seed=8)
    cands = eps("a", "b", "new")
    record(tracker, "a", latency=0.2)
    record(tracker, "b", latency=0.4)
    got = picks(s, cands, tracker, 300)
    assert got["new"] > 30
    # Nothing measured anywhere: every deployment is tried.
    fresh = Adaptive(seed=9)
    assert set(picks(fresh, eps("x", "y", "z"), tracker, 100)) == {"x", "y", "z"}


def test_adaptive_single_candidate(tracker: Tracker) -> None:
    only = eps("only")
    assert Adaptive().choose(only, tracker, CTX).name == "only"


def test_adaptive_seed_reproducible(tracker: Tracker) -> None:
    cands = eps("a", "b", "c", "d")
    a1, a2 = Adaptive(seed=11), Adaptive(seed=11)
    first = [a1.choose(cands, tracker, CTX).name for _ in range(200)]
    assert first == [a2.choose(cands, tracker, CTX).name for _ in range(200)]


def refuse_at(tracker: Tracker, name: str, in_flight: int) -> int:
    """``in_flight`` attempts sent to ``name``, then one more that a 429 with a 1 s hold
    refuses; returns the load it was sent at (``in_flight`` stay in flight)."""
    for _ in range(in_flight):
        tracker.started(name)
    load = tracker.started(name)
    tracker.record(
        outcome(name, ok=False, error="RateLimited", retry_after=1.0, latency=0.01, sent_load=load)
    )
    return load


def test_the_refused_load_is_the_load_the_refused_request_was_sent_at(
    tracker: Tracker, clock: ManualClock
) -> None:
    # A 429 at 3 in flight; two answers land before the next choice reads the hold. The
    # ceiling is the 3 the request was sent at, not the 1 left in flight (which held a
    # deployment with free slots back and sent the request to a full one: 360 avoidable
    # 429s of 900 in the simulator's bursty_90).
    s = Adaptive(seed=12)
    cands = eps("limited", "other")
    record(tracker, "limited", latency=0.1)
    record(tracker, "other", latency=0.3)
    assert refuse_at(tracker, "limited", 3) == 3
    tracker.record(outcome("limited", latency=0.1))
    tracker.record(outcome("limited", latency=0.1))
    assert s.choose(cands, tracker, CTX).name == "other"  # held
    clock.advance(1.5)  # past the hold, 1 in flight: below the 3 it refused
    assert s.choose(cands, tracker, CTX).name == "limited"
    tracker.started("limited")
    tracker.started("limited")  # 3 in flight: at its ceiling
    assert picks(s, cands, tracker, 10) == {"other": 10}


def test_adaptive_keeps_the_last_slot_below_a_learned_ceiling(
    tracker: Tracker, clock: ManualClock
) -> None:
    # One below the load a 429 refused, the last free slot costs double: a deployment 1.5x
    # slower with room gets the request, so the next arrival does not find "limited" full.
    s = Adaptive(seed=12)
    cands = eps("limited", "other")
    record(tracker, "limited", latency=0.1)
    record(tracker, "other", latency=0.15)
    refuse_at(tracker, "limited", 4)
    assert s.choose(cands, tracker, CTX).name == "other"  # held (4 in flight, refused at 4)
    clock.advance(20.0)  # the hold is over, the 429 forgiven; 4 in flight: at the ceiling
    assert s.choose(cands, tracker, CTX).name == "other"
    tracker.record(outcome("limited", latency=0.1))  # 3 in flight: its last free slot
    assert picks(s, cands, tracker, 10) == {"other": 10}
    tracker.record(outcome("limited", latency=0.1))  # 2 in flight: two slots free
    assert s.choose(cands, tracker, CTX).name == "limited"


def test_adaptive_avoids_the_load_a_429_refused(tracker: Tracker, clock: ManualClock) -> None:
    s = Adaptive(seed=12)
    cands = eps("limited", "other")
    record(tracker, "limited", latency=0.1)
    record(tracker, "other", latency=0.3)
    for _ in range(3):  # three requests still in flight on "limited" when it answers 429
        tracker.started("limited")
    record(tracker, "limited", ok=False, error="RateLimited", retry_after=1.0, latency=0.01)
    assert s.choose(cands, tracker, CTX).name == "other"  # held: the ceiling is learned (3)
    clock.advance(1.5)  # past the hold, still 3 in flight: at the ceiling
    assert picks(s, cands, tracker, 10) == {"other": 10}
    tracker.record(outcome("limited", latency=0.1))  # two finished: below the ceiling again
    tracker.record(outcome("limited", latency=0.1))  # (with one slot left it costs double)
    assert s.choose(cands, tracker, CTX).name == "limited"
    tracker.started("limited")
    clock.advance(61.0)  # a minute after the hold the ceiling is forgotten
    assert s.choose(cands, tracker, CTX).name == "limited"


def test_adaptive_large_fleet_keeps_the_best_it_found(tracker: Tracker) -> None:
    names = [f"d{i:02}" for i in range(50)]
    for i, name in enumerate(names):
        record(tracker, name, latency=0.1 if i == 17 else 1.0)
    with_memory, without = Adaptive(seed=13), Adaptive(seed=13, remember=False)
    cands = eps(*names)
    assert picks(with_memory, cands, tracker, 400)["d17"] > 300
    assert picks(without, cands, tracker, 400)["d17"] < 40  # two random choices: ~2/50


def test_adaptive_slow_deployment_is_retried_within_minutes(
    tracker: Tracker, clock: ManualClock
) -> None:
    s = Adaptive(seed=14)
    cands = eps("fast", "slow")
    record(tracker, "fast", latency=0.1)
    record(tracker, "slow", latency=0.5)
    seen = []
    for _ in range(300):  # a request a second, each answered at once
        clock.advance(1.0)
        name = s.choose(cands, tracker, CTX).name
        record(tracker, name, latency=0.1 if name == "fast" else 0.5)
        seen.append(name)
    slow = [i for i, n in enumerate(seen) if n == "slow"]
    assert slow and slow[0] > 30  # not after the peak EWMA's ~20 s of idle decay
    assert len(slow) < 15
