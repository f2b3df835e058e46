"""Simulate the balancing strategies over a virtual fleet: no sockets, no sleeping.

A discrete-event loop (a heap of events on a virtual clock) sends a bursty stream of requests to
simulated deployments, each with a latency distribution (lognormal), a failure rate, an optional
concurrency limit answered with 429 + ``Retry-After``, and a price. Routing is done by the *real*
strategy objects (:func:`multimodel.strategies.make_strategy`) reading a *real*
:class:`~multimodel.tracking.stats.Tracker` that runs on the virtual clock and is fed
:class:`~multimodel.tracking.outcome.Outcome` records, exactly as the client feeds it. Retries are
emulated simply: a failed attempt is retried at once on another deployment, up to
``Scenario.max_attempts`` attempts. Circuit breakers, back-off and client-side rate limits are
not simulated: the comparison isolates the strategies.

Example::

    from multimodel.simulation import Scenario, simulate

    scenario = Scenario.from_dict({
        "seed": 7,
        "deployments": [
            {"name": "fast", "latency": {"median": 0.4}, "price": {"input": 0.5, "output": 1.5}},
            {"name": "flaky", "failure": {"rate": 0.3, "status": 500}},
            {"name": "cheap", "rate_limit": {"max_concurrency": 4, "retry_after": 1.0}},
        ],
        "load": {"requests": 2000, "rate": 8.0},
    })
    result = simulate(scenario, "adaptive")
    print(result.success_rate, result.p95, result.share)

The same seed gives the same result; arrivals are drawn from their own generator, so every
strategy faces the same traffic.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .catalog.models import ModelSpec, Pricing
from .providers.base import Endpoint
from .strategies.base import RouteContext, Strategy, make_strategy
from .tracking.outcome import Outcome
from .tracking.stats import Tracker
from .types import Usage

__all__ = [
    "STRATEGIES",
    "DeploymentProfile",
    "FailureProfile",
    "LatencyProfile",
    "LoadPattern",
    "PriceProfile",
    "RateLimitProfile",
    "Scenario",
    "SimulationResult",
    "VirtualClock",
    "compare",
    "simulate",
]

STRATEGIES: tuple[str, ...] = (
    "round_robin",
    "weighted",
    "least_connections",
    "response_time",
    "intelligent",
    "adaptive",
)
"""The built-in strategies, in the order reports list them."""

_SEEDED = frozenset({"adaptive", "intelligent", "least_connections", "response_time"})
_MODEL = "sim"
_ARRIVAL, _DONE = 0, 1


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Lognormal seconds per successful answer: ``median * exp(sigma * N(0, 1))``.

    ``congestion`` adds that fraction of the sample per request already in flight, so a
    deployment that receives everything slows down.
    """

    median: float = 0.5
    sigma: float = 0.3
    congestion: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureProfile:
    """Random failures: ``rate`` of attempts answer ``status`` after ``latency_factor`` × a
    latency sample (failures are usually faster than answers)."""

    rate: float = 0.0
    status: int = 500
    latency_factor: float = 0.3


@dataclass(frozen=True, slots=True)
class RateLimitProfile:
    """Above ``max_concurrency`` requests in flight, answer 429 with ``Retry-After``."""

    max_concurrency: int | None = None
    retry_after: float = 1.0
    latency: float = 0.02


@dataclass(frozen=True, slots=True)
class PriceProfile:
    """USD per million input and output tokens."""

    input: float = 0.0
    output: float = 0.0


@dataclass(frozen=True, slots=True)
class DeploymentProfile:
    """One simulated deployment."""

    name: str
    latency: LatencyProfile = field(default_factory=LatencyProfile)
    failure: FailureProfile = field(default_factory=FailureProfile)
    rate_limit: RateLimitProfile = field(default_factory=RateLimitProfile)
    price: PriceProfile = field(default_factory=PriceProfile)
    weight: float = 1.0
    quality: int = 50

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentProfile:
        """Build from ``{"name", "latency": {...}, "failure": {...}, "rate_limit": {...},
        "price": {...}, "weight", "quality"}``; unknown keys raise ``ValueError``."""
        _check_keys(
            "deployment",
            data,
            {"name", "latency", "failure", "rate_limit", "price", "weight", "quality"},
        )
        return cls(
            name=str(data["name"]),
            latency=LatencyProfile(**data.get("latency", {})),
            failure=FailureProfile(**data.get("failure", {})),
            rate_limit=RateLimitProfile(**data.get("rate_limit", {})),
            price=PriceProfile(**data.get("price", {})),
            weight=float(data.get("weight", 1.0)),
            quality=int(data.get("quality", 50)),
        )

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD of one successful answer."""
        return (self.price.input * input_tokens + self.price.output * output_tokens) / 1e6


@dataclass(frozen=True, slots=True)
class LoadPattern:
    """Poisson arrivals at ``rate`` per second, times ``burst_multiplier`` during the first
    ``burst_duration`` seconds of every ``burst_every`` seconds (0 = no bursts)."""

    requests: int = 2000
    rate: float = 8.0
    burst_every: float = 60.0
    burst_duration: float = 10.0
    burst_multiplier: float = 4.0
    input_tokens: int = 500
    output_tokens: int = 200

    def rate_at(self, t: float) -> float:
        """Arrivals per second at virtual time ``t``."""
        if self.burst_every > 0 and (t % self.burst_every) < self.burst_duration:
            return self.rate * self.burst_multiplier
        return self.rate


@dataclass(frozen=True, slots=True)
class Scenario:
    """A fleet, a load pattern, a retry budget and a seed."""

    deployments: tuple[DeploymentProfile, ...]
    load: LoadPattern = field(default_factory=LoadPattern)
    max_attempts: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        names = [d.name for d in self.deployments]
        if not names or len(set(names)) != len(names):
            raise ValueError("a scenario needs at least one deployment, with unique names")
        if self.max_attempts < 1 or self.load.requests < 1 or self.load.rate <= 0:
            raise ValueError("max_attempts and load.requests must be >= 1 and load.rate > 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build from ``{"deployments": [...], "load": {...}, "max_attempts", "seed"}``."""
        _check_keys("scenario", data, {"deployments", "load", "max_attempts", "seed"})
        return cls(
            deployments=tuple(DeploymentProfile.from_dict(d) for d in data["deployments"]),
            load=LoadPattern(**data.get("load", {})),
            max_attempts=int(data.get("max_attempts", 2)),
            seed=int(data.get("seed", 0)),
        )

    @classmethod
    def default(cls, seed: int = 0, requests: int = 3000) -> Scenario:
        """A mixed fleet: fast, slow, failing (30 % 500s) and rate-limited cheap deployments."""
        return cls.from_dict(
            {
                "seed": seed,
                "deployments": [
                    {
                        "name": "fast",
                        "latency": {"median": 0.4, "sigma": 0.25, "congestion": 0.03},
                        "price": {"input": 2.5, "output": 10.0},
                        "quality": 80,
                    },
                    {
                        "name": "slow",
                        "latency": {"median": 2.0, "sigma": 0.5, "congestion": 0.03},
                        "price": {"input": 2.5, "output": 10.0},
                        "quality": 80,
                    },
                    {
                        "name": "failing",
                        "latency": {"median": 0.5, "sigma": 0.3},
                        "failure": {"rate": 0.3, "status": 500},
                        "price": {"input": 2.5, "output": 10.0},
                        "quality": 80,
                    },
                    {
                        "name": "cheap",
                        "latency": {"median": 0.6, "sigma": 0.3},
                        "rate_limit": {"max_concurrency": 4, "retry_after": 1.0},
                        "price": {"input": 0.15, "output": 0.6},
                        "quality": 70,
                    },
                ],
                "load": {
                    "requests": requests,
                    "rate": 8.0,
                    "burst_every": 60.0,
                    "burst_duration": 10.0,
                    "burst_multiplier": 4.0,
                },
            }
        )


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What one strategy achieved on one scenario.

    Latency percentiles are end-to-end seconds (retries included) of the requests that
    succeeded; ``share`` is each deployment's fraction of all attempts.
    """

    strategy: str
    requests: int
    succeeded: int
    attempts: int
    p50: float
    p95: float
    p99: float
    cost: float
    share: dict[str, float]
    errors: dict[str, int]
    duration: float

    @property
    def success_rate(self) -> float:
        """Share of requests that got an answer."""
        return self.succeeded / self.requests

    @property
    def error_rate(self) -> float:
        """Share of requests that failed after every attempt."""
        return 1.0 - self.success_rate


class VirtualClock:
    """The simulation's clock; the tracker and strategies read it (``monotonic``/``time``)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        """Virtual seconds since the start."""
        return self.now

    def time(self) -> float:
        """Virtual epoch seconds."""
        return 1_700_000_000.0 + self.now


@dataclass(slots=True)
class _Call:
    arrived: float
    tried: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Attempt:
    call: _Call
    profile: DeploymentProfile
    started: float
    status: int
    retry_after: float | None


class _Fleet:
    """Per-deployment simulated behaviour: concurrency and the random draws."""

    def __init__(self, profiles: Sequence[DeploymentProfile], seed: int) -> None:
        self.profiles = {p.name: p for p in profiles}
        self.in_flight = dict.fromkeys(self.profiles, 0)
        self.rngs = {p.name: random.Random(f"{seed}:{p.name}") for p in profiles}

    def attempt(self, profile: DeploymentProfile) -> tuple[int, float, float | None]:
        """Start an attempt: ``(status, seconds until it ends, retry_after)``."""
        name = profile.name
        busy = self.in_flight[name]
        self.in_flight[name] = busy + 1
        limit = profile.rate_limit
        if limit.max_concurrency is not None and busy >= limit.max_concurrency:
            return 429, limit.latency, limit.retry_after
        rng = self.rngs[name]
        lat = profile.latency
        seconds = lat.median * math.exp(lat.sigma * rng.gauss(0.0, 1.0))
        seconds *= 1.0 + lat.congestion * busy
        if rng.random() < profile.failure.rate:
            return profile.failure.status, seconds * profile.failure.latency_factor, None
        return 200, seconds, None


def _endpoint(profile: DeploymentProfile) -> Endpoint:
    spec = ModelSpec(
        id=profile.name,
        provider="sim",
        context_window=128_000,
        max_output_tokens=16_384,
        pricing=Pricing(
            input=Decimal(str(profile.price.input)), output=Decimal(str(profile.price.output))
        ),
        capabilities=frozenset({"chat"}),
        quality=profile.quality,
    )
    return Endpoint(
        name=profile.name,
        model=_MODEL,
        wire_model=profile.name,
        provider="sim",
        base_url=f"sim://{profile.name}",
        weight=profile.weight,
        spec=spec,
    )


def _strategy(spec: str | Mapping[str, Any] | Strategy, seed: int) -> tuple[str, Strategy]:
    if isinstance(spec, str):
        params: dict[str, Any] = {"name": spec}
        if spec in _SEEDED:
            params["seed"] = seed
        return spec, make_strategy(params)
    if isinstance(spec, Mapping):
        return str(spec.get("name", "custom")), make_strategy(dict(spec))
    return type(spec).__name__, spec


def simulate(
    scenario: Scenario, strategy: str | Mapping[str, Any] | Strategy = "adaptive"
) -> SimulationResult:
    """Run ``scenario`` routed by ``strategy`` (a registered name, a config dict or an object).

    Deterministic for a given scenario seed (strategies named by string are seeded with it).
    """
    name, chooser = _strategy(strategy, scenario.seed)
    clock = VirtualClock()
    tracker = Tracker(clock.monotonic)
    endpoints = [_endpoint(p) for p in scenario.deployments]
    for ep in endpoints:
        tracker.register(ep.name, ep.model, ep.provider)
    load = scenario.load
    ctx = RouteContext(
        stream=False, input_tokens=load.input_tokens, output_tokens=load.output_tokens
    )
    exclude = getattr(chooser, "exclude", None)
    if exclude is not None:
        banned = exclude(endpoints, ctx)
        endpoints = [ep for ep in endpoints if ep.name not in banned] or endpoints
    fleet = _Fleet(scenario.deployments, scenario.seed)
    arrivals = random.Random(f"{scenario.seed}:arrivals")
    usage = Usage(input_tokens=load.input_tokens, output_tokens=load.output_tokens)

    events: list[tuple[float, int, int, Any]] = []
    seq = 0
    sent = 0
    attempts: dict[str, int] = dict.fromkeys(fleet.profiles, 0)
    errors: dict[str, int] = {}
    latencies: list[float] = []
    cost = 0.0

    def push(at: float, kind: int, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, payload))

    def start(call: _Call) -> bool:
        candidates = [ep for ep in endpoints if ep.name not in call.tried]
        if not candidates:
            return False
        ep = chooser.choose(candidates, tracker, ctx)
        profile = fleet.profiles[ep.name]
        call.tried.append(ep.name)
        attempts[ep.name] += 1
        tracker.started(ep.name)
        status, seconds, retry_after = fleet.attempt(profile)
        push(clock.now + seconds, _DONE, _Attempt(call, profile, clock.now, status, retry_after))
        return True

    push(arrivals.expovariate(load.rate_at(0.0)), _ARRIVAL, None)
    while events:
        at, _, kind, payload = heapq.heappop(events)
        clock.now = at
        if kind == _ARRIVAL:
            sent += 1
            start(_Call(arrived=at))
            if sent < load.requests:
                push(at + arrivals.expovariate(load.rate_at(at)), _ARRIVAL, None)
            continue
        done: _Attempt = payload
        profile = done.profile
        fleet.in_flight[profile.name] -= 1
        ok = done.status < 400
        latency = at - done.started
        error = None if ok else ("RateLimited" if done.status == 429 else "ServerError")
        tracker.record(
            Outcome(
                deployment=profile.name,
                model=_MODEL,
                provider="sim",
                ok=ok,
                latency=latency,
                started_at=clock.time() - latency,
                status=done.status,
                error=error,
                usage=usage if ok else None,
                retry_after=done.retry_after,
                attempt=len(done.call.tried),
            )
        )
        if ok:
            latencies.append(at - done.call.arrived)
            cost += profile.cost(load.input_tokens, load.output_tokens)
            continue
        errors[f"{profile.name}:{done.status}"] = errors.get(f"{profile.name}:{done.status}", 0) + 1
        if len(done.call.tried) < scenario.max_attempts:
            start(done.call)

    latencies.sort()
    total = sum(attempts.values()) or 1
    return SimulationResult(
        strategy=name,
        requests=load.requests,
        succeeded=len(latencies),
        attempts=sum(attempts.values()),
        p50=_quantile(latencies, 0.50),
        p95=_quantile(latencies, 0.95),
        p99=_quantile(latencies, 0.99),
        cost=cost,
        share={k: v / total for k, v in attempts.items()},
        errors=errors,
        duration=clock.now,
    )


def compare(
    scenario: Scenario, strategies: Iterable[str | Mapping[str, Any] | Strategy] = STRATEGIES
) -> list[SimulationResult]:
    """:func:`simulate` every strategy on the same scenario (same arrivals, same seed)."""
    return [simulate(scenario, s) for s in strategies]


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values (``nan`` when empty)."""
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def _check_keys(what: str, data: Mapping[str, Any], known: set[str]) -> None:
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
