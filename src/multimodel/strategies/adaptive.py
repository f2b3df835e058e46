"""``adaptive`` (the default): the lowest load-aware peak latency, scanned in small fleets and
by power of two choices with memory in large ones.

When to use it: almost always. It needs no tuning and reacts within a few requests.

For each request it scores candidates and sends to the one with the lowest cost::

    cost = peak_ewma_latency × (1 + load_factor × in_flight) × (1 + error_penalty × odds_of_failure)

Fleets of up to ``scan_max`` (8) candidates are scanned in full, so a clearly better deployment
gets all the traffic it can serve (costs within 20 % of the lowest are ties, picked at random,
so noise does not decide between equal ones); larger fleets compare the last winner with one
random challenger (O(1) in fleet size; a good deployment found by chance keeps the traffic
until a challenger costs less). The switch point is measured: the scan costs ~2.4 µs + 0.7 µs per
candidate against ~2 µs for two choices, under 1 % of a loopback round trip at 8.

where ``odds_of_failure`` is ``e / (1 - e)`` of the recent error rate ``e``.

* **Peak EWMA latency** (Finagle): a slow answer raises the estimate at once (by half of its
  excess over the plain EWMA, ``peak_weight``: one lognormal spike of a fast deployment should
  not hand its traffic to a slower one); it decays as fast answers return, or while the
  deployment is idle, so a deployment that was slow once is tried again later. The idle decay
  stops at the deployment's plain EWMA (``idle_floor``), which itself falls by 1/e per minute
  since the deployment was last chosen (``explore_tau``): one measured slow is retried within
  minutes, not every ~20 s (in a fleet of 50 that sent a steady trickle to the slowest).
  Streams use time to first token.
* **× (1 + load_factor × in flight)**: a fast deployment that is already busy looks slower, so
  the fastest one does not get every request (no herding). ``load_factor`` is 0.1: LLM APIs
  serve many requests at once and slow down mildly with load (the measured latency catches
  the rest); 1.0 (a queue) sent a third of the traffic to a 3x slower deployment in the
  simulator (``benchmarks/simulate.py --oracle``), 0.25 still sent 13 % to it when the fast
  one was busy.
* **Failures**: the recent error rate multiplies the cost, without bound while failures go on,
  so a deployment that fails *fast* (a 500 in 2 ms, nothing in flight) is not mistaken for a
  fast one, however busy the healthy ones are. The rate is forgiven over time since the last
  failure (by 1/e every 2 s per consecutive failure, and to exactly zero once below 2 %), so a deployment that failed
  competes again on its latency within seconds. A 429 or 503
  with ``Retry-After`` marks the deployment as penalized until then; it is used only if every
  sampled candidate is. The load it refused (the requests in flight when the hold is first
  seen) then counts as a ceiling for a minute after the hold: at that load the deployment is
  used only if every other is at its ceiling or held, so the next 429 is avoided instead of
  learned again (rate-limit headroom from the provider's own answers).
* **Unknown deployments** are scored like the best measured one, so they get probed.
* **No starvation**: a deployment whose last attempt failed can lose every comparison and so
  never get the request that would show it recovered. Every few requests, a deployment whose
  last attempt failed, with nothing in flight and no ``Retry-After`` hold, gets a real probe
  (one at a time, fewer as its failures go on; see :class:`~multimodel.strategies._util.Prober`),
  and the routing trace scores it ``-1`` (a probe).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ._util import LockedRandom, Prober, forgiven_error_rate, probe_scores
from .base import RouteContext, register_strategy
from .response_time import expected_latency

__all__ = ["Adaptive"]

_PENALIZED = 1e6  # multiplier while a Retry-After is pending
_AT_CEILING = 1e3  # multiplier at the load a recent 429 / 503 refused (below a pending hold)
CEILING_TTL = 60.0
"""Seconds after a Retry-After hold ends during which the load it refused (requests in
flight) counts as a ceiling: rate-limit headroom learned from the provider's answer."""
LOAD_FACTOR = 0.1
"""Each request in flight adds this fraction of the latency to the cost: LLM APIs serve many
requests at once and slow down mildly with load (measured latency catches the rest), so the
best deployment keeps the traffic it can serve; 1.0 (a queue, one at a time) sent a third of
the traffic to a 3x slower deployment in the simulator, 0.25 an eighth."""
SCAN_TIE = 1.2  # in a scan, costs within 20 % of the lowest are ties (measurement noise)
TIE_SECONDS = 0.01  # ... and so are costs within 10 ms of it (jitter of very fast answers)
IDLE_FLOOR = 1.0
"""The idle decay of a deployment's latency estimate stops at this fraction of its plain
EWMA latency, itself decayed by 1/e per :data:`EXPLORE_TAU` since the deployment was last
chosen."""
EXPLORE_TAU = 60.0
"""Seconds for the floor of an idle deployment's estimate to fall by 1/e: a deployment
measured slow is tried again within minutes, not every ~20 s (the peak EWMA's own idle decay,
which in a fleet of 50 sent a steady trickle to the slowest)."""
PEAK_WEIGHT = 0.5
"""How much of the peak EWMA's excess over the plain EWMA counts: a spike still raises the
estimate at once, by half (lognormal latencies put the peak of a fast deployment above a
slower one's mean; all of it sent 9 % of the traffic to a 3x slower deployment)."""
SCAN_MAX = 8
"""Fleets up to this size are scanned in full (the best gets all it can serve at its best
latency); larger ones use two random choices (see ``benchmarks/run.py --only route``)."""


@register_strategy("adaptive")
class Adaptive:
    """Peak-EWMA latency × (1 + load_factor × in flight), with failure penalties; a full scan
    of small fleets, power of two choices in large ones.

    Args:
        error_penalty: how much the odds of failure (``e / (1 - e)`` of the recent error
            rate ``e``) inflate the cost.
        default_latency: the estimate used before anything was measured anywhere (seconds).
        seed: seeds the random sampling (deterministic tests and simulations).
        scan_max: fleets up to this size are scanned in full (0: always two choices).
        load_factor: the fraction of the latency each request in flight adds to the cost.
        tie: in a scan, costs up to this multiple of the lowest are ties, picked at random.
        idle_floor: the idle decay of a latency estimate stops at this fraction of the
            deployment's plain EWMA latency (0: decays toward zero, Finagle's rule).
        explore_tau: seconds for that floor to fall by 1/e while the deployment is not
            chosen (0: it does not fall).
        remember: in large fleets, compare the last winner with one random challenger
            instead of two random candidates.
        peak_weight: how much of the peak EWMA's excess over the plain EWMA counts (1: the
            peak EWMA, Finagle's rule).
    """

    def __init__(
        self,
        error_penalty: float = 30.0,
        default_latency: float = 1.0,
        seed: int | None = None,
        scan_max: int = SCAN_MAX,
        load_factor: float = LOAD_FACTOR,
        tie: float = SCAN_TIE,
        idle_floor: float = IDLE_FLOOR,
        remember: bool = True,
        peak_weight: float = PEAK_WEIGHT,
        explore_tau: float = EXPLORE_TAU,
    ) -> None:
        self.explore_tau = explore_tau
        self._sent: dict[str, float] = {}
        self.peak_weight = peak_weight
        self.remember = remember
        self.load_factor = load_factor
        self.tie = tie
        self.idle_floor = idle_floor
        self._champion = 1 << 30
        self.error_penalty = error_penalty
        self.default_latency = default_latency
        self.scan_max = scan_max
        self._rng = LockedRandom(seed)
        self._prober = Prober()
        self._ceilings: dict[str, tuple[float, int]] = {}

    def cost(
        self, endpoint: Endpoint, stats: StatsView, ctx: RouteContext, now: float, prior: float
    ) -> float:
        """The load-aware cost of sending this request to ``endpoint`` now."""
        return self._cost(endpoint, stats, now, self._latency(endpoint, stats, ctx, now), prior)

    def _latency(
        self, endpoint: Endpoint, stats: StatsView, ctx: RouteContext, now: float
    ) -> float | None:
        """The expected latency: peaks weighted by ``peak_weight``, the idle decay floored."""
        latency = expected_latency(endpoint, stats, ctx, now)
        if latency is None:
            return None
        cell = stats.get(endpoint.name)
        base = cell.ewma_ttft if ctx.stream else None
        if base is None:
            base = cell.ewma_latency
        if base is None:
            return latency
        if latency > base:
            return base + self.peak_weight * (latency - base)
        floor = base * self.idle_floor
        tau = self.explore_tau
        if tau:
            idle = now - self._sent.setdefault(endpoint.name, now)  # or since first seen
            if idle > 0.0:
                floor *= math.exp(-idle / tau)
        return max(latency, floor)

    def _cost(
        self,
        endpoint: Endpoint,
        stats: StatsView,
        now: float,
        latency: float | None,
        prior: float,
    ) -> float:
        cell = stats.get(endpoint.name)
        cost = (latency if latency is not None else prior) * (
            1.0 + self.load_factor * cell.in_flight
        )
        # err / (1 - err), not err: the penalty must keep growing while failures go on, or a
        # deployment that fails *fast* (0 in flight) wins against a healthy one that is busy
        # (the bounded 1 + penalty x err is outweighed once the healthy one has ~10 in flight).
        # Forgiven over time: a deployment that gets no traffic has no new samples to lower its
        # error rate, and would otherwise never be tried again.
        err = forgiven_error_rate(cell, now) if cell.ewma_error_rate else 0.0
        if err:
            cost *= 1.0 + self.error_penalty * err / max(1.0 - err, 1e-3)
        until = cell.penalty_until
        if until > now:
            cost *= _PENALIZED
            # Learn the load that was refused: the requests still in flight when the hold is
            # first seen (a 429 at N in flight leaves N - 1 or fewer) and the hold's end.
            seen = self._ceilings.get(endpoint.name)
            if seen is None or seen[0] != until:
                self._ceilings[endpoint.name] = (until, max(cell.in_flight, 1))
        elif self._ceilings:
            seen = self._ceilings.get(endpoint.name)
            if seen is not None:
                if now > seen[0] + CEILING_TTL:
                    self._ceilings.pop(endpoint.name, None)
                elif cell.in_flight >= seen[1]:
                    cost *= _AT_CEILING
        return cost

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        return self.choose_scored(candidates, stats, ctx)[0]

    def choose_scored(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[Endpoint, dict[str, float]]:
        """The choice and the cost of each sampled candidate (lower is better)."""
        if len(candidates) == 1:
            return candidates[0], {}
        now = stats.now()
        chosen = self._choose_scored(candidates, stats, ctx, now)
        if self.explore_tau:
            self._sent[chosen[0].name] = now
        return chosen

    def _choose_scored(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> tuple[Endpoint, dict[str, float]]:
        n = len(candidates)
        probe = self._prober.due(candidates, stats, now)
        if probe is not None:
            return probe, probe_scores(probe, stats, now)
        if n <= self.scan_max:
            return self._scan(candidates, stats, ctx, now)
        i, j = self._rng.sample2(n)
        champion = self._champion
        if self.remember and champion < n and champion not in (i, j):
            # One of the two is the last winner: a good deployment found by chance is kept
            # until a random challenger costs less (best of two with memory).
            i = champion
        a, b = candidates[i], candidates[j]
        # The prior for an unmeasured deployment is the other sample's estimate (optimistic, so
        # it gets probed); looking at just the two samples keeps a choice O(1) in fleet size.
        la = self._latency(a, stats, ctx, now)
        lb = self._latency(b, stats, ctx, now)
        if la is None:
            prior = lb if lb is not None else self.default_latency
        else:
            prior = la if lb is None or la < lb else lb
        cost_a = self._cost(a, stats, now, la, prior)
        cost_b = self._cost(b, stats, now, lb, prior)
        scores = {a.name: cost_a, b.name: cost_b}
        # A tie goes to the one that is not the last winner (an unmeasured challenger, scored
        # at the winner's estimate, gets its probe); without memory, a is already random.
        if cost_a < cost_b or (cost_a == cost_b and i != champion):
            self._champion = i
            return a, scores
        self._champion = j
        return b, scores

    def _scan(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> tuple[Endpoint, dict[str, float]]:
        """Every candidate scored; unmeasured ones get the best measured estimate (probed)."""
        latency = self._latency
        lats = [latency(c, stats, ctx, now) for c in candidates]
        known = [x for x in lats if x is not None]
        prior = min(known) if known else self.default_latency
        cost = self._cost
        scores = [cost(c, stats, now, la, prior) for c, la in zip(candidates, lats, strict=True)]
        # Costs within SCAN_TIE of the best are ties, picked at random: equal deployments share
        # the traffic instead of the one measured a little faster (noise, a cold connection)
        # taking all of it; 1.2 keeps a deployment that failed once above 15 % of sequential
        # traffic and, unlike 1.5, stops splitting the traffic evenly between deployments 30 %
        # apart (simulator). Costs within TIE_SECONDS of the lowest are ties too: on loopback
        # (2 ms answers) a millisecond of jitter is 50 %, and the band alone let a deployment
        # that failed once fall to 5 % of sequential traffic (the test over real sockets).
        best = min(scores)
        floor = max(best * self.tie, best + TIE_SECONDS)
        ties = [i for i, v in enumerate(scores) if v <= floor]
        i = ties[0] if len(ties) == 1 else ties[self._rng.index(len(ties))]
        return candidates[i], {c.name: v for c, v in zip(candidates, scores, strict=True)}
