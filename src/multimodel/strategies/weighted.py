"""``weighted``: split traffic in fixed proportions.

When to use it: a planned split, e.g. 40 % to one provider and 30 % to each of two others, or a
canary that gets 5 % of traffic. Weights are keyed by deployment name, model name or provider
name (the most specific match wins), or come from each ``Deployment(weight=...)``::

    Client(deployments=[...], strategy={"name": "weighted",
                                        "weights": {"gpt-4": 0.4, "claude-3.5": 0.3,
                                                    "gemini-pro": 0.3}})

By default the split is *smooth* and deterministic (nginx's smooth weighted round robin: with
weights 5:1:1 the order is a a b a c a a, never five a's in a row). With ``seed=...`` choices
are random in proportion to the weights, reproducibly. When a candidate is excluded (cooldown,
rate limit) its share goes to the others in proportion.

Cost: O(1) per request whatever the fleet size. The smooth cycle of a candidate set is computed
once (its length is the sum of the weights as small integers, about 1,024 at most) and then each
choice is one lookup; seeded choices are a binary search over cumulative weights.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import accumulate

from ..errors import ConfigError
from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ._util import FleetCache, LockedRandom
from .base import RouteContext, register_strategy

__all__ = ["Weighted"]


@register_strategy("weighted")
class Weighted:
    """Smooth weighted round robin (or seeded weighted random)."""

    def __init__(self, weights: Mapping[str, float] | None = None, seed: int | None = None):
        self._weights = dict(weights or {})
        for key, value in self._weights.items():
            if not value >= 0:
                raise ConfigError(f"weight for {key!r} must be >= 0, got {value!r}")
        self._rng = LockedRandom(seed) if seed is not None else None
        self._cache: dict[str, float] = {}  # deployment name -> weight (fixed once set)
        self._plans: FleetCache[_Plan] = FleetCache(self._plan)

    def weight(self, endpoint: Endpoint) -> float:
        """The weight of one deployment."""
        cached = self._cache.get(endpoint.name)
        if cached is not None:
            return cached
        weight = self._cache[endpoint.name] = self._lookup(endpoint)
        return weight

    def _lookup(self, endpoint: Endpoint) -> float:
        w = self._weights
        for key in (endpoint.name, endpoint.model, endpoint.wire_model, endpoint.provider):
            if key in w:
                return w[key]
        return endpoint.weight

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        plan = self._plans.get(candidates, stats)
        if self._rng is None:
            schedule, counter = plan.schedule, plan.counter
            return candidates[schedule[next(counter) % len(schedule)]]
        point = self._rng.random() * plan.total
        # The first positive-weight candidate whose cumulative weight exceeds the point (the
        # same draw picks the same candidate as walking the list and subtracting); rounding
        # can leave the point at the total: then the last one.
        i = bisect_right(plan.cumulative, point)
        return candidates[plan.positive[min(i, len(plan.positive) - 1)]]

    def _plan(self, candidates: Sequence[Endpoint], stats: StatsView) -> _Plan:
        weights = [self.weight(c) for c in candidates]
        if sum(weights) <= 0:
            weights = [1.0] * len(candidates)
        return _Plan(weights)


SCHEDULE_CAP = 1024
"""The longest exact smooth cycle per candidate set; weights whose exact cycle would be longer
are rounded to integers summing to about this (shares within ~0.05 % of the weights). Building
a cycle costs ``length × candidates`` steps once (a few ms at most)."""


class _Plan:
    """A candidate set's weights, as a precomputed smooth cycle and as cumulative sums."""

    __slots__ = ("counter", "cumulative", "positive", "schedule", "total")

    def __init__(self, weights: list[float]) -> None:
        self.positive = [i for i, w in enumerate(weights) if w > 0]
        self.cumulative = list(accumulate(weights[i] for i in self.positive))
        self.total = self.cumulative[-1]
        self.schedule = _smooth_cycle(_integer_weights([weights[i] for i in self.positive]))
        self.schedule = [self.positive[k] for k in self.schedule]
        self.counter = itertools.count()  # next() on it is atomic: exact rotation under threads


def _integer_weights(weights: list[float]) -> list[int]:
    """Small integers in the same proportions: exact when the weights are simple ratios (0.4 /
    0.3 / 0.3 gives 4 / 3 / 3), else rounded to sum to about :data:`SCHEDULE_CAP`, every
    positive weight keeping at least one turn per cycle."""
    top = max(weights)
    fractions = [Fraction(w / top).limit_denominator(SCHEDULE_CAP) for w in weights]
    scale = math.lcm(*(f.denominator for f in fractions))
    ints = [int(f * scale) for f in fractions]
    if 0 < sum(ints) <= SCHEDULE_CAP and all(ints):
        divisor = math.gcd(*ints)
        return [k // divisor for k in ints]
    # Largest remainders (Hamilton): the integers sum to the cap, each within 1 of its quota.
    total = sum(weights)
    quotas = [w / total * SCHEDULE_CAP for w in weights]
    ints = [int(q) for q in quotas]
    remaining = SCHEDULE_CAP - sum(ints)
    by_remainder = sorted(range(len(quotas)), key=lambda i: ints[i] - quotas[i])
    for i in by_remainder[:remaining]:
        ints[i] += 1
    return [max(1, k) for k in ints]  # a positive weight keeps a turn per cycle


def _smooth_cycle(weights: list[int]) -> list[int]:
    """One full cycle of nginx's smooth weighted round robin over integer weights: each step
    adds every weight to its credit and picks the highest credit (the first on a tie), which
    then pays back the total. After ``sum(weights)`` steps every credit is back at zero, so the
    cycle repeats exactly; built once per candidate set, then each choice is one lookup."""
    total = sum(weights)
    credit = [0] * len(weights)
    order = []
    indexes = range(len(weights))
    for _ in range(total):
        for i in indexes:
            credit[i] += weights[i]
        best = credit.index(max(credit))
        credit[best] -= total
        order.append(best)
    return order
