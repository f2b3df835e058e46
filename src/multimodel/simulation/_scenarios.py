"""The named scenarios: the fleets the strategies are measured on against the oracle
(``Scenario.named("brownout")``, ``multimodel simulate --list``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._profiles import Scenario

__all__ = ["SCENARIOS", "SCENARIO_NOTES"]


def _fleet(*deployments: dict[str, Any], seed: int, **load: Any) -> Scenario:
    return Scenario.from_dict({"seed": seed, "deployments": list(deployments), "load": load})


def _d(name: str, median: float = 0.5, **kw: Any) -> dict[str, Any]:
    latency = {"median": median, "sigma": kw.pop("sigma", 0.3)}
    latency["congestion"] = kw.pop("congestion", 0.02)
    latency["per_token"] = kw.pop("per_token", 0.0)
    return {"name": name, "latency": latency, **kw}


_STEADY = {"burst_every": 0.0}
_PRICE = {"input": 2.5, "output": 10.0}


def _homogeneous(seed: int, n: int) -> Scenario:
    return _fleet(*(_d(x) for x in "abc"), seed=seed, requests=n, rate=8.0, **_STEADY)


def _one_slow(seed: int, n: int) -> Scenario:
    return _fleet(
        _d("a", 0.4), _d("b", 0.4), _d("slow", 2.0), seed=seed, requests=n, rate=8.0, **_STEADY
    )


def _failing(seed: int, n: int) -> Scenario:
    flaky = _d("flaky", 0.4, failure={"rate": 0.3, "status": 500})
    return _fleet(_d("a"), _d("b"), flaky, seed=seed, requests=n, rate=8.0, **_STEADY)


def _bursty(seed: int, n: int) -> Scenario:
    # Capacity: 3 x 6 in flight / ~0.6 s (congested) = ~30 requests/s; the mean load is 90 %
    # of it (22/s, 31/s for 5 s of every 20: bursts above it get 429 + Retry-After).
    limit = {"max_concurrency": 6, "retry_after": 0.5}
    return _fleet(
        *(_d(x, congestion=0.05, rate_limit=limit) for x in "abc"),
        seed=seed,
        requests=n,
        rate=22.0,
        burst_every=20.0,
        burst_duration=5.0,
        burst_multiplier=1.4,
    )


def _cheap_limited(seed: int, n: int) -> Scenario:
    cheap = _d(
        "cheap",
        0.45,
        rate_limit={"max_concurrency": 3, "retry_after": 1.0},
        price={"input": 0.15, "output": 0.6},
    )
    return _fleet(
        _d("fast", 0.4, price=_PRICE),
        _d("slow", 1.2, price=_PRICE),
        cheap,
        seed=seed,
        requests=n,
        rate=8.0,
    )


def _drift(seed: int, n: int) -> Scenario:
    # a gets slower minute by minute while b gets faster; c stays in the middle.
    steps = [(60.0 * k, 60.0 * (k + 1)) for k in range(6)]
    a = [{"start": s, "end": e, "latency_factor": 0.6 + 0.4 * k} for k, (s, e) in enumerate(steps)]
    b = [{"start": s, "end": e, "latency_factor": 2.6 - 0.4 * k} for k, (s, e) in enumerate(steps)]
    return _fleet(
        _d("a", phases=a), _d("b", phases=b), _d("c", 0.7), seed=seed, requests=n, rate=8.0
    )


def _mixed(seed: int, n: int) -> Scenario:
    # Different models: fast per token but verbose, terse but slow per token, and so on.
    return _fleet(
        _d("verbose", 0.2, per_token=0.002, output_tokens=600),
        _d("terse", 0.3, per_token=0.006, output_tokens=120),
        _d("big", 0.6, per_token=0.01, output_tokens=250),
        _d("small", 0.1, per_token=0.003, output_tokens=200, congestion=0.08),
        seed=seed,
        requests=n,
        rate=10.0,
    )


def _mixed_lengths(seed: int, n: int) -> Scenario:
    # 70 % short answers (50 tokens), 30 % long ones (1,500). "snappy" starts fast but writes
    # slowly, "steady" the other way round: ~0.35 s against ~0.7 s for a short answer, ~6.2 s
    # against ~2.9 s for a long one. Only a router that uses the request's length gets both.
    return _fleet(
        _d("snappy", 0.15, per_token=0.004),
        _d("steady", 0.6, per_token=0.0015),
        seed=seed,
        requests=n,
        rate=8.0,
        output_mix=[(0.7, 50), (0.3, 1500)],
        **_STEADY,
    )


def _brownout(seed: int, n: int) -> Scenario:
    down = [{"start": 60.0, "end": 150.0, "latency_factor": 5.0, "failure_rate": 0.3}]
    return _fleet(
        _d("a", 0.4, phases=down),
        _d("b", 0.5),
        _d("c", 0.6),
        seed=seed,
        requests=n,
        rate=8.0,
        **_STEADY,
    )


def _sequential(seed: int, n: int) -> Scenario:
    return _fleet(
        _d("a"),
        _d("b"),
        _d("c", failure={"script": [500]}),
        seed=seed,
        requests=min(n, 600),
        rate=10.0,
        poisson=False,
    )


def _large(seed: int, n: int) -> Scenario:
    rng = random.Random(f"{seed}:large")
    fleet = []
    for i in range(50):
        failure = {"rate": 0.3, "status": 500} if i % 10 == 9 else {}
        fleet.append(_d(f"d{i:02}", round(rng.uniform(0.3, 1.5), 2), failure=failure))
    return _fleet(*fleet, seed=seed, requests=n, rate=40.0)


SCENARIOS: dict[str, Callable[[int, int], Scenario]] = {
    "homogeneous": _homogeneous,
    "one_slow": _one_slow,
    "failing_30": _failing,
    "bursty_90": _bursty,
    "cheap_rate_limited": _cheap_limited,
    "drift": _drift,
    "mixed_models": _mixed,
    "mixed_lengths": _mixed_lengths,
    "brownout": _brownout,
    "sequential_failure": _sequential,
    "large_fleet": _large,
}
"""The fleets strategies are measured on against the oracle: ``name -> f(seed, requests)``."""

SCENARIO_NOTES: dict[str, str] = {
    "homogeneous": "three equal deployments",
    "one_slow": "two fast deployments and one 5x slower",
    "failing_30": "one of three fails 30 % of attempts (fast 500s)",
    "bursty_90": "three limited to 6 in flight (429 + Retry-After), 90 % of capacity, bursts",
    "cheap_rate_limited": "a fast, a slow and a cheap one limited to 3 in flight",
    "drift": "one slows down minute by minute while another speeds up",
    "mixed_models": "four models with different speeds per token and answer lengths",
    "mixed_lengths": "70 % short, 30 % long answers; low overhead vs. fast per token",
    "brownout": "the fastest gets 5x slower and fails 30 % for 90 s, then recovers",
    "sequential_failure": "one query every 0.1 s over three equal ones, one fails once",
    "large_fleet": "50 deployments from 0.3 to 1.5 s, 5 of them failing 30 %",
}
"""One line about each of :data:`SCENARIOS` (``multimodel simulate --list``)."""
