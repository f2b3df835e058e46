"""What a simulated fleet is made of: each deployment's latency, failures, phases, rate limit,
price and quality, the load that arrives, and the :class:`Scenario` that puts them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The public names are exported by the package (``multimodel.simulation``).


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Lognormal seconds per successful answer: ``median * exp(sigma * N(0, 1))``.

    ``congestion`` adds that fraction of the sample per request already in flight, so a
    deployment that receives everything slows down. ``per_token`` adds seconds per output token
    (the deployment's ``output_tokens``, else the request's, see :class:`LoadPattern`): models
    that write long answers take longer without being slower per token, and ``median`` is the
    fixed overhead (time to first token) that the request's length does not change.
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
        check_keys(
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
    output_mix: tuple[tuple[float, int], ...] = ()
    """``(share, tokens)`` pairs: each request's ``max_tokens`` (its expected output length) is
    drawn from them, seeded, and routed with it. Empty: every request has ``output_tokens``."""

    def __post_init__(self) -> None:
        mix = tuple((float(share), int(tokens)) for share, tokens in self.output_mix)
        if any(share <= 0 or tokens < 1 for share, tokens in mix):
            raise ValueError("output_mix needs positive shares and token counts")
        object.__setattr__(self, "output_mix", mix)

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
        check_keys("scenario", data, {"deployments", "load", "max_attempts", "seed"})
        return cls(
            deployments=tuple(DeploymentProfile.from_dict(d) for d in data["deployments"]),
            load=LoadPattern(**data.get("load", {})),
            max_attempts=int(data.get("max_attempts", 2)),
            seed=int(data.get("seed", 0)),
        )

    @classmethod
    def named(cls, name: str, seed: int = 0, requests: int = 3000) -> Scenario:
        """One of :data:`SCENARIOS` (``ValueError`` for an unknown name)."""
        from ._scenarios import SCENARIOS

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


def check_keys(what: str, data: Mapping[str, Any], known: set[str]) -> None:
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
