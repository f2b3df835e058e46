"""``adaptive`` (the default): the lowest load-aware peak latency, scanned in small fleets and
over a cached elite and a random challenger in large ones.

When to use it: almost always. It needs no tuning and reacts within a few requests.

For each request it scores candidates and sends to the one with the lowest cost::

    latency = peak_ewma_latency × length × load_scale × (1 + congestion × in_flight)
    cost = latency + odds_of_failure × time_a_failure_takes

Fleets of up to ``scan_max`` (8) candidates are scanned in full, so a clearly better deployment
gets all the traffic it can serve (costs within 10 % of the lowest are ties, given to the one
with the fewest requests in flight, then at random, so noise does not decide between equal
ones; so are costs within 30 % of it when the deployments' long-run latency levels differ by
no more than their noise: equal deployments share by load, a real difference still wins).
Larger fleets are ranked every ``refresh`` (12) choices, and each choice scans the
``elite`` (8) lowest-cost candidates of the last ranking plus one random challenger, which
keeps exploring the rest (amortized O(n / 12) + O(9) per choice; best of two random choices
gave the best of 50 deployments a quarter of the traffic the oracle gives it). The switch
point is measured: the scan costs ~2.4 µs + 0.7 µs per candidate, under 1 % of a loopback
round trip at 8.

where ``odds_of_failure`` is ``e / (1 - e)`` of the recent error rate ``e``: the cost is the
expected time to an answer if the request were tried there until it succeeded (the failed
attempts a success takes, ``e / (1 - e)`` of them on average, each as long as a failure takes).

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
  token. In a large fleet the peak does not count (``large_peak_weight``) and ``explore_tau`` is
  scaled by the fleet's size over ``scan_max``, so the whole fleet is re-measured at the rate
  of a scanned one (see ``LargeFleet._large_settings``).
* **× load_scale × (1 + congestion × in flight)**: the latency a request sent now should
  expect. The tracker learns each deployment's congestion (the share of its idle latency each
  request in flight adds) from its answers and the load each was sent at
  (:mod:`multimodel.tracking.congestion`); the measured estimate is taken back to idle with
  the load it was measured at (``load_scale``), then forward to the load now. A busy
  deployment looks slower before its answers say so (no herding), but the load its
  measurement already carries is not counted twice: a constant ``load_factor`` of 0.03 on
  top stopped at ~12 in flight on the fastest of 50 deployments where the oracle runs ~20
  (``large_fleet`` 1.19-1.26x the oracle's p95, 1.11-1.15x now; ``mixed_models`` 1.08-1.09x,
  1.02-1.03x now). ``load_factor=x`` pins that former cost.
* **× length** (non-streamed requests): the estimate taken to the request's expected output
  length, by the deployment's learned line ``overhead + slope × tokens``
  (:mod:`multimodel.tracking.lengths`), the request's ``max_tokens`` times the deployment's own
  ratio of tokens written to tokens asked for: a deployment that wrote long answers is not
  mistaken for a slow one (``mixed_lengths``: 1.95-2.00x the oracle's p95 before, 1.00-1.01x).
  1 for a deployment whose lengths do not vary.
* **Failures**: each failed attempt a success takes there on average (the odds of failure)
  adds the time a failure takes there (a smoothed average over its failures; a 429's
  ``Retry-After`` counts as part of it), at least a tenth of the latency (``FAILURE_FLOOR``).
  A deployment whose failures are fast costs little per failure, so it is used while its speed
  makes up for the retries (the oracle's own model: a fast failure, then a retry). Beyond odds
  of 1 (more failures than answers) the cost is also multiplied by ``1 + 30 × (odds - 1)``
  (``BROKEN_PENALTY``), so one that fails *fast* and often (a 500 in 2 ms, nothing in flight) is
  not mistaken for a fast one. A number for ``error_penalty`` pins the former rule,
  ``× (1 + error_penalty × odds)``, which at 30 sent the faster deployment of ``failing_30``
  15 % of the traffic (now 52 %, 43 % without the steady rate below; least outstanding 39 %,
  the oracle 77 %) and a deployment that failed once no traffic for seconds
  (``sequential_failure``: p95 +2.1 % against least outstanding, +0.4 % now; 20 seeds). A
  deployment that fails now and then is weighed by its steady error rate (~20 attempts) while
  its recent one is within the noise of it (``STEADY_Z``): two failures in a row of one
  failing 30 % of the time are not a broken deployment (``failing_30`` p95 -0.25 ± 0.15 % on
  seeds 40-79, -0.47 ± 0.06 % on 80-279, paired); the first failures of a healthy one are a
  change, weighed at once. The rate is forgiven over time since the last failure (by 1/e
  every 2 s per consecutive failure, and to exactly zero once below 2 %), so a deployment
  that failed competes again on its latency within seconds.
  A 429 or 503 with ``Retry-After`` marks the deployment as penalized until then; it is used
  only if every sampled candidate is. The load it refused (the requests in flight when the
  hold is first seen) then counts as a ceiling for a minute after the hold: at that load the
  deployment is used only if every other is at its ceiling or held, so the next 429 is avoided
  instead of learned again (rate-limit headroom from the provider's own answers); its last free slot
  costs double, so it is kept for when the others are as full. When the whole fleet is
  held or full, a held deployment with fewer in flight than it refused is preferred to one at
  its ceiling (a sure 429).
* **Rate-limit headroom**: a deployment whose last response said it has less than 10 % of its
  request or token budget left (``x-ratelimit-remaining-*`` over ``x-ratelimit-limit-*``,
  ``anthropic-ratelimit-*``; until the budget's reset) costs ``0.1 / share`` times more, and
  one with none left is treated as at its ceiling: the traffic moves before the 429.
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

from collections.abc import Mapping, Sequence

from .._core.trace import LazyScores
from ..providers.base import Endpoint
from ..tracking.stats import DeploymentStats, StatsView, Tracker
from ._failures import BROKEN_PENALTY, FAILURE_FLOOR, STEADY_Z, failure_cost
from ._large_fleet import _UNMEASURED_BUSY, REFRESH_SECONDS, LargeFleet, _best, _Elite
from ._ties import LEVEL_TIE_CAP, LEVEL_TIE_Z, SCAN_TIE, TIE_SECONDS
from ._util import Fleet, FleetCache, LockedRandom, Prober, forgiven_error_rate, probe_scores
from .base import RouteContext, register_strategy

__all__ = [
    "BROKEN_PENALTY",
    "FAILURE_FLOOR",
    "LEVEL_TIE_CAP",
    "LEVEL_TIE_Z",
    "REFRESH_SECONDS",
    "SCAN_TIE",
    "STEADY_Z",
    "TIE_SECONDS",
    "Adaptive",
]

_PENALIZED = 1e6  # multiplier while a Retry-After is pending
_AT_CEILING = 1e3  # multiplier at the load a recent 429 / 503 refused (below a pending hold)
_HELD_BELOW = 1e2  # held, with fewer in flight than it refused: better than a sure 429
_LAST_SLOT = 2.0  # one below a learned ceiling, no hold: the last free slot
HEADROOM = 0.1
"""Below this share of its rate-limit budget left (``x-ratelimit-remaining-*`` /
``anthropic-ratelimit-*-remaining`` over the limit, until the reset), a deployment's cost is
multiplied by ``HEADROOM / share``: x2 at 5 % left, x10 at 1 %, as at a learned ceiling at 0."""
CEILING_TTL = 60.0
"""Seconds after a Retry-After hold ends during which the load it refused (requests in
flight) counts as a ceiling: rate-limit headroom learned from the provider's answer."""
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
LARGE_PEAK_WEIGHT = 0.0
""":data:`PEAK_WEIGHT` in a large fleet (more than ``scan_max`` candidates): the plain EWMA. A
leader's spike handed its traffic to the next of several near-equal deployments at every
ranking: ``large_fleet``, seeds 0-11, p95 / oracle 1.11 on average with 0.25, 1.09 with 0 (the
exploration decay scaled with the fleet in both); the scanned scenarios were neutral to it
(brownout and drift better without it, homogeneous and mixed_lengths ~0.5 % worse), so they
keep it."""
SCAN_MAX = 8
"""Fleets up to this size are scanned in full (the best gets all it can serve at its best
latency); larger ones scan an elite and a random challenger (see ``benchmarks/run.py --only
route``)."""
ELITE = 8
"""In a large fleet, the lowest-cost candidates scanned at every choice (with one random
challenger). Measured on ``large_fleet`` (50 deployments, seeds 0-2): p95 / oracle 1.25-1.35
at 4, 1.21-1.29 at 6; best of two with memory: 1.8-2.0. With today's costs, 8 with
:data:`REFRESH` 12 against 6 with 16: p95 -0.75 +- 0.26 % (seeds 0-39, paired) and
-0.59 +- 0.27 % (seeds 40-79), success unchanged; either change alone: none (-0.36 / -0.48 %
then -0.03 / -0.00 %). It costs ~11 k instructions a routed request at 50 (163 k -> 174 k)."""
REFRESH = 12
"""Choices between two rankings of a large fleet (an O(n) pass, amortized over them)."""


@register_strategy("adaptive")
class Adaptive(LargeFleet):
    """Peak-EWMA latency at the load now (learned congestion), with failure penalties; a full scan
    of small fleets, a cached elite and a random challenger in large ones.

    Args:
        error_penalty: ``None`` (default): the odds of failure (``e / (1 - e)`` of the recent
            error rate ``e``) times the time a failure takes there are added to the cost; a
            number: the former rule, the cost multiplied by ``1 + error_penalty × odds``.
        default_latency: the estimate used before anything was measured anywhere (seconds).
        seed: seeds the random sampling (deterministic tests and simulations).
        scan_max: fleets up to this size are scanned in full (0: always two choices).
        load_factor: ``None`` (default): each deployment's learned congestion, the measured
            latency taken back to idle first; a number: the former constant fraction of the
            latency each request in flight adds to the cost.
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
        large_peak_weight: ``peak_weight`` in large fleets (more than ``scan_max``
            candidates), where ``explore_tau`` is also scaled by the fleet's size over
            ``scan_max``.
        level_z: in a scan, costs up to :data:`LEVEL_TIE_CAP` times the lowest are ties too
            when the deployments' idle latency levels differ by at most this many standard
            errors (0: only ``tie`` and :data:`TIE_SECONDS` make ties).
    """

    def __init__(
        self,
        error_penalty: float | None = None,
        default_latency: float = 1.0,
        seed: int | None = None,
        scan_max: int = SCAN_MAX,
        load_factor: float | None = None,
        tie: float = SCAN_TIE,
        idle_floor: float = IDLE_FLOOR,
        remember: bool = True,
        peak_weight: float = PEAK_WEIGHT,
        explore_tau: float = EXPLORE_TAU,
        elite: int = ELITE,
        refresh: int = REFRESH,
        large_peak_weight: float = LARGE_PEAK_WEIGHT,
        level_z: float = LEVEL_TIE_Z,
    ) -> None:
        self.level_z = level_z
        self.large_peak_weight = large_peak_weight
        self.explore_tau = explore_tau
        self._sent: dict[str, float] = {}
        self.peak_weight = peak_weight
        self.remember = remember
        self.load_factor = load_factor
        self.tie = tie
        self.idle_floor = idle_floor
        self.elite = elite
        self.refresh = refresh
        self._elite: _Elite | None = None
        self._elite_age = 0
        self._fleets: FleetCache[Fleet] = FleetCache(Fleet)
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
        return self._scores([endpoint], stats, ctx, now, prior)[0][0]

    def _scores(
        self,
        candidates: Sequence[Endpoint],
        stats: StatsView,
        ctx: RouteContext,
        now: float,
        prior: float | None = None,
    ) -> tuple[list[float], list[DeploymentStats]]:
        """The cost of each candidate (and its record).

        Unmeasured candidates are scored at ``prior``, by default the best measured estimate
        (optimistic, so they get probed)."""
        get = stats.get
        cells = [get(c.name) for c in candidates]
        lats = self._latencies(candidates, cells, stats, ctx, now)
        return self._costs([c.name for c in candidates], cells, lats, prior, stats, now), cells

    def _costs(
        self,
        names: Sequence[str],
        cells: Sequence[DeploymentStats],
        lats: Sequence[float | None],
        prior: float | None,
        stats: StatsView,
        now: float,
    ) -> list[float]:
        """Each candidate's latency made a cost (by the candidates' ``names``): load, failures,
        holds and ceilings. An unmeasured one (latency ``None``) is scored at ``prior``, by
        default the best measured estimate (optimistic, so it gets probed), found only when
        there is one: with the fleet measured, a scan for ``None`` was a tenth of a choice."""
        learned = self.load_factor is None
        erring = not isinstance(stats, Tracker) or stats.erring
        held = self._ceilings
        if learned and not erring and not held:
            # The common case (nothing failing or held anywhere): one comprehension, each
            # candidate's load term only, unless it is unmeasured, held or nearly out of its
            # budget (then ``other`` is set: every candidate again by the loop below). A loop
            # that tests each rare term for each candidate cost ~2.4 k instructions more per
            # choice at 50 deployments.
            other: float | None = None
            scores = [
                latency * cell.load_scale * (1.0 + cell.congestion * cell.in_flight)
                if latency is not None and cell.penalty_until <= now and cell.headroom >= HEADROOM
                else (other := 0.0)
                for cell, latency in zip(cells, lats, strict=True)
            ]
            if other is None:
                return scores
        load_factor = self.load_factor or 0.0
        penalty = self.error_penalty
        scores = []
        add = scores.append
        for name, cell, latency in zip(names, cells, lats, strict=True):
            in_flight = cell.in_flight
            if latency is None:
                if prior is None:
                    prior = _best(lats, self.default_latency)
                # Unmeasured: scored at the best estimate so it gets probed, one request at a
                # time (a cold fleet of 50 sent ~10 % of its first 10 s to deployments 3x
                # slower than the best, several at once to each before any had answered).
                latency = prior * _UNMEASURED_BUSY if in_flight else prior
            if learned:
                # The latency taken back to idle (the load it was measured at), then forward
                # to the load now, each deployment by its own congestion: the measurement
                # already carries its load, and a constant factor on top counted it twice.
                cost = latency * cell.load_scale * (1.0 + cell.congestion * in_flight)
            else:
                cost = latency * (1.0 + load_factor * in_flight)
            # err / (1 - err), not err: the penalty must keep growing while failures go on, or
            # a deployment that fails *fast* (0 in flight) wins against a healthy one that is
            # busy (the bounded 1 + penalty x err is outweighed once the healthy one has ~10 in
            # flight). Forgiven over time: a deployment that gets no traffic has no new samples
            # to lower its error rate, and would otherwise never be tried again.
            if erring and cell.ewma_error_rate:
                cost = failure_cost(cell, forgiven_error_rate(cell, now), cost, penalty)
            if held or cell.penalty_until > now:
                cost *= self._limits(name, cell, now)
            headroom = cell.headroom
            if headroom < HEADROOM and cell.headroom_until > now:
                # Nearly out of its rate-limit budget (its own headers said so): steered away
                # before the 429, more firmly as the budget runs out; none left is a ceiling.
                cost *= HEADROOM / headroom if headroom > HEADROOM / _AT_CEILING else _AT_CEILING
            add(cost)
        return scores

    def _limits(self, name: str, cell: DeploymentStats, now: float) -> float:
        """The multiplier of a Retry-After hold, or of the load a recent one refused."""
        until = cell.penalty_until
        if until > now:
            # Learn the load that was refused and the hold's end: the attempts in flight when
            # the refused one was sent (the tracker keeps it from the plan), else those still
            # in flight when the hold is first seen. Not the latter when the former is known:
            # answers landing between the 429 and the next choice made it read low (5 for a
            # limit of 6), and a deployment with free slots was held back while the request
            # went to a full one (bursty_90: 360 of ~900 429s had a free slot elsewhere; 100
            # now, success 88.5 -> 89.4 %, least_connections 89.5 %, the oracle 88.7 %).
            seen = self._ceilings.get(name)
            if seen is None or seen[0] != until:
                load = cell.refused_load
                self._ceilings[name] = seen = (
                    until,
                    max(cell.in_flight if load is None else load, 1),
                )
            # Below the refused load, a held deployment is a better last resort than one at
            # its ceiling (a sure 429): when the whole fleet is full, its freed slots are used
            # (success at 90 % of capacity with bursts: 88.0 % -> 88.3 %).
            return _PENALIZED if cell.in_flight >= seen[1] else _HELD_BELOW
        seen = self._ceilings.get(name)
        if seen is not None:
            if now > seen[0] + CEILING_TTL:
                self._ceilings.pop(name, None)
            else:
                load = cell.in_flight
                if load >= seen[1]:
                    return _AT_CEILING
                if load == seen[1] - 1:
                    # The last free slot costs double: filled now, the next arrival (or a
                    # retry, which cannot come back here) finds the deployment full, a sure
                    # 429, while a less loaded one had room. bursty_90 over 30 seeds: success
                    # -0.16 +/- 0.06 points against least outstanding -> +0.07 +/- 0.05;
                    # graded from the first request (x C / (C - n)) gave the same there but
                    # cost cheap_rate_limited's p95 (1.03 -> 1.05x the oracle's).
                    return _LAST_SLOT
        return 1.0

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        return self.choose_scored(candidates, stats, ctx)[0]

    def choose_scored(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[Endpoint, Mapping[str, float]]:
        """The choice and the cost of each candidate it weighed (lower is better)."""
        if len(candidates) == 1:
            return candidates[0], {}
        now = stats.now()
        prober = self._prober
        if type(stats) is Tracker and not stats.erring:
            prober.count += 1  # nothing erring, no probe due: due() would only count it
            probe = None
        else:
            probe = prober.due(candidates, stats, now)
        if probe is not None:
            chosen: Endpoint = probe
            scores: Mapping[str, float] = probe_scores(probe, stats, now)
        else:
            if len(candidates) <= self.scan_max:
                # _scores, inlined: a small fleet's choice is a few dozen attribute reads, and
                # each Python call is a tenth of it.
                # The candidates' names and records are kept per candidate list (the router
                # passes the same tuple while nothing is excluded: one identity check).
                fleet = self._fleets.get(candidates, stats)
                cells = fleet.cells
                if cells is None:  # not the tracker: its records read through ``get``
                    cells = list(map(stats.get, fleet.names))
                lats = self._latencies(candidates, cells, stats, ctx, now)
                costs = self._costs(fleet.names, cells, lats, None, stats, now)
                chosen = candidates[self._pick(costs, cells)]
                scores = LazyScores(fleet.names, costs)
            elif self.remember:
                chosen, scores = self._choose_large(candidates, stats, ctx, now)
            else:
                chosen, scores = self._two_choices(candidates, stats, ctx, now)
        self._sent[chosen.name] = now
        return chosen, scores
