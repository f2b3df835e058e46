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
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from ..errors import ConfigError
from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ._util import LockedRandom
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
        self._credit: dict[str, float] = {}
        self._cache: dict[str, float] = {}  # deployment name -> weight (both fixed once set)
        self._lock = threading.Lock()

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
        cache = self._cache
        weights = [cache.get(c.name) or self.weight(c) for c in candidates]
        total = sum(weights)
        if total <= 0:
            weights = [1.0] * len(candidates)
            total = float(len(candidates))
        if self._rng is not None:
            point = self._rng.random() * total
            chosen = candidates[-1]
            for candidate, weight in zip(candidates, weights, strict=True):
                if weight <= 0:
                    continue  # a zero weight is never chosen, even on float residue below
                chosen = candidate
                point -= weight
                if point < 0:
                    return candidate
            return chosen  # rounding left ``point`` >= 0: the last candidate with a weight
        with self._lock:
            credit = self._credit
            best: Endpoint | None = None
            best_credit = float("-inf")
            for candidate, weight in zip(candidates, weights, strict=True):
                value = credit.get(candidate.name, 0.0) + weight
                credit[candidate.name] = value
                if value > best_credit:
                    best, best_credit = candidate, value
            assert best is not None
            credit[best.name] = best_credit - total
        return best
