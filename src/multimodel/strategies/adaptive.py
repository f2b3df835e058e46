"""``adaptive`` (the default): the lowest load-aware peak latency, scanned in small fleets and
over a cached elite and a random challenger in large ones.

When to use it: almost always. It needs no tuning and reacts within a few requests.

For each request it scores candidates and sends to the one with the lowest cost::

    cost = peak_ewma_latency × (1 + load_factor × in_flight) × (1 + error_penalty × odds_of_failure)

Fleets of up to ``scan_max`` (8) candidates are scanned in full, so a clearly better deployment
gets all the traffic it can serve (costs within 10 % of the lowest are ties, given to the one
with the fewest requests in flight, then at random, so noise does not decide between equal
ones). Larger fleets are ranked every ``refresh`` (16) choices, and each choice scans the
``elite`` (6) lowest-cost candidates of the last ranking plus one random challenger, which
keeps exploring the rest (amortized O(n / 16) + O(7) per choice; best of two random choices
gave the best of 50 deployments a quarter of the traffic the oracle gives it). The switch
point is measured: the scan costs ~2.4 µs + 0.7 µs per candidate, under 1 % of a loopback
round trip at 8.

where ``odds_of_failure`` is ``e / (1 - e)`` of the recent error rate ``e``.

* **Peak EWMA latency** (Finagle): a slow answer raises the estimate at once (by a quarter of
  its excess over the plain EWMA, ``peak_weight``: one lognormal spike of a fast deployment
  should not hand its traffic to a slower one); it decays as fast answers return, or while the
  deployment is idle, so a deployment that was slow once is tried again later. The idle decay
  stops at a floor (``idle_floor``): the deployment's plain EWMA, or its time-weighted estimate
  when lower (after a pause, one fast answer moves that most of the way, so a deployment that
  recovered from a brownout gets its traffic back within seconds, not after the several
  answers the plain EWMA needs). The floor itself falls by 1/e per minute since the deployment
  was last chosen (``explore_tau``): one measured slow is retried within minutes, not every
  ~20 s (in a fleet of 50 that sent a steady trickle to the slowest). Streams use time to first
  token.
* **× (1 + load_factor × in flight)**: a fast deployment that is already busy looks slower, so
  the fastest one does not get every request (no herding). ``load_factor`` is 0.03: LLM APIs
  serve many requests at once and slow down mildly with load, and the measured latency already
  carries the load it was measured at; 0.1 sent 6 % of the traffic to a 3x slower deployment
  whenever the fast one had a dozen in flight, 1.0 (a queue) a third (simulator,
  ``benchmarks/simulate.py --oracle``).
* **Failures**: the recent error rate multiplies the cost, without bound while failures go on,
  so a deployment that fails *fast* (a 500 in 2 ms, nothing in flight) is not mistaken for a
  fast one, however busy the healthy ones are. The rate is forgiven over time since the last
  failure (by 1/e every 2 s per consecutive failure, and to exactly zero once below 2 %), so a
  deployment that failed competes again on its latency within seconds. A 429 or 503
  with ``Retry-After`` marks the deployment as penalized until then; it is used only if every
  sampled candidate is. The load it refused (the requests in flight when the hold is first
  seen) then counts as a ceiling for a minute after the hold: at that load the deployment is
  used only if every other is at its ceiling or held, so the next 429 is avoided instead of
  learned again (rate-limit headroom from the provider's own answers). When the whole fleet is
  held or full, a held deployment with fewer in flight than it refused is preferred to one at
  its ceiling (a sure 429).
* **Unknown deployments** are scored like the best measured one, so they get probed, one
  request at a time until the first answer (a cold fleet of 50 under a burst otherwise sent
  several requests each to deployments 3x slower than the best).
* **No starvation**: a deployment whose last attempt failed can lose every comparison and so
  never get the request that would show it recovered. Every few requests, a deployment whose
  last attempt failed, with nothing in flight and no ``Retry-After`` hold, gets a real probe
  (one at a time, fewer as its failures go on; see :class:`~multimodel.strategies._util.Prober`),
  and the routing trace scores it ``-1`` (a probe).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ._util import LockedRandom, Prober, forgiven_error_rate, probe_scores
from .base import RouteContext, register_strategy
from .response_time import expected_latency

__all__ = ["Adaptive"]

_PENALIZED = 1e6  # multiplier while a Retry-After is pending
_UNMEASURED_BUSY = 1e2  # an unmeasured deployment with its probe in flight waits for the answer
_AT_CEILING = 1e3  # multiplier at the load a recent 429 / 503 refused (below a pending hold)
_HELD_BELOW = 1e2  # held, with fewer in flight than it refused: better than a sure 429
CEILING_TTL = 60.0
"""Seconds after a Retry-After hold ends during which the load it refused (requests in
flight) counts as a ceiling: rate-limit headroom learned from the provider's answer."""
LOAD_FACTOR = 0.03
"""Each request in flight adds this fraction of the latency to the cost: LLM APIs serve many
requests at once and slow down mildly with load, and the measured latency already carries the
load it was measured at, so a larger factor counts the load twice. Simulator
(``benchmarks/simulate.py --oracle``): 0.1 sent 6 % of the traffic to a 3x slower deployment
while the fast one had a dozen in flight (p95 1.3x the oracle's); 0.02 herded onto a
deployment that slows down 8 % per request (mixed_models 1.13x); 1.0 (a queue) sent a third of
the traffic to a 3x slower one."""
SCAN_TIE = 1.1  # in a scan, costs within 10 % of the lowest are ties (measurement noise)
TIE_SECONDS = 0.01  # ... and so are costs within 10 ms of it (jitter of very fast answers)
IDLE_FLOOR = 1.0
"""The idle decay of a deployment's latency estimate stops at this fraction of its plain
EWMA latency (or of its time-weighted estimate, when lower), itself decayed by 1/e per
:data:`EXPLORE_TAU` since the deployment was last chosen."""
EXPLORE_TAU = 60.0
"""Seconds for the floor of an idle deployment's estimate to fall by 1/e: a deployment
measured slow is tried again within minutes, not every ~20 s (the peak EWMA's own idle decay,
which in a fleet of 50 sent a steady trickle to the slowest; 20 or 30 s did again)."""
PEAK_WEIGHT = 0.25
"""How much of the peak EWMA's excess over the plain EWMA counts: a spike still raises the
estimate at once, by a quarter (lognormal latencies put the peak of a fast deployment above a
slower one's mean: all of it sent 9 % of the traffic to a 3x slower deployment, half of it
kept the brownout and large-fleet scenarios at 1.12 and 1.3x the oracle's p95)."""
SCAN_MAX = 8
"""Fleets up to this size are scanned in full (the best gets all it can serve at its best
latency); larger ones scan an elite and a random challenger (see ``benchmarks/run.py --only
route``)."""
ELITE = 6
"""In a large fleet, the lowest-cost candidates scanned at every choice (with one random
challenger). Measured on ``large_fleet`` (50 deployments, seeds 0-2): p95 / oracle 1.25-1.35
at 4, 1.21-1.29 at 6, no better at 8; best of two with memory: 1.8-2.0."""
REFRESH = 16
"""Choices between two rankings of a large fleet (an O(n) pass, amortized over them)."""


@register_strategy("adaptive")
class Adaptive:
    """Peak-EWMA latency × (1 + load_factor × in flight), with failure penalties; a full scan
    of small fleets, a cached elite and a random challenger in large ones.

    Args:
        error_penalty: how much the odds of failure (``e / (1 - e)`` of the recent error
            rate ``e``) inflate the cost.
        default_latency: the estimate used before anything was measured anywhere (seconds).
        seed: seeds the random sampling (deterministic tests and simulations).
        scan_max: fleets up to this size are scanned in full (0: always two choices).
        load_factor: the fraction of the latency each request in flight adds to the cost.
        tie: in a scan, costs up to this multiple of the lowest are ties (the fewest in
            flight wins them, then chance).
        idle_floor: the idle decay of a latency estimate stops at this fraction of the
            deployment's plain EWMA latency, or of its time-weighted estimate when lower (0:
            decays toward zero, Finagle's rule).
        explore_tau: seconds for that floor to fall by 1/e while the deployment is not
            chosen (0: it does not fall).
        remember: in large fleets, scan the ``elite`` of the last ranking and one random
            challenger (False: two random candidates, Finagle's P2C).
        peak_weight: how much of the peak EWMA's excess over the plain EWMA counts (1: the
            peak EWMA, Finagle's rule).
        elite: in large fleets, the lowest-cost candidates scanned at every choice.
        refresh: in large fleets, choices between two rankings of every candidate.
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
        elite: int = ELITE,
        refresh: int = REFRESH,
    ) -> None:
        self.explore_tau = explore_tau
        self._sent: dict[str, float] = {}
        self.peak_weight = peak_weight
        self.remember = remember
        self.load_factor = load_factor
        self.tie = tie
        self.idle_floor = idle_floor
        self.elite = elite
        self.refresh = refresh
        self._elite: list[tuple[int, str]] = []
        self._elite_age = 0
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
        # The floor: the plain EWMA, or the time-weighted estimate when lower: after a pause
        # (a brownout that ended) one fast answer moves it most of the way, where the plain
        # EWMA needs several (each after another idle wait: a recovered deployment took a
        # minute to get its traffic back).
        recent = cell.latency_recent(ctx.stream)
        if recent is not None and recent < base:
            base = recent
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
        in_flight = cell.in_flight
        if latency is None:
            # Unmeasured: scored at the best estimate so it gets probed, one request at a time
            # (a cold fleet of 50 sent ~10 % of its first 10 s to deployments 3x slower than
            # the best, several at once to each before any had answered).
            latency = prior * (_UNMEASURED_BUSY if in_flight else 1.0)
        cost = latency * (1.0 + self.load_factor * in_flight)
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
            # Learn the load that was refused: the requests still in flight when the hold is
            # first seen (a 429 at N in flight leaves N - 1 or fewer) and the hold's end.
            seen = self._ceilings.get(endpoint.name)
            if seen is None or seen[0] != until:
                self._ceilings[endpoint.name] = seen = (until, max(cell.in_flight, 1))
            # Below the refused load, a held deployment is a better last resort than one at
            # its ceiling (a sure 429): when the whole fleet is full, its freed slots are used
            # (success at 90 % of capacity with bursts: 88.0 % -> 89.x %, least_connections,
            # which ignores holds, 89.5 %).
            cost *= _PENALIZED if cell.in_flight >= seen[1] else _HELD_BELOW
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
        if not self.remember:
            return self._two_choices(candidates, stats, ctx, now)
        return self._scan(self._elite_of(candidates, stats, ctx, now), stats, ctx, now)

    def _elite_of(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> list[Endpoint]:
        """The ``elite`` lowest-cost candidates of a large fleet (ranked afresh every
        ``refresh`` choices) and one random challenger.

        The scan of a few leaders gives the best deployment all the traffic it can serve (two
        random choices gave the best of 50 a quarter of its oracle share: p95 1.8x the
        oracle's); the challenger keeps exploring the rest (an unmeasured one ties with the
        best estimate and gets its probe; one measured slow is retried as its idle floor falls).
        A retry's candidate list (one deployment fewer) is ranked for that call only."""
        n = len(candidates)
        elite = self._elite
        self._elite_age = age = self._elite_age + 1
        if (
            not elite
            or age >= self.refresh
            or any(i >= n or candidates[i].name != nm for i, nm in elite)
        ):
            # Ranked afresh (O(n), every `refresh` choices, or when the list changed: a retry,
            # a deployment cooling down); in between a choice costs a scan of elite + 1.
            latency, cost = self._latency, self._cost
            lats = [latency(c, stats, ctx, now) for c in candidates]
            known = [x for x in lats if x is not None]
            prior = min(known) if known else self.default_latency
            scores = [
                cost(c, stats, now, la, prior) for c, la in zip(candidates, lats, strict=True)
            ]
            best = heapq.nsmallest(self.elite, range(n), key=scores.__getitem__)
            self._elite = elite = [(i, candidates[i].name) for i in best]
            self._elite_age = 0
        picked = [candidates[i] for i, _ in elite]
        j = self._rng.index(n)
        if all(j != i for i, _ in elite):
            picked.append(candidates[j])
        return picked

    def _two_choices(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> tuple[Endpoint, dict[str, float]]:
        """Two random candidates, the lower cost wins (Finagle's P2C; ``remember=False``)."""
        i, j = self._rng.sample2(len(candidates))
        a, b = candidates[i], candidates[j]
        # The prior for an unmeasured deployment is the other sample's estimate (optimistic, so
        # it gets probed).
        la = self._latency(a, stats, ctx, now)
        lb = self._latency(b, stats, ctx, now)
        if la is None:
            prior = lb if lb is not None else self.default_latency
        else:
            prior = la if lb is None or la < lb else lb
        cost_a = self._cost(a, stats, now, la, prior)
        cost_b = self._cost(b, stats, now, lb, prior)
        scores = {a.name: cost_a, b.name: cost_b}
        return (a if cost_a <= cost_b else b), scores

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
        if len(ties) > 1:
            # Among ties, the fewest in flight (then at random): the band hides a load
            # difference of a few requests, and at 90 % of capacity that sent a third of the
            # 429s to a full deployment while another had free slots.
            loads = [stats.get(candidates[i].name).in_flight for i in ties]
            low = min(loads)
            ties = [i for i, x in zip(ties, loads, strict=True) if x == low]
        i = ties[0] if len(ties) == 1 else ties[self._rng.index(len(ties))]
        return candidates[i], {c.name: v for c, v in zip(candidates, scores, strict=True)}
