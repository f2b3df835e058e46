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

The name ``"oracle"`` routes with the truth instead of a strategy: it knows every deployment's
latency distribution, congestion, concurrency limit, failure rate and phase at every instant,
and sends each request where its expected completion (a failure counted as one more attempt)
is earliest. :data:`SCENARIOS` names the fleets the strategies are measured on against it
(``Scenario.named("brownout")``); ``benchmarks/simulate.py --oracle`` prints the table.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    "ORACLE",
    "SCENARIOS",
    "SCENARIO_NOTES",
    "STRATEGIES",
    "DeploymentProfile",
    "FailureProfile",
    "LatencyProfile",
    "LoadPattern",
    "Phase",
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

ORACLE = "oracle"
"""The strategy name that routes with the true state of the fleet (see the module docs)."""

_SEEDED = frozenset({"adaptive", "intelligent", "least_connections", "response_time"})
_MODEL = "sim"
_ARRIVAL, _DONE = 0, 1


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Lognormal seconds per successful answer: ``median * exp(sigma * N(0, 1))``.

    ``congestion`` adds that fraction of the sample per request already in flight, so a
    deployment that receives everything slows down. ``per_token`` adds seconds per output token
    (the deployment's ``output_tokens``, else the load's): models that write long answers take
    longer without being slower per token.
    """

    median: float = 0.5
    sigma: float = 0.3
    congestion: float = 0.0
    per_token: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureProfile:
    """Random failures: ``rate`` of attempts answer ``status`` after ``latency_factor`` × a
    latency sample (failures are usually faster than answers)."""

    rate: float = 0.0
    status: int = 500
    latency_factor: float = 0.3
    script: tuple[int, ...] = ()
    """Statuses of the first attempts, in order, before the random ``rate`` applies."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "script", tuple(int(x) for x in self.script))


@dataclass(frozen=True, slots=True)
class Phase:
    """From ``start`` to ``end`` (virtual seconds) the deployment's latency is multiplied by
    ``latency_factor`` and, if set, it fails at ``failure_rate`` (brownouts, drift)."""

    start: float
    end: float
    latency_factor: float = 1.0
    failure_rate: float | None = None


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
    output_tokens: int | None = None
    """Typical answer length of this model (``None``: the load's ``output_tokens``)."""
    phases: tuple[Phase, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentProfile:
        """Build from ``{"name", "latency": {...}, "failure": {...}, "rate_limit": {...},
        "price": {...}, "weight", "quality", "output_tokens", "phases": [{...}]}``; unknown
        keys raise ``ValueError``."""
        _check_keys(
            "deployment",
            data,
            {
                "name",
                "latency",
                "failure",
                "rate_limit",
                "price",
                "weight",
                "quality",
                "output_tokens",
                "phases",
            },
        )
        out = data.get("output_tokens")
        return cls(
            name=str(data["name"]),
            latency=LatencyProfile(**data.get("latency", {})),
            failure=FailureProfile(**data.get("failure", {})),
            rate_limit=RateLimitProfile(**data.get("rate_limit", {})),
            price=PriceProfile(**data.get("price", {})),
            weight=float(data.get("weight", 1.0)),
            quality=int(data.get("quality", 50)),
            output_tokens=None if out is None else int(out),
            phases=tuple(Phase(**ph) for ph in data.get("phases", ())),
        )

    def at(self, t: float) -> tuple[float, float]:
        """The latency factor and failure rate at virtual time ``t``."""
        for ph in self.phases:
            if ph.start <= t < ph.end:
                rate = self.failure.rate if ph.failure_rate is None else ph.failure_rate
                return ph.latency_factor, rate
        return 1.0, self.failure.rate

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
    poisson: bool = True
    """``False``: one arrival every ``1 / rate`` seconds exactly (steady sequential traffic)."""

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
    def named(cls, name: str, seed: int = 0, requests: int = 3000) -> Scenario:
        """One of :data:`SCENARIOS` (``ValueError`` for an unknown name)."""
        try:
            build = SCENARIOS[name]
        except KeyError:
            raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}") from None
        return build(seed, requests)

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

    def __init__(self, profiles: Sequence[DeploymentProfile], seed: int, load: LoadPattern):
        self.profiles = {p.name: p for p in profiles}
        self.in_flight = dict.fromkeys(self.profiles, 0)
        self.started = dict.fromkeys(self.profiles, 0)
        self.rngs = {p.name: random.Random(f"{seed}:{p.name}") for p in profiles}
        self.output = {
            p.name: load.output_tokens if p.output_tokens is None else p.output_tokens
            for p in profiles
        }

    def attempt(self, profile: DeploymentProfile, now: float) -> tuple[int, float, float | None]:
        """Start an attempt: ``(status, seconds until it ends, retry_after)``."""
        name = profile.name
        busy = self.in_flight[name]
        self.in_flight[name] = busy + 1
        n = self.started[name]
        self.started[name] = n + 1
        limit = profile.rate_limit
        if limit.max_concurrency is not None and busy >= limit.max_concurrency:
            return 429, limit.latency, limit.retry_after
        rng = self.rngs[name]
        lat = profile.latency
        factor, fail_rate = profile.at(now)
        seconds = lat.median * math.exp(lat.sigma * rng.gauss(0.0, 1.0))
        seconds += lat.per_token * self.output[name]
        seconds *= factor * (1.0 + lat.congestion * busy)
        failed = rng.random() < fail_rate
        script = profile.failure.script
        status = script[n] if n < len(script) else (profile.failure.status if failed else 200)
        if status >= 400:
            return status, seconds * profile.failure.latency_factor, None
        return 200, seconds, None

    def expected(self, profile: DeploymentProfile, now: float) -> float:
        """The true expected seconds until a request sent to ``profile`` now is answered,
        a failure or a 429 counted as one more attempt of the same length (the oracle)."""
        name = profile.name
        busy = self.in_flight[name]
        limit = profile.rate_limit
        lat = profile.latency
        factor, fail_rate = profile.at(now)
        mean = (
            lat.median * math.exp(lat.sigma * lat.sigma / 2.0) + lat.per_token * self.output[name]
        )
        mean *= factor * (1.0 + lat.congestion * busy)
        if limit.max_concurrency is not None and busy >= limit.max_concurrency:
            return limit.latency + 2.0 * mean  # a 429, then another attempt elsewhere
        n = self.started[name]
        script = profile.failure.script
        if n < len(script):
            fail_rate = 1.0 if script[n] >= 400 else 0.0
        return mean + fail_rate * mean * (1.0 + profile.failure.latency_factor)


class _Oracle:
    """Routes with the truth: the earliest expected completion (see :meth:`_Fleet.expected`)."""

    def __init__(self, fleet: _Fleet, clock: VirtualClock, seed: int) -> None:
        self._fleet = fleet
        self._clock = clock
        self._rng = random.Random(f"{seed}:oracle")

    def choose(self, candidates: Sequence[Endpoint], stats: object, ctx: RouteContext) -> Endpoint:
        fleet, now = self._fleet, self._clock.now
        costs = [fleet.expected(fleet.profiles[c.name], now) for c in candidates]
        best = min(costs)
        ties = [c for c, v in zip(candidates, costs, strict=True) if v <= best * (1 + 1e-9)]
        return ties[0] if len(ties) == 1 else ties[self._rng.randrange(len(ties))]


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
    clock = VirtualClock()
    fleet = _Fleet(scenario.deployments, scenario.seed, scenario.load)
    chooser: Strategy
    if strategy == ORACLE:
        name, chooser = ORACLE, _Oracle(fleet, clock, scenario.seed)
    else:
        name, chooser = _strategy(strategy, scenario.seed)
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
    arrivals = random.Random(f"{scenario.seed}:arrivals")
    usages = {
        name: Usage(input_tokens=load.input_tokens, output_tokens=out)
        for name, out in fleet.output.items()
    }

    def gap(at: float) -> float:
        if not load.poisson:
            return 1.0 / load.rate_at(at)
        return arrivals.expovariate(load.rate_at(at))

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
        status, seconds, retry_after = fleet.attempt(profile, clock.now)
        push(clock.now + seconds, _DONE, _Attempt(call, profile, clock.now, status, retry_after))
        return True

    push(gap(0.0), _ARRIVAL, None)
    while events:
        at, _, kind, payload = heapq.heappop(events)
        clock.now = at
        if kind == _ARRIVAL:
            sent += 1
            start(_Call(arrived=at))
            if sent < load.requests:
                push(at + gap(at), _ARRIVAL, None)
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
                usage=usages[profile.name] if ok else None,
                retry_after=done.retry_after,
                attempt=len(done.call.tried),
            )
        )
        if ok:
            latencies.append(at - done.call.arrived)
            cost += profile.cost(load.input_tokens, fleet.output[profile.name])
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
    "brownout": "the fastest gets 5x slower and fails 30 % for 90 s, then recovers",
    "sequential_failure": "one query every 0.1 s over three equal ones, one fails once",
    "large_fleet": "50 deployments from 0.3 to 1.5 s, 5 of them failing 30 %",
}
"""One line about each of :data:`SCENARIOS` (``multimodel simulate --list``)."""


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
