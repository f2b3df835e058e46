"""The strategy simulator: deterministic, and adaptive routing beats round robin on a bad fleet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest

from multimodel.providers.base import Endpoint
from multimodel.simulation import ORACLE, SCENARIOS, Scenario, compare, simulate
from multimodel.strategies.base import RouteContext, make_strategy
from multimodel.tracking.stats import StatsView


def test_same_seed_same_result() -> None:
    scenario = Scenario.default(seed=11, requests=600)
    assert compare(scenario, ["adaptive", "least_connections"]) == compare(
        scenario, ["adaptive", "least_connections"]
    )


def test_another_seed_changes_the_traffic() -> None:
    a = simulate(Scenario.default(seed=1, requests=600), "round_robin")
    b = simulate(Scenario.default(seed=2, requests=600), "round_robin")
    assert a.p50 != b.p50


def test_adaptive_beats_round_robin_on_a_slow_and_failing_fleet() -> None:
    # fast, slow (2 s median), failing (30 % 500s) and rate-limited deployments; bursty load
    scenario = Scenario.default(seed=3, requests=1500)
    rr = simulate(scenario, "round_robin")
    adaptive = simulate(scenario, "adaptive")
    assert adaptive.p95 < rr.p95
    assert adaptive.error_rate < rr.error_rate
    assert adaptive.share["slow"] < rr.share["slow"]
    assert rr.requests == adaptive.requests == 1500


def test_rate_limited_deployment_answers_429_above_its_concurrency() -> None:
    scenario = Scenario.from_dict(
        {
            "deployments": [
                {
                    "name": "tiny",
                    "latency": {"median": 1.0},
                    "rate_limit": {"max_concurrency": 1, "retry_after": 2.0},
                }
            ],
            "load": {"requests": 200, "rate": 20.0, "burst_every": 0},
            "max_attempts": 1,
        }
    )
    result = simulate(scenario, "round_robin")
    assert result.errors.get("tiny:429", 0) > 0
    assert result.succeeded + result.errors["tiny:429"] == result.requests


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        Scenario.from_dict({"deployments": [{"name": "a", "latnecy": {}}]})


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_named_scenarios_are_deterministic_for_a_seed(name: str) -> None:
    scenario = Scenario.named(name, seed=5, requests=300)
    first = compare(scenario, [ORACLE, "adaptive", "round_robin"])
    assert first == compare(Scenario.named(name, seed=5, requests=300), [ORACLE, "adaptive"])[
        :2
    ] + [simulate(scenario, "round_robin")]
    assert first[0].strategy == ORACLE
    assert first[0].succeeded > 0


def test_the_oracle_knows_the_slow_deployment_and_the_brownout() -> None:
    slow = simulate(Scenario.named("one_slow", seed=1, requests=600), ORACLE)
    assert slow.share["slow"] < 0.02
    brownout = simulate(Scenario.named("brownout", seed=1, requests=2000), ORACLE)
    rr = simulate(Scenario.named("brownout", seed=1, requests=2000), "round_robin")
    assert brownout.p95 < rr.p95


def test_scripted_failures_and_phases() -> None:
    scenario = Scenario.named("sequential_failure", seed=0, requests=600)
    result = simulate(scenario, "adaptive")
    assert result.errors == {"c:500": 1}
    assert result.share["c"] > 0.15  # the failed deployment is not starved
    with pytest.raises(ValueError, match="unknown scenario"):
        Scenario.named("nope")


class _LengthSpy:
    """Routes round robin and records the length each request was routed with."""

    def __init__(self) -> None:
        self.inner = make_strategy({"name": "round_robin"})
        self.lengths: Counter[int] = Counter()

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        self.lengths[ctx.output_tokens] += 1
        return self.inner.choose(candidates, stats, ctx)


def test_each_request_is_routed_with_its_own_length() -> None:
    spy = _LengthSpy()
    result = simulate(Scenario.named("mixed_lengths", seed=0, requests=2000), spy)
    assert set(spy.lengths) == {50, 1500}
    assert sum(spy.lengths.values()) == result.attempts
    assert 0.25 < spy.lengths[1500] / result.attempts < 0.35  # the seeded 70 / 30 mix


def test_a_single_length_mix_is_the_plain_load() -> None:
    # The lengths have their own random stream: the arrivals and the latencies do not move.
    def scenario(mix: list[tuple[float, int]]) -> Scenario:
        return Scenario.from_dict(
            {
                "deployments": [
                    {"name": "a", "latency": {"median": 0.2, "per_token": 0.004}},
                    {"name": "b", "latency": {"median": 0.6, "per_token": 0.0015}},
                ],
                "load": {"requests": 400, "output_tokens": 300, "output_mix": mix},
            }
        )

    plain = compare(scenario([]), [ORACLE, "adaptive"])
    assert compare(scenario([(1.0, 300)]), [ORACLE, "adaptive"]) == plain
    assert compare(scenario([(1.0, 301)]), [ORACLE, "adaptive"]) != plain
    with pytest.raises(ValueError, match="output_mix"):
        scenario([(0.0, 300)])


def test_the_oracle_sends_long_answers_to_the_fast_per_token_deployment() -> None:
    # snappy: low overhead, slow per token; steady: the other way round.
    def share(mix: list[tuple[float, int]]) -> dict[str, float]:
        base = Scenario.named("mixed_lengths", seed=2, requests=1000)
        load = replace(base.load, output_mix=tuple(mix))
        return simulate(replace(base, load=load), ORACLE).share

    assert share([(1.0, 1500)])["steady"] > 0.95
    assert share([(1.0, 50)])["snappy"] > 0.95
    mixed = simulate(Scenario.named("mixed_lengths", seed=2, requests=3000), ORACLE)
    assert 0.65 < mixed.share["snappy"] < 0.75  # the short ones, about 70 %
    rr = simulate(Scenario.named("mixed_lengths", seed=2, requests=3000), "round_robin")
    assert mixed.p95 * 1.5 < rr.p95


def test_the_oracle_counts_a_failure_as_its_attempt_and_one_retry() -> None:
    from multimodel.simulation._fleet import SimFleet
    from multimodel.simulation._profiles import (
        DeploymentProfile,
        FailureProfile,
        LatencyProfile,
        LoadPattern,
    )

    steady = DeploymentProfile("a", latency=LatencyProfile(median=0.5, sigma=0.0))
    flaky = DeploymentProfile(
        "b",
        latency=LatencyProfile(median=0.4, sigma=0.0),
        failure=FailureProfile(rate=0.3, latency_factor=0.1),
    )
    fleet = SimFleet([steady, flaky], seed=0, load=LoadPattern())
    assert fleet.expected(steady, 0.0, 100) == pytest.approx(0.5)
    # 70 % answered in 0.4 s; 30 % fail in 0.04 s and are answered by a retry of 0.4 s
    assert fleet.expected(flaky, 0.0, 100) == pytest.approx(0.7 * 0.4 + 0.3 * (0.04 + 0.4))
    assert fleet.expected(flaky, 0.0, 100) < fleet.expected(steady, 0.0, 100)
