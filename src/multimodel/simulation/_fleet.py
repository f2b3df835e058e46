"""The simulated fleet: the virtual clock, each deployment's behaviour (concurrency and the
random draws of latency and failure), the oracle that routes with that truth, and the endpoint
a strategy sees for each deployment.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from decimal import Decimal

from ..catalog.models import ModelSpec, Pricing
from ..providers.base import Endpoint
from ..strategies.base import RouteContext
from ._profiles import DeploymentProfile, LoadPattern

__all__ = ["MODEL", "Oracle", "SimFleet", "VirtualClock", "endpoint_of"]

MODEL = "sim"  # the model name every simulated deployment serves


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


class SimFleet:
    """Per-deployment simulated behaviour: concurrency and the random draws."""

    def __init__(self, profiles: Sequence[DeploymentProfile], seed: int, load: LoadPattern):
        self.profiles = {p.name: p for p in profiles}
        self.in_flight = dict.fromkeys(self.profiles, 0)
        self.started = dict.fromkeys(self.profiles, 0)
        self.rngs = {p.name: random.Random(f"{seed}:{p.name}") for p in profiles}
        self._lengths = random.Random(f"{seed}:lengths")  # drawn from only with a mix
        self._mix = load.output_mix
        self._default = load.output_tokens

    def request_tokens(self) -> int:
        """The next request's ``max_tokens``: the load's ``output_tokens``, or a draw from its
        ``output_mix``."""
        if not self._mix:
            return self._default
        pick = self._lengths.random() * sum(share for share, _ in self._mix)
        for share, tokens in self._mix:
            pick -= share
            if pick < 0:
                return tokens
        return self._mix[-1][1]

    def output(self, profile: DeploymentProfile, requested: int) -> int:
        """Tokens ``profile`` writes for a request of ``requested`` (its own typical length, if
        it has one: a verbose model ignores how short the answer could be)."""
        return requested if profile.output_tokens is None else profile.output_tokens

    def attempt(
        self, profile: DeploymentProfile, now: float, requested: int
    ) -> tuple[int, float, float | None]:
        """Start an attempt for a request of ``requested`` output tokens:
        ``(status, seconds until it ends, retry_after)``."""
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
        seconds += lat.per_token * self.output(profile, requested)
        seconds *= factor * (1.0 + lat.congestion * busy)
        failed = rng.random() < fail_rate
        script = profile.failure.script
        status = script[n] if n < len(script) else (profile.failure.status if failed else 200)
        if status >= 400:
            return status, seconds * profile.failure.latency_factor, None
        return 200, seconds, None

    def expected(self, profile: DeploymentProfile, now: float, requested: int) -> float:
        """The true expected seconds until a request of ``requested`` output tokens sent to
        ``profile`` now is answered (the oracle): a failure costs its own attempt (the
        profile's ``latency_factor`` of the mean) and one more attempt of the mean's length; a
        certain 429 costs its answer and two attempts (the retry, and the attempt it wastes)."""
        name = profile.name
        busy = self.in_flight[name]
        limit = profile.rate_limit
        lat = profile.latency
        factor, fail_rate = profile.at(now)
        mean = lat.median * math.exp(lat.sigma * lat.sigma / 2.0)
        mean += lat.per_token * self.output(profile, requested)
        mean *= factor * (1.0 + lat.congestion * busy)
        if limit.max_concurrency is not None and busy >= limit.max_concurrency:
            return limit.latency + 2.0 * mean  # a 429, then another attempt elsewhere
        n = self.started[name]
        script = profile.failure.script
        if n < len(script):
            fail_rate = 1.0 if script[n] >= 400 else 0.0
        # (1 - f) x mean + f x (the failed attempt + the retry): mean x (1 + f x factor).
        return mean + fail_rate * mean * profile.failure.latency_factor


class Oracle:
    """Routes with the truth: the earliest expected completion of this request, its length
    ``ctx.output_tokens`` included (see :meth:`SimFleet.expected`)."""

    def __init__(self, fleet: SimFleet, clock: VirtualClock, seed: int) -> None:
        self._fleet = fleet
        self._clock = clock
        self._rng = random.Random(f"{seed}:oracle")

    def choose(self, candidates: Sequence[Endpoint], stats: object, ctx: RouteContext) -> Endpoint:
        fleet, now = self._fleet, self._clock.now
        tokens = ctx.output_tokens
        costs = [fleet.expected(fleet.profiles[c.name], now, tokens) for c in candidates]
        best = min(costs)
        ties = [c for c, v in zip(candidates, costs, strict=True) if v <= best * (1 + 1e-9)]
        return ties[0] if len(ties) == 1 else ties[self._rng.randrange(len(ties))]


def endpoint_of(profile: DeploymentProfile) -> Endpoint:
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
        model=MODEL,
        wire_model=profile.name,
        provider="sim",
        base_url=f"sim://{profile.name}",
        weight=profile.weight,
        spec=spec,
    )
